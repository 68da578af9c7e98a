/**
 * The HTTP/1.1 client codec over one connection: one request at a time (no client pipelining),
 * responses framed per RFC 9112 §6.3, `1xx` skipped, `101` and `2xx`-to-CONNECT handed over.
 *
 * Invariants:
 * - The request body is written while the response is read, so an early response (413, 401) is
 *   seen at once; a response that completes before its request body makes the connection unfit
 *   for reuse, and it is closed.
 * - {@link H1ClientConnection.reusable} is true only between exchanges, after a response read to
 *   its end, with no `connection: close` on either side and no error; a connection that is not
 *   reusable once its exchange is over is closed by the codec.
 */
import type { Duplex } from "node:stream";
import { HttpCodecError } from "./errors.ts";
import {
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_MAX_HEADERS,
  type ParsedResponse,
  parseResponseHead,
} from "./h1_parse.ts";
import { type Body, EMPTY_BODY, type RequestHead, type ResponseHead } from "./types.ts";
import { IncomingBody } from "./_h1_body.ts";
import { firstInvalid, HOST, listTokens, TARGET, TCHAR } from "./_h1_fields.ts";
import { type OutFraming, renderHead, writeMessage } from "./_h1_write.ts";
import { Wire } from "./_wire.ts";

/** A response: head, streaming body, and the raw connection after a `101` or a CONNECT `2xx`. */
export interface H1Response {
  head: ResponseHead;
  body: Body;
  /** The connection, handed over after `101 Switching Protocols` or a `2xx` to CONNECT. */
  upgraded?: Duplex;
}

/** Options of {@link H1ClientConnection}. */
export interface H1ClientOptions {
  /** Most bytes in a response head. @default {61440} */
  maxHeaderBytes?: number;
  /** Most header fields in a response. @default {100} */
  maxHeaders?: number;
  /** Milliseconds to wait for `100 Continue` before sending the body anyway. @default {1000} */
  expectTimeout?: number;
}

/** Methods whose empty body is still sent as `content-length: 0` (RFC 9110 §8.6). */
const PAYLOAD_METHODS = new Set(["POST", "PUT", "PATCH"]);

/**
 * An HTTP/1.1 client connection.
 *
 * @example
 * ```ts
 * const c = new H1ClientConnection(socket);
 * const res = await c.request(
 *   { method: "GET", path: "/", authority: "a", scheme: "http", version: "1.1", headers: new HeaderMap() },
 *   EMPTY_BODY,
 * );
 * const text = new TextDecoder().decode(await readAll(res.body, 1 << 20));
 * ```
 */
export class H1ClientConnection {
  #wire: Wire;
  #options: H1ClientOptions;
  #busy = false;
  #broken = false;
  #closeAfter = false;
  #requestDone = true;
  #responseDone = true;
  #sendError: unknown;

  /**
   * @param conn The connection to the server
   * @param options Limits
   */
  constructor(conn: Duplex, options: H1ClientOptions = {}) {
    this.#wire = new Wire(conn);
    this.#options = options;
  }

  /** Whether a request is in progress (its response not read to the end, or its body unsent). */
  get busy(): boolean {
    return this.#busy;
  }

  /** Whether the connection may carry another request (a pool keeps it). */
  get reusable(): boolean {
    const conn = this.#wire.conn;
    return !this.#busy && !this.#broken && !this.#closeAfter && this.#wire.writable &&
      !this.#wire.ended && !conn.readableEnded && conn.readableLength === 0;
  }

