/**
 * HTTP/2 with prior knowledge (h2c) over any duplex, for ports whose protocol is http2 or grpc:
 * a server side that turns streams into {@link Exchange}s and a client side that sends requests
 * over one multiplexed connection (libraries.md: `node:http2` accepts any duplex this way).
 *
 * Invariants:
 * - Connection-specific fields (RFC 9113 §8.2.2) never reach the wire; `host` becomes `:authority`.
 * - gRPC responses keep their trailers (`grpc-status`, `grpc-message`); a trailers-only response
 *   is sent as one HEADERS frame with END_STREAM.
 * - Bodies stream in both directions with HTTP/2 flow control; nothing is buffered whole.
 */
import http2 from "node:http2";
import type {
  ClientHttp2Session,
  IncomingHttpHeaders,
  OutgoingHttpHeaders,
  ServerHttp2Stream,
} from "node:http2";
import type { Duplex } from "node:stream";
import { HttpCodecError } from "./errors.ts";
import { pumpBody, readableBody } from "./stream_body.ts";
import {
  type Body,
  type Exchange,
  HeaderMap,
  type RequestHead,
  type ResponseHead,
} from "./types.ts";

/** Fields that HTTP/2 forbids (RFC 9113 §8.2.2); `te` is allowed only as `trailers`. */
const CONNECTION_FIELDS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
  "http2-settings",
]);

/** Tunables for both sides. */
export interface H2cOptions {
  /** Streams a peer may open at once. @default 100 */
  maxConcurrentStreams?: number;
  /** Largest header block accepted. @default 60 KiB (Envoy's default) */
  maxHeaderListSize?: number;
  /** Initial stream window. @default 1 MiB */
  streamWindow?: number;
}

function settings(options: H2cOptions) {
  return {
    maxConcurrentStreams: options.maxConcurrentStreams ?? 100,
    maxHeaderListSize: options.maxHeaderListSize ?? 60 << 10,
    initialWindowSize: options.streamWindow ?? 1 << 20,
    enablePush: false,
  };
}

/**
 * Serves h2c on a connection until it closes.
 *
 * @param conn The byte stream, for example a tunnel stream
 * @param handler Called once per request; must respond
 * @param options Limits
 * @returns Resolves when the HTTP/2 session has closed
 */
export function serveH2c(
  conn: Duplex,
  handler: (exchange: Exchange) => Promise<void>,
  options: H2cOptions = {},
): Promise<void> {
  const server = http2.createServer({ settings: settings(options), maxSessionMemory: 64 });
  return new Promise((resolve) => {
    server.on("session", (session) => {
      session.on("error", () => {});
      session.once("close", () => resolve());
    });
    server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      stream.on("error", () => {});
      const exchange = serverExchange(stream, headers);
      handler(exchange).catch(() => {
        if (!stream.headersSent) stream.respond({ ":status": 500 }, { endStream: true });
        else stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      });
    });
    conn.once("close", () => resolve());
    server.emit("connection", conn);
  });
}

function serverExchange(stream: ServerHttp2Stream, raw: IncomingHttpHeaders): Exchange {
  let trailers: HeaderMap | undefined;
  stream.once("trailers", (t: IncomingHttpHeaders) => trailers = toHeaderMap(t));
  const headers = toHeaderMap(raw);
  const request: RequestHead = {
    method: String(raw[":method"] ?? "GET"),
    path: String(raw[":path"] ?? "/"),
    authority: String(raw[":authority"] ?? headers.get("host") ?? ""),
    scheme: String(raw[":scheme"] ?? "http"),
    version: "2",
    headers,
  };
  // Cancelling the request body (a local reply) must not reset the stream the reply goes out on.
  const body = readableBody(
    stream,
    stream.endAfterHeaders ? 0 : lengthOf(headers),
    () => trailers,
    { onCancel: "discard" },
  );
  return {
    request,
    body,
    respond: (head, out) => respondStream(stream, head, out),
  };
}

