/**
 * The HTTP/1.1 server codec over one connection (a tunnel stream or a socket): keep-alive,
 * pipelining with in-order answers, `100-continue`, Upgrade and CONNECT hand-over.
 *
 * Invariants:
 * - The next request head is read only once the previous request body is over (read to its end,
 *   or skipped after the response), and at most `maxPipelined` exchanges are unanswered.
 * - Nothing is pipelined into an upgrade: an upgradable request is dispatched only once every
 *   earlier response was written, and no head is read after it until it was answered.
 * - A malformed head gets its status (400, 431, 501, 505; 408 on the headers timeout) with
 *   `connection: close` after the earlier responses; then the connection closes.
 * - Closing is graceful: our side ends after the last response, the peer's bytes are read and
 *   dropped for a while (RFC 9112 §9.6), then the stream is destroyed.
 * - Once the server drains, as Envoy does: an idle connection closes at once; otherwise no new
 *   head is read, the requests already read are answered, the last with `connection: close`
 *   (unless its head was already sent), and the connection closes after them. A connection
 *   opened while draining still gets its first request answered, with `connection: close`.
 */
import type { Duplex } from "node:stream";
import { HttpCodecError } from "./errors.ts";
import {
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_MAX_HEADERS,
  type HeadParseOptions,
  type ParsedRequest,
  parseRequestHead,
} from "./h1_parse.ts";
import { HeaderMap } from "./types.ts";
import { Deadline } from "./deadline.ts";
import { type ExchangeHost, type H1Exchange, reasonOf, ServerExchange } from "./_h1_exchange.ts";
import { renderHead } from "./_h1_write.ts";
import { Wire } from "./_wire.ts";

export type { H1Exchange } from "./_h1_exchange.ts";

/** Options of {@link serveH1}. */
export interface H1ServerOptions {
  /** Most bytes in a request head, request line included (431 beyond). @default {61440} */
  maxHeaderBytes?: number;
  /** Most header fields in a request (431 beyond), as Envoy's `max_headers_count`. @default {100} */
  maxHeaders?: number;
  /** Milliseconds to receive a whole head once it started, else 408. @default {60000} */
  headersTimeout?: number;
  /** Milliseconds without a request before the connection closes. @default {3600000} */
  idleTimeout?: number;
  /** Most requests parsed and dispatched before the first of them is answered. @default {8} */
  maxPipelined?: number;
  /** Most unread request body bytes skipped after a response to keep the connection. @default {262144} */
  maxDrainBytes?: number;
  /** Milliseconds to drop the peer's bytes after our side ended, before destroying. @default {2000} */
  lingerTimeout?: number;
  /** The peer, when the connection does not say (a tunnel stream). */
  remote?: { readonly address: string; readonly port: number };
  /** Aborted when the server drains: the connection closes at the next request boundary. */
  drain?: AbortSignal;
  /** Told about protocol errors and handler failures, for logs and response flags. */
  onError?: (error: unknown) => void;
}

/** A request handler: answers with `respond` or `upgrade`; a throw becomes a 500. */
export type H1Handler = (exchange: H1Exchange) => Promise<void>;

/**
 * Serves HTTP/1.1 on a connection until it closes or is upgraded.
 *
 * @param conn The connection: a tunnel stream or a socket
 * @param handler Called once per request, possibly before earlier responses were written
 * @param options Limits and timeouts
 * @returns Resolves when the connection was closed or handed over by an upgrade
 * @example
 * ```ts
 * import net from "node:net";
 * net.createServer({ allowHalfOpen: true }, (socket) =>
 *   serveH1(socket, (ex) => ex.respond({ status: 200, headers: new HeaderMap() }, bytesBody("hi"))));
 * ```
 */
export function serveH1(
  conn: Duplex,
  handler: H1Handler,
  options: H1ServerOptions = {},
): Promise<void> {
  return new ServerConnection(conn, handler, options).run();
}

