/**
 * Request matching against the compiled rules of one Service port (l7.md §6.2). Entries are already
 * in precedence order, so the first entry whose match holds wins.
 *
 * - Paths are matched without the query string, case-sensitively: Exact whole path, PathPrefix
 *   element-wise (`/abc` matches `/abc`, `/abc/`, `/abc/def`, not `/abcd`), RegularExpression as a
 *   full match.
 * - Header names are case-insensitive; repeated request headers are compared as one value joined
 *   with `,`, as Envoy does. A `host` header match falls back to the authority (HTTP/2 carries the
 *   host only in `:authority`).
 * - Query parameters: the first value of a repeated name (the API's recommendation), with
 *   percent-decoding.
 * - GRPCRoute matches read `/package.Service/Method`; a path of another shape only matches rules
 *   without a method match.
 */
import type { HeaderMap } from "../http/types.ts";
import type {
  CompiledHttpRoutes,
  GrpcMatch,
  HttpMatch,
  HttpRouteMatch,
  NamedMatcher,
  PathMatcher,
  StringMatcher,
} from "./model.ts";

/** The request attributes routing reads. */
export interface MatchRequest {
  /** Upper-case method. */
  readonly method: string;
  /** Path with the optional `?query`. */
  readonly path: string;
  readonly headers: HeaderMap;
  /** `:authority` or Host, used when a rule matches a `host` header that `headers` lacks. */
  readonly authority?: string;
}

/**
 * Finds the rule for a request.
 *
 * @example
 * ```ts
 * const hit = matchHttp(table.httpRoutesFor("ns1/echo", 80)!, {
 *   method: "GET",
 *   path: "/v2/example?x=1",
 *   headers: new HeaderMap([["version", "two"]]),
 * });
 * if (!hit) respond(404);
 * ```
 * @param routes The rules attached to the Service port
 * @param request Method, path with query, headers
 * @returns The rule and the match that hit, or undefined: routes are attached but none matches,
 *   so the proxy must answer 404
 */
export function matchHttp(
  routes: CompiledHttpRoutes,
  request: MatchRequest,
): HttpRouteMatch | undefined {
  const view = new RequestView(request);
  for (const entry of routes.entries) {
    const hit = entry.match.kind === "http"
      ? httpMatches(entry.match, view)
      : grpcMatches(entry.match, view);
    if (hit) return { rule: entry.rule, match: entry.match };
  }
  return undefined;
}

/** The request split once, with query and gRPC name parsed on first use. */
class RequestView {
  readonly request: MatchRequest;
  readonly path: string;
  readonly #rawQuery: string;
  #query?: Map<string, string>;
  #grpc?: { service: string; method: string } | null;

  constructor(request: MatchRequest) {
    this.request = request;
    const q = request.path.indexOf("?");
    this.path = q < 0 ? request.path : request.path.slice(0, q);
    this.#rawQuery = q < 0 ? "" : request.path.slice(q + 1);
  }

  header(name: string): string | undefined {
    const value = this.request.headers.joined(name);
    return value === undefined && name === "host" ? this.request.authority : value;
  }

  query(name: string): string | undefined {
    this.#query ??= parseQuery(this.#rawQuery);
    return this.#query.get(name);
  }

  grpc(): { service: string; method: string } | null {
    if (this.#grpc === undefined) {
      const m = /^\/([^/]+)\/([^/]+)$/.exec(this.path);
      this.#grpc = m ? { service: m[1], method: m[2] } : null;
    }
    return this.#grpc;
  }
}

function httpMatches(m: HttpMatch, view: RequestView): boolean {
  return pathMatches(m.path, view.path) &&
    (m.method === undefined || m.method === view.request.method) &&
    allHold(m.headers, (name) => view.header(name)) &&
    allHold(m.queryParams, (name) => view.query(name));
}

function grpcMatches(m: GrpcMatch, view: RequestView): boolean {
  if (m.service || m.method) {
    const name = view.grpc();
    if (!name) return false;
    if (m.service && !stringMatches(m.service, name.service)) return false;
    if (m.method && !stringMatches(m.method, name.method)) return false;
  }
  return allHold(m.headers, (name) => view.header(name));
}

/**
 * Whether a path (without query) satisfies a path matcher.
 *
 * @param matcher Exact, PathPrefix (element-wise) or RegularExpression (full match)
 * @param path The request path without `?query`
 * @returns True on a match
 */
export function pathMatches(matcher: PathMatcher, path: string): boolean {
  switch (matcher.type) {
    case "Exact":
      return path === matcher.value;
    case "PathPrefix":
      return prefixMatches(matcher.value, path);
    case "RegularExpression":
      return matcher.regex.test(path);
  }
}

function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === "/") return path.startsWith("/");
  return path.startsWith(prefix) && (path.length === prefix.length || path[prefix.length] === "/");
}

function allHold(
  matchers: readonly NamedMatcher[],
  read: (name: string) => string | undefined,
): boolean {
  for (const { name, matcher } of matchers) {
    const value = read(name);
    if (value === undefined || !stringMatches(matcher, value)) return false;
  }
  return true;
}

function stringMatches(matcher: StringMatcher, value: string): boolean {
  return matcher.type === "Exact" ? value === matcher.value : matcher.regex.test(value);
}

function parseQuery(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of raw.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const name = decode(eq < 0 ? part : part.slice(0, eq));
    if (!out.has(name)) out.set(name, decode(eq < 0 ? "" : part.slice(eq + 1)));
  }
  return out;
}

/**
 * Percent-decodes each run of escapes; a run that is not valid UTF-8 keeps its non-ASCII escapes
 * as written.
 */
function decode(text: string): string {
  if (!text.includes("%")) return text;
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run.replace(
        /%([0-7][0-9A-Fa-f])/g,
        (_, hex) => String.fromCharCode(parseInt(hex, 16)),
      );
    }
  });
}
