/**
 * HTTP/2 framing (RFC 9113 §4, §6): constants, frame encoders, payload parsers and a reader that
 * cuts frames out of a byte stream split at any boundary.
 *
 * Invariants:
 * - The reader never holds more than one frame header plus one payload of at most the maximum
 *   frame size we advertise; a longer frame is refused from its header, before its payload comes.
 * - Encoders return node `Buffer`s ready for a socket write; payloads handed in are not copied by
 *   {@link dataHeader} (the caller writes header and payload side by side).
 */
import { Buffer } from "node:buffer";

/** Frame types (RFC 9113 §6). */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags (RFC 9113 §6). */
export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** Error codes (RFC 9113 §7). */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/** SETTINGS identifiers (RFC 9113 §6.5.2). */
export const SettingId = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** The client connection preface (RFC 9113 §3.4). */
export const CLIENT_PREFACE: Buffer = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** Size of a frame header. */
export const FRAME_HEADER_SIZE = 9;
/** Smallest SETTINGS_MAX_FRAME_SIZE a peer may advertise, and the default. */
export const MIN_MAX_FRAME_SIZE = 16_384;
/** Largest SETTINGS_MAX_FRAME_SIZE a peer may advertise. */
export const MAX_MAX_FRAME_SIZE = (1 << 24) - 1;
/** Largest flow-control window (RFC 9113 §6.9.1). */
export const MAX_WINDOW = 0x7fff_ffff;
/** The initial window of every stream and of the connection before SETTINGS (RFC 9113 §6.9.2). */
export const DEFAULT_WINDOW = 65_535;

/** Names of error codes, for messages. */
export function errorName(code: number): string {
  for (const [name, value] of Object.entries(ErrorCode)) if (value === code) return name;
  return `0x${code.toString(16)}`;
}

/**
 * A protocol violation found while reading: a connection error, or a stream error when
 * `streamId` is set (RFC 9113 §5.4).
 */
export class H2ProtocolError extends Error {
  /**
   * @param code Error code to send in GOAWAY or RST_STREAM
   * @param message What was wrong
   * @param streamId The stream of a stream error; undefined for a connection error
   */
  constructor(readonly code: number, message: string, readonly streamId?: number) {
    super(message);
    this.name = "H2ProtocolError";
  }
}

/** One frame as read. `payload` may be a view into the bytes the reader was given. */
export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/**
 * Encodes a frame header.
 *
 * @param length Payload length (< 2^24)
 * @param type Frame type
 * @param flags Flag bits
 * @param streamId Stream id (31 bits)
 * @returns Nine bytes
 */
export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  writeFrameHeader(b, 0, length, type, flags, streamId);
  return b;
}

function writeFrameHeader(
  b: Uint8Array,
  at: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  b[at] = (length >>> 16) & 0xff;
  b[at + 1] = (length >>> 8) & 0xff;
  b[at + 2] = length & 0xff;
  b[at + 3] = type;
  b[at + 4] = flags;
  b[at + 5] = (streamId >>> 24) & 0x7f;
  b[at + 6] = (streamId >>> 16) & 0xff;
  b[at + 7] = (streamId >>> 8) & 0xff;
  b[at + 8] = streamId & 0xff;
}

/** Decoded frame header fields. */
export interface FrameHeader {
  readonly length: number;
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
}

/**
 * Decodes the frame header at `at` (the reserved bit of the stream id is ignored).
 *
 * @param b Bytes holding at least nine from `at`
 * @param at Offset of the header
 */
export function decodeFrameHeader(b: Uint8Array, at = 0): FrameHeader {
  return {
    length: (b[at] << 16) | (b[at + 1] << 8) | b[at + 2],
    type: b[at + 3],
    flags: b[at + 4],
    streamId: readU31(b, at + 5),
  };
}

function readU31(b: Uint8Array, at: number): number {
  return ((b[at] & 0x7f) * 0x100_0000) + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);
}

function readU32(b: Uint8Array, at: number): number {
  return b[at] * 0x100_0000 + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/**
 * Encodes a whole frame, copying the payload behind the header.
 *
 * @param type Frame type
 * @param flags Flag bits
 * @param streamId Stream id
 * @param payload Payload bytes, empty by default
 */
export function encodeFrame(
  type: number,
  flags: number,
  streamId: number,
  payload: Uint8Array = EMPTY,
): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.length);
  writeFrameHeader(b, 0, payload.length, type, flags, streamId);
  b.set(payload, FRAME_HEADER_SIZE);
  return b;
}

