/**
 * One request/response exchange of the HTTP/1.1 server: the request as parsed, its body, and the
 * response side (`respond`, `upgrade`, `100 Continue`).
 *
 * Invariants:
 * - Responses leave in request order: an exchange writes nothing (not even `100 Continue`)
 *   before the previous exchange has finished writing (`prev`).
 * - `finished` settles exactly once: after the response was written, after an upgrade, or when
 *   the exchange failed; it never rejects.
 * - The connection closes after this response when the request asked for it, when the response
 *   is delimited by the close, when the handler said `connection: close`, when a CONNECT was
 *   refused, when a `100-continue` body was neither requested nor received, or when the server
 *   drains.
 */
import type { Duplex } from "node:stream";
import { HttpCodecError } from "./errors.ts";
import type { ParsedRequest } from "./h1_parse.ts";
import {
  type Body,
  bytesBody,
  EMPTY_BODY,
  type Exchange,
  HeaderMap,
  type RequestHead,
  type ResponseHead,
} from "./types.ts";
import { IncomingBody } from "./_h1_body.ts";
import { listTokens } from "./_h1_fields.ts";
import { type OutFraming, renderHead, writeMessage } from "./_h1_write.ts";
import type { Wire } from "./_wire.ts";

/**
 * One HTTP/1.1 request as a handler sees it: the request, and the ways to answer it.
 * `Expect: 100-continue` is removed from the request head: as Envoy does by default, the codec
 * answers it itself, sending `100 Continue` when the handler first reads the body.
 */
export interface H1Exchange extends Exchange {
  /** The peer of the connection, when known. */
  readonly remote?: { readonly address: string; readonly port: number };
  /** Whether {@link H1Exchange.upgrade} may be called: CONNECT, or `Connection: upgrade`. */
  readonly upgradable: boolean;
  /** Aborted when the connection is lost before this exchange finished (cancel the upstream). */
  readonly signal: AbortSignal;
  /**
   * Sends the response: the head with framing fields set from the body, then the body. Resolves
   * once the last byte was handed to the connection.
   *
   * @throws {HttpCodecError} `closed` when the connection failed, `bad_message` for an unsafe head
   *   or a body that does not match its length; the connection is then aborted
   */
  respond(head: ResponseHead, body: Body): Promise<void>;
  /**
   * Answers `101` (Upgrade) or `2xx` (CONNECT) and hands over the raw connection, any bytes the
   * client already sent after the head first.
   *
   * @throws {TypeError} When the request is not upgradable, the status does not fit, or a
   *   response was already started
   */
  upgrade(head: ResponseHead): Duplex;
}

/** What an exchange needs from its connection. */
export interface ExchangeHost {
  readonly wire: Wire;
  readonly remote?: { readonly address: string; readonly port: number };
  /** Marks this response as the last one: no more requests are read, none answered. */
  lastResponse(): void;
  /** Whether an earlier response was the last one (this one must not be written). */
  readonly closing: boolean;
  /** Marks the connection handed over by an upgrade (the last response too). */
  upgraded(): void;
  /** Runs the headers timer while an unread body is skipped, so a stalled peer cannot hold us. */
  draining(on: boolean): void;
  /** Whether the server drains and `ex` is the last exchange the connection will answer. */
  lastBeforeDrain(ex: ServerExchange): boolean;
}

const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");

