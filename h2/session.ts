/**
 * An HTTP/2 connection (RFC 9113) over any node `Duplex`, for both roles: CONNECT streams
 * carrying bytes (HBONE) and ordinary requests with bodies and trailers (h2c), flow control both
 * ways, PING keepalive, GOAWAY and RST_STREAM. No server push, no priorities, no 1xx responses
 * sent.
 *
 * Invariants:
 * - Memory is bounded: the frame reader holds at most one frame of our maximum frame size; a
 *   header block at most our maximum header list size; each stream's readable buffer at most its
 *   receive window (windows are refilled only as consumers drain); our output queue stops taking
 *   DATA while the socket is congested, and a peer that makes us queue more than
 *   `maxQueuedControlFrames` replies (PING/SETTINGS acks, resets) while we cannot write is cut off
 *   with ENHANCE_YOUR_CALM.
 * - A peer's protocol error ends the session with GOAWAY(code) and closes the socket; a stream
 *   error resets only that stream. Nothing a peer sends throws out of this module.
 * - Frames produced within one tick go to the socket in one write (a microtask flush).
 * - After GOAWAY (sent or received) no new streams start; the socket is closed once the last
 *   stream is done.
 */
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { clearInterval, clearTimeout, setInterval, setTimeout } from "node:timers";
import {
  CLIENT_PREFACE,
  dataHeader,
  DEFAULT_WINDOW,
  ErrorCode,
  errorName,
  Flag,
  type Frame,
  FrameReader,
  FrameType,
  goawayFrame,
  H2ProtocolError,
  headersFragment,
  headersFrames,
  MAX_MAX_FRAME_SIZE,
  MAX_WINDOW,
  MIN_MAX_FRAME_SIZE,
  parseGoaway,
  parseSettings,
  parseU32,
  pingFrame,
  rstStreamFrame,
  SettingId,
  settingsAckFrame,
  settingsFrame,
  unpad,
  windowUpdateFrame,
} from "./frame.ts";
import { type HeaderField, HpackDecoder, HpackEncoder, HpackError } from "./hpack.ts";
import {
  checkFields,
  contentLengthOf,
  type H2Headers,
  type OutgoingHeaders,
  requestFields,
} from "./fields.ts";
import { H2Stream, H2StreamError, type StreamHost } from "./stream.ts";

/** Tunables; defaults are ztunnel's (hbone.md §1.7). */
export interface H2Options {
  /** SETTINGS_INITIAL_WINDOW_SIZE we advertise. @default 4 MiB */
  initialWindowSize?: number;
  /** Connection receive window, raised by WINDOW_UPDATE on stream 0. @default 16 MiB */
  connectionWindowSize?: number;
  /** SETTINGS_MAX_FRAME_SIZE we advertise. @default 1 MiB */
  maxFrameSize?: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS we advertise and enforce. @default 100 */
  maxConcurrentStreams?: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce. @default 64 KiB */
  maxHeaderListSize?: number;
  /** Keepalive PING interval; 0 turns keepalive off. @default 10 s */
  pingIntervalMs?: number;
  /** A keepalive PING not answered within this destroys the session. @default 20 s */
  pingTimeoutMs?: number;
  /** Replies we may queue for a peer while our socket is congested. @default 10,000 */
  maxQueuedControlFrames?: number;
}

/** SETTINGS values (RFC 9113 §6.5.2). */
export interface H2Settings {
  headerTableSize: number;
  enablePush: boolean;
  /** Infinity when the peer did not say. */
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxFrameSize: number;
  /** Infinity when the peer did not say. */
  maxHeaderListSize: number;
}

/** Options of {@link H2Session.request}. */
export interface RequestOptions {
  /** Send END_STREAM with the headers. */
  endStream?: boolean;
}

/** Called for each new stream on a server session. */
export type StreamHandler = (stream: H2Stream, headers: H2Headers) => void;

const DEFAULTS: Required<H2Options> = {
  initialWindowSize: 4 << 20,
  connectionWindowSize: 16 << 20,
  maxFrameSize: 1 << 20,
  maxConcurrentStreams: 100,
  maxHeaderListSize: 64 << 10,
  pingIntervalMs: 10_000,
  pingTimeoutMs: 20_000,
  maxQueuedControlFrames: 10_000,
};

/** Output above this many queued bytes counts as congestion: DATA waits for `drain`. */
const SOCKET_HIGH_WATER = 1 << 20;
/** Parts smaller than this are copied together into one buffer at flush time. */
const COALESCE_LIMIT = 16 << 10;
/** After we end the socket, the peer has this long to close its side. */
const END_GRACE_MS = 2_000;

/**
 * Serves HTTP/2 on an accepted connection (after TLS and ALPN `h2`, or cleartext).
 *
 * @param socket The connection; the session owns it from now on
 * @param options Tunables
 * @param onStream Called synchronously for each well-formed request (CONNECT or not); it must
 *   answer with `stream.respond` and should attach an `error` listener
 * @returns The session; await `ready` for the exchanged SETTINGS
 */
export function serveH2(
  socket: Duplex,
  options: H2Options,
  onStream: StreamHandler,
): H2Session {
  return new H2Session("server", socket, options, onStream);
}