const EMPTY = new Uint8Array(0);

/** The header of a DATA frame; the caller writes `length` payload bytes after it. */
export function dataHeader(streamId: number, length: number, endStream: boolean): Buffer {
  return frameHeader(length, FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId);
}

/** A SETTINGS frame with the given (id, value) pairs. */
export function settingsFrame(settings: readonly (readonly [number, number])[]): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 6 * settings.length);
  writeFrameHeader(b, 0, 6 * settings.length, FrameType.SETTINGS, 0, 0);
  let at = FRAME_HEADER_SIZE;
  for (const [id, value] of settings) {
    b[at] = (id >>> 8) & 0xff;
    b[at + 1] = id & 0xff;
    writeU32(b, at + 2, value);
    at += 6;
  }
  return b;
}

/** A SETTINGS frame with ACK and no payload. */
export function settingsAckFrame(): Buffer {
  return frameHeader(0, FrameType.SETTINGS, Flag.ACK, 0);
}

/** A PING frame; `data` must be 8 bytes. */
export function pingFrame(data: Uint8Array, ack: boolean): Buffer {
  if (data.length !== 8) throw new RangeError("PING data must be 8 bytes");
  return encodeFrame(FrameType.PING, ack ? Flag.ACK : 0, 0, data);
}

/** A GOAWAY frame. */
export function goawayFrame(lastStreamId: number, code: number, debug: Uint8Array = EMPTY): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 8 + debug.length);
  writeFrameHeader(b, 0, 8 + debug.length, FrameType.GOAWAY, 0, 0);
  writeU32(b, 9, lastStreamId & MAX_WINDOW);
  writeU32(b, 13, code);
  b.set(debug, 17);
  return b;
}

/** A RST_STREAM frame. */
export function rstStreamFrame(streamId: number, code: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 4);
  writeFrameHeader(b, 0, 4, FrameType.RST_STREAM, 0, streamId);
  writeU32(b, 9, code);
  return b;
}

/** A WINDOW_UPDATE frame (`increment` 1 … 2^31-1). */
export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 4);
  writeFrameHeader(b, 0, 4, FrameType.WINDOW_UPDATE, 0, streamId);
  writeU32(b, 9, increment & MAX_WINDOW);
  return b;
}

/**
 * HEADERS plus as many CONTINUATION frames as `maxFrameSize` requires, in one buffer.
 *
 * @param streamId Stream id
 * @param block HPACK header block
 * @param endStream Set END_STREAM on the HEADERS frame
 * @param maxFrameSize The peer's SETTINGS_MAX_FRAME_SIZE
 */
export function headersFrames(
  streamId: number,
  block: Uint8Array,
  endStream: boolean,
  maxFrameSize: number,
): Buffer {
  const frames = Math.max(1, Math.ceil(block.length / maxFrameSize));
  const out = Buffer.allocUnsafe(block.length + FRAME_HEADER_SIZE * frames);
  let at = 0;
  for (let i = 0, off = 0; i < frames; i++) {
    const n = Math.min(maxFrameSize, block.length - off);
    const last = i === frames - 1;
    const type = i === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
    const flags = (last ? Flag.END_HEADERS : 0) | (i === 0 && endStream ? Flag.END_STREAM : 0);
    writeFrameHeader(out, at, n, type, flags, streamId);
    out.set(block.subarray(off, off + n), at + FRAME_HEADER_SIZE);
    at += FRAME_HEADER_SIZE + n;
    off += n;
  }
  return out;
}

/**
 * Removes padding (RFC 9113 §6.1, §6.2) from a DATA or HEADERS payload.
 *
 * @returns The payload without the pad-length byte and padding
 * @throws H2ProtocolError PROTOCOL_ERROR when the padding is longer than the payload
 */
export function unpad(frame: Frame): Buffer {
  if (!(frame.flags & Flag.PADDED)) return frame.payload;
  const p = frame.payload;
  if (p.length < 1 || p[0] >= p.length) {
    throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "padding exceeds the frame payload");
  }
  return p.subarray(1, p.length - p[0]);
}

/**
 * The header block fragment of a HEADERS frame: padding and priority fields removed.
 *
 * @throws H2ProtocolError PROTOCOL_ERROR on bad padding or a too short priority block
 */
