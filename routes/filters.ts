/**
 * Route filters as pure functions over request and response heads (l7.md §6.3). Each takes a head
 * and returns a new one (headers are copied), so a caller keeps the original for logs and mirrors.
 *
 * {@link planRequest} runs a rule's filters in the order written, as the API asks, and returns a
 * plan: answer locally (redirect, CORS preflight) or forward (the edited request, mirrors, and what
 * to do to the response).
 */
import { HeaderMap, type RequestHead, type ResponseHead } from "../http/types.ts";
import type {
  Backend,
  Filter,
  GrpcMatch,
  HeaderModifier,
  HttpMatch,
  HttpRouteMatch,
  MirrorTarget,
  PathModifier,
  Redirect,
  Rewrite,
} from "./model.ts";
import { type CorsDecision, corsDecision } from "./cors.ts";

export { type CorsDecision, corsDecision } from "./cors.ts";

/** Which match hit, for ReplacePrefixMatch. */
export interface MatchOption {
  readonly match?: HttpMatch | GrpcMatch;
}

/** A header field to send. */
export type HeaderField = readonly [string, string];

/** The answer to a RequestRedirect. */
export interface RedirectDecision {
  readonly status: 301 | 302 | 303 | 307 | 308;
  readonly location: string;
}

/** What the proxy does with a matched request. */
export type RequestPlan =
  | {
    /** Answer here: a redirect (with `location`) or a CORS preflight. */
    readonly kind: "respond";
    readonly status: number;
    readonly headers: readonly HeaderField[];
  }
  | {
    readonly kind: "forward";
    /** The request after RequestHeaderModifier and URLRewrite; also what mirrors receive. */
    readonly request: RequestHead;
    readonly mirrors: readonly MirrorTarget[];
    /** ResponseHeaderModifiers, in order, for {@link planResponse}. */
    readonly responseModifiers: readonly HeaderModifier[];
    /** CORS headers for the response of an allowed cross-origin request. */
    readonly corsHeaders: readonly HeaderField[];
  };

/**
 * Applies header edits: remove, then set (replacing every value), then add (appending), as Envoy
 * orders `request_headers_to_remove` before `request_headers_to_add`.
 *
 * @param headers The fields to edit (not changed)
 * @param modifier Lower-case names with values
 * @returns A new header map
 */
export function modifyHeaders(headers: HeaderMap, modifier: HeaderModifier): HeaderMap {
  const out = headers.clone();
  for (const name of modifier.remove) out.delete(name);
  for (const [name, value] of modifier.set) out.set(name, value);
  for (const [name, value] of modifier.add) out.add(name, value);
  return out;
}

/**
 * RequestHeaderModifier on a request.
 *
 * @param request The request head (not changed)
 * @param modifier The filter
 * @returns A new head with edited headers
 */
export function modifyRequestHeaders(request: RequestHead, modifier: HeaderModifier): RequestHead {
  return { ...request, headers: modifyHeaders(request.headers, modifier) };
}

/**
 * ResponseHeaderModifier on a response.
 *
 * @param response The response head (not changed)
 * @param modifier The filter
 * @returns A new head with edited headers
 */
export function modifyResponseHeaders(
  response: ResponseHead,
  modifier: HeaderModifier,
): ResponseHead {
  return { ...response, headers: modifyHeaders(response.headers, modifier) };
}

/**
 * Rewrites a path, keeping its query string.
 *
 * ReplacePrefixMatch replaces the matched prefix element-wise (the API's table): both the prefix
 * and the replacement lose a trailing `/`, the rest of the path is appended, and an empty result is
 * `/`. So a replacement of `/` or `""` strips the prefix (`/foo/bar` → `/bar`, `/foo` → `/`), which
 * is what Istio's regex rewrite `^<prefix>(/?)(.*)` → `/\2` does. For a prefix of `/` the
 * replacement is prepended (`/bar` with `/xyz` → `/xyz/bar`), where Envoy's plain `prefix_rewrite`
 * would give `/xyzbar`.
 *
 * @param path Request path with optional `?query`
 * @param modifier ReplaceFullPath or ReplacePrefixMatch
 * @param options `match`: the match that hit; its PathPrefix is the prefix to replace
 * @returns The new path with the original query
 */
export function rewritePath(
  path: string,
  modifier: PathModifier,
  options: MatchOption = {},
): string {
  const { match } = options;
  const q = path.indexOf("?");
  const bare = q < 0 ? path : path.slice(0, q);
  const query = q < 0 ? "" : path.slice(q);
  if (modifier.type === "ReplaceFullPath") return modifier.value + query;
  const prefix =
    match?.kind === "http" && match.path.type === "PathPrefix" && match.path.value !== "/"
      ? match.path.value
      : "";
  if (!bare.startsWith(prefix)) return path;
  const replacement = modifier.value.endsWith("/") ? modifier.value.slice(0, -1) : modifier.value;
  return (replacement + bare.slice(prefix.length) || "/") + query;
}

/**
 * URLRewrite: hostname (the authority and, for HTTP/1.1, the Host header) and path.
 *
 * @param request The request head (not changed)
 * @param rewrite The filter
 * @param options `match`: the match that hit, for ReplacePrefixMatch
 * @returns A new head
 */
