/**
 * Gateway API route resources as users write them (`gateway.networking.k8s.io` v1, also served as
 * v1beta1 and v1alpha2): HTTPRoute, GRPCRoute, TCPRoute and the ReferenceGrant that permits
 * cross-namespace backends of Gateway-attached routes. Field names and defaults follow
 * kubernetes-sigs/gateway-api `apis/v1/{httproute,grpcroute,tcproute,shared}_types.go`.
 *
 * These types describe what `compile.ts` reads; a document is checked field by field there, so
 * nothing here is trusted before that. Fields the API server defaults are optional here, with the
 * default in `@default`.
 */

/** API group of the Gateway API. */
export const GATEWAY_GROUP = "gateway.networking.k8s.io";

/** apiVersions accepted for route kinds and ReferenceGrant. */
export const ROUTE_API_VERSIONS: readonly string[] = [
  `${GATEWAY_GROUP}/v1`,
  `${GATEWAY_GROUP}/v1beta1`,
  `${GATEWAY_GROUP}/v1alpha2`,
];

/** The route kinds this folder compiles. */
export type RouteKind = "HTTPRoute" | "GRPCRoute" | "TCPRoute";

/** A parsed document and where it was written; structurally the mesh loader's `SourceDoc`. */
export interface RouteSourceDoc {
  /** File path as given to the loader, or a label such as `<inline>`. */
  readonly file: string;
  /** 1-based line where the document starts. */
  readonly line: number;
  // deno-lint-ignore no-explicit-any
  readonly object: any;
}

/** `metadata` as far as routes read it. */
export interface RouteMeta {
  readonly name: string;
  /** @default "default" */
  readonly namespace?: string;
  /** RFC 3339; breaks precedence ties (oldest first). */
  readonly creationTimestamp?: string;
}

/** `ParentReference`: what a route attaches to. */
export interface ParentReference {
  /** `""` or `core` for Service. @default "gateway.networking.k8s.io" */
  readonly group?: string;
  /** `Service`, `ServiceEntry` (group `networking.istio.io`) or `Gateway`. @default "Gateway" */
  readonly kind?: string;
  /** @default the route's namespace */
  readonly namespace?: string;
  readonly name: string;
  /** For a Service: the port name; for a Gateway: the listener name. */
  readonly sectionName?: string;
  /** For a Service: one service port; unset means all ports. */
  readonly port?: number;
}

/** `BackendObjectReference`. */
export interface BackendObjectReference {
  /** @default "" (core) */
  readonly group?: string;
  /** @default "Service" */
  readonly kind?: string;
  readonly name: string;
  /** @default the route's namespace */
  readonly namespace?: string;
  /** Required when the referent is a Service. */
  readonly port?: number;
}

/** `BackendRef`: a weighted backend. */
export interface BackendRef extends BackendObjectReference {
  /** 0 to 1,000,000. @default 1 */
  readonly weight?: number;
}

/** `HTTPBackendRef` and `GRPCBackendRef`: a backend with its own filters. */
export interface HTTPBackendRef extends BackendRef {
  readonly filters?: readonly HTTPRouteFilter[];
}

/** `HTTPHeader`. */
export interface HTTPHeader {
  readonly name: string;
  readonly value: string;
}

/** `HTTPHeaderFilter` (RequestHeaderModifier and ResponseHeaderModifier). */
export interface HTTPHeaderFilter {
  readonly set?: readonly HTTPHeader[];
  readonly add?: readonly HTTPHeader[];
  readonly remove?: readonly string[];
}

/** `HTTPPathModifier`. */
export interface HTTPPathModifier {
  readonly type: "ReplaceFullPath" | "ReplacePrefixMatch";
  readonly replaceFullPath?: string;
  readonly replacePrefixMatch?: string;
}

/** `HTTPRequestRedirectFilter`. */
export interface HTTPRequestRedirectFilter {
  /** @default the request's scheme */
  readonly scheme?: "http" | "https";
  /** @default the hostname of the request's Host header */
  readonly hostname?: string;
  readonly path?: HTTPPathModifier;
  readonly port?: number;
  /** 301, 302, 303, 307 or 308. @default 302 */
  readonly statusCode?: number;
}

/** `HTTPURLRewriteFilter`. */
export interface HTTPURLRewriteFilter {
  readonly hostname?: string;
  readonly path?: HTTPPathModifier;
}

/** `HTTPRequestMirrorFilter`. */
export interface HTTPRequestMirrorFilter {
  readonly backendRef: BackendObjectReference;
  /** 0 to 100; exclusive with `fraction`. @default 100 */
  readonly percent?: number;
  readonly fraction?: { readonly numerator: number; readonly denominator?: number };
}

/** `HTTPCORSFilter`. */
export interface HTTPCORSFilter {
  readonly allowOrigins?: readonly string[];
  readonly allowCredentials?: boolean;
  readonly allowMethods?: readonly string[];
  readonly allowHeaders?: readonly string[];
  readonly exposeHeaders?: readonly string[];
  /** Seconds. @default 5 */
  readonly maxAge?: number;
}