/**
 * Starts an HTTP/2 client connection: sends the preface at once.
 *
 * @param socket A connected (or connecting) socket; the session owns it from now on
 * @param options Tunables
 * @returns The session; await `ready` before relying on `remoteSettings`
 */
export function connectH2(socket: Duplex, options: H2Options = {}): H2Session {
  return new H2Session("client", socket, options);
}

interface HeaderBlock {
  readonly streamId: number;
  readonly endStream: boolean;
  readonly parts: Buffer[];
  size: number;
}

interface PendingPing {
  readonly started: number;
  readonly resolve: (ms: number) => void;
  readonly reject: (e: Error) => void;
}

/**
 * One HTTP/2 connection. Events: `goaway` (errorCode, lastStreamId, debug: Buffer) when the peer
 * sends GOAWAY; `remoteSettings` (settings) on each peer SETTINGS; `error` (error) only when a
 * listener is attached; `close` (error?) once, when the session is gone.
 */
export class H2Session extends EventEmitter implements StreamHost {
  /** `client` or `server`. */
  readonly role: "client" | "server";
  /** The connection under the session. */
  readonly socket: Duplex;
  /** Resolves once the peer's first SETTINGS arrived; rejects if the session ends before. */
  readonly ready: Promise<void>;

  readonly #opts: Required<H2Options>;
  readonly #onStream: StreamHandler | undefined;
  readonly #reader: FrameReader;
  readonly #decoder = new HpackDecoder();
  readonly #encoder = new HpackEncoder();
  readonly #streams = new Map<number, H2Stream>();
  readonly #blocked = new Set<H2Stream>();
  readonly #remote: H2Settings = {
    headerTableSize: 4096,
    enablePush: true,
    maxConcurrentStreams: Infinity,
    initialWindowSize: DEFAULT_WINDOW,
    maxFrameSize: MIN_MAX_FRAME_SIZE,
    maxHeaderListSize: Infinity,
  };
  #readyResolve!: () => void;
  #readyReject!: (e: Error) => void;
  #gotSettings = false;
  #prefaceLeft: number;
  #nextStreamId = 1;
  #lastPeerStreamId = 0;
  #connSendWindow = DEFAULT_WINDOW;
  #connRecvWindow: number;
  #connUncredited = 0;
  #headerBlock: HeaderBlock | undefined;
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #congested = false;
  #controlWhileCongested = 0;
  #goawaySent: number | undefined;
  #goawayReceived: { errorCode: number; lastStreamId: number } | undefined;
  #ending = false;
  #finished = false;
  #closed: Promise<void> | undefined;
  #closedResolve: (() => void) | undefined;
  #pings = new Map<string, PendingPing>();
  #pingCounter = 0n;
  #keepalive: ReturnType<typeof setInterval> | undefined;
  #keepaliveDeadline: ReturnType<typeof setTimeout> | undefined;
  #endTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #flushBound = () => this.#flush();

  /** Use {@link serveH2} or {@link connectH2}. */
  constructor(
    role: "client" | "server",
    socket: Duplex,
    options: H2Options,
    onStream?: StreamHandler,
  ) {
    super();
    this.role = role;
    this.socket = socket;
    this.#onStream = onStream;
    this.#opts = { ...DEFAULTS, ...definedOnly(options) };
    const o = this.#opts;
    if (o.maxFrameSize < MIN_MAX_FRAME_SIZE || o.maxFrameSize > MAX_MAX_FRAME_SIZE) {
      throw new RangeError(`maxFrameSize ${o.maxFrameSize} out of range`);
    }
    if (o.initialWindowSize > MAX_WINDOW || o.connectionWindowSize > MAX_WINDOW) {
      throw new RangeError("window sizes must be below 2^31");
    }
    this.#connRecvWindow = Math.max(o.connectionWindowSize, DEFAULT_WINDOW);
    this.#prefaceLeft = role === "server" ? CLIENT_PREFACE.length : 0;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.ready.catch(() => {}); // Rejection is for awaiting callers; never unhandled.
    this.#reader = new FrameReader(o.maxFrameSize, (f) => this.#onFrame(f));

    socket.on("data", (chunk: Buffer) => this.#onSocketData(chunk));
    socket.on("error", (e: Error) => this.#finish(e));
    socket.on("end", () => this.#onSocketEnd());
    socket.on("close", () => this.#onSocketClose());
    socket.on("drain", () => this.#onDrain());
    (socket as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    // A socket paused by its previous reader (a protocol sniffer that put bytes back) stays
    // paused when a `data` listener is added: the session reads it from now on.
    socket.resume();

    if (role === "client") this.#queue(CLIENT_PREFACE);
    const settings: [number, number][] = [
      [SettingId.MAX_CONCURRENT_STREAMS, o.maxConcurrentStreams],
      [SettingId.INITIAL_WINDOW_SIZE, o.initialWindowSize],
      [SettingId.MAX_FRAME_SIZE, o.maxFrameSize],
      [SettingId.MAX_HEADER_LIST_SIZE, o.maxHeaderListSize],
    ];
    if (role === "client") settings.push([SettingId.ENABLE_PUSH, 0]);
    this.#queue(settingsFrame(settings));
    if (this.#connRecvWindow > DEFAULT_WINDOW) {
      this.#queue(windowUpdateFrame(0, this.#connRecvWindow - DEFAULT_WINDOW));
    }
    if (o.pingIntervalMs > 0) {
      this.#keepalive = setInterval(() => this.#keepaliveTick(), o.pingIntervalMs);
      unrefTimer(this.#keepalive);
    }
  }

  /** The peer's SETTINGS as known now (defaults until `ready`). */
  get remoteSettings(): Readonly<H2Settings> {
    return { ...this.#remote };
  }

  /** The SETTINGS we advertise. */
  get localSettings(): Readonly<H2Settings> {
    const o = this.#opts;
    return {
      headerTableSize: 4096,
      enablePush: false,
      maxConcurrentStreams: o.maxConcurrentStreams,
      initialWindowSize: o.initialWindowSize,
      maxFrameSize: o.maxFrameSize,
      maxHeaderListSize: o.maxHeaderListSize,
    };
  }

  /** Streams open or half-closed right now. */
  get activeStreams(): number {
    return this.#streams.size;
  }

  /** No new stream can start: GOAWAY sent or received, or the session is gone. */
  get closing(): boolean {
    return this.#goawaySent !== undefined || this.#goawayReceived !== undefined ||
      this.#ending || this.#finished;
  }

  /** The session is gone (socket closed or destroyed). */
  get destroyed(): boolean {
    return this.#finished;
  }

  /** The peer's GOAWAY, if one came. */
  get goawayReceived(): { errorCode: number; lastStreamId: number } | undefined {
    return this.#goawayReceived;
  }

  /**
   * Client side: opens a stream by sending request HEADERS at once. For CONNECT give `:method`
   * and `:authority` only (RFC 9113 §8.5); other methods also need `:scheme` and `:path`, and
   * `:authority` unless there is none (§8.3.1). The block is checked as the server checks it.
   *
   * @example
   * ```ts
   * const s = session.request({ ":method": "GET", ":scheme": "http", ":path": "/", ":authority": "a" }, { endStream: true });
   * s.on("response", (h) => console.log(h[":status"]));
   * ```
   *
   * @param headers Pseudo-headers and fields; names of fields are lower-cased
   * @param opts `endStream` to send no body
   * @returns The stream; it emits `response` (headers with `:status`), `headers` (a 1xx),
   *   `trailers`, then ends
   * @throws Error on a server session, after GOAWAY, when the peer's stream limit is reached;
   *   TypeError for a malformed request or fields HTTP/2 cannot carry
   */
  request(headers: OutgoingHeaders, opts: RequestOptions = {}): H2Stream {
    if (this.role !== "client") throw new Error("request() on a server session");
    if (this.closing) {
      throw new H2StreamError("ERR_H2_SESSION_CLOSED", "session is closing", ErrorCode.NO_ERROR);
    }
    if (this.#streams.size >= this.#remote.maxConcurrentStreams) {
      throw new H2StreamError(
        "ERR_H2_STREAM_LIMIT",
        `peer allows ${this.#remote.maxConcurrentStreams} concurrent streams`,
        ErrorCode.REFUSED_STREAM,
      );
    }
    if (this.#nextStreamId > MAX_WINDOW) {
      throw new H2StreamError("ERR_H2_SESSION_CLOSED", "stream ids exhausted", 0);
    }
    const fields = requestFields(headers);
    const checked = checkFields(fields, "request");
    if (typeof checked === "string") throw new TypeError(`bad request headers: ${checked}`);
    const id = this.#nextStreamId;
    this.#nextStreamId += 2;
    const endStream = opts.endStream === true;
    const s = new H2Stream(
      this,
      id,
      this.#remote.initialWindowSize,
      this.#opts.initialWindowSize,
      true,
      checked,
    );
    this.#streams.set(id, s);
    this.#queue(
      headersFrames(id, this.#encoder.encode(fields), endStream, this.#remote.maxFrameSize),
    );
    if (endStream) {
      s._localEnded = true;
      s.end();
    }
    return s;
  }

  /**
   * Sends a PING and resolves with the round trip in milliseconds.
   *
   * @throws (rejects) when the session ends before the answer
   */
  ping(): Promise<number> {
    if (this.#finished || this.#ending) {
      return Promise.reject(new H2StreamError("ERR_H2_SESSION_CLOSED", "session closed", 0));
    }
    const data = Buffer.alloc(8);
    data.writeBigUInt64BE(++this.#pingCounter);
    return new Promise<number>((resolve, reject) => {
      this.#pings.set(data.toString("hex"), { started: performance.now(), resolve, reject });
      this.#queue(pingFrame(data, false));
    });
  }

  /**
   * Graceful close: GOAWAY(NO_ERROR) with the last peer stream we took; streams above it are
   * refused; the socket closes when the open streams are done.
   *
   * @returns Resolves when the session is gone
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = this.#finished ? Promise.resolve() : new Promise<void>((resolve) => {
        this.#closedResolve = resolve;
      });
      if (!this.#finished && this.#goawaySent === undefined && !this.#ending) {
        this.#sendGoaway(ErrorCode.NO_ERROR);
      }
      this.#maybeEnd();
    }
    return this.#closed;
  }

  /**
   * Ends the session now: GOAWAY(code) if the socket can still take it, then the socket closes;
   * open streams fail with `error`, or are destroyed without error when none is given.
   *
   * @param error Why, reported to streams and in `close`
   * @param code GOAWAY code @default NO_ERROR without error, INTERNAL_ERROR with one
   */
  destroy(error?: Error, code?: number): void {
    if (this.#finished) return;
    if (!this.#ending && this.#goawaySent === undefined) {
      this.#sendGoaway(code ?? (error ? ErrorCode.INTERNAL_ERROR : ErrorCode.NO_ERROR));
    }
    this.#flush();
    this.#finish(error);
    this.#endSocket();
  }

  // ---- StreamHost ----

  /** @internal */
  _streamWrite(s: H2Stream): void {
    this.#trySend(s);
  }

  /** @internal */
  _streamEnd(s: H2Stream): void {
    if (s._closed || s._localEnded || this.#finished) return;
    s._localEnded = true;
    const trailers = s._trailers;
    s._trailers = undefined;
    this.#queue(
      trailers
        ? headersFrames(s.id, this.#encoder.encode(trailers), true, this.#remote.maxFrameSize)
        : dataHeader(s.id, 0, true),
    );
    if (s._remoteEnded) this.#closeStream(s);
  }

  /** @internal */
  _streamRespond(s: H2Stream, fields: [string, string][], endStream: boolean): void {
    if (this.#finished) return;
    this.#queue(
      headersFrames(s.id, this.#encoder.encode(fields), endStream, this.#remote.maxFrameSize),
    );
    if (endStream) {
      s._localEnded = true;
      if (s._remoteEnded) this.#closeStream(s);
    } else if (s._pending) {
      this.#trySend(s);
    }
  }

  /** @internal */
  _streamReset(s: H2Stream, code: number): void {
    if (s._closed) return;
    s.rstCode = code;
    if (!this.#finished) this.#queue(rstStreamFrame(s.id, code));
    this.#closeStream(s);
  }

  /** @internal */
  _streamConsumed(s: H2Stream, bytes: number, streamToo: boolean): void {
    if (this.#finished) return;
    this.#creditConnection(bytes);
    if (!streamToo || s._closed || s._remoteEnded) return;
    s._uncredited += bytes;
    if (s._uncredited >= this.#opts.initialWindowSize / 4) {
      this.#queue(windowUpdateFrame(s.id, s._uncredited));
      s._recvWindow += s._uncredited;
      s._uncredited = 0;
    }
  }

  // ---- Sending ----

  #queue(frame: Buffer): void {
    this.#out.push(frame);
    this.#outBytes += frame.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flushBound);
    }
  }

  /** A reply the peer provoked; counted against the flood limit while we are congested. */
  #queueReply(frame: Buffer): void {
    if (this.#congested && ++this.#controlWhileCongested > this.#opts.maxQueuedControlFrames) {
      throw new H2ProtocolError(ErrorCode.ENHANCE_YOUR_CALM, "too many queued control frames");
    }
    this.#queue(frame);
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#out.length === 0) return;
    const parts = this.#out;
    const total = this.#outBytes;
    this.#out = [];
    this.#outBytes = 0;
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    if (parts.length === 1) {
      socket.write(parts[0]);
    } else if (total <= COALESCE_LIMIT * 4) {
      socket.write(Buffer.concat(parts, total));
    } else {
      socket.cork();
      let group: Buffer[] = [];
      let groupBytes = 0;
      for (const p of parts) {
        if (p.length >= COALESCE_LIMIT) {
          if (groupBytes > 0) socket.write(Buffer.concat(group, groupBytes));
          group = [];
          groupBytes = 0;
          socket.write(p);
        } else {
          group.push(p);
          groupBytes += p.length;
        }
      }
      if (groupBytes > 0) socket.write(Buffer.concat(group, groupBytes));
      socket.uncork();
    }
    if (socket.writableLength >= Math.max(SOCKET_HIGH_WATER, socket.writableHighWaterMark)) {
      this.#congested = true;
    } else if (this.#blocked.size > 0) {
      this.#resumeBlocked();
    }
  }

  #onDrain(): void {
    this.#congested = false;
    this.#controlWhileCongested = 0;
    this.#resumeBlocked();
  }

  #resumeBlocked(): void {
    if (this.#blocked.size === 0) return;
    const streams = [...this.#blocked];
    this.#blocked.clear();
    for (const s of streams) this.#trySend(s);
  }

  /** Sends what windows allow of the stream's pending write; completes it when all is sent. */
  #trySend(s: H2Stream): void {
    while (s._pending) {
      if (this.#finished || s._closed) return;
      if (this.#congested || this.#outBytes >= SOCKET_HIGH_WATER || !s.headersSent) {
        this.#blocked.add(s);
        return;
      }
      const data = s._pending;
      const at = s._pendingAt;
      const n = Math.min(
        data.length - at,
        s._sendWindow,
        this.#connSendWindow,
        this.#remote.maxFrameSize,
      );
      if (n <= 0) {
        this.#blocked.add(s);
        return;
      }
      this.#queue(dataHeader(s.id, n, false));
      this.#queue(at === 0 && n === data.length ? data : data.subarray(at, at + n));
      s._sendWindow -= n;
      this.#connSendWindow -= n;
      if (at + n < data.length) {
        s._pendingAt = at + n;
        continue;
      }
      const cb = s._pendingCb;
      s._pending = s._pendingCb = undefined;
      cb?.();
    }
  }

  #sendGoaway(code: number, message?: string): void {
    this.#goawaySent = this.#lastPeerStreamId;
    const debug = message ? Buffer.from(message.slice(0, 200), "utf8") : undefined;
    this.#queue(goawayFrame(this.#lastPeerStreamId, code, debug));
  }

  #creditConnection(bytes: number): void {
    this.#connUncredited += bytes;
    if (this.#connUncredited >= this.#opts.connectionWindowSize / 4) {
      this.#queue(windowUpdateFrame(0, this.#connUncredited));
      this.#connRecvWindow += this.#connUncredited;
      this.#connUncredited = 0;
    }
  }

  // ---- Receiving ----

  #onSocketData(chunk: Buffer): void {
    if (this.#finished) return;
    try {
      if (this.#prefaceLeft > 0) {
        const n = Math.min(this.#prefaceLeft, chunk.length);
        const from = CLIENT_PREFACE.length - this.#prefaceLeft;
        if (CLIENT_PREFACE.compare(chunk, 0, n, from, from + n) !== 0) {
          throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "bad client preface");
        }
        this.#prefaceLeft -= n;
        if (n === chunk.length) return;
        chunk = chunk.subarray(n);
      }
      this.#reader.push(chunk);
    } catch (e) {
      this.#onFailure(e);
    }
  }

  #onFailure(e: unknown): void {
    if (e instanceof H2ProtocolError) {
      this.#connectionError(e.code, e.message);
    } else if (e instanceof HpackError) {
      this.#connectionError(ErrorCode.COMPRESSION_ERROR, e.message);
    } else {
      this.#connectionError(ErrorCode.INTERNAL_ERROR, (e as Error)?.message ?? String(e), e);
    }
  }

  #connectionError(code: number, message: string, cause?: unknown): void {
    if (this.#finished) return;
    this.#reader.stop();
    if (!this.#ending) this.#sendGoaway(code, message);
    this.#flush();
    const error = new H2StreamError(
      "ERR_H2_SESSION_ERROR",
      `HTTP/2 connection error ${errorName(code)}: ${message}`,
      code,
    );
    if (cause !== undefined) (error as { cause?: unknown }).cause = cause;
    this.#finish(error);
    this.#endSocket();
  }

  #onFrame(f: Frame): void {
    if (this.#finished) return;
    if (this.#headerBlock && f.type !== FrameType.CONTINUATION) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "expected CONTINUATION");
    }
    if (!this.#gotSettings && (f.type !== FrameType.SETTINGS || f.flags & Flag.ACK)) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "first frame is not SETTINGS");
    }
    try {
      switch (f.type) {
        case FrameType.DATA:
          return this.#onData(f);
        case FrameType.HEADERS:
          return this.#onHeaders(f);
        case FrameType.CONTINUATION:
          return this.#onContinuation(f);
        case FrameType.PRIORITY:
          if (f.streamId === 0) throw connError("PRIORITY on stream 0");
          if (f.payload.length !== 5) {
            throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "PRIORITY size", f.streamId);
          }
          return;
        case FrameType.RST_STREAM:
          return this.#onRstStream(f);
        case FrameType.SETTINGS:
          return this.#onSettings(f);
        case FrameType.PUSH_PROMISE:
          throw connError("PUSH_PROMISE while push is disabled");
        case FrameType.PING:
          return this.#onPing(f);
        case FrameType.GOAWAY:
          return this.#onGoaway(f);
        case FrameType.WINDOW_UPDATE:
          return this.#onWindowUpdate(f);
        default:
          return; // Unknown frame types are ignored (RFC 9113 §4.1).
      }
    } catch (e) {
      if (e instanceof H2ProtocolError && e.streamId !== undefined) {
        this.#streamError(e.streamId, e.code, e.message);
        return;
      }
      throw e;
    }
  }

  /** True when `id` names a stream that was never opened. */
  #isIdle(id: number): boolean {
    const peerOpens = this.role === "server" ? (id & 1) === 1 : false;
    if (peerOpens) return id > this.#lastPeerStreamId;
    if (this.role === "client" && (id & 1) === 1) return id >= this.#nextStreamId;
    return true; // Server-initiated ids: neither side opens them here.
  }

  #onData(f: Frame): void {
    const id = f.streamId;
    if (id === 0) throw connError("DATA on stream 0");
    const length = f.payload.length;
    if (length > this.#connRecvWindow) {
      throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "connection window exceeded");
    }
    this.#connRecvWindow -= length;
    const s = this.#streams.get(id);
    if (!s) {
      if (this.#isIdle(id)) throw connError("DATA on an idle stream");
      this.#creditConnection(length); // A stream we closed: drop the bytes, keep the window.
      return;
    }
    if (s._remoteEnded) {
      this.#creditConnection(length);
      throw new H2ProtocolError(ErrorCode.STREAM_CLOSED, "DATA after END_STREAM", id);
    }
    if (this.role === "client" && !s._responded) {
      this.#creditConnection(length);
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "DATA before the response", id);
    }
    if (length > s._recvWindow) {
      this.#creditConnection(length);
      throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "stream window exceeded", id);
    }
    s._recvWindow -= length;
    const data = unpad(f);
    if (data.length < length) this._streamConsumed(s, length - data.length, true);
    if (!lengthHolds(s, data.length, (f.flags & Flag.END_STREAM) !== 0)) {
      this.#creditConnection(data.length);
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "DATA differs from content-length", id);
    }
    if (data.length > 0) s._onData(data);
    if (f.flags & Flag.END_STREAM) this.#onRemoteEnd(s);
  }

  #onRemoteEnd(s: H2Stream): void {
    s._onRemoteEnd();
    if (s._localEnded) this.#closeStream(s);
  }

  #onHeaders(f: Frame): void {
    if (f.streamId === 0) throw connError("HEADERS on stream 0");
    const fragment = headersFragment(f);
    this.#headerBlock = {
      streamId: f.streamId,
      endStream: (f.flags & Flag.END_STREAM) !== 0,
      parts: [fragment],
      size: fragment.length,
    };
    this.#checkBlockSize();
    if (f.flags & Flag.END_HEADERS) this.#onHeaderBlock();
  }

  #onContinuation(f: Frame): void {
    const hb = this.#headerBlock;
    if (!hb || hb.streamId !== f.streamId) throw connError("unexpected CONTINUATION");
    hb.parts.push(f.payload);
    hb.size += f.payload.length;
    this.#checkBlockSize();
    if (f.flags & Flag.END_HEADERS) this.#onHeaderBlock();
  }

  #checkBlockSize(): void {
    if (this.#headerBlock!.size > this.#opts.maxHeaderListSize) {
      throw new H2ProtocolError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large");
    }
  }

  #onHeaderBlock(): void {
    const hb = this.#headerBlock!;
    this.#headerBlock = undefined;
    const block = hb.parts.length === 1 ? hb.parts[0] : Buffer.concat(hb.parts, hb.size);
    const decoded = this.#decoder.decode(block, this.#opts.maxHeaderListSize);
    if (this.role === "server") this.#onRequestBlock(hb, decoded.fields, decoded.tooLarge);
    else this.#onResponseBlock(hb, decoded.fields, decoded.tooLarge);
  }

  #onRequestBlock(hb: HeaderBlock, fields: HeaderField[], tooLarge: boolean): void {
    const id = hb.streamId;
    const existing = this.#streams.get(id);
    if (existing) return this.#onTrailers(existing, hb, fields, tooLarge);
    if ((id & 1) === 0) throw connError("client opened an even stream id");
    if (id <= this.#lastPeerStreamId) return; // A stream we already closed; HPACK is updated.
    this.#lastPeerStreamId = id;
    if (this.#goawaySent !== undefined || this.#ending) {
      this.#queueReply(rstStreamFrame(id, ErrorCode.REFUSED_STREAM));
      return;
    }
    if (this.#streams.size >= this.#opts.maxConcurrentStreams) {
      this.#queueReply(rstStreamFrame(id, ErrorCode.REFUSED_STREAM));
      return;
    }
    if (tooLarge) {
      this.#queueReply(
        headersFrames(
          id,
          this.#encoder.encode([[":status", "431"]]),
          true,
          this.#remote.maxFrameSize,
        ),
      );
      if (!hb.endStream) this.#queueReply(rstStreamFrame(id, ErrorCode.NO_ERROR));
      return;
    }
    const headers = checkFields(fields, "request");
    const length = typeof headers === "string" || headers[":method"] === "CONNECT"
      ? undefined
      : contentLengthOf(headers);
    // A body announced by content-length cannot be missing (RFC 9113 §8.1.1).
    if (typeof headers === "string" || (hb.endStream && (length ?? 0) !== 0)) {
      this.#queueReply(rstStreamFrame(id, ErrorCode.PROTOCOL_ERROR));
      return;
    }
    const s = new H2Stream(
      this,
      id,
      this.#remote.initialWindowSize,
      this.#opts.initialWindowSize,
      false,
      headers,
    );
    s._contentLength = length;
    this.#streams.set(id, s);
    if (hb.endStream) {
      s.endAfterHeaders = true;
      s._onRemoteEnd();
    }
    try {
      this.#onStream?.(s, headers);
    } catch (e) {
      s.close(ErrorCode.INTERNAL_ERROR);
      if (this.listenerCount("error") > 0) this.emit("error", e);
    }
  }

  #onResponseBlock(hb: HeaderBlock, fields: HeaderField[], tooLarge: boolean): void {
    const id = hb.streamId;
    const s = this.#streams.get(id);
    if (!s) {
      if (this.#isIdle(id)) throw connError("HEADERS on an idle stream");
      return;
    }
    if (s._responded) return this.#onTrailers(s, hb, fields, tooLarge);
    if (tooLarge) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "response header list too large", id);
    }
    const headers = checkFields(fields, "response");
    if (typeof headers === "string") {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `bad response: ${headers}`, id);
    }
    if ((headers[":status"] as string)[0] === "1") {
      if (hb.endStream) {
        throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "1xx with END_STREAM", id);
      }
      s.emit("headers", headers);
      return;
    }
    s._responded = true;
    s._contentLength = responseLength(s.headers[":method"], headers);
    if (hb.endStream && !lengthHolds(s, 0, true)) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "no DATA for content-length", id);
    }
    s.headers = headers;
    s.endAfterHeaders = hb.endStream;
    s.emit("response", headers);
    if (hb.endStream) this.#onRemoteEnd(s);
  }

  #onTrailers(s: H2Stream, hb: HeaderBlock, fields: HeaderField[], tooLarge: boolean): void {
    if (s._remoteEnded) {
      throw new H2ProtocolError(ErrorCode.STREAM_CLOSED, "HEADERS after END_STREAM", s.id);
    }
    const trailers = tooLarge ? "too large" : checkFields(fields, "trailers");
    if (!hb.endStream || typeof trailers === "string") {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "malformed trailers", s.id);
    }
    if (!lengthHolds(s, 0, true)) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "DATA short of content-length", s.id);
    }
    s.trailers = trailers;
    s.emit("trailers", trailers);
    this.#onRemoteEnd(s);
  }

  #onRstStream(f: Frame): void {
    const id = f.streamId;
    if (id === 0) throw connError("RST_STREAM on stream 0");
    const code = parseU32(f.payload, false);
    const s = this.#streams.get(id);
    if (!s) {
      if (this.#isIdle(id)) throw connError("RST_STREAM on an idle stream");
      return;
    }
    this.#closeStream(s);
    s._onReset(code, true);
  }

  #onSettings(f: Frame): void {
    if (f.streamId !== 0) throw connError("SETTINGS on a stream");
    if (f.flags & Flag.ACK) {
      if (f.payload.length !== 0) {
        throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with payload");
      }
      return;
    }
    const r = this.#remote;
    for (const [id, value] of parseSettings(f.payload)) {
      switch (id) {
        case SettingId.HEADER_TABLE_SIZE:
          r.headerTableSize = value;
          this.#encoder.tableSizeChanged();
          break;
        case SettingId.ENABLE_PUSH:
          // A server must not turn push on (RFC 9113 §6.5.2).
          if (value > 1 || (this.role === "client" && value === 1)) {
            throw connError("bad SETTINGS_ENABLE_PUSH");
          }
          r.enablePush = value === 1;
          break;
        case SettingId.MAX_CONCURRENT_STREAMS:
          r.maxConcurrentStreams = value;
          break;
        case SettingId.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) {
            throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "initial window too large");
          }
          const delta = value - r.initialWindowSize;
          r.initialWindowSize = value;
          for (const s of this.#streams.values()) {
            s._sendWindow += delta;
            if (s._sendWindow > MAX_WINDOW) {
              throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "stream window overflow");
            }
          }
          break;
        }
        case SettingId.MAX_FRAME_SIZE:
          if (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) {
            throw connError("SETTINGS_MAX_FRAME_SIZE out of range");
          }
          r.maxFrameSize = value;
          break;
        case SettingId.MAX_HEADER_LIST_SIZE:
          r.maxHeaderListSize = value;
          break;
        default:
          break; // Unknown settings are ignored (RFC 9113 §6.5.2).
      }
    }
    this.#queueReply(settingsAckFrame());
    if (!this.#gotSettings) {
      this.#gotSettings = true;
      this.#readyResolve();
    }
    this.emit("remoteSettings", this.remoteSettings);
    this.#resumeBlocked();
  }

  #onPing(f: Frame): void {
    if (f.streamId !== 0) throw connError("PING on a stream");
    if (f.payload.length !== 8) throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "PING size");
    if (!(f.flags & Flag.ACK)) {
      this.#queueReply(pingFrame(f.payload, true));
      return;
    }
    const key = f.payload.toString("hex");
    const p = this.#pings.get(key);
    if (!p) return;
    this.#pings.delete(key);
    p.resolve(performance.now() - p.started);
  }

  #onGoaway(f: Frame): void {
    if (f.streamId !== 0) throw connError("GOAWAY on a stream");
    const g = parseGoaway(f.payload);
    const last = Math.min(g.lastStreamId, this.#goawayReceived?.lastStreamId ?? MAX_WINDOW);
    this.#goawayReceived = { errorCode: g.errorCode, lastStreamId: last };
    if (this.role === "client") {
      for (const s of [...this.#streams.values()]) {
        if (s.id <= last) continue;
        this.#closeStream(s);
        s._onReset(ErrorCode.REFUSED_STREAM, false, "refused by the peer's GOAWAY");
      }
    }
    this.emit("goaway", g.errorCode, last, g.debug);
    this.#maybeEnd();
  }

  #onWindowUpdate(f: Frame): void {
    const increment = parseU32(f.payload, true);
    const id = f.streamId;
    if (id === 0) {
      if (increment === 0) throw connError("WINDOW_UPDATE of 0 on the connection");
      this.#connSendWindow += increment;
      if (this.#connSendWindow > MAX_WINDOW) {
        throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "connection window overflow");
      }
      this.#resumeBlocked();
      return;
    }
    const s = this.#streams.get(id);
    if (!s) {
      if (this.#isIdle(id)) throw connError("WINDOW_UPDATE on an idle stream");
      return;
    }
    if (increment === 0) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0", id);
    }
    s._sendWindow += increment;
    if (s._sendWindow > MAX_WINDOW) {
      throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "stream window overflow", id);
    }
    if (s._pending) this.#trySend(s);
  }

  /** Resets one stream for a protocol error it caused. */
  #streamError(id: number, code: number, message: string): void {
    this.#queueReply(rstStreamFrame(id, code));
    const s = this.#streams.get(id);
    if (!s) return;
    this.#closeStream(s);
    s._onReset(code, false, message);
  }

  // ---- Lifecycle ----

  #closeStream(s: H2Stream): void {
    if (!this.#streams.has(s.id)) {
      s._closed = true;
      return;
    }
    s._closed = true;
    this.#streams.delete(s.id);
    this.#blocked.delete(s);
    this.#maybeEnd();
  }

  /** After GOAWAY either way, the socket ends with the last stream. */
  #maybeEnd(): void {
    if (this.#streams.size > 0 || this.#finished) return;
    if (this.#goawaySent !== undefined || this.#goawayReceived !== undefined) this.#endSocket();
  }

  /** Flushes and half-closes the socket; destroys it if the peer does not close in time. */
  #endSocket(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.#flush();
    const socket = this.socket;
    if (!socket.destroyed) {
      socket.end();
      this.#endTimer = setTimeout(() => socket.destroy(), END_GRACE_MS);
      unrefTimer(this.#endTimer);
    }
  }

  #onSocketEnd(): void {
    // The peer will send nothing more; streams still open cannot finish.
    if (this.#streams.size > 0) {
      this.#finish(
        new H2StreamError("ERR_H2_SESSION_CLOSED", "peer closed the connection", ErrorCode.CANCEL),
      );
    }
    this.#endSocket();
  }

  #onSocketClose(): void {
    clearTimeout(this.#endTimer);
    this.#finish(
      this.#streams.size > 0
        ? new H2StreamError("ERR_H2_SESSION_CLOSED", "connection closed", ErrorCode.CANCEL)
        : undefined,
    );
  }

  /**
   * Marks the session gone and emits `close` (once). Open streams fail with `error`; without
   * one (a local destroy) they are destroyed quietly.
   */
  #finish(error?: Error): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#reader.stop();
    clearInterval(this.#keepalive);
    clearTimeout(this.#keepaliveDeadline);
    this.#blocked.clear();
    const streamError = error instanceof H2StreamError ? error : new H2StreamError(
      "ERR_H2_SESSION_CLOSED",
      error ? `session closed: ${error.message}` : "session closed",
      ErrorCode.CANCEL,
    );
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const s of streams) s._onSessionGone(error ? streamError : undefined);
    this.#readyReject(streamError);
    for (const p of this.#pings.values()) p.reject(streamError);
    this.#pings.clear();
    this.#closedResolve?.();
    if (!this.socket.destroyed && this.#ending === false) this.#endSocket();
    queueMicrotask(() => {
      if (error && this.listenerCount("error") > 0) this.emit("error", error);
      this.emit("close", error);
    });
  }

  #keepaliveTick(): void {
    if (this.#keepaliveDeadline !== undefined || this.#finished) return;
    this.#keepaliveDeadline = setTimeout(() => {
      this.destroy(
        new H2StreamError("ERR_H2_PING_TIMEOUT", "keepalive PING unanswered", ErrorCode.NO_ERROR),
        ErrorCode.NO_ERROR,
      );
    }, this.#opts.pingTimeoutMs);
    unrefTimer(this.#keepaliveDeadline);
    this.ping().then(
      () => {
        clearTimeout(this.#keepaliveDeadline);
        this.#keepaliveDeadline = undefined;
      },
      () => clearTimeout(this.#keepaliveDeadline),
    );
  }
}

/**
 * Counts `bytes` more DATA against the stream's content-length; false when they go beyond it, or
 * fall short of it at the end (RFC 9113 §8.1.1).
 */
function lengthHolds(s: H2Stream, bytes: number, end: boolean): boolean {
  if (s._contentLength === undefined) return true;
  s._received += bytes;
  return s._received <= s._contentLength && (!end || s._received === s._contentLength);
}

/**
 * The content-length a response's DATA must match, if any: none after HEAD or CONNECT, nor for
 * 204 and 304, whose content-length describes a body not sent (RFC 9110 §8.6).
 */
function responseLength(
  method: string | string[] | undefined,
  headers: H2Headers,
): number | undefined {
  if (method === "HEAD" || method === "CONNECT") return undefined;
  const status = headers[":status"];
  if (status === "204" || status === "304") return undefined;
  return contentLengthOf(headers);
}

function connError(message: string): H2ProtocolError {
  return new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, message);
}

function definedOnly(o: H2Options): H2Options {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as H2Options;
}

function unrefTimer(t: unknown): void {
  (t as { unref?: () => void })?.unref?.();
}
