/**
 * Received header blocks (RFC 9113 §4.3, §6.2, §6.10, §8.1): HEADERS and its CONTINUATION frames
 * put together, HPACK-decoded, and turned into a new request stream (server), a response or 1xx
 * (client), or trailers (both).
 *
 * Invariants:
 * - A block in progress holds at most twice `maxHeaderListSize` encoded bytes in at most
 *   `MAX_CONTINUATIONS` CONTINUATION frames; more ends the session with ENHANCE_YOUR_CALM. The
 *   slack lets a block that decodes to more than the list size still be decoded and answered
 *   431 on its own stream. Every block is decoded, even for a stream we reset, so the HPACK
 *   table stays in step with the peer's.
 * - A request the server cannot take (over the stream limit, after GOAWAY, malformed, headers too
 *   large) gets its answer (REFUSED_STREAM, PROTOCOL_ERROR, 431) and the connection goes on;
 *   each counts against the peer's reset budget (`guard.ts`).
 * - A body announced by content-length must match the DATA that comes (§8.1.1).
 */
import { Buffer } from "node:buffer";
import {
  ErrorCode,
  Flag,
  type Frame,
  H2ProtocolError,
  headersFragment,
  headersFrames,
  rstStreamFrame,
} from "./frame.ts";
import { checkFields, contentLengthOf, type H2Headers } from "./fields.ts";
import { H2CalmError, MAX_CONTINUATIONS } from "./guard.ts";
import { type HeaderField, HpackDecoder } from "./hpack.ts";
import type { Outbound } from "./outbound.ts";
import { type ConnState, remoteEnded, type SessionHooks } from "./state.ts";
import type { H2Stream } from "./stream.ts";

interface Block {
  readonly streamId: number;
  readonly endStream: boolean;
  readonly parts: Buffer[];
  size: number;
}

/** Encoded bytes a block may buffer, per byte of the header list size we advertise. */
const BLOCK_SLACK = 2;

/** Assembles and applies the peer's header blocks. */
export class HeaderBlocks {
  readonly #state: ConnState;
  readonly #out: Outbound;
  readonly #hooks: SessionHooks;
  readonly #decoder = new HpackDecoder();
  #block: Block | undefined;

  constructor(state: ConnState, out: Outbound, hooks: SessionHooks) {
    this.#state = state;
    this.#out = out;
    this.#hooks = hooks;
  }

  /** A block is open: the next frame must be its CONTINUATION. */
  get open(): boolean {
    return this.#block !== undefined;
  }

