/**
 * Helpers for the L7 integration tests: HTTP/1.1 and h2c backends on fake pod IPs that say which
 * pod answered and echo what they received, and a byte-level HTTP/1.1 client for tunnel streams
 * (independent of our codec, so the tests check the wire and not the codec against itself).
 */
import { createHash } from "node:crypto";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import net from "node:net";
import type { Duplex } from "node:stream";
import { concat, text } from "../fixtures/streams.ts";

/** What the default HTTP/1.1 handler saw, as it answers it in JSON. */
export interface Echoed {
  readonly pod: string;
  readonly method: string;
  readonly path: string;
  /** Lower-case names, repeats kept, in order. */
  readonly headers: [string, string][];
  readonly bodyLength: number;
  readonly sha256: string;
  readonly trailers: Record<string, string>;
}

/** Handles one request; `pod` is the pod IP the server listens on. */
export type Handler = (req: IncomingMessage, res: ServerResponse, pod: string) => void;

/** One server per pod IP, all on one port. */
export interface Backends extends AsyncDisposable {
  readonly port: number;
  /** Requests seen, per pod IP. */
  readonly calls: Map<string, number>;
  /** Total requests seen. */
  readonly total: number;
  /** Connections accepted, per pod IP. */
  readonly connections: Map<string, number>;
}

/** The default handler: `server: pod-<ip>` and the request echoed as {@link Echoed}. */
export const echoHandler: Handler = (req, res, pod) => {
  const hash = createHash("sha256");
  let bodyLength = 0;
  req.on("data", (c: Uint8Array) => {
    bodyLength += c.length;
    hash.update(c);
  });
  req.on("end", () => {
    const reply: Echoed = {
      pod,
      method: req.method ?? "",
      path: req.url ?? "",
      headers: pairs(req.rawHeaders),
      bodyLength,
      sha256: hash.digest("hex"),
      trailers: req.trailers as Record<string, string>,
    };
    res.writeHead(200, { "server": `pod-${pod}`, "content-type": "application/json" });
    res.end(JSON.stringify(reply));
  });
};

/**
 * Starts `node:http` servers on each pod IP, on one port.
 *
 * @param ips Pod IPs
 * @param handler Answers requests @default {@link echoHandler}
 */
export async function startHttpBackends(
  ips: readonly string[],
  handler: Handler = echoHandler,
): Promise<Backends> {
  const calls = new Map<string, number>(ips.map((ip) => [ip, 0]));
  const connections = new Map<string, number>(ips.map((ip) => [ip, 0]));
  const servers: http.Server[] = [];
  const sockets = new Set<net.Socket>();
  let port = 0;
  for (const ip of ips) {
    const server = http.createServer((req, res) => {
      calls.set(ip, calls.get(ip)! + 1);
      handler(req, res, ip);
    });
    server.on("connection", (s: net.Socket) => {
      connections.set(ip, connections.get(ip)! + 1);
      sockets.add(s);
      s.once("close", () => sockets.delete(s));
    });
    port = await listen(server, ip, port);
    servers.push(server);
  }
  return {
    port,
    calls,
    connections,
    get total() {
      return [...calls.values()].reduce((a, b) => a + b, 0);
    },
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}

/** Handles one h2c stream. */
export type H2Handler = (
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  pod: string,
) => void;

/** h2c servers (`node:http2`, prior knowledge) on each pod IP, on one port. */
export interface H2Backends extends AsyncDisposable {
  readonly port: number;
  /** Streams seen, per pod IP. */
  readonly calls: Map<string, number>;
  /** HTTP/2 sessions accepted, per pod IP. */
  readonly sessions: Map<string, number>;
}

/**
 * Starts h2c servers on each pod IP, on one port.
 *
 * @param ips Pod IPs
 * @param handler Answers streams
 */
export async function startH2Backends(
  ips: readonly string[],
  handler: H2Handler,
): Promise<H2Backends> {
  const calls = new Map<string, number>(ips.map((ip) => [ip, 0]));
  const sessions = new Map<string, number>(ips.map((ip) => [ip, 0]));
  const servers: http2.Http2Server[] = [];
  const open = new Set<http2.ServerHttp2Session>();
  let port = 0;
  for (const ip of ips) {
    const server = http2.createServer();
    server.on("session", (s: http2.ServerHttp2Session) => {
      sessions.set(ip, sessions.get(ip)! + 1);
      open.add(s);
      s.once("close", () => open.delete(s));
      s.on("error", () => {});
    });
    server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      calls.set(ip, calls.get(ip)! + 1);
      stream.on("error", () => {});
      handler(stream, headers, ip);
    });
    port = await listen(server, ip, port);
    servers.push(server);
  }
  return {
    port,
    calls,
    sessions,
    async [Symbol.asyncDispose]() {
      for (const s of open) s.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}

function listen(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** Raw header list `[n1, v1, n2, v2]` as lower-case pairs. */
export function pairs(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i].toLowerCase(), raw[i + 1]]);
  return out;
}

