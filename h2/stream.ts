/**
 * One HTTP/2 stream as a node `Duplex`: a request and its response, or tunnelled bytes (RFC 9113
 * §5.1, §8.1, §8.5).
 *
 * Invariants:
 * - Writable side: each write becomes DATA frames no larger than the peer's maximum frame size,
 *   sent only within the stream and connection windows; the write callback runs when the last
 *   byte is queued for the socket, so a stalled window is backpressure. Written buffers are
 *   handed to the socket without a copy: do not modify them afterwards. `end()` sends
 *   END_STREAM (half-close); `sendTrailers()` sends it on a last HEADERS frame instead, after
 *   every byte written before.
 * - Readable side: peer DATA in order, ending on END_STREAM. The receive window is given back
 *   only for bytes the consumer has taken out of the readable buffer, so the buffer never holds
 *   more than the stream window. Peer trailers are set and emitted (`trailers`) before the end,
 *   and a body that does not match its `content-length` ends in an error, never in a clean end.
 * - `destroy()` of a stream not yet closed sends RST_STREAM(CANCEL). A peer RST_STREAM with
 *   NO_ERROR or CANCEL ends the readable side cleanly and makes later writes no-ops; on a server
 *   whose response was not complete, the stream also emits `aborted` and is destroyed without
 *   error, so a handler still producing the response stops (its work is released). Any other code
 *   destroys the stream with an {@link H2StreamError} (as ztunnel reads them), and so does any
 *   reset of a client stream before its response, which then never comes.
 */
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import { appendFields, type H2Headers, type OutgoingHeaders } from "./fields.ts";
import { ErrorCode, errorName } from "./frame.ts";
import type { H2Session } from "./session.ts";

/** Why a stream or session failed. `code` is a stable string; `rstCode` the HTTP/2 code. */
export class H2StreamError extends Error {
  /**
   * @param code `ERR_H2_STREAM_RESET` (peer or protocol reset), `ERR_H2_REFUSED_STREAM` (safe to
   *   retry: GOAWAY or REFUSED_STREAM before processing), `ERR_H2_SESSION_CLOSED`
   * @param message What happened
   * @param rstCode The HTTP/2 error code involved
   */
  constructor(readonly code: string, message: string, readonly rstCode: number) {
    super(message);
    this.name = "H2StreamError";
  }
}

/** What a stream needs from its session; implemented by {@link H2Session}. */
export interface StreamHost {
  /** Sends as much of the stream's pending write as windows allow. */
  _streamWrite(s: H2Stream): void;
  /** Sends END_STREAM: the trailers set by `sendTrailers`, or an empty DATA frame. */
  _streamEnd(s: H2Stream): void;
  /** Sends response HEADERS. */
  _streamRespond(s: H2Stream, fields: [string, string][], endStream: boolean): void;
  /** Sends RST_STREAM and forgets the stream. */
  _streamReset(s: H2Stream, code: number): void;
  /** The consumer took `bytes` out of the readable buffer (or they were discarded). */
  _streamConsumed(s: H2Stream, bytes: number, streamToo: boolean): void;
}

/** Options of {@link H2Stream.respond}. */
export interface RespondOptions {
  /** Send END_STREAM with the headers (a response without body, e.g. a refusal). */
  endStream?: boolean;
}

/** A stream of an {@link H2Session}; see the module doc for its semantics. */
export class H2Stream extends Duplex {
  /** Stream id. */
  readonly id: number;
  /** Request headers (server side) or the final response headers once `response` fired. */
  headers: H2Headers;
  /** RST_STREAM code sent or received, once the stream was reset. */
  rstCode: number | undefined;
  /** Response HEADERS sent (server) — requests are always sent at once. */
  headersSent: boolean;
  /** The peer's trailers, once they came (just before the readable side ends). */
  trailers: H2Headers | undefined;
  /** The peer's request (server) or response (client) HEADERS carried END_STREAM: no body. */
  endAfterHeaders = false;

  readonly #host: H2Session & StreamHost;

