/**
 * HTTP/2 with prior knowledge (h2c) over any duplex, for ports whose protocol is http2 or grpc:
 * a server side that turns streams into {@link Exchange}s and a client side that sends requests
 * over one multiplexed connection. Both run on our own HTTP/2 (`h2/`): `node:http2` aborts the
 * process in nghttp2 when some peers send GOAWAY (denoland/deno#36788), and a client app's
 * GOAWAY must not take the waypoint down.
 *
 * Invariants:
 * - Connection-specific fields (RFC 9113 §8.2.2) never reach the wire; `host` becomes `:authority`.
 * - Trailers are kept both ways (gRPC's `grpc-status`, `grpc-message`) and go out as a last
 *   HEADERS frame with END_STREAM; a trailers-only gRPC response is one HEADERS frame with
 *   END_STREAM.
 * - Bodies stream in both directions with HTTP/2 flow control; nothing is buffered whole.
 * - A request body cancelled by a local reply is drained, not reset: its stream carries the
 *   reply. Once a response is complete, a request (other than CONNECT) still arriving is reset
 *   with NO_ERROR (RFC 9113 §8.1), so a client never waits on a window nobody refills.
 * - The server side sends GOAWAY for a client's protocol error and when the server drains
 *   (NO_ERROR: the streams already started finish, then the connection closes; a connection
 *   opened while draining gets GOAWAY after its first stream). Otherwise the client or the tunnel
 *   ends the connection.
 */
import type { Duplex } from "node:stream";
import {
  connectH2,
  ErrorCode,
  errorName,
  type H2Headers,
  type H2Options,
  type H2Session,
  type H2Stream,
  serveH2,
} from "../h2/mod.ts";
import { HttpCodecError } from "./errors.ts";
import { pumpBody, readableBody } from "./stream_body.ts";
import {
  type Body,
  type Exchange,
  HeaderMap,
  type RequestHead,
  type ResponseHead,
} from "./types.ts";

/** Fields that HTTP/2 forbids (RFC 9113 §8.2.2), and `host`, which `:authority` replaces. */
const CONNECTION_FIELDS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
  "http2-settings",
]);

/** Streams assumed allowed until the server's SETTINGS say (RFC 9113 §6.5.2 recommends 100). */
const ASSUMED_STREAMS = 100;

/** Tunables for both sides. */
export interface H2cOptions {
  /** Streams a peer may open at once. @default 100 */
  maxConcurrentStreams?: number;
  /** Largest header block accepted. @default 60 KiB (Envoy's default) */
  maxHeaderListSize?: number;
  /** Initial stream window. @default 1 MiB */
  streamWindow?: number;
}

function sessionOptions(options: H2cOptions): H2Options {
  const streamWindow = options.streamWindow ?? 1 << 20;
  return {
    maxConcurrentStreams: options.maxConcurrentStreams ?? 100,
    maxHeaderListSize: options.maxHeaderListSize ?? 60 << 10,
    initialWindowSize: streamWindow,
    connectionWindowSize: Math.max(4 << 20, streamWindow),
    // The tunnel under the connection has its own keepalive.
    pingIntervalMs: 0,
  };
}

/** Options of {@link serveH2c}. */
export interface H2cServerOptions extends H2cOptions {
  /** Aborted when the server drains: GOAWAY, the streams already started finish. */
  drain?: AbortSignal;
}

/**
 * Serves h2c on a connection until it closes.
 *
 * @param conn The byte stream, for example a tunnel stream
 * @param handler Called once per request; must respond
 * @param options Limits and the drain signal
 * @returns Resolves when the HTTP/2 session has closed
 */
export function serveH2c(
  conn: Duplex,
  handler: (exchange: Exchange) => Promise<void>,
  options: H2cServerOptions = {},
): Promise<void> {
  const drain = options.drain;
  return new Promise((resolve) => {
    const session = serveH2(conn, sessionOptions(options), (stream, headers) => {
      // Opened while draining: this stream is served, the GOAWAY names it as the last.
      if (drain?.aborted && !session.closing) void session.close();
      stream.on("error", () => {});
      handler(serverExchange(stream, headers)).catch(() => {
        if (!stream.headersSent) stream.respond(500, {}, { endStream: true });
        else stream.close(ErrorCode.INTERNAL_ERROR);
      });
    });
    session.once("close", () => resolve());
    conn.once("close", () => resolve());
    if (drain && !drain.aborted) {
      const goaway = () => void session.close();
      drain.addEventListener("abort", goaway, { once: true });
      session.once("close", () => drain.removeEventListener("abort", goaway));
    }
  });
}

function serverExchange(stream: H2Stream, raw: H2Headers): Exchange {
  const headers = toHeaderMap(raw);
  const method = raw[":method"] as string;
  const authority = (raw[":authority"] as string | undefined) ?? headers.get("host") ?? "";
  const request: RequestHead = {
    method,
    path: method === "CONNECT" ? authority : raw[":path"] as string,
    authority,
    scheme: (raw[":scheme"] as string | undefined) ?? "http",
    version: "2",
    headers,
  };
  // Cancelling the request body (a local reply) must not reset the stream the reply goes out on.
  const body = readableBody(
    stream,
    stream.endAfterHeaders ? 0 : lengthOf(headers),
    trailersOf(stream),
    { onCancel: "discard" },
  );
  return {
    request,
    body,
    respond: (head, out) => respondStream(stream, head, out),
  };
}