/** `HTTPRouteFilter` (also the GRPCRoute filter, which allows a subset of the types). */
export interface HTTPRouteFilter {
  readonly type:
    | "RequestHeaderModifier"
    | "ResponseHeaderModifier"
    | "RequestRedirect"
    | "URLRewrite"
    | "RequestMirror"
    | "CORS"
    | "ExternalAuth"
    | "ExtensionRef";
  readonly requestHeaderModifier?: HTTPHeaderFilter;
  readonly responseHeaderModifier?: HTTPHeaderFilter;
  readonly requestRedirect?: HTTPRequestRedirectFilter;
  readonly urlRewrite?: HTTPURLRewriteFilter;
  readonly requestMirror?: HTTPRequestMirrorFilter;
  readonly cors?: HTTPCORSFilter;
  readonly extensionRef?: { readonly group: string; readonly kind: string; readonly name: string };
}

/** `HTTPPathMatch`. */
export interface HTTPPathMatch {
  /** @default "PathPrefix" */
  readonly type?: "Exact" | "PathPrefix" | "RegularExpression";
  /** @default "/" */
  readonly value?: string;
}

/** `HTTPHeaderMatch`, `HTTPQueryParamMatch` and `GRPCHeaderMatch`. */
export interface ValueMatch {
  /** @default "Exact" */
  readonly type?: "Exact" | "RegularExpression";
  readonly name: string;
  readonly value: string;
}

/** `HTTPRouteMatch`: every set field must hold. */
export interface HTTPRouteMatch {
  /** @default { type: "PathPrefix", value: "/" } */
  readonly path?: HTTPPathMatch;
  readonly headers?: readonly ValueMatch[];
  readonly queryParams?: readonly ValueMatch[];
  readonly method?: string;
}

/** `HTTPRouteTimeouts`: GEP-2257 durations such as `1h30m` or `500ms`. */
export interface HTTPRouteTimeouts {
  readonly request?: string;
  readonly backendRequest?: string;
}

/** `HTTPRouteRetry` (GEP-1731). */
export interface HTTPRouteRetry {
  readonly codes?: readonly number[];
  /** Retries after the first try. @default 2 (Istio) */
  readonly attempts?: number;
  readonly backoff?: string;
}

/** `HTTPRouteRule`. */
export interface HTTPRouteRule {
  readonly name?: string;
  /** @default [{ path: { type: "PathPrefix", value: "/" } }] */
  readonly matches?: readonly HTTPRouteMatch[];
  readonly filters?: readonly HTTPRouteFilter[];
  readonly backendRefs?: readonly HTTPBackendRef[];
  readonly timeouts?: HTTPRouteTimeouts;
  readonly retry?: HTTPRouteRetry;
}

/** `GRPCMethodMatch`. */
export interface GRPCMethodMatch {
  /** @default "Exact" */
  readonly type?: "Exact" | "RegularExpression";
  readonly service?: string;
  readonly method?: string;
}

/** `GRPCRouteMatch`. */
export interface GRPCRouteMatch {
  readonly method?: GRPCMethodMatch;
  readonly headers?: readonly ValueMatch[];
}

/** `GRPCRouteRule`. */
export interface GRPCRouteRule {
  readonly name?: string;
  readonly matches?: readonly GRPCRouteMatch[];
  readonly filters?: readonly HTTPRouteFilter[];
  readonly backendRefs?: readonly HTTPBackendRef[];
}

/** `TCPRouteRule`. */
export interface TCPRouteRule {
  readonly name?: string;
  readonly backendRefs?: readonly BackendRef[];
}

/** Fields every route kind shares. */
interface RouteCommon<K extends RouteKind, R> {
  readonly apiVersion: string;
  readonly kind: K;
  readonly metadata: RouteMeta;
  readonly spec: {
    readonly parentRefs?: readonly ParentReference[];
    /** Ignored for mesh routes (GEP-1294: hostnames SHOULD NOT influence mesh routing). */
    readonly hostnames?: readonly string[];
    readonly rules?: readonly R[];
  };
}

/** `HTTPRoute`. */
export type HTTPRoute = RouteCommon<"HTTPRoute", HTTPRouteRule>;
/** `GRPCRoute`. */
export type GRPCRoute = RouteCommon<"GRPCRoute", GRPCRouteRule>;
/** `TCPRoute`: exactly one rule. */
export type TCPRoute = RouteCommon<"TCPRoute", TCPRouteRule>;
/** Any route kind. */
export type Route = HTTPRoute | GRPCRoute | TCPRoute;

/** `ReferenceGrant` (v1beta1): lets routes in `from` namespaces refer to objects in its own. */
export interface ReferenceGrant {
  readonly apiVersion: string;
  readonly kind: "ReferenceGrant";
  readonly metadata: RouteMeta;
  readonly spec: {
    readonly from: readonly {
      readonly group: string;
      readonly kind: string;
      readonly namespace: string;
    }[];
    readonly to: readonly {
      readonly group: string;
      readonly kind: string;
      readonly name?: string;
    }[];
  };
}
