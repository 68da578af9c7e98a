/**
 * One unary gRPC call on an HTTP/2 client session of our own `h2/`: POST the framed request,
 * read the response within a bound, and take `grpc-status` from the trailers (or from the
 * headers of a trailers-only response).
 *
 * Invariants:
 * - The response body is read up to `maxBytes` (plus the prefix); a larger one resets the stream.
 * - The call ends within `timeoutMs`: the stream is reset and the call fails with kind `timeout`;
 *   the deadline also goes to the server as `grpc-timeout`.
 * - Every failure is a {@link GrpcError} naming the method, the server and the reason.
 */
import { Buffer } from "node:buffer";
import type { H2Headers, H2Session, H2Stream } from "../h2/mod.ts";
import { grpcFrame, grpcMessageText, grpcTimeout, grpcUnframe } from "./framing.ts";

/** Closed set of the ways a call fails. */
export type GrpcErrorKind =
  | "transport" // the session or stream broke before a status
  | "http" // not a gRPC response (HTTP status or content-type)
  | "status" // the server answered a non-zero grpc-status
  | "malformed" // the response could not be read
  | "timeout"; // no status within the deadline

/** Names of gRPC status codes (grpc `doc/statuscodes.md`), for messages. */
const STATUS_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/** A failed call. */
export class GrpcError extends Error {
  readonly kind: GrpcErrorKind;
  /** The gRPC status code, for kind `status`. */
  readonly code?: number;
  /** The server, as `host:port` or authority. */
  readonly peer: string;

  constructor(kind: GrpcErrorKind, peer: string, reason: string, code?: number) {
    super(`gRPC call to ${peer} failed (${kind}): ${reason}`);
    this.name = "GrpcError";
    this.kind = kind;
    this.peer = peer;
    this.code = code;
  }
}

/** What {@link callUnary} sends besides the message. */
export interface UnaryCall {
  /** `/package.Service/Method`. */
  readonly path: string;
  /** `:authority`, the server's host name. */
  readonly authority: string;
  /** Extra request metadata (lower-case names), e.g. `authorization`. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Deadline of the whole call. */
  readonly timeoutMs: number;
  /** Largest response message. @default 4 MiB (gRPC's default) */
  readonly maxBytes?: number;
  /** How the server is named in errors. @default the authority */
  readonly peer?: string;
}

/**
 * Calls one unary method.
 *
 * @param session A ready client session (over TLS with ALPN `h2`)
 * @param message The request message, without the gRPC prefix
 * @param call Method, authority, metadata and bounds
 * @returns The one response message
 * @throws GrpcError of kind transport, http, status, malformed or timeout
 */
export function callUnary(
  session: H2Session,
  message: Uint8Array,
  call: UnaryCall,
): Promise<Uint8Array> {
  const peer = call.peer ?? call.authority;
  const limit = (call.maxBytes ?? 4 << 20) + 5;
  let stream: H2Stream;
  try {
    stream = session.request({
      ":method": "POST",
      ":scheme": "https",
      ":path": call.path,
      ":authority": call.authority,
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": grpcTimeout(call.timeoutMs),
      ...call.metadata,
    });
  } catch (e) {
    return Promise.reject(new GrpcError("transport", peer, (e as Error).message));
  }
  return new Promise<Uint8Array>((resolve, reject) => {
    let head: H2Headers | undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (e: GrpcError) => {
      clearTimeout(timer);
      stream.destroy();
      reject(e);
    };
    const timer = setTimeout(
      () => fail(new GrpcError("timeout", peer, `no answer in ${call.timeoutMs} ms`)),
      call.timeoutMs,
    );
    stream.on("response", (h: H2Headers) => head = h);
    stream.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) fail(new GrpcError("malformed", peer, `response over ${limit} bytes`));
      else chunks.push(chunk);
    });
    stream.on("error", (e: Error) => fail(new GrpcError("transport", peer, e.message)));
    stream.on("end", () => {
      clearTimeout(timer);
      try {
        resolve(responseMessage(head, stream.trailers, Buffer.concat(chunks), peer));
      } catch (e) {
        reject(e);
      }
    });
    stream.end(grpcFrame(message));
  });
}

/** The one message of a finished response, or the error its status says. */
function responseMessage(
  head: H2Headers | undefined,
  trailers: H2Headers | undefined,
  body: Uint8Array,
  peer: string,
): Uint8Array {
  if (!head) throw new GrpcError("transport", peer, "stream ended without a response");
  const type = String(head["content-type"] ?? "");
  if (head[":status"] !== "200" || !type.startsWith("application/grpc")) {
    throw new GrpcError("http", peer, `HTTP ${head[":status"]} (${type || "no content-type"})`);
  }
  // A trailers-only response (an error without messages) carries grpc-status in its headers.
  const field = (name: string) => {
    const v = trailers?.[name] ?? head[name];
    return v === undefined ? undefined : String(v);
  };
  const code = field("grpc-status");
  if (code === undefined) throw new GrpcError("malformed", peer, "no grpc-status");
  if (code !== "0") {
    const n = Number(code);
    const message = field("grpc-message");
    const name = STATUS_NAMES[n] ?? `status ${code}`;
    throw new GrpcError("status", peer, message ? `${name}: ${grpcMessageText(message)}` : name, n);
  }
  let messages: Uint8Array[];
  try {
    messages = grpcUnframe(body);
  } catch (e) {
    throw new GrpcError("malformed", peer, (e as Error).message);
  }
  if (messages.length !== 1) {
    throw new GrpcError("malformed", peer, `${messages.length} response messages, expected 1`);
  }
  return messages[0];
}