async function respondStream(stream: H2Stream, head: ResponseHead, body: Body): Promise<void> {
  if (stream.destroyed) throw new HttpCodecError("closed", "response", "client went away");
  const fields = outgoingFields(head.headers);
  const grpc = head.headers.get("content-type")?.startsWith("application/grpc") ?? false;
  if (body.length === 0 && (!grpc || head.headers.has("grpc-status"))) {
    // No body, or a trailers-only gRPC response: the status is in the one HEADERS frame.
    stream.respond(head.status, fields, { endStream: true });
    return;
  }
  stream.respond(head.status, fields);
  // A CONNECT is two byte streams, each ending on its own; any other exchange is over once the
  // response is.
  if (stream.headers[":method"] !== "CONNECT") {
    stream.once("finish", () => {
      if (!stream.remoteEnded) stream.close(ErrorCode.NO_ERROR);
    });
  }
  await send(body, stream);
}

/** An h2c client connection: many concurrent requests over one duplex. */
export class H2cClientConnection {
  readonly #session: H2Session;
  #active = 0;
  #settled = false;

  /**
   * @param conn The byte stream to the server, for example a tunnel stream
   * @param options Limits
   */
  constructor(conn: Duplex, options: H2cOptions = {}) {
    this.#session = connectH2(conn, sessionOptions(options));
    this.#session.ready.then(() => this.#settled = true, () => {});
  }

  /** Whether new requests may use this connection. */
  get available(): boolean {
    const s = this.#session;
    const max = this.#settled ? s.remoteSettings.maxConcurrentStreams : ASSUMED_STREAMS;
    return !s.closing && s.activeStreams < max;
  }

  /** Requests in flight. */
  get active(): number {
    return this.#active;
  }

  /**
   * Sends a request and resolves at the response head; the body streams.
   *
   * @throws HttpCodecError `closed` (rejects) when the connection takes no more requests or the
   *   stream is reset before a response; `bad_message` when the head cannot go out as HTTP/2
   */
  request(head: RequestHead, body: Body): Promise<{ head: ResponseHead; body: Body }> {
    let stream: H2Stream;
    try {
      stream = this.#session.request(requestFields(head), { endStream: body.length === 0 });
    } catch (e) {
      const kind = e instanceof TypeError ? "bad_message" : "closed";
      return Promise.reject(new HttpCodecError(kind, "request", (e as Error).message));
    }
    this.#active++;
    stream.once("close", () => this.#active--);
    stream.on("error", () => {}); // Reported by the promise below or by the response body.
    if (body.length !== 0) send(body, stream).catch(() => {});
    return new Promise((resolve, reject) => {
      const fail = (e?: Error) =>
        reject(
          new HttpCodecError(
            "closed",
            "response",
            e?.message ?? `stream reset (${errorName(stream.rstCode ?? ErrorCode.CANCEL)})`,
          ),
        );
      stream.once("error", fail);
      stream.once("close", () => fail());
      stream.once("response", (raw: H2Headers) => {
        stream.off("error", fail);
        const headers = toHeaderMap(raw);
        const length = stream.endAfterHeaders ? 0 : lengthOf(headers);
        resolve({
          head: { status: Number(raw[":status"]), headers },
          body: readableBody(stream, length, trailersOf(stream)),
        });
      });
    });
  }

  /** Sends GOAWAY; requests in flight finish. */
  close(): void {
    void this.#session.close();
  }
}

/** Streams a body into an HTTP/2 stream and ends it, with the body's trailers if any. */
async function send(body: Body, stream: H2Stream): Promise<void> {
  await pumpBody(body, stream, {
    end: (trailers) => {
      const fields = trailers ? outgoingFields(trailers) : [];
      if (fields.length > 0) stream.sendTrailers(fields);
      else stream.end();
    },
    // A reset without error (the response is complete) stops the sending, quietly.
    stopped: () => stream.rstCode !== undefined,
  });
  // Stopped early: ending the reset stream sends nothing and lets it be released.
  if (!stream.writableEnded) stream.end();
}

/** The pseudo-headers and fields of a request; CONNECT has neither `:scheme` nor `:path`. */
function requestFields(head: RequestHead): [string, string][] {
  const fields: [string, string][] = [[":method", head.method]];
  if (head.method !== "CONNECT") fields.push([":scheme", head.scheme], [":path", head.path]);
  if (head.authority) fields.push([":authority", head.authority]);
  return fields.concat(outgoingFields(head.headers));
}

/** The stream's trailers as a header map, once they came. */
function trailersOf(stream: H2Stream): () => HeaderMap | undefined {
  let map: HeaderMap | undefined;
  return () => (map ??= stream.trailers ? toHeaderMap(stream.trailers) : undefined);
}

function toHeaderMap(raw: H2Headers): HeaderMap {
  const fields: [string, string][] = [];
  for (const name in raw) {
    if (name.charCodeAt(0) === 0x3a) continue;
    const value = raw[name];
    if (Array.isArray(value)) { for (const v of value) fields.push([name, v]); }
    else fields.push([name, value]);
  }
  return HeaderMap.fromLowerCase(fields);
}

/** The fields HTTP/2 may carry, in order: connection-specific ones and `te` but `trailers` left out. */
function outgoingFields(headers: HeaderMap): [string, string][] {
  const out: [string, string][] = [];
  for (const [name, value] of headers) {
    if (CONNECTION_FIELDS.has(name) || (name === "te" && value !== "trailers")) continue;
    out.push([name, value]);
  }
  return out;
}

function lengthOf(headers: HeaderMap): number | undefined {
  const cl = headers.get("content-length");
  if (cl === undefined || !/^[0-9]+$/.test(cl)) return undefined;
  return Number(cl);
}