export function headersFragment(frame: Frame): Buffer {
  let p = unpad(frame);
  if (frame.flags & Flag.PRIORITY) {
    if (p.length < 5) {
      throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "HEADERS too short for priority");
    }
    p = p.subarray(5);
  }
  return p;
}

/**
 * The (id, value) pairs of a SETTINGS payload.
 *
 * @throws H2ProtocolError FRAME_SIZE_ERROR when the length is not a multiple of 6
 */
export function parseSettings(payload: Uint8Array): [number, number][] {
  if (payload.length % 6 !== 0) {
    throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6");
  }
  const out: [number, number][] = [];
  for (let at = 0; at < payload.length; at += 6) {
    out.push([(payload[at] << 8) | payload[at + 1], readU32(payload, at + 2)]);
  }
  return out;
}

/** Fields of a GOAWAY payload. */
export interface Goaway {
  readonly lastStreamId: number;
  readonly errorCode: number;
  readonly debug: Buffer;
}

/**
 * Parses a GOAWAY payload.
 *
 * @throws H2ProtocolError FRAME_SIZE_ERROR when shorter than 8 bytes
 */
export function parseGoaway(payload: Buffer): Goaway {
  if (payload.length < 8) throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "short GOAWAY");
  return {
    lastStreamId: readU31(payload, 0),
    errorCode: readU32(payload, 4),
    debug: payload.subarray(8),
  };
}

/**
 * The 32-bit value of a RST_STREAM payload or the 31-bit increment of a WINDOW_UPDATE.
 *
 * @param payload Must be exactly 4 bytes
 * @param mask31 Drop the reserved top bit (WINDOW_UPDATE)
 * @throws H2ProtocolError FRAME_SIZE_ERROR when not 4 bytes
 */
export function parseU32(payload: Uint8Array, mask31: boolean): number {
  if (payload.length !== 4) {
    throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "frame payload must be 4 bytes");
  }
  return mask31 ? readU31(payload, 0) : readU32(payload, 0);
}

/**
 * Cuts frames out of a byte stream. Bytes may come split at any boundary; each complete frame is
 * handed to `onFrame` in order. A frame longer than `maxFrameSize` is refused from its header.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #header: FrameHeader | undefined;
  #stopped = false;

  /**
   * @param maxFrameSize Largest payload accepted (our SETTINGS_MAX_FRAME_SIZE)
   * @param onFrame Called once per frame, synchronously from {@link push}
   */
  constructor(public maxFrameSize: number, private readonly onFrame: (frame: Frame) => void) {}

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Stops delivering frames, for good (the rest of the current chunk is dropped too). */
  stop(): void {
    this.#stopped = true;
    this.#chunks = [];
    this.#buffered = 0;
  }

  /**
   * Adds bytes and delivers every frame they complete.
   *
   * @throws H2ProtocolError FRAME_SIZE_ERROR for a frame over the limit; errors thrown by
   *   `onFrame` pass through
   */
  push(chunk: Uint8Array): void {
    if (this.#stopped || chunk.length === 0) return;
    this.#chunks.push(asBuffer(chunk));
    this.#buffered += chunk.length;
    while (!this.#stopped) {
      if (!this.#header) {
        if (this.#buffered < FRAME_HEADER_SIZE) return;
        const h = decodeFrameHeader(this.#take(FRAME_HEADER_SIZE));
        if (h.length > this.maxFrameSize) {
          this.stop();
          throw new H2ProtocolError(
            ErrorCode.FRAME_SIZE_ERROR,
            `frame of ${h.length} bytes exceeds our maximum of ${this.maxFrameSize}`,
          );
        }
        this.#header = h;
      }
      const h = this.#header;
      if (this.#buffered < h.length) return;
      this.#header = undefined;
      const payload = this.#take(h.length);
      this.onFrame({ type: h.type, flags: h.flags, streamId: h.streamId, payload });
    }
  }

  /** Removes `n` buffered bytes: a view when they lie in one chunk, else one copy. */
  #take(n: number): Buffer {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (n === 0) return EMPTY_BUFFER;
    if (first.length > n) {
      this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.#chunks.shift();
      return first;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.#chunks[0];
      const k = Math.min(c.length, n - at);
      out.set(k === c.length ? c : c.subarray(0, k), at);
      at += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    return out;
  }
}

const EMPTY_BUFFER = Buffer.alloc(0);

/** A `Buffer` view of bytes, without copying. */
export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