const LINGER_BYTES = 1024 * 1024;

class IdleTimeout extends Error {}

class ServerConnection implements ExchangeHost {
  readonly wire: Wire;
  readonly remote?: { readonly address: string; readonly port: number };
  #handler: H1Handler;
  #options: H1ServerOptions;
  #parseOptions: HeadParseOptions;
  #closing = false;
  #upgraded = false;
  #tail: Promise<void> = Promise.resolve();
  #queue: ServerExchange[] = [];
  /** The idle or the headers deadline (one at a time); set and cancelled on every request. */
  #timer = new Deadline(() => this.#expired());
  #waiting = false;
  #timerIdle = false;
  #drained = false;
  #dispatched = 0;
  #parse = (buf: Uint8Array, scanFrom: number): ParsedRequest | null => {
    this.#parseOptions.scanFrom = scanFrom;
    const parsed = parseRequestHead(buf, this.#parseOptions);
    // A head has started: the headers timer replaces the idle one.
    if (parsed === null) this.#arm(false);
    return parsed;
  };

  constructor(conn: Duplex, handler: H1Handler, options: H1ServerOptions) {
    this.wire = new Wire(conn);
    this.#handler = handler;
    this.#options = options;
    this.#parseOptions = {
      maxHeaderBytes: options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
      maxHeaders: options.maxHeaders ?? DEFAULT_MAX_HEADERS,
    };
    conn.once("close", () => this.#lose("Client connection lost"));
    const socket = conn as { remoteAddress?: string; remotePort?: number };
    this.remote = options.remote ??
      (socket.remoteAddress === undefined
        ? undefined
        : { address: socket.remoteAddress, port: socket.remotePort ?? 0 });
    const drain = options.drain;
    if (drain?.aborted) this.#drained = true;
    else if (drain) {
      const onDrain = () => this.#drain();
      drain.addEventListener("abort", onDrain, { once: true });
      conn.once("close", () => drain.removeEventListener("abort", onDrain));
    }
  }

  lastBeforeDrain(ex: ServerExchange): boolean {
    // A head half received when the drain came is read and answered after this one.
    const more = this.#waiting && this.wire.buffered.length > 0;
    return this.#drained && this.#queue[this.#queue.length - 1] === ex && !more;
  }

  /** Closes an idle connection now; a busy one closes after the requests already read. */
  #drain(): void {
    this.#drained = true;
    // Only a read of a next head that has not started is interrupted: a head half received is
    // answered (with `connection: close`), and the interrupt must not hit a body read.
    if (this.#waiting && this.wire.buffered.length === 0) this.wire.interrupt(new IdleTimeout());
  }

  get closing(): boolean {
    return this.#closing;
  }

  lastResponse(): void {
    this.#closing = true;
  }

  upgraded(): void {
    this.#closing = this.#upgraded = true;
    this.#timer.stop();
  }

  draining(on: boolean): void {
    if (on) this.#arm(false);
    else this.#disarm();
  }

