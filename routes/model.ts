/**
 * The compiled routing model the request path reads: rules merged per Service port and sorted by
 * Gateway API precedence, matchers with their regexes built, filters checked, backends resolved
 * against the mesh snapshot.
 *
 * Invariants:
 * - Everything here is built once by `compileRoutes` and frozen; the request path never mutates it.
 * - Every regex is anchored (`^(?:…)$`), as Envoy's RE2 `safe_regex` is a full match.
 * - A backend that could not be resolved is kept as an `error` backend with its weight, so 500s are
 *   served in proportion, as the Gateway API asks.
 */
import type { Service, ServicePort } from "../mesh/model.ts";
import type { RouteKind } from "./resources.ts";

/** The route a rule came from, for logs, telemetry and problems. */
export interface RouteRef {
  readonly kind: RouteKind;
  readonly namespace: string;
  readonly name: string;
  /** `file:line` of the document. */
  readonly where: string;
}

/** A string matcher: exact, or a compiled full-match regex. */
export type StringMatcher =
  | { readonly type: "Exact"; readonly value: string }
  | { readonly type: "RegularExpression"; readonly value: string; readonly regex: RegExp };

/** A path matcher of an HTTPRoute match. */
export type PathMatcher =
  | { readonly type: "Exact"; readonly value: string }
  /** `value` has its trailing `/` removed, except for `/` itself. */
  | { readonly type: "PathPrefix"; readonly value: string }
  | { readonly type: "RegularExpression"; readonly value: string; readonly regex: RegExp };

/** One named matcher (header or query parameter). */
export interface NamedMatcher {
  /** Lower-case for headers; as written for query parameters (they are case-sensitive). */
  readonly name: string;
  readonly matcher: StringMatcher;
}

/** An HTTPRoute match: every part must hold. */
export interface HttpMatch {
  readonly kind: "http";
  readonly path: PathMatcher;
  readonly method?: string;
  readonly headers: readonly NamedMatcher[];
  readonly queryParams: readonly NamedMatcher[];
}

/** A GRPCRoute match on `/service/method` plus headers; an absent part matches anything. */
export interface GrpcMatch {
  readonly kind: "grpc";
  readonly service?: StringMatcher;
  readonly method?: StringMatcher;
  readonly headers: readonly NamedMatcher[];
}

/** Header edits of RequestHeaderModifier and ResponseHeaderModifier; names are lower-case. */
export interface HeaderModifier {
  readonly set: readonly (readonly [string, string])[];
  readonly add: readonly (readonly [string, string])[];
  readonly remove: readonly string[];
}

/** A path change of URLRewrite or RequestRedirect. */
export type PathModifier =
  | { readonly type: "ReplaceFullPath"; readonly value: string }
  | { readonly type: "ReplacePrefixMatch"; readonly value: string };

/** RequestRedirect with defaults left open (they depend on the request). */
export interface Redirect {
  readonly scheme?: "http" | "https";
  readonly hostname?: string;
  readonly path?: PathModifier;
  readonly port?: number;
  readonly statusCode: 301 | 302 | 303 | 307 | 308;
}

/** URLRewrite. */
export interface Rewrite {
  readonly hostname?: string;
  readonly path?: PathModifier;
}

/** One allowed CORS origin, split so default ports compare equal. */
export interface CorsOrigin {
  /** `*` alone: every origin. */
  readonly any: boolean;
  readonly scheme: string;
  /** Full-match, case-insensitive host pattern (`*` is greedy to the left). */
  readonly host: RegExp;
  readonly port: number;
}

/** The CORS filter. */
export interface Cors {
  readonly allowOrigins: readonly CorsOrigin[];
  readonly allowCredentials: boolean;
  readonly allowMethods: readonly string[];
  readonly allowHeaders: readonly string[];
  readonly exposeHeaders: readonly string[];
  /** Seconds. */
  readonly maxAge: number;
}

/** A resolved mirror target: copies go to one endpoint of the backend, responses are ignored. */
export interface MirrorTarget {
  readonly backend: ServiceBackend;
  /** Share of requests mirrored, 0 to 100 (fractions allowed). */
  readonly percent: number;
}

