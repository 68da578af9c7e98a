/** Builders and socket helpers shared by the HTTP codec tests. */
import assert from "node:assert/strict";
import net from "node:net";
import type { Duplex } from "node:stream";
import {
  type Body,
  bytesBody,
  H1ClientConnection,
  type H1ClientOptions,
  type H1Exchange,
  type H1Handler,
  type H1ServerOptions,
  HeaderMap,
  HttpCodecError,
  readAll,
  type RequestHead,
  serveH1,
} from "../../http/mod.ts";

/** One byte per char, so tests can write obs-text and CTLs. */
export function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** The bytes of a head whose lines end with CR LF, blank line included. */
export function head(...lines: string[]): Uint8Array {
  return latin1(`${lines.join("\r\n")}\r\n\r\n`);
}

/** Runs `fn`, which must throw an HttpCodecError, and returns that error. */
export function rejection(fn: () => unknown): HttpCodecError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof HttpCodecError, String(e));
    return e;
  }
  throw new assert.AssertionError({ message: "Expected an HttpCodecError" });
}

/** Decodes UTF-8. */
export function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** A test server running {@link serveH1} on each accepted socket. */
export interface H1TestServer {
  readonly host: string;
  readonly port: number;
  /** Accepted sockets, in order. */
  readonly sockets: net.Socket[];
  /** The `serveH1` promise of each socket, in order. */
  readonly served: Promise<void>[];
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Listens on a loopback address and serves HTTP/1.1 with `handler`.
 *
 * @param handler The request handler
 * @param options Server options
 * @param host Loopback address to bind
 */
export function startH1(
  handler: H1Handler,
  options: H1ServerOptions = {},
  host = "127.0.5.1",
): Promise<H1TestServer> {
  const sockets: net.Socket[] = [];
  const served: Promise<void>[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    served.push(serveH1(socket, handler, options));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      resolve({
        host,
        port: (server.address() as net.AddressInfo).port,
        sockets,
        served,
        async [Symbol.asyncDispose]() {
          for (const s of sockets) s.destroy();
          await Promise.allSettled(served);
          await new Promise<void>((r) => server.close(() => r()));
        },
      });
    });
  });
}

/** A client socket that collects what it receives. */
export class RawClient {
  readonly socket: net.Socket;
  #received = "";
  #closed = false;
  #waiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      this.#received += d;
      this.#wake();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
  }

  /** Connects to a test server. */
  static async connect(server: { host: string; port: number }): Promise<RawClient> {
    const socket = net.connect(server.port, server.host);
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new RawClient(socket);
  }

  /** Everything received so far. */
  get received(): string {
    return this.#received;
  }

  /** Whether the server closed the connection. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Writes raw text (one byte per char). */
  write(data: string): void {
    this.socket.write(latin1(data));
  }

  /** Waits until the received text satisfies `done`, or the connection closes. */
  async until(done: (received: string) => boolean): Promise<string> {
    while (!done(this.#received) && !this.#closed) {
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    return this.#received;
  }

  /** Waits until the server closed the connection; returns everything received. */
  untilClosed(): Promise<string> {
    return this.until(() => false);
  }

  /** Waits for `count` complete responses (heads and bodies per Content-Length/chunked). */
  responses(count: number): Promise<string> {
    return this.until((r) => splitResponses(r).length >= count);
  }

  [Symbol.dispose](): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}

/** Cuts received text into complete responses (Content-Length or chunked bodies, 1xx skipped). */
export function splitResponses(received: string): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < received.length) {
    const end = received.indexOf("\r\n\r\n", at);
    if (end < 0) break;
    const head = received.slice(at, end + 4);
    const cl = /\r\ncontent-length: (\d+)/i.exec(head);
    let stop = end + 4;
    if (/^HTTP\/1\.1 1\d\d /.test(head) || / 204 | 304 /.test(head.split("\r\n")[0])) {
      // no body
    } else if (cl) {
      stop += Number(cl[1]);
    } else if (/\r\ntransfer-encoding: chunked/i.test(head)) {
      const last = received.indexOf("\r\n0\r\n", end + 2);
      const tail = last < 0 ? -1 : received.indexOf("\r\n\r\n", last + 2);
      if (tail < 0) break;
      stop = tail + 4;
    } else break;
    if (stop > received.length) break;
    out.push(received.slice(at, stop));
    at = stop;
  }
  return out;
}

/** A request head. */
export function request(
  method: string,
  path: string,
  fields: [string, string][] = [],
  authority = "example.test",
): RequestHead {
  return {
    method,
    path,
    authority,
    scheme: "http",
    version: "1.1",
    headers: new HeaderMap(fields),
  };
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A plain TCP server whose connections `onSocket` drives by hand. */
export function startRaw(
  onSocket: (socket: net.Socket) => void,
  host = "127.0.5.1",
): Promise<{ host: string; port: number; [Symbol.asyncDispose](): Promise<void> }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    socket.on("error", () => {});
    onSocket(socket);
  });
  return new Promise((resolve) => {
    server.listen(0, host, () => {
      resolve({
        host,
        port: (server.address() as net.AddressInfo).port,
        async [Symbol.asyncDispose]() {
          for (const s of sockets) s.destroy();
          await new Promise<void>((r) => server.close(() => r()));
        },
      });
    });
  });
}

/** Connects a client codec to a server; the socket is destroyed on dispose. */
export async function clientOf(
  server: { host: string; port: number },
  options?: H1ClientOptions,
): Promise<H1ClientConnection & Disposable> {
  const socket = net.connect(server.port, server.host);
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const client = new H1ClientConnection(socket, options) as H1ClientConnection & Disposable;
  client[Symbol.dispose] = () => socket.destroy();
  return client;
}

/** A body of the given chunks, with unknown length and trailers at the end. */
export function chunkedBody(chunks: string[], trailers?: HeaderMap): Body {
  const queue = chunks.map((c) => new TextEncoder().encode(c));
  let done = false;
  return {
    read: () => {
      const next = queue.shift() ?? null;
      done = next === null;
      return Promise.resolve(next);
    },
    get trailers() {
      return done ? trailers : undefined;
    },
    length: undefined,
    cancel: () => {},
  };
}

/** Writes back what it reads, upper-cased, until the peer ends. */
export function shout(raw: Duplex): Promise<void> {
  return new Promise((resolve) => {
    raw.on("data", (d: Uint8Array) => raw.write(text(d).toUpperCase()));
    raw.on("end", () => {
      raw.end();
      resolve();
    });
    raw.on("error", () => resolve());
  });
}

/**
 * Answers `METHOD path: body` after reading the whole body, with `x-length` (the request's
 * Content-Length) and `x-trailers`; a chunked request gets a chunked answer with its trailers.
 */
export async function echo(ex: H1Exchange): Promise<void> {
  const body = text(await readAll(ex.body, 1 << 20));
  const trailers = ex.body.trailers;
  const fields = trailers ? [...trailers].map((f) => f.join("=")).join(",") : "";
  const reply = `${ex.request.method} ${ex.request.path}: ${body}`;
  await ex.respond(
    {
      status: 200,
      headers: new HeaderMap([["x-length", String(ex.body.length)], ["x-trailers", fields]]),
    },
    ex.body.length === undefined ? chunkedBody([reply], trailers?.clone()) : bytesBody(reply),
  );
}