export function rewriteRequest(
  request: RequestHead,
  rewrite: Rewrite,
  options: MatchOption = {},
): RequestHead {
  const out = { ...request, headers: request.headers.clone() };
  if (rewrite.hostname !== undefined) {
    out.authority = rewrite.hostname;
    if (out.headers.has("host")) out.headers.set("host", rewrite.hostname);
  }
  if (rewrite.path) out.path = rewritePath(request.path, rewrite.path, options);
  return out;
}

/**
 * The redirect answer (`HTTPRequestRedirectFilter` defaults): status 302; scheme of the request;
 * hostname of the request's Host without its port; port as set, else the scheme's well-known port
 * when a scheme is set, else the listener port, which for a mesh route is the Service port the
 * request came in on (Istio `FROM_REQUEST_PORT`); the port is left out when it is the scheme's
 * default; path as modified, or the request's, query kept.
 *
 * @param redirect The filter
 * @param request Authority, scheme and path of the request
 * @param options `port`: the Service port; `match`: the match that hit, for ReplacePrefixMatch
 * @returns Status and Location
 */
export function redirectRequest(
  redirect: Redirect,
  request: Pick<RequestHead, "authority" | "scheme" | "path">,
  options: MatchOption & { readonly port: number },
): RedirectDecision {
  const scheme = redirect.scheme ?? (request.scheme === "https" ? "https" : "http");
  const host = redirect.hostname ?? hostOf(request.authority);
  const port = redirect.port ?? (redirect.scheme ? DEFAULT_PORT[scheme] : options.port);
  const shownPort = port === DEFAULT_PORT[scheme] ? "" : `:${port}`;
  const path = redirect.path ? rewritePath(request.path, redirect.path, options) : request.path;
  return { status: redirect.statusCode, location: `${scheme}://${host}${shownPort}${path}` };
}

/**
 * The mirrors of a rule's filters.
 *
 * @param filters The rule's filters
 * @returns Each RequestMirror target with its percentage; the proxy draws against it per request
 */
export function requestMirrors(filters: readonly Filter[]): MirrorTarget[] {
  return filters.flatMap((f) => f.type === "RequestMirror" ? [f.mirror] : []);
}

/**
 * Runs a matched rule's request-side filters in order.
 *
 * @param hit The rule and match from `matchHttp`
 * @param request The request head (not changed)
 * @param options `port`: the Service port the request came in on (redirect default)
 * @returns Respond locally, or forward with the edited request and the response-side work
 */
export function planRequest(
  hit: HttpRouteMatch,
  request: RequestHead,
  options: { readonly port: number },
): RequestPlan {
  let current = request;
  const responseModifiers: HeaderModifier[] = [];
  let cors: CorsDecision = { kind: "none" };
  for (const filter of hit.rule.filters) {
    switch (filter.type) {
      case "RequestHeaderModifier":
        current = modifyRequestHeaders(current, filter.modifier);
        break;
      case "URLRewrite":
        current = rewriteRequest(current, filter.rewrite, hit);
        break;
      case "RequestRedirect": {
        const { status, location } = redirectRequest(filter.redirect, current, {
          ...options,
          match: hit.match,
        });
        return { kind: "respond", status, headers: [["location", location]] };
      }
      case "CORS":
        cors = corsDecision(filter.cors, current);
        if (cors.kind === "preflight") {
          return { kind: "respond", status: cors.status, headers: cors.headers };
        }
        break;
      case "ResponseHeaderModifier":
        responseModifiers.push(filter.modifier);
        break;
      case "RequestMirror":
        break;
    }
  }
  return {
    kind: "forward",
    request: current,
    mirrors: requestMirrors(hit.rule.filters),
    responseModifiers,
    corsHeaders: cors.kind === "actual" ? cors.headers : [],
  };
}

/**
 * The request as sent to one backend: the plan's request with the backendRef's own request header
 * edits.
 *
 * @param request The planned request
 * @param backend The picked backend
 * @returns A new head, or the same one when the backend has no request filters
 */
export function requestForBackend(request: RequestHead, backend: Backend): RequestHead {
  if (backend.kind !== "service") return request;
  return backend.filters.reduce(
    (r, f) => f.type === "RequestHeaderModifier" ? modifyRequestHeaders(r, f.modifier) : r,
    request,
  );
}

/**
 * The response as returned to the client: the backendRef's response edits, then the rule's, then
 * CORS headers.
 *
 * @param response The backend's response head (not changed)
 * @param plan The forward plan
 * @param options `backend`: the backend that answered, for its response header edits
 * @returns A new head
 */
export function planResponse(
  response: ResponseHead,
  plan: Extract<RequestPlan, { kind: "forward" }>,
  options: { readonly backend?: Backend } = {},
): ResponseHead {
  const { backend } = options;
  const backendModifiers = backend?.kind === "service"
    ? backend.filters.flatMap((f) => f.type === "ResponseHeaderModifier" ? [f.modifier] : [])
    : [];
  let headers = new HeaderMap(response.headers);
  for (const modifier of [...backendModifiers, ...plan.responseModifiers]) {
    headers = modifyHeaders(headers, modifier);
  }
  for (const [name, value] of plan.corsHeaders) headers.set(name, value);
  return { ...response, headers };
}

const DEFAULT_PORT: Readonly<Record<string, number>> = { http: 80, https: 443 };

/** The host of an authority without its port; IPv6 keeps its brackets. */
function hostOf(authority: string): string {
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    return end < 0 ? authority : authority.slice(0, end + 1);
  }
  const colon = authority.lastIndexOf(":");
  return colon < 0 ? authority : authority.slice(0, colon);
}