  /** @internal Bytes we may still send (peer's window). */
  _sendWindow: number;
  /** @internal Bytes the peer may still send. */
  _recvWindow: number;
  /** @internal Consumed bytes not yet given back to the peer. */
  _uncredited = 0;
  /** @internal A CONNECT stream: a tunnel, exempt from the stream idle timeout. */
  _tunnel = false;
  /** @internal The session's idle epoch at the last activity (see `idle.ts`). */
  _idleEpoch = 0;
  /** @internal Bytes pushed into the readable buffer. */
  _delivered = 0;
  /** @internal Bytes known to have left the readable buffer (or been discarded). */
  _consumed = 0;
  /** @internal END_STREAM sent. */
  _localEnded = false;
  /** @internal END_STREAM received. */
  _remoteEnded = false;
  /** @internal Closed at the HTTP/2 level (both ends done, or reset). */
  _closed = false;
  /** @internal Client: final response received. */
  _responded = false;
  /** @internal The write being sent. */
  _pending: Buffer | undefined;
  /** @internal Offset already sent of `_pending`. */
  _pendingAt = 0;
  /** @internal Callback of `_pending`. */
  _pendingCb: ((error?: Error | null) => void) | undefined;
  /** @internal The readable side got (or will get) its end. */
  _readableDone = false;
  /** @internal Server: `_final` waits for `respond`. */
  _finalCb: ((error?: Error | null) => void) | undefined;
  /** @internal Trailer block to end the sending side with (see `sendTrailers`). */
  _trailers: [string, string][] | undefined;
  /** @internal The peer's announced `content-length`, to be matched by its DATA. */
  _contentLength: number | undefined;
  /** @internal DATA payload bytes received (padding excluded). */
  _received = 0;

  /**
   * @internal Made by the session only.
   */
  constructor(
    session: H2Session & StreamHost,
    id: number,
    sendWindow: number,
    recvWindow: number,
    headersSent: boolean,
    headers: H2Headers,
  ) {
    super({ allowHalfOpen: true, decodeStrings: true });
    this.#host = session;
    this.id = id;
    this._sendWindow = sendWindow;
    this._recvWindow = recvWindow;
    this.headersSent = headersSent;
    this.headers = headers;
  }

  /** The session this stream belongs to. */
  get session(): H2Session {
    return this.#host;
  }

  /** The peer ended its side (END_STREAM came): it sends nothing more on this stream. */
  get remoteEnded(): boolean {
    return this._remoteEnded;
  }

  /**
   * Server side: sends the response HEADERS. With `endStream` the response is complete: a peer
   * still sending is told to stop (RST_STREAM NO_ERROR, RFC 9113 §8.1) and the stream is
   * destroyed.
   *
   * @param status HTTP status, 200 to 999 (200 accepts a CONNECT); 1xx are not supported
   * @param headers Extra fields; names are lower-cased
   * @param opts `endStream` for a response without body
   * @throws Error when headers were already sent; RangeError for a bad status; TypeError for a
   *   field HTTP/2 cannot carry
   */
  respond(status: number, headers: OutgoingHeaders = {}, opts: RespondOptions = {}): void {
    if (this.headersSent) throw new Error("response headers already sent");
    if (!Number.isInteger(status) || status < 200 || status > 999) {
      throw new RangeError(`bad status ${status}`);
    }
    const fields: [string, string][] = [[":status", String(status)]];
    appendFields(fields, headers);
    this.headersSent = true;
    if (this._closed || this.destroyed) return;
    const endStream = opts.endStream === true;
    this.#host._streamRespond(this, fields, endStream);
    if (endStream) {
      if (!this._closed) this.#host._streamReset(this, ErrorCode.NO_ERROR);
      this.destroy();
      return;
    }
    const cb = this._finalCb;
    this._finalCb = undefined;
    if (cb) this._final(cb);
  }

  /**
   * Ends the sending side with trailer fields: one HEADERS frame with END_STREAM, sent after
   * every byte written before (RFC 9113 §8.1). Use it instead of `end()`; without fields it is
   * `end()`.
   *
   * @param headers Trailer fields; no pseudo-headers
   * @throws Error before the response headers (server) or after the sending side ended;
   *   TypeError for a field HTTP/2 cannot carry
   */
  sendTrailers(headers: OutgoingHeaders): void {
    if (!this.headersSent) throw new Error("Trailers before the response headers");
    if (this.writableEnded) throw new Error("Trailers after the stream ended");
    const fields: [string, string][] = [];
    appendFields(fields, headers);
    if (fields.length > 0) this._trailers = fields;
    this.end();
  }

