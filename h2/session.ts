/**
 * An HTTP/2 connection (RFC 9113) over any node `Duplex`, for both roles: CONNECT streams
 * carrying bytes (HBONE) and ordinary requests with bodies and trailers (h2c), flow control both
 * ways, PING keepalive, GOAWAY and RST_STREAM. No server push, no priorities, no 1xx responses
 * sent. This file is the session's API and lifecycle; the parts it wires are `inbound.ts` (the
 * way in), `outbound.ts` (the way out and flow control), `keepalive.ts`, `idle.ts` (stream idle
 * timeout), `guard.ts` (flood limits) and `settings.ts`.
 *
 * Invariants:
 * - Memory is bounded: see `inbound.ts`, `header_block.ts` and `outbound.ts` for the reader, the
 *   header blocks, the readable buffers and the output queue.
 * - A peer's protocol error ends the session with GOAWAY(code) and closes the socket; a stream
 *   error resets only that stream. Nothing a peer sends throws out of this module. A session we
 *   end for the peer's error logs one warning naming the peer and the reason, and keeps the
 *   reason in `stats.goawayReason`.
 * - After GOAWAY (sent or received) no new streams start; the socket is closed once the last
 *   stream is done.
 */
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { clearTimeout, setTimeout } from "node:timers";
import {
  CLIENT_PREFACE,
  dataHeader,
  DEFAULT_WINDOW,
  ErrorCode,
  errorName,
  goawayFrame,
  H2ProtocolError,
  headersFrames,
  MAX_WINDOW,
  rstStreamFrame,
  windowUpdateFrame,
} from "./frame.ts";
import { log } from "../log/mod.ts";
import { type H2Stats, reasonOf } from "./guard.ts";
import { HpackError } from "./hpack.ts";
import { IdleSweep } from "./idle.ts";
import { checkFields, type H2Headers, type OutgoingHeaders, requestFields } from "./fields.ts";
import { Inbound } from "./inbound.ts";
import { Keepalive } from "./keepalive.ts";
import { Outbound } from "./outbound.ts";
import {
  type H2Options,
  type H2Settings,
  localSettings,
  localSettingsFrame,
  resolveOptions,
} from "./settings.ts";
import { ConnState, type SessionHooks, type StreamHandler, unrefTimer } from "./state.ts";
import { H2Stream, H2StreamError, type StreamHost } from "./stream.ts";

export type { H2Options, H2Settings } from "./settings.ts";
export type { StreamHandler } from "./state.ts";
export type { GoawayReason, H2Stats } from "./guard.ts";

/** Options of {@link H2Session.request}. */
export interface RequestOptions {
  /** Send END_STREAM with the headers. */
  endStream?: boolean;
}