  async run(): Promise<void> {
    let failure: unknown;
    try {
      await this.#loop();
    } catch (e) {
      failure = e;
    } finally {
      this.#timer.stop();
    }
    if (this.#upgraded) return;
    // Handlers still running on a lost connection see their signal aborted; no need to wait.
    await Promise.race([this.#tail, this.wire.closed()]);
    if (failure instanceof HttpCodecError && failure.kind !== "closed") {
      this.#options.onError?.(failure);
      if (!this.#closing && this.wire.writable) await this.#reject(failure).catch(() => {});
    }
    await this.#close();
  }

  async #loop(): Promise<void> {
    const maxPipelined = this.#options.maxPipelined ?? 8;
    const maxDrain = this.#options.maxDrainBytes ?? 256 * 1024;
    while (!this.#closing) {
      if (this.#queue.length >= maxPipelined) await this.#queue[0].finished;
      const parsed = await this.#nextHead();
      if (parsed === null) {
        // As Envoy and Node do, a client that ends its side abandons what it has not received.
        if (this.wire.ended) this.#lose("Client ended the connection");
        return;
      }
      if (this.#closing) return;
      if (parsed.upgrade) await this.#tail;
      const ex = new ServerExchange(this, parsed, this.#tail);
      this.#dispatched++;
      this.#tail = ex.finished;
      this.#queue.push(ex);
      ex.finished.then(() => this.#finished(ex));
      void this.#dispatch(ex);
      if (!(await ex.readyForNext(maxDrain))) return;
    }
  }

  async #nextHead(): Promise<ParsedRequest | null> {
    if (this.#drained && this.#dispatched > 0) return null;
    this.#waiting = true;
    if (this.#queue.length === 0 && this.wire.buffered.length === 0) this.#arm(true);
    try {
      return await this.wire.readHead(this.#parse);
    } catch (e) {
      if (e instanceof IdleTimeout) return null;
      throw e;
    } finally {
      this.#waiting = false;
      this.#disarm();
    }
  }

  async #dispatch(ex: ServerExchange): Promise<void> {
    try {
      await this.#handler(ex);
      if (!ex.started) throw new Error("Handler returned without a response");
    } catch (e) {
      this.#options.onError?.(e);
      await ex.fail(e);
    }
  }

  /** Aborts the signals of the exchanges still pending. */
  #lose(why: string): void {
    const lost = new HttpCodecError("closed", "connection", why);
    for (const ex of this.#queue) ex.lost(lost);
  }

  #finished(ex: ServerExchange): void {
    const i = this.#queue.indexOf(ex);
    if (i >= 0) this.#queue.splice(i, 1);
    if (!this.#waiting) return;
    if (this.#closing) this.wire.interrupt(new IdleTimeout());
    else if (this.#queue.length === 0 && this.wire.buffered.length === 0) this.#arm(true);
  }

  /** Starts the idle or the headers timer; a running headers timer is kept. */
  #arm(idle: boolean): void {
    if (this.#timer.armed && (idle || !this.#timerIdle)) return;
    this.#timerIdle = idle;
    this.#timer.set(this.#timeoutMs(idle));
  }

  #disarm(): void {
    this.#timer.cancel();
  }

  #timeoutMs(idle: boolean): number {
    return idle ? this.#options.idleTimeout ?? 3_600_000 : this.#options.headersTimeout ?? 60_000;
  }

  #expired(): void {
    const idle = this.#timerIdle;
    this.wire.interrupt(
      idle
        ? new IdleTimeout()
        : new HttpCodecError("timeout", "head", `Not received in ${this.#timeoutMs(idle)} ms`),
    );
  }

  /** Writes the status of a rejected head with `connection: close`. */
  #reject(e: HttpCodecError): Promise<void> {
    const text = `${reasonOf(e.status)}\n`;
    const headers = new HeaderMap([["content-type", "text/plain"]]);
    const extra = `content-length: ${text.length}\r\nconnection: close\r\n`;
    const head = renderHead(`HTTP/1.1 ${e.status} ${reasonOf(e.status)}`, headers, extra, {
      framing: false,
      connection: false,
    });
    this.#closing = true;
    return this.wire.writev([head, new TextEncoder().encode(text)]);
  }

  /** Ends our side, drops what the peer still sends for a while, then destroys. */
  async #close(): Promise<void> {
    const wire = this.wire;
    const timer = setTimeout(() => wire.destroy(), this.#options.lingerTimeout ?? 2000);
    try {
      wire.end();
      await wire.flushed();
      let dropped = 0;
      while (dropped < LINGER_BYTES && await wire.fill()) {
        dropped += wire.buffered.length;
        wire.consume(wire.buffered.length);
      }
    } catch {
      // The peer reset or the linger timer fired: either way the connection is done.
    } finally {
      clearTimeout(timer);
      wire.destroy();
    }
    await wire.closed();
  }
}
