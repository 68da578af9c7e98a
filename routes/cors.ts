/**
 * The CORS filter's decision (gateway-api `HTTPCORSFilter`; Istio `createCorsFilter`, which sets
 * `unmatchedPreflights: IGNORE` so Envoy answers every preflight itself).
 *
 * - A preflight is `OPTIONS` with `Origin` and `Access-Control-Request-Method`. It is answered
 *   here with 200: with the CORS headers when the origin is allowed, without them otherwise.
 * - Any other request with an allowed `Origin` is forwarded, and its response gets
 *   `Access-Control-Allow-Origin` (the request's origin, echoed as Envoy does, which the API
 *   allows even for `*`), `Access-Control-Allow-Credentials: true` when set, and
 *   `Access-Control-Expose-Headers`.
 * - A `*` in allowMethods, allowHeaders or exposeHeaders is sent as `*` without credentials. With
 *   credentials it may not be: methods and headers then echo the request's
 *   `Access-Control-Request-*` (omitted when absent) and expose headers are left out.
 */
import type { HeaderMap } from "../http/types.ts";
import type { Cors } from "./model.ts";
import { parseOrigin } from "./_origin.ts";

/** What CORS does with one request. */
export type CorsDecision =
  | { readonly kind: "none" }
  | {
    readonly kind: "preflight";
    readonly status: 200;
    readonly headers: readonly (readonly [string, string])[];
  }
  | { readonly kind: "actual"; readonly headers: readonly (readonly [string, string])[] };

/**
 * Decides CORS for a request.
 *
 * @example
 * ```ts
 * corsDecision(cors, { method: "OPTIONS", headers: new HeaderMap([
 *   ["origin", "https://app.example"], ["access-control-request-method", "PUT"],
 * ]) }); // { kind: "preflight", status: 200, headers: [["access-control-allow-origin", …], …] }
 * ```
 * @param cors The compiled filter
 * @param request Method and headers
 * @returns `preflight` to answer now, `actual` with headers for the response, or `none`
 */
export function corsDecision(
  cors: Cors,
  request: { readonly method: string; readonly headers: HeaderMap },
): CorsDecision {
  const origin = request.headers.get("origin");
  if (origin === undefined) return { kind: "none" };
  const allowed = isOriginAllowed(cors, origin);
  if (request.method === "OPTIONS" && request.headers.has("access-control-request-method")) {
    return {
      kind: "preflight",
      status: 200,
      headers: allowed ? preflightHeaders(cors, origin, request.headers) : [],
    };
  }
  if (!allowed) return { kind: "none" };
  const headers: [string, string][] = [["access-control-allow-origin", origin]];
  if (cors.allowCredentials) headers.push(["access-control-allow-credentials", "true"]);
  const expose = wildcardOrList(cors.exposeHeaders, cors.allowCredentials, undefined);
  if (expose) headers.push(["access-control-expose-headers", expose]);
  return { kind: "actual", headers };
}

/**
 * Whether an `Origin` is allowed: scheme, port (80/443 implied) and host must match one entry.
 *
 * @param cors The compiled filter
 * @param origin The request's `Origin` header
 * @returns True when allowed
 */
export function isOriginAllowed(cors: Cors, origin: string): boolean {
  const parts = parseOrigin(origin);
  if (!parts) return false;
  return cors.allowOrigins.some((o) =>
    o.any || (o.scheme === parts.scheme && o.port === parts.port && o.host.test(parts.host))
  );
}

function preflightHeaders(cors: Cors, origin: string, request: HeaderMap): [string, string][] {
  const headers: [string, string][] = [["access-control-allow-origin", origin]];
  if (cors.allowCredentials) headers.push(["access-control-allow-credentials", "true"]);
  const methods = wildcardOrList(
    cors.allowMethods,
    cors.allowCredentials,
    request.get("access-control-request-method"),
  );
  if (methods) headers.push(["access-control-allow-methods", methods]);
  const allowHeaders = wildcardOrList(
    cors.allowHeaders,
    cors.allowCredentials,
    request.joined("access-control-request-headers"),
  );
  if (allowHeaders) headers.push(["access-control-allow-headers", allowHeaders]);
  headers.push(["access-control-max-age", String(cors.maxAge)]);
  return headers;
}

/** The header value for a configured list; a `*` with credentials echoes the request instead. */
function wildcardOrList(
  list: readonly string[],
  credentials: boolean,
  requested: string | undefined,
): string | undefined {
  if (list.length === 0) return undefined;
  if (list.includes("*") && credentials) return requested || undefined;
  return list.join(",");
}