/** After we end the socket, the peer has this long to close its side. */
const END_GRACE_MS = 2_000;
/** The highest stream id (2^31 - 1): what a shutdown notice names. */
const MAX_STREAM_ID = 0x7fffffff;

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

  readonly #state: ConnState;
  readonly #out: Outbound;
  readonly #in: Inbound;
  readonly #keepalive: Keepalive;
  readonly #idle: IdleSweep | undefined;
  #readyResolve!: () => void;
  #readyReject!: (e: Error) => void;
  #closed: Promise<void> | undefined;
  #closedResolve: (() => void) | undefined;
  #endTimer: ReturnType<typeof setTimeout> | undefined;

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
    const o = resolveOptions(options);
    const state = this.#state = new ConnState(role, socket, o);
    this.ready = new Promise<void>((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.ready.catch(() => {}); // Rejection is for awaiting callers; never unhandled.
    const out = this.#out = new Outbound(state);
    this.#keepalive = new Keepalive({
      intervalMs: o.pingIntervalMs,
      timeoutMs: o.pingTimeoutMs,
      send: (f) => out.queue(f),
      isOpen: () => !state.finished && !state.ending,
      onTimeout: () =>
        this.destroy(
          new H2StreamError("ERR_H2_PING_TIMEOUT", "keepalive PING unanswered", ErrorCode.NO_ERROR),
          ErrorCode.NO_ERROR,
        ),
    });
    this.#in = new Inbound(state, out, this.#hooks(onStream), this.#keepalive);
    if (o.streamIdleTimeoutMs > 0) {
      this.#idle = new IdleSweep(state, o.streamIdleTimeoutMs, (s) => this.#onIdle(s));
    }

    socket.on("data", (chunk: Buffer) => this.#onSocketData(chunk));
    socket.on("error", (e: Error) => this.#finish(e));
    socket.on("end", () => this.#onSocketEnd());
    socket.on("close", () => this.#onSocketClose());
    socket.on("drain", () => out.onDrain());
    (socket as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    // A socket paused by its previous reader (a protocol sniffer that put bytes back) stays
    // paused when a `data` listener is added: the session reads it from now on.
    socket.resume();

    if (role === "client") out.queue(CLIENT_PREFACE);
    out.queue(localSettingsFrame(o, role));
    if (out.connRecvWindow > DEFAULT_WINDOW) {
      out.queue(windowUpdateFrame(0, out.connRecvWindow - DEFAULT_WINDOW));
    }
  }

  /** The peer's SETTINGS as known now (defaults until `ready`). */
  get remoteSettings(): Readonly<H2Settings> {
    return { ...this.#state.remote };
  }

  /** The SETTINGS we advertise. */
  get localSettings(): Readonly<H2Settings> {
    return localSettings(this.#state.opts);
  }

  /** Streams open or half-closed right now. */
  get activeStreams(): number {
    return this.#state.streams.size;
  }

  /** No new stream can start: GOAWAY sent or received, or the session is gone. */
  get closing(): boolean {
    const st = this.#state;
    return st.goawaySent !== undefined || st.goawayReceived !== undefined || st.ending ||
      st.finished;
  }

  /** The session is gone (socket closed or destroyed). */
  get destroyed(): boolean {
    return this.#state.finished;
  }

  /** Counters of what the peer made us do, and why we ended the session if it was its fault. */
  get stats(): Readonly<H2Stats> {
    return { ...this.#state.guard.stats };
  }

  /** The peer's GOAWAY, if one came. */
  get goawayReceived(): { errorCode: number; lastStreamId: number } | undefined {
    return this.#state.goawayReceived;
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
    const st = this.#state;
    if (this.role !== "client") throw new Error("request() on a server session");
    if (this.closing) {
      throw new H2StreamError("ERR_H2_SESSION_CLOSED", "session is closing", ErrorCode.NO_ERROR);
    }
    if (st.streams.size >= st.remote.maxConcurrentStreams) {
      throw new H2StreamError(
        "ERR_H2_STREAM_LIMIT",
        `peer allows ${st.remote.maxConcurrentStreams} concurrent streams`,
        ErrorCode.REFUSED_STREAM,
      );
    }
    if (st.nextStreamId > MAX_WINDOW) {
      throw new H2StreamError("ERR_H2_SESSION_CLOSED", "stream ids exhausted", 0);
    }
    const fields = requestFields(headers);
    const checked = checkFields(fields, "request");
    if (typeof checked === "string") throw new TypeError(`bad request headers: ${checked}`);
    const id = st.nextStreamId;
    st.nextStreamId += 2;
    const endStream = opts.endStream === true;
    const s = new H2Stream(
      this,
      id,
      st.remote.initialWindowSize,
      st.opts.initialWindowSize,
      true,
      checked,
    );
    s._tunnel = checked[":method"] === "CONNECT";
    s._idleEpoch = st.epoch;
    st.streams.set(id, s);
    this.#out.queue(
      headersFrames(id, st.encoder.encode(fields), endStream, st.remote.maxFrameSize),
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
    return this.#keepalive.ping();
  }

  /**
   * First half of a graceful close (RFC 9113 §6.8, as Envoy and nghttp2 do it): GOAWAY(NO_ERROR)
   * naming the highest possible stream id, so the peer opens no new stream while the streams it
   * already sent are still taken. `close()` later sends the GOAWAY with the real last stream id.
   */
  shutdownNotice(): void {
    const st = this.#state;
    if (st.finished || st.ending || st.goawaySent !== undefined || st.noticeSent) return;
    st.noticeSent = true;
    this.#out.queue(goawayFrame(MAX_STREAM_ID, ErrorCode.NO_ERROR));
  }

  /**
   * Graceful close: GOAWAY(NO_ERROR) with the last peer stream we took; streams above it are
   * refused; the socket closes when the open streams are done.
   *
   * @returns Resolves when the session is gone
   */
  close(): Promise<void> {
    const st = this.#state;
    if (!this.#closed) {
      this.#closed = st.finished ? Promise.resolve() : new Promise<void>((resolve) => {
        this.#closedResolve = resolve;
      });
      if (!st.finished && st.goawaySent === undefined && !st.ending) {
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
    const st = this.#state;
    if (st.finished) return;
    if (!st.ending && st.goawaySent === undefined) {
      this.#sendGoaway(code ?? (error ? ErrorCode.INTERNAL_ERROR : ErrorCode.NO_ERROR));
    }
    this.#out.flush();
    this.#finish(error);
    this.#endSocket();
  }

  // ---- StreamHost ----

  /** @internal */
  _streamWrite(s: H2Stream): void {
    this.#out.trySend(s);
  }

  /** @internal */
  _streamEnd(s: H2Stream): void {
    const st = this.#state;
    if (s._closed || s._localEnded || st.finished) return;
    s._localEnded = true;
    const trailers = s._trailers;
    s._trailers = undefined;
    this.#out.queue(
      trailers
        ? headersFrames(s.id, st.encoder.encode(trailers), true, st.remote.maxFrameSize)
        : dataHeader(s.id, 0, true),
    );
    if (s._remoteEnded) this.#closeStream(s);
  }

  /** @internal */
  _streamRespond(s: H2Stream, fields: [string, string][], endStream: boolean): void {
    const st = this.#state;
    if (st.finished) return;
    this.#out.queue(
      headersFrames(s.id, st.encoder.encode(fields), endStream, st.remote.maxFrameSize),
    );
    if (endStream) {
      s._localEnded = true;
      if (s._remoteEnded) this.#closeStream(s);
    } else if (s._pending) {
      this.#out.trySend(s);
    }
  }

  /** @internal */
  _streamReset(s: H2Stream, code: number): void {
    if (s._closed) return;
    s.rstCode = code;
    if (!this.#state.finished) this.#out.queue(rstStreamFrame(s.id, code));
    this.#closeStream(s);
  }

  /** @internal */
  _streamConsumed(s: H2Stream, bytes: number, streamToo: boolean): void {
    if (this.#state.finished) return;
    this.#out.consumed(s, bytes, streamToo);
  }

  // ---- What the way in may do ----

  #hooks(onStream: StreamHandler | undefined): SessionHooks {
    return {
      onStream,
      closeStream: (s) => this.#closeStream(s),
      streamError: (id, code, message) => this.#streamError(id, code, message),
      newPeerStream: (id, headers) => this.#newPeerStream(id, headers),
      settled: () => this.#readyResolve(),
      maybeEnd: () => this.#maybeEnd(),
      emit: (event, ...args) => this.emit(event, ...args),
      listenerCount: (event) => this.listenerCount(event),
    };
  }

  #closeStream(s: H2Stream): void {
    s._closed = true;
    if (!this.#state.streams.delete(s.id)) return;
    this.#out.forget(s);
    this.#maybeEnd();
  }

  #streamError(id: number, code: number, message: string): void {
    this.#out.queueReply(rstStreamFrame(id, code));
    const s = this.#state.streams.get(id);
    if (!s) return;
    this.#closeStream(s);
    s._onReset(code, false, message);
  }

  #newPeerStream(id: number, headers: H2Headers): H2Stream {
    const st = this.#state;
    const s = new H2Stream(
      this,
      id,
      st.remote.initialWindowSize,
      st.opts.initialWindowSize,
      false,
      headers,
    );
    s._tunnel = headers[":method"] === "CONNECT";
    s._idleEpoch = st.epoch;
    st.streams.set(id, s);
    return s;
  }

  /** After GOAWAY either way, the socket ends with the last stream. */
  #maybeEnd(): void {
    const st = this.#state;
    if (st.streams.size > 0 || st.finished) return;
    if (st.goawaySent !== undefined || st.goawayReceived !== undefined) this.#endSocket();
  }

  // ---- Lifecycle ----

  #sendGoaway(code: number, message?: string): void {
    const st = this.#state;
    st.goawaySent = st.lastPeerStreamId;
    const debug = message ? Buffer.from(message.slice(0, 200), "utf8") : undefined;
    this.#out.queue(goawayFrame(st.lastPeerStreamId, code, debug));
  }

  #onSocketData(chunk: Buffer): void {
    if (this.#state.finished) return;
    try {
      this.#in.push(chunk);
    } catch (e) {
      this.#onFailure(e);
    }
  }

  #onFailure(e: unknown): void {
    const stats = this.#state.guard.stats;
    if (e instanceof H2ProtocolError) {
      stats.goawayReason = reasonOf(e);
      this.#connectionError(e.code, e.message);
    } else if (e instanceof HpackError) {
      stats.goawayReason = "compression_error";
      this.#connectionError(ErrorCode.COMPRESSION_ERROR, e.message);
    } else {
      stats.goawayReason = "internal_error";
      this.#connectionError(ErrorCode.INTERNAL_ERROR, (e as Error)?.message ?? String(e), e);
    }
  }

  /** A request stream idle for `streamIdleTimeoutMs`: reset, and its handler sees an error. */
  #onIdle(s: H2Stream): void {
    this.#state.guard.stats.idleTimeouts++;
    this._streamReset(s, ErrorCode.CANCEL);
    s.destroy(
      new H2StreamError(
        "ERR_H2_STREAM_IDLE",
        "stream idle timeout: no bytes either way",
        ErrorCode.CANCEL,
      ),
    );
  }

  #connectionError(code: number, message: string, cause?: unknown): void {
    if (this.#state.finished) return;
    this.#in.stop();
    log.warn("HTTP/2 session ended for a peer error", {
      peer: peerOf(this.socket),
      role: this.role,
      reason: this.#state.guard.stats.goawayReason,
      code: errorName(code),
      detail: message,
    });
    if (!this.#state.ending) this.#sendGoaway(code, message);
    this.#out.flush();
    const error = new H2StreamError(
      "ERR_H2_SESSION_ERROR",
      `HTTP/2 connection error ${errorName(code)}: ${message}`,
      code,
    );
    if (cause !== undefined) (error as { cause?: unknown }).cause = cause;
    this.#finish(error);
    this.#endSocket();
  }

  /** Flushes and half-closes the socket; destroys it if the peer does not close in time. */
  #endSocket(): void {
    if (this.#state.ending) return;
    this.#state.ending = true;
    this.#out.flush();
    const socket = this.socket;
    if (!socket.destroyed) {
      socket.end();
      this.#endTimer = setTimeout(() => socket.destroy(), END_GRACE_MS);
      unrefTimer(this.#endTimer);
    }
  }

  #onSocketEnd(): void {
    // The peer will send nothing more; streams still open cannot finish.
    if (this.#state.streams.size > 0) {
      this.#finish(
        new H2StreamError("ERR_H2_SESSION_CLOSED", "peer closed the connection", ErrorCode.CANCEL),
      );
    }
    this.#endSocket();
  }

  #onSocketClose(): void {
    clearTimeout(this.#endTimer);
    this.#finish(
      this.#state.streams.size > 0
        ? new H2StreamError("ERR_H2_SESSION_CLOSED", "connection closed", ErrorCode.CANCEL)
        : undefined,
    );
  }

  /**
   * Marks the session gone and emits `close` (once). Open streams fail with `error`; without
   * one (a local destroy) they are destroyed quietly.
   */
  #finish(error?: Error): void {
    const st = this.#state;
    if (st.finished) return;
    st.finished = true;
    this.#in.stop();
    this.#out.clear();
    this.#idle?.stop();
    const streamError = error instanceof H2StreamError ? error : new H2StreamError(
      "ERR_H2_SESSION_CLOSED",
      error ? `session closed: ${error.message}` : "session closed",
      ErrorCode.CANCEL,
    );
    const streams = [...st.streams.values()];
    st.streams.clear();
    for (const s of streams) s._onSessionGone(error ? streamError : undefined);
    this.#readyReject(streamError);
    this.#keepalive.stop(streamError);
    this.#closedResolve?.();
    if (!this.socket.destroyed && st.ending === false) this.#endSocket();
    queueMicrotask(() => {
      if (error && this.listenerCount("error") > 0) this.emit("error", error);
      this.emit("close", error);
    });
  }
}

/**
 * The peer's address as `ip:port`: of the socket, or of the connection under it when the socket
 * is a stream of another session (h2c inside an HBONE tunnel).
 */
function peerOf(socket: Duplex): string {
  let s: unknown = socket;
  for (let depth = 0; depth < 3 && s; depth++) {
    const { remoteAddress, remotePort } = s as { remoteAddress?: string; remotePort?: number };
    if (remoteAddress) return `${remoteAddress}:${remotePort}`;
    s = (s as { session?: { socket?: unknown } }).session?.socket;
  }
  return "unknown";
}