/** A checked filter, kept in the order written (the API asks filters to run in order). */
export type Filter =
  | { readonly type: "RequestHeaderModifier"; readonly modifier: HeaderModifier }
  | { readonly type: "ResponseHeaderModifier"; readonly modifier: HeaderModifier }
  | { readonly type: "RequestRedirect"; readonly redirect: Redirect }
  | { readonly type: "URLRewrite"; readonly rewrite: Rewrite }
  | { readonly type: "RequestMirror"; readonly mirror: MirrorTarget }
  | { readonly type: "CORS"; readonly cors: Cors };

/** Where a request or connection goes: a service port, or a local error answer. */
export type Backend =
  | {
    readonly kind: "service";
    readonly service: Service;
    readonly port: ServicePort;
    /** backendRef-level filters (RequestHeaderModifier, ResponseHeaderModifier); often empty. */
    readonly filters: readonly Filter[];
  }
  | { readonly kind: "error"; readonly status: 500; readonly reason: string };

/** The resolved kind of {@link Backend}. */
export type ServiceBackend = Extract<Backend, { readonly kind: "service" }>;

/** A backend with its weight (0 is never picked). */
export interface WeightedBackend {
  readonly weight: number;
  readonly backend: Backend;
}

/** Anything with weighted backends: an HTTP or gRPC rule, or a TCP route. */
export interface HasBackends {
  readonly backends: readonly WeightedBackend[];
}

/** GEP-1742 timeouts in milliseconds; absent (or `0s` in the resource) means none. */
export interface Timeouts {
  /** The whole client transaction, retries included. */
  readonly requestMs?: number;
  /** Each try to a backend. */
  readonly backendRequestMs?: number;
}

/**
 * When to try a backend again. Total tries are `1 + attempts`. Connect failures, refused streams
 * and gRPC `unavailable`/`cancelled` are always retriable, as in Istio's `retryOn`; `codes` adds
 * HTTP statuses. Each retry should go to another endpoint (`previous_hosts`).
 */
export interface RetryPolicy {
  readonly attempts: number;
  readonly codes: readonly number[];
  /** Minimum wait before a retry; Envoy grows it exponentially with jitter. */
  readonly backoffMs: number;
}

/** One compiled HTTPRoute or GRPCRoute rule. */
export interface HttpRule extends HasBackends {
  readonly route: RouteRef;
  /** Position in the route's `rules`. */
  readonly index: number;
  readonly name?: string;
  readonly filters: readonly Filter[];
  readonly timeouts: Timeouts;
  readonly retry: RetryPolicy;
}

/** One (rule, match) pair of the sorted list. */
export interface HttpRouteEntry {
  readonly rule: HttpRule;
  readonly match: HttpMatch | GrpcMatch;
}

/** The merged, sorted rules of every route of one kind attached to one Service port. */
export interface CompiledHttpRoutes {
  readonly kind: "HTTPRoute" | "GRPCRoute";
  /** `namespace/name` of the Service. */
  readonly service: string;
  readonly port: number;
  /** Highest precedence first; the first entry that matches wins. */
  readonly entries: readonly HttpRouteEntry[];
}

/** The TCPRoute that applies to one Service port (the oldest, when several attach). */
export interface CompiledTcpRoute extends HasBackends {
  readonly route: RouteRef;
  readonly service: string;
  readonly port: number;
}

/** What `matchHttp` found: the rule to apply and the match that hit (for ReplacePrefixMatch). */
export interface HttpRouteMatch {
  readonly rule: HttpRule;
  readonly match: HttpMatch | GrpcMatch;
}

/** The compiled routes of a snapshot, looked up by Service and port. */
export interface RouteTable {
  /**
   * HTTPRoute or GRPCRoute rules attached to a Service port.
   *
   * @param serviceKey `namespace/name` of the Service
   * @param port Service port
   * @returns The rules, or undefined when no route attaches (traffic goes to the Service as usual)
   */
  httpRoutesFor(serviceKey: string, port: number): CompiledHttpRoutes | undefined;
  /**
   * The TCPRoute attached to a Service port.
   *
   * @param serviceKey `namespace/name` of the Service
   * @param port Service port
   * @returns The route, or undefined when none attaches
   */
  tcpRoutesFor(serviceKey: string, port: number): CompiledTcpRoute | undefined;
  /** A sorted, JSON-ready summary for the admin dump. */
  toJSON(): unknown;
}