  /**
   * Resets the stream with `code` (RST_STREAM) unless it is already closed, then destroys it.
   *
   * @param code HTTP/2 error code @default NO_ERROR
   */
  close(code: number = ErrorCode.NO_ERROR): void {
    if (!this._closed) this.#host._streamReset(this, code);
    this.destroy();
  }

  /** Takes bytes out of the readable buffer; accounted so the peer's window refills. */
  override read(size?: number): ReturnType<Duplex["read"]> {
    const out = super.read(size);
    if (this._delivered !== this._consumed) this._account();
    return out;
  }

  override _read(): void {
    this._account();
  }

  override _write(chunk: Buffer, _enc: string, cb: (error?: Error | null) => void): void {
    if (this._closed || this._localEnded) {
      // Reset by the peer without error, or ended by respond(): the bytes have nowhere to go.
      if (this.rstCode === ErrorCode.NO_ERROR || this.rstCode === ErrorCode.CANCEL) return cb();
      return cb(new H2StreamError("ERR_H2_STREAM_CLOSED", "write after the stream closed", 0));
    }
    if (chunk.length === 0) return cb();
    this._pending = chunk;
    this._pendingAt = 0;
    this._pendingCb = cb;
    this.#host._streamWrite(this);
  }

  override _final(cb: (error?: Error | null) => void): void {
    if (this._closed || this._localEnded) return cb();
    if (!this.headersSent) {
      this._finalCb = cb;
      return;
    }
    this.#host._streamEnd(this);
    cb();
  }

  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    if (!this._closed) this.#host._streamReset(this, ErrorCode.CANCEL);
    const unread = this._delivered - this._consumed;
    if (unread > 0) {
      this._consumed = this._delivered;
      this.#host._streamConsumed(this, unread, false);
    }
    // The write in flight ends with the stream; without an error it must not make one.
    const pending = this._pendingCb ?? this._finalCb;
    this._pending = this._pendingCb = this._finalCb = undefined;
    pending?.(error ?? null);
    cb(error);
  }

  /** @internal Peer DATA within the windows. */
  _onData(data: Buffer): void {
    if (this.destroyed || this.readableEnded || this._readableDone) {
      this.#host._streamConsumed(this, data.length, false);
      return;
    }
    this._delivered += data.length;
    this.push(data);
    this._account();
  }

  /** @internal Peer END_STREAM. */
  _onRemoteEnd(): void {
    this._remoteEnded = true;
    this._endReadable();
  }

  /** @internal The stream was reset: by the peer (`byPeer`), or by us (`reason` says why). */
  _onReset(code: number, byPeer: boolean, reason = "stream reset after a protocol error"): void {
    this.rstCode = code;
    this._closed = true;
    const clean = code === ErrorCode.NO_ERROR || code === ErrorCode.CANCEL;
    if (byPeer && clean && (this._responded || this.#host.role === "server")) {
      this._endReadable();
      // Writes from now on are dropped: finish the one in flight.
      const cb = this._pendingCb ?? this._finalCb;
      this._pending = this._pendingCb = this._finalCb = undefined;
      cb?.();
      // A client gone before our response is whole needs none of it (a server's reset of a
      // client stream after its response leaves that response readable, RFC 9113 §8.1).
      if (this.#host.role === "server" && !this._localEnded && !this.destroyed) {
        this.emit("aborted");
        this.destroy();
      }
      return;
    }
    const why = !byPeer
      ? reason
      : clean
      ? "peer reset the stream before responding"
      : "peer reset the stream";
    const kind = code === ErrorCode.REFUSED_STREAM
      ? "ERR_H2_REFUSED_STREAM"
      : "ERR_H2_STREAM_RESET";
    this.destroy(new H2StreamError(kind, `${why}: ${errorName(code)}`, code));
  }

  /** @internal The session ended while the stream was open. */
  _onSessionGone(error: H2StreamError | undefined): void {
    this._closed = true;
    if (this.rstCode === undefined) this.rstCode = error?.rstCode ?? ErrorCode.CANCEL;
    this.destroy(error);
  }

  /** @internal Ends the readable side once. */
  _endReadable(): void {
    if (this._readableDone) return;
    this._readableDone = true;
    if (!this.destroyed) this.push(null);
  }

  /** @internal Gives back the window of consumed bytes. */
  _account(): void {
    const now = this._delivered - this.readableLength;
    const delta = now - this._consumed;
    if (delta <= 0) return;
    this._consumed = now;
    this.#host._streamConsumed(this, delta, true);
  }
}