/** Buffered reads from a stream: up to a delimiter, an exact count, or the end. */
export class ByteReader {
  #chunks: Uint8Array[] = [];
  #size = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(stream: Duplex) {
    stream.on("data", (c: Uint8Array) => {
      this.#chunks.push(c);
      this.#size += c.length;
      this.#notify();
    });
    stream.once("end", () => {
      this.#ended = true;
      this.#notify();
    });
    stream.once("error", (e: Error) => {
      this.#error = e;
      this.#notify();
    });
    stream.once("close", () => {
      this.#ended = true;
      this.#notify();
    });
  }

  /** Bytes up to and including `delimiter`; rejects when the stream ends first. */
  async until(delimiter: string): Promise<Uint8Array> {
    const want = new TextEncoder().encode(delimiter);
    for (;;) {
      const all = this.#flat();
      const i = indexOf(all, want);
      if (i >= 0) return this.#take(i + want.length);
      await this.#more(`"${delimiter.replaceAll("\r\n", "\\r\\n")}"`);
    }
  }

  /** Exactly `n` bytes. */
  async exactly(n: number): Promise<Uint8Array> {
    while (this.#size < n) await this.#more(`${n} bytes`);
    return this.#take(n);
  }

  /** Everything until the stream ends. */
  async rest(): Promise<Uint8Array> {
    while (!this.#ended && !this.#error) await this.#wait();
    return this.#take(this.#size);
  }

  #flat(): Uint8Array {
    if (this.#chunks.length > 1) this.#chunks = [concat(this.#chunks)];
    return this.#chunks[0] ?? new Uint8Array(0);
  }

  #take(n: number): Uint8Array {
    const all = this.#flat();
    const out = all.slice(0, n);
    this.#chunks = n < all.length ? [all.subarray(n)] : [];
    this.#size -= n;
    return out;
  }

  async #more(what: string): Promise<void> {
    if (this.#error) throw this.#error;
    if (this.#ended) throw new Error(`Stream ended before ${what}`);
    await this.#wait();
  }

  #wait(): Promise<void> {
    return new Promise((r) => this.#wake = r);
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** An HTTP/1.1 response as read off the wire. */
export interface RawResponse {
  readonly status: number;
  /** Lower-case names, repeats kept, in order. */
  readonly headers: [string, string][];
  readonly body: Uint8Array;
  /** Trailer fields of a chunked body. */
  readonly trailers: [string, string][];
  /** The body's chunk sizes, for a chunked body. */
  readonly chunks: number[];
}

/** The first value of a header, or undefined. */
export function header(fields: readonly [string, string][], name: string): string | undefined {
  return fields.find(([n]) => n === name)?.[1];
}

/** A response body as JSON. */
export function json<T = Echoed>(res: RawResponse): T {
  return JSON.parse(text(res.body));
}

/**
 * Reads one response (RFC 9112 §6.3 framing: no body for 1xx/204/304 and HEAD, then chunked,
 * then content-length, else until the end).
 */
export async function readResponse(reader: ByteReader, method = "GET"): Promise<RawResponse> {
  const lines = text(await reader.until("\r\n\r\n")).split("\r\n").slice(0, -2);
  const status = Number(lines[0].split(" ")[1]);
  const headers = fieldLines(lines.slice(1));
  const te = header(headers, "transfer-encoding");
  const cl = header(headers, "content-length");
  const empty = status < 200 || status === 204 || status === 304 || method === "HEAD";
  if (empty) return { status, headers, body: new Uint8Array(0), trailers: [], chunks: [] };
  if (te?.toLowerCase() === "chunked") return { status, headers, ...await readChunked(reader) };
  const body = cl !== undefined ? await reader.exactly(Number(cl)) : await reader.rest();
  return { status, headers, body, trailers: [], chunks: [] };
}

async function readChunked(reader: ByteReader) {
  const parts: Uint8Array[] = [];
  const chunks: number[] = [];
  for (;;) {
    const size = parseInt(text(await reader.until("\r\n")), 16);
    if (size === 0) break;
    parts.push(await reader.exactly(size));
    chunks.push(size);
    await reader.exactly(2);
  }
  const trailerLines: string[] = [];
  for (let line = text(await reader.until("\r\n")); line !== "\r\n";) {
    trailerLines.push(line.slice(0, -2));
    line = text(await reader.until("\r\n"));
  }
  return { body: concat(parts), trailers: fieldLines(trailerLines), chunks };
}

function fieldLines(lines: readonly string[]): [string, string][] {
  return lines.map((l) => {
    const i = l.indexOf(":");
    return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
  });
}

/**
 * The bytes of a request.
 *
 * @param method Method
 * @param path Target
 * @param headers Fields in order; `host: echo.ns1` is added first when absent
 * @param body A body sent with `content-length`
 */
export function request(
  method: string,
  path: string,
  headers: readonly (readonly [string, string])[] = [],
  body?: string,
): string {
  const all = headers.some(([n]) => n.toLowerCase() === "host")
    ? [...headers]
    : [["host", "echo.ns1"], ...headers];
  if (body !== undefined) {
    all.push(["content-length", String(new TextEncoder().encode(body).length)]);
  }
  return `${method} ${path} HTTP/1.1\r\n${all.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n${
    body ?? ""
  }`;
}

/** One HTTP/1.1 conversation over a tunnel stream. */
export class Http1 {
  readonly stream: Duplex;
  readonly reader: ByteReader;

  constructor(stream: Duplex) {
    this.stream = stream;
    this.reader = new ByteReader(stream);
  }

  /** Sends request bytes. */
  send(bytes: string | Uint8Array): void {
    this.stream.write(bytes);
  }

  /** Reads the next response. */
  next(method = "GET"): Promise<RawResponse> {
    return readResponse(this.reader, method);
  }

  /** Sends one request and reads its response. */
  async fetch(
    method: string,
    path: string,
    headers: readonly (readonly [string, string])[] = [],
    body?: string,
  ): Promise<RawResponse> {
    this.send(request(method, path, headers, body));
    return await this.next(method);
  }
}
