/**
 * When and how one request is over, for the filters that record it (metrics, tracing): at once
 * when a filter threw, from the reply the chain will make of it; at once when there is no
 * response body to wait for; else when the response body ends, errors or is cancelled.
 *
 * Invariants:
 * - `onEnd` runs exactly once per request, and must not throw: it runs in a `finally` or in a
 *   body callback, where a throw would replace the request's own outcome.
 * - A gRPC request's local reply is reported as `proxy/http_serve.ts` sends it: HTTP 200 with
 *   the status mapped to a `grpc-status`, no body.
 * - The response body is wrapped only when there is one to wait for.
 */
import { grpcStatusForHttp, HeaderMap, type HttpContext, LocalReply } from "../http/mod.ts";
import { type BodyEnd, BodyMeter, meteredBody } from "./_body_meter.ts";

/** How a request ended, as it was sent downstream. */
export interface ExchangeEnd {
  /** HTTP status on the wire. */
  readonly code: number;
  readonly headers: HeaderMap;
  /** Trailers of a response body read to its end. */
  readonly trailers?: HeaderMap;
  /** Response body bytes. */
  readonly bodyBytes: number;
  /** gRPC messages in the response body; 0 for other requests. */
  readonly messages: number;
  /** Envoy response flag, `-` for none. */
  readonly flag: string;
}

/** Options of {@link watchExchange}. */
export interface WatchOptions {
  /** A gRPC request: its messages are counted and its local replies shaped as gRPC. */
  readonly grpc: boolean;
  /** Told once how the request ended; must not throw. */
  readonly onEnd: (end: ExchangeEnd) => void;
  /** Counts the response body, for a caller that reads it while it streams. @default a new one */
  readonly responseMeter?: BodyMeter;
}

/** What the chain answers for a non-{@link LocalReply} throw (mirrors `runChain`). */
const INTERNAL_ERROR = new LocalReply(500, "internal error");
const NO_RESPONSE = new LocalReply(500, "no response");

/**
 * Runs the rest of the chain and reports how the request ended.
 *
 * @param ctx The request
 * @param next The rest of the chain
 * @param options gRPC or not, and where the end is reported
 * @returns When the chain returned; rejects with what the chain threw
 */
export async function watchExchange<S>(
  ctx: HttpContext<S>,
  next: () => Promise<void>,
  options: WatchOptions,
): Promise<void> {
  let thrown: { error: unknown } | undefined;
  try {
    await next();
  } catch (e) {
    thrown = { error: e };
    throw e;
  } finally {
    if (thrown) {
      const reply = thrown.error instanceof LocalReply ? thrown.error : INTERNAL_ERROR;
      endWithReply(reply, ctx.flag !== "-" ? ctx.flag : reply.flag, options);
    } else answered(ctx, options);
  }
}

/** The chain returned: report now, or once the response body is over. */
function answered<S>(ctx: HttpContext<S>, options: WatchOptions): void {
  const res = ctx.response;
  if (!res) return endWithReply(NO_RESPONSE, ctx.flag, options);
  if (ctx.localReply && options.grpc) return endWithReply(ctx.localReply, ctx.flag, options);
  const { head } = res;
  if (head.status === 101 || res.body.length === 0) {
    const end = { code: head.status, headers: head.headers, bodyBytes: 0, messages: 0 };
    return options.onEnd({ ...end, flag: ctx.flag });
  }
  const meter = options.responseMeter ?? new BodyMeter(options.grpc);
  const body = res.body;
  ctx.response = {
    head,
    body: meteredBody(body, meter, (end, reason) =>
      options.onEnd({
        code: head.status,
        headers: head.headers,
        trailers: body.trailers,
        bodyBytes: meter.bytes,
        messages: meter.messages,
        flag: ctx.flag !== "-" ? ctx.flag : endFlag(end, reason, ctx, head.status),
      })),
  };
}

function endWithReply(reply: LocalReply, flag: string, options: WatchOptions): void {
  if (options.grpc) {
    const headers = new HeaderMap([
      ["content-type", "application/grpc"],
      ["grpc-status", String(grpcStatusForHttp(reply.status))],
    ]);
    return options.onEnd({ code: 200, headers, bodyBytes: 0, messages: 0, flag });
  }
  const { head, body } = reply.toResponse();
  options.onEnd({
    code: head.status,
    headers: head.headers,
    bodyBytes: body.length ?? 0,
    messages: 0,
    flag,
  });
}

/**
 * The flag a response body's early stop implies: a read error is the upstream's (`UC`), a
 * cancel is the downstream going away (`DC`), except the codec dropping a body that must not be
 * sent (HEAD, 204, 304).
 */
function endFlag(end: BodyEnd, reason: unknown, ctx: HttpContext<unknown>, status: number) {
  if (end === "end") return "-";
  if (end === "error") return "UC";
  const bodiless = ctx.request.head.method === "HEAD" || status === 204 || status === 304;
  return reason === undefined && bodiless ? "-" : "DC";
}

/** Whether a request is gRPC, by its content type. */
export function isGrpc(headers: HeaderMap): boolean {
  return field(headers, "content-type")?.startsWith("application/grpc") ?? false;
}

/**
 * Envoy's `Grpc::Common::getGrpcStatus`: trailers, then headers, then the HTTP status mapped.
 */
export function grpcStatusOf(code: number, headers: HeaderMap, trailers?: HeaderMap): string {
  const raw = (trailers && field(trailers, "grpc-status")) ?? field(headers, "grpc-status");
  if (raw !== undefined && /^\d+$/.test(raw.trim())) return raw.trim();
  return code > 0 ? String(grpcStatusForHttp(code)) : "";
}

/** `HeaderMap.get` without lower-casing the name each call (names are stored lower-case). */
export function field(headers: HeaderMap, lowerName: string): string | undefined {
  const all = headers.entries();
  for (let i = 0; i < all.length; i++) if (all[i][0] === lowerName) return all[i][1];
  return undefined;
}