  /** A HEADERS frame: starts a block, applied at once when it carries END_HEADERS. */
  onHeaders(f: Frame): void {
    if (f.streamId === 0) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    }
    const fragment = headersFragment(f);
    this.#block = {
      streamId: f.streamId,
      endStream: (f.flags & Flag.END_STREAM) !== 0,
      parts: [fragment],
      size: fragment.length,
    };
    this.#checkSize();
    if (f.flags & Flag.END_HEADERS) this.#complete();
  }

  /** A CONTINUATION frame of the open block. */
  onContinuation(f: Frame): void {
    const b = this.#block;
    if (!b || b.streamId !== f.streamId) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "unexpected CONTINUATION");
    }
    if (b.parts.length > MAX_CONTINUATIONS) {
      throw new H2CalmError("continuation_flood", "too many CONTINUATION frames");
    }
    b.parts.push(f.payload);
    b.size += f.payload.length;
    this.#checkSize();
    if (f.flags & Flag.END_HEADERS) this.#complete();
  }

  #checkSize(): void {
    if (this.#block!.size > this.#state.opts.maxHeaderListSize * BLOCK_SLACK) {
      throw new H2CalmError("header_block_too_large", "header block too large");
    }
  }

  #complete(): void {
    const b = this.#block!;
    this.#block = undefined;
    const bytes = b.parts.length === 1 ? b.parts[0] : Buffer.concat(b.parts, b.size);
    const decoded = this.#decoder.decode(bytes, this.#state.opts.maxHeaderListSize);
    if (this.#state.role === "server") this.#onRequest(b, decoded.fields, decoded.tooLarge);
    else this.#onResponse(b, decoded.fields, decoded.tooLarge);
  }

  #onRequest(b: Block, fields: HeaderField[], tooLarge: boolean): void {
    const state = this.#state;
    const id = b.streamId;
    const existing = state.streams.get(id);
    if (existing) return this.#onTrailers(existing, b, fields, tooLarge);
    if ((id & 1) === 0) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "client opened an even stream id");
    }
    if (id <= state.lastPeerStreamId) return; // A stream we already closed; HPACK is updated.
    state.lastPeerStreamId = id;
    if (state.goawaySent !== undefined || state.ending) {
      this.#out.queueReply(rstStreamFrame(id, ErrorCode.REFUSED_STREAM));
      return;
    }
    if (state.streams.size >= state.opts.maxConcurrentStreams) {
      state.guard.provokedReset();
      this.#out.queueReply(rstStreamFrame(id, ErrorCode.REFUSED_STREAM));
      return;
    }
    if (tooLarge) {
      state.guard.provokedReset();
      this.#out.queueReply(
        headersFrames(
          id,
          state.encoder.encode([[":status", "431"]]),
          true,
          state.remote.maxFrameSize,
        ),
      );
      if (!b.endStream) this.#out.queueReply(rstStreamFrame(id, ErrorCode.NO_ERROR));
      return;
    }
    const headers = checkFields(fields, "request");
    const length = typeof headers === "string" || headers[":method"] === "CONNECT"
      ? undefined
      : contentLengthOf(headers);
    // A body announced by content-length cannot be missing (RFC 9113 §8.1.1).
    if (typeof headers === "string" || (b.endStream && (length ?? 0) !== 0)) {
      state.guard.provokedReset();
      this.#out.queueReply(rstStreamFrame(id, ErrorCode.PROTOCOL_ERROR));
      return;
    }
    const s = this.#hooks.newPeerStream(id, headers);
    s._contentLength = length;
    if (b.endStream) {
      s.endAfterHeaders = true;
      s._onRemoteEnd();
    }
    try {
      this.#hooks.onStream?.(s, headers);
    } catch (e) {
      s.close(ErrorCode.INTERNAL_ERROR);
      if (this.#hooks.listenerCount("error") > 0) this.#hooks.emit("error", e);
    }
  }

  #onResponse(b: Block, fields: HeaderField[], tooLarge: boolean): void {
    const id = b.streamId;
    const s = this.#state.streams.get(id);
    if (!s) {
      if (this.#state.isIdle(id)) {
        throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "HEADERS on an idle stream");
      }
      return;
    }
    if (s._responded) return this.#onTrailers(s, b, fields, tooLarge);
    if (tooLarge) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "response header list too large", id);
    }
    const headers = checkFields(fields, "response");
    if (typeof headers === "string") {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `bad response: ${headers}`, id);
    }
    if ((headers[":status"] as string)[0] === "1") {
      if (b.endStream) {
        throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "1xx with END_STREAM", id);
      }
      s.emit("headers", headers);
      return;
    }
    s._responded = true;
    s._idleEpoch = this.#state.epoch;
    s._contentLength = responseLength(s.headers[":method"], headers);
    if (b.endStream && !lengthHolds(s, 0, true)) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "no DATA for content-length", id);
    }
    s.headers = headers;
    s.endAfterHeaders = b.endStream;
    s.emit("response", headers);
    if (b.endStream) remoteEnded(this.#hooks, s);
  }

  #onTrailers(s: H2Stream, b: Block, fields: HeaderField[], tooLarge: boolean): void {
    if (s._remoteEnded) {
      throw new H2ProtocolError(ErrorCode.STREAM_CLOSED, "HEADERS after END_STREAM", s.id);
    }
    const trailers = tooLarge ? "too large" : checkFields(fields, "trailers");
    if (!b.endStream || typeof trailers === "string") {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "malformed trailers", s.id);
    }
    if (!lengthHolds(s, 0, true)) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "DATA short of content-length", s.id);
    }
    s.trailers = trailers;
    s._idleEpoch = this.#state.epoch;
    s.emit("trailers", trailers);
    remoteEnded(this.#hooks, s);
  }
}

/**
 * Counts `bytes` more DATA against the stream's content-length; false when they go beyond it, or
 * fall short of it at the end (RFC 9113 §8.1.1).
 */
export function lengthHolds(s: H2Stream, bytes: number, end: boolean): boolean {
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
