/**
 * The filter chain: filters compose like an onion (after Hono's `compose.ts`). A filter works on
 * the context before calling `next()` (request phase) and after it returns (response phase). It
 * ends the request early by throwing a {@link LocalReply} or by setting a response without calling
 * `next`. Bodies are wrapped, never buffered, unless a filter asks to see them whole.
 *
 * Invariants:
 * - `next()` may be called at most once per filter; a second call is an error.
 * - Every error ends in exactly one place ({@link runChain}) and becomes a response there, with the
 *   status, body and response flag the error carries; unknown errors become 500.
 * - A lone filter runs without composition overhead.
 */
import { type Body, bytesBody, EMPTY_BODY, HeaderMap, type ResponseHead } from "./types.ts";
import type { HttpContext } from "./context.ts";
import { HttpCodecError } from "./errors.ts";

/** A chain link: request work, `await next()`, response work. */
export type Filter<S> = (ctx: HttpContext<S>, next: () => Promise<void>) => Promise<void>;

/** An early response from a filter: status, headers, body and the access-log response flag. */
export class LocalReply extends Error {
  readonly status: number;
  readonly headers: HeaderMap;
  readonly body: string | Uint8Array;
  /** Envoy response flag for logs and metrics, such as `NR` or `UF`; `-` for none. */
  readonly flag: string;
  /** Extra detail for logs (which policy, which upstream). */
  readonly detail: string;
  /** The gRPC status a gRPC request gets; without it, Envoy's mapping of `status`. */
  readonly grpcStatus?: number;

  constructor(
    status: number,
    body: string | Uint8Array = "",
    options: {
      headers?: Iterable<readonly [string, string]>;
      flag?: string;
      detail?: string;
      grpcStatus?: number;
    } = {},
  ) {
    super(options.detail ?? `Local reply ${status}`);
    this.name = "LocalReply";
    this.status = status;
    this.body = body;
    this.headers = new HeaderMap(options.headers ?? []);
    this.flag = options.flag ?? "-";
    this.detail = options.detail ?? "";
    this.grpcStatus = options.grpcStatus;
  }

  /** The reply as a response head and body. */
  toResponse(): { head: ResponseHead; body: Body } {
    const headers = this.headers.clone();
    const len = typeof this.body === "string" ? this.body.length : this.body.byteLength;
    if (len > 0 && !headers.has("content-type")) headers.set("content-type", "text/plain");
    return {
      head: { status: this.status, headers },
      body: len > 0 ? bytesBody(this.body) : EMPTY_BODY,
    };
  }
}

/**
 * Composes filters into one.
 *
 * @param filters In request order; the last one is usually the router
 * @returns A filter that runs them all
 */
export function compose<S>(filters: readonly Filter<S>[]): Filter<S> {
  if (filters.length === 1) return filters[0];
  return (ctx, last) => {
    let index = -1;
    const dispatch = (i: number): Promise<void> => {
      if (i <= index) return Promise.reject(new Error("next() called more than once"));
      index = i;
      const f = i < filters.length ? filters[i] : undefined;
      if (!f) return last();
      return f(ctx, () => dispatch(i + 1));
    };
    return dispatch(0);
  };
}

/**
 * One of several chains per request, each composed once on first use: the filters a request's
 * config does not need (no Wasm plugin, no policy, no tracing provider) are left out of its chain
 * instead of each passing it on, which costs a layer (a closure and a promise) per request.
 *
 * @param key What the request needs, as a small integer (a bit set)
 * @param build The filters of a key's chain, in request order
 * @returns A filter that runs the chain of each request's key
 */
export function chainVariants<S>(
  key: (ctx: HttpContext<S>) => number,
  build: (key: number) => readonly Filter<S>[],
): Filter<S> {
  const chains = new Map<number, Filter<S>>();
  return (ctx, next) => {
    const k = key(ctx);
    let chain = chains.get(k);
    if (!chain) chains.set(k, chain = compose(build(k)));
    return chain(ctx, next);
  };
}

/**
 * Runs a chain for one request and guarantees that the context ends with a response.
 *
 * @param chain The composed filters
 * @param ctx The request context
 * @param onError Called for errors that are not {@link LocalReply}, for logging
 */
export async function runChain<S>(
  chain: Filter<S>,
  ctx: HttpContext<S>,
  onError?: (e: unknown) => void,
): Promise<void> {
  try {
    await chain(ctx, () => Promise.resolve());
    if (!ctx.response) {
      throw new LocalReply(500, "no response", { detail: "Chain produced no response" });
    }
  } catch (e) {
    // A filter that buffered past its bound (413) or read a malformed body (400) answers so.
    const reply = e instanceof LocalReply
      ? e
      : e instanceof HttpCodecError
      ? new LocalReply(e.status, e.message, { detail: e.message })
      : new LocalReply(500, "internal error", { detail: String(e) });
    if (!(e instanceof LocalReply) && !(e instanceof HttpCodecError)) onError?.(e);
    ctx.request.body.cancel();
    ctx.response?.body.cancel();
    ctx.reply(reply);
  }
}