const REASONS: Record<number, string> = {
  100: "Continue",
  101: "Switching Protocols",
  200: "OK",
  201: "Created",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  417: "Expectation Failed",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/** The standard reason phrase of a status, or "" (RFC 9112 §4 allows an empty one). */
export function reasonOf(status: number): string {
  return REASONS[status] ?? "";
}

/** One exchange on a server connection. */
export class ServerExchange implements H1Exchange {
  readonly request: RequestHead;
  readonly body: Body;
  readonly upgradable: boolean;
  /** Settles when this exchange no longer writes to the connection. */
  readonly finished: Promise<void>;
  #host: ExchangeHost;
  #parsed: ParsedRequest;
  #incoming: IncomingBody | undefined;
  #prev: Promise<void>;
  #finish!: () => void;
  #bodyEnded: (() => void) | undefined;
  #bodyEnd: Promise<void> | undefined;
  #started = false;
  #headSent = false;
  #continueSent = false;
  #closeAfter = false;
  #upgraded = false;
  #abort: AbortController | undefined;
  #lost: Error | undefined;

  /**
   * @param host The connection
   * @param parsed The request head
   * @param prev Settles when the previous exchange finished writing
   */
  constructor(host: ExchangeHost, parsed: ParsedRequest, prev: Promise<void>) {
    this.#host = host;
    this.#parsed = parsed;
    this.#prev = prev;
    this.request = parsed.head;
    this.upgradable = parsed.upgrade;
    this.finished = new Promise((resolve) => this.#finish = resolve);
    if (parsed.expectContinue) parsed.head.headers.delete("expect");
    if (parsed.framing === 0) {
      this.body = EMPTY_BODY;
    } else {
      this.#bodyEnd = new Promise((resolve) => this.#bodyEnded = resolve);
      this.#incoming = new IncomingBody(host.wire, parsed.framing, this, "bad_request");
      this.body = this.#incoming;
    }
  }

  get remote(): { readonly address: string; readonly port: number } | undefined {
    return this.#host.remote;
  }

  get signal(): AbortSignal {
    if (this.#abort === undefined) {
      this.#abort = new AbortController();
      if (this.#lost !== undefined) this.#abort.abort(this.#lost);
    }
    return this.#abort.signal;
  }

  /** Tells the handler that the connection was lost (through {@link signal}). */
  lost(reason: Error): void {
    this.#lost ??= reason;
    this.#abort?.abort(reason);
  }

  /** Whether a response (or upgrade) was started. */
  get started(): boolean {
    return this.#started;
  }

  /** Body hook: the first read sends `100 Continue` when it was asked for. */
  async beforeFirstRead(): Promise<void> {
    if (!this.#parsed.expectContinue || this.#continueSent) return;
    await this.#prev;
    if (this.#headSent || !this.#host.wire.writable) return;
    this.#continueSent = true;
    await this.#host.wire.write(CONTINUE);
  }

  /** Body hook. */
  onEnd(): void {
    this.#bodyEnded?.();
  }

  async respond(head: ResponseHead, body: Body): Promise<void> {
    if (this.#started) throw new TypeError("A response was already started");
    if (head.status < 200 || head.status > 999) {
      throw new TypeError(`Status ${head.status} cannot be sent with respond()`);
    }
    this.#started = true;
    await this.#prev;
    const wire = this.#host.wire;
    if (this.#host.closing || !wire.writable) {
      body.cancel();
      this.#finish();
      throw new HttpCodecError("closed", "response", "Connection closed before the response");
    }
    let plan: { bytes: Uint8Array; framing: OutFraming; close: boolean };
    try {
      plan = this.#plan(head, body);
    } catch (e) {
      // Nothing was written: the handler (or the 500 of a throw) may still answer.
      this.#started = false;
      throw e;
    }
    this.#closeAfter = plan.close;
    if (plan.close) this.#host.lastResponse();
    this.#headSent = true;
    try {
      await writeMessage(wire, plan.bytes, body, plan.framing);
      if (plan.framing === "none" && body.length !== 0) body.cancel();
    } catch (e) {
      wire.destroy();
      throw e;
    } finally {
      this.#finish();
    }
  }

  /** Decides framing and closing and renders the head; writes nothing. */
  #plan(head: ResponseHead, body: Body) {
    const req = this.#parsed;
    const s = head.status;
    const noBody = req.head.method === "HEAD" || s === 204 || s === 304;
    const framing: OutFraming = noBody
      ? "none"
      : body.length !== undefined
      ? "length"
      : req.head.version === "1.1"
      ? "chunked"
      : "close";
    const handlerSaysClose = listTokens(head.headers.joined("connection") ?? "").includes("close");
    const incoming = this.#incoming;
    const close = !req.keepAlive || framing === "close" || handlerSaysClose ||
      this.#host.lastBeforeDrain(this) ||
      req.head.method === "CONNECT" || incoming?.broken === true ||
      (req.expectContinue && !this.#continueSent && incoming?.complete !== true);
    let extra = framing === "length"
      ? `content-length: ${body.length}\r\n`
      : framing === "chunked"
      ? "transfer-encoding: chunked\r\n"
      : "";
    // HEAD and 304 keep the framing fields the handler gave (they describe the GET response).
    const keepLength = noBody && s !== 204;
    if (keepLength && !head.headers.has("content-length") && (body.length ?? 0) > 0) {
      extra += `content-length: ${body.length}\r\n`;
    }
    if (close) extra += "connection: close\r\n";
    else if (req.head.version === "1.0") extra += "connection: keep-alive\r\n";
    const bytes = renderHead(`HTTP/1.1 ${s} ${head.reason ?? reasonOf(s)}`, head.headers, extra, {
      framing: keepLength,
      connection: extra.indexOf("connection:") < 0,
    });
    return { bytes, framing, close };
  }

  upgrade(head: ResponseHead): Duplex {
    if (!this.upgradable) throw new TypeError("The request is neither CONNECT nor an upgrade");
    if (this.#started) throw new TypeError("A response was already started");
    const connect = this.#parsed.head.method === "CONNECT";
    if (connect ? head.status < 200 || head.status > 299 : head.status !== 101) {
      throw new TypeError(`Status ${head.status} does not upgrade a ${this.#parsed.head.method}`);
    }
    this.#started = this.#headSent = this.#upgraded = true;
    this.#host.upgraded();
    // RFC 9110 §9.3.6 and §15.2.2: no Content-Length or Transfer-Encoding in a 2xx to CONNECT
    // or in a 101.
    const bytes = renderHead(
      `HTTP/1.1 ${head.status} ${head.reason ?? reasonOf(head.status)}`,
      head.headers,
      "",
      { framing: false, connection: true },
    );
    const wire = this.#host.wire;
    wire.conn.write(bytes);
    this.#finish();
    return wire.detach();
  }

  /**
   * Answers a handler failure: the error's status (500 for anything but an HttpCodecError) when
   * no response was started and the client is still there; a started response settles (or
   * aborts) on its own.
   */
  async fail(error: unknown): Promise<void> {
    if (this.#started) return;
    if (this.#lost !== undefined) {
      // Nobody is there to read a 500.
      this.#started = true;
      this.#finish();
      return;
    }
    const status = error instanceof HttpCodecError ? error.status : 500;
    await this.respond(
      { status, headers: new HeaderMap([["content-type", "text/plain"]]) },
      bytesBody(`${reasonOf(status) || "Error"}\n`),
    ).catch(() => {});
  }

  /**
   * Settles when the connection may read the next request head.
   *
   * @param maxDrain Most unread body bytes skipped after the response to keep the connection
   * @returns Whether the connection carries on
   */
  async readyForNext(maxDrain: number): Promise<boolean> {
    const req = this.#parsed;
    // The bytes after an upgrade request belong to the new protocol if it is accepted.
    if (req.upgrade || !req.keepAlive) await this.finished;
    if (this.closeAfter || this.#host.closing) return false;
    if (this.#incoming === undefined || this.#incoming.complete) return true;
    await Promise.race([this.#bodyEnd, this.finished]);
    if (this.#incoming.complete) return true;
    await this.finished;
    if (this.closeAfter || this.#host.closing) return false;
    this.#host.draining(true);
    try {
      return await this.#incoming.discard(maxDrain);
    } finally {
      this.#host.draining(false);
    }
  }

  /** Whether this response closes the connection. */
  get closeAfter(): boolean {
    return this.#closeAfter || this.#upgraded;
  }
}