  /**
   * Sends a request and resolves at the response head, with a streaming body.
   *
   * @param head The request; `path` is sent as the target (`authority` for CONNECT) and `host`
   *   is added from `authority` when absent; framing fields are set from the body
   * @param body The request body; pulled while the response is read
   * @returns The response; `upgraded` carries the connection after a 101 or a CONNECT 2xx
   * @throws {HttpCodecError} `busy` during another request, `closed` when the connection failed,
   *   `bad_response` for a malformed response, `bad_message` for an unsafe request head
   */
  async request(head: RequestHead, body: Body): Promise<H1Response> {
    if (this.#busy) throw new HttpCodecError("busy", "request", "A request is in progress");
    if (!this.reusable) {
      throw new HttpCodecError("closed", "request", "The connection cannot carry a request");
    }
    const plan = planRequest(head, body);
    this.#busy = true;
    this.#requestDone = this.#responseDone = false;
    this.#closeAfter = plan.close;
    let gotFinal = false;
    let proceed!: (send: boolean) => void;
    const mayProceed = new Promise<boolean>((resolve) => proceed = resolve);
    if (!plan.expectContinue) proceed(true);
    const sending = this.#send(plan, body, mayProceed);
    try {
      const parsed = await this.#readFinal(head.method, () => proceed(true));
      gotFinal = true;
      return this.#respond(parsed, plan);
    } catch (e) {
      this.#fail();
      throw this.#sendError ?? e;
    } finally {
      // A final response before `100 Continue`: the body is not sent, and the connection closes.
      if (gotFinal) proceed(false);
      void sending;
    }
  }

  /** Closes the connection at once. */
  close(): void {
    this.#broken = true;
    this.#wire.destroy();
  }

  async #send(plan: RequestPlan, body: Body, mayProceed: Promise<boolean>): Promise<void> {
    try {
      if (!plan.expectContinue) {
        await writeMessage(this.#wire, plan.head, body, plan.framing);
      } else {
        await this.#wire.write(plan.head);
        if (await this.#continued(mayProceed)) {
          await writeMessage(this.#wire, new Uint8Array(0), body, plan.framing);
        } else {
          body.cancel();
          this.#closeAfter = true;
        }
      }
      this.#requestDone = true;
      this.#settle();
    } catch (e) {
      this.#sendError = e;
      this.#fail();
    }
  }

  /** Whether to send the body: on `100 Continue` or after the expect timeout, not on a final. */
  async #continued(mayProceed: Promise<boolean>): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.#options.expectTimeout ?? 1000);
    });
    try {
      return await Promise.race([mayProceed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads heads until a final one, skipping 1xx other than 101 (a 100 releases the body). */
  async #readFinal(method: string, onContinue: () => void): Promise<ParsedResponse> {
    const options = {
      method,
      maxHeaderBytes: this.#options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
      maxHeaders: this.#options.maxHeaders ?? DEFAULT_MAX_HEADERS,
      scanFrom: 0,
    };
    const parse = (buf: Uint8Array, scanFrom: number) => {
      options.scanFrom = scanFrom;
      return parseResponseHead(buf, options);
    };
    for (;;) {
      const parsed = await this.#wire.readHead(parse);
      if (parsed === null) {
        throw new HttpCodecError("closed", "response", "Peer closed before the response");
      }
      const status = parsed.head.status;
      if (status >= 200 || status === 101) return parsed;
      if (status === 100) onContinue();
    }
  }

  #respond(parsed: ParsedResponse, plan: RequestPlan): H1Response {
    const { head, framing } = parsed;
    if (!parsed.keepAlive) this.#closeAfter = true;
    const tunnel = plan.connect ? head.status < 300 : head.status === 101;
    if (head.status === 101 && !plan.upgrade) {
      throw new HttpCodecError("bad_response", "status line", "101 to a request without Upgrade");
    }
    if (tunnel) {
      this.#broken = true;
      this.#busy = false;
      return { head, body: EMPTY_BODY, upgraded: this.#wire.detach() };
    }
    if (framing === 0) {
      this.#responseEnded(true);
      return { head, body: EMPTY_BODY };
    }
    const owner = { onEnd: (complete: boolean) => this.#responseEnded(complete) };
    return { head, body: new IncomingBody(this.#wire, framing, owner, "bad_response") };
  }

  #responseEnded(complete: boolean): void {
    if (!complete) this.#broken = true;
    this.#responseDone = true;
    // RFC 9112 §9.3: a response that ends before its request is a reason to close.
    if (!this.#requestDone) this.#fail();
    else this.#settle();
  }

  #settle(): void {
    if (!this.#requestDone || !this.#responseDone) return;
    this.#busy = false;
    if (!this.reusable) this.close();
  }

  #fail(): void {
    this.#busy = false;
    this.close();
  }
}

/** What goes on the wire for one request. */
interface RequestPlan {
  head: Uint8Array;
  framing: OutFraming;
  connect: boolean;
  upgrade: boolean;
  close: boolean;
  expectContinue: boolean;
}

function planRequest(head: RequestHead, body: Body): RequestPlan {
  const connect = head.method === "CONNECT";
  if (head.method === "" || firstInvalid(head.method, 0, head.method.length, TCHAR) >= 0) {
    throw new HttpCodecError("bad_message", "method", `Invalid ${JSON.stringify(head.method)}`);
  }
  const target = connect ? head.authority : head.path || "/";
  if (target === "" || firstInvalid(target, 0, target.length, TARGET) >= 0) {
    throw new HttpCodecError("bad_message", "request target", `Invalid ${JSON.stringify(target)}`);
  }
  if (firstInvalid(head.authority, 0, head.authority.length, HOST) >= 0) {
    throw new HttpCodecError(
      "bad_message",
      "authority",
      `Invalid ${JSON.stringify(head.authority)}`,
    );
  }
  const connection = listTokens(head.headers.joined("connection") ?? "");
  const framing: OutFraming = connect || body.length === 0
    ? "none"
    : body.length !== undefined
    ? "length"
    : "chunked";
  let extra = head.headers.has("host") ? "" : `host: ${head.authority}\r\n`;
  if (framing === "length") extra += `content-length: ${body.length}\r\n`;
  else if (framing === "chunked") extra += "transfer-encoding: chunked\r\n";
  else if (!connect && PAYLOAD_METHODS.has(head.method)) extra += "content-length: 0\r\n";
  return {
    head: renderHead(`${head.method} ${target} HTTP/1.1`, head.headers, extra, {
      framing: false,
      connection: true,
    }),
    framing,
    connect,
    upgrade: !connect && connection.includes("upgrade") && head.headers.has("upgrade"),
    close: connection.includes("close"),
    expectContinue: framing !== "none" &&
      head.headers.get("expect")?.toLowerCase() === "100-continue",
  };
}