async function respondStream(stream: ServerHttp2Stream, head: ResponseHead, body: Body) {
  if (stream.destroyed) throw new HttpCodecError("closed", "response", "client went away");
  const grpc = head.headers.get("content-type")?.startsWith("application/grpc") ?? false;
  const empty = body.length === 0;
  const out = toOutgoing(head.headers);
  out[":status"] = head.status;
  if (empty && !grpc) {
    stream.respond(out, { endStream: true });
    return;
  }
  if (empty && grpc && head.headers.has("grpc-status")) {
    // Trailers-only gRPC response: status in the one HEADERS frame.
    stream.respond(out, { endStream: true });
    return;
  }
  stream.respond(out, { waitForTrailers: grpc });
  if (grpc) {
    stream.once("wantTrailers", () => {
      const t = body.trailers;
      if (t && t.size > 0) stream.sendTrailers(toOutgoing(t));
      else stream.close();
    });
  }
  await pumpBody(body, stream);
}

/** An h2c client connection: many concurrent requests over one duplex. */
export class H2cClientConnection {
  #session: ClientHttp2Session;
  #active = 0;
  #usable = true;

  /**
   * @param conn The byte stream to the server, for example a tunnel stream
   * @param options Limits
   */
  constructor(conn: Duplex, options: H2cOptions = {}) {
    this.#session = http2.connect("http://upstream", {
      createConnection: () => conn,
      settings: settings(options),
      maxSessionMemory: 64,
    });
    this.#session.on("error", () => this.#usable = false);
    this.#session.once("goaway", () => this.#usable = false);
    this.#session.once("close", () => this.#usable = false);
  }

  /** Whether new requests may use this connection. */
  get available(): boolean {
    const max = this.#session.remoteSettings?.maxConcurrentStreams ?? 100;
    return this.#usable && !this.#session.destroyed && this.#active < max;
  }

  /** Requests in flight. */
  get active(): number {
    return this.#active;
  }

  /**
   * Sends a request and resolves at the response head; the body streams.
   *
   * @throws HttpCodecError `closed` when the stream is reset before a response
   */
  request(head: RequestHead, body: Body): Promise<{ head: ResponseHead; body: Body }> {
    const out = toOutgoing(head.headers);
    out[":method"] = head.method;
    out[":path"] = head.path;
    out[":authority"] = head.authority;
    out[":scheme"] = head.scheme;
    const empty = body.length === 0;
    const stream = this.#session.request(out, { endStream: empty });
    this.#active++;
    stream.once("close", () => this.#active--);
    if (!empty) pumpBody(body, stream).catch(() => stream.close(http2.constants.NGHTTP2_CANCEL));
    let trailers: HeaderMap | undefined;
    stream.once("trailers", (t: IncomingHttpHeaders) => trailers = toHeaderMap(t));
    return new Promise((resolve, reject) => {
      const fail = (e?: Error) =>
        reject(
          new HttpCodecError(
            "closed",
            "response",
            e?.message ?? `stream reset (${stream.rstCode})`,
          ),
        );
      stream.once("error", fail);
      stream.once("close", () => fail());
      stream.once("response", (raw: IncomingHttpHeaders) => {
        stream.off("error", fail);
        const headers = toHeaderMap(raw);
        const status = Number(raw[":status"]);
        resolve({
          head: { status, headers },
          body: readableBody(
            stream,
            stream.endAfterHeaders ? 0 : lengthOf(headers),
            () => trailers,
          ),
        });
      });
    });
  }

  /** Sends GOAWAY; requests in flight finish. */
  close(): void {
    this.#usable = false;
    this.#session.close();
  }
}

function toHeaderMap(raw: IncomingHttpHeaders): HeaderMap {
  const map = new HeaderMap();
  for (const [name, value] of Object.entries(raw)) {
    if (name.startsWith(":") || value === undefined) continue;
    if (Array.isArray(value)) { for (const v of value) map.add(name, v); }
    else map.add(name, String(value));
  }
  return map;
}

function toOutgoing(headers: HeaderMap): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of headers) {
    if (CONNECTION_FIELDS.has(name) || (name === "te" && value !== "trailers")) continue;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [String(prev), value];
  }
  return out;
}

function lengthOf(headers: HeaderMap): number | undefined {
  const cl = headers.get("content-length");
  if (cl === undefined || !/^[0-9]+$/.test(cl)) return undefined;
  return Number(cl);
}
