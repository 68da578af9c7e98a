/**
 * @module
 * Routing: which backend and endpoint a request or connection goes to. Gateway API HTTPRoute,
 * GRPCRoute and TCPRoute (GAMMA mesh binding) are compiled at load into a frozen
 * {@link RouteTable} looked up by Service port; requests are matched by precedence, filters are
 * planned as plain data, backends are picked by weight, and retry and timeout policies are data
 * for the proxy to carry out. Endpoint load balancing lives here too: the policy per service
 * port comes from DestinationRules compiled into a frozen {@link LbPolicies} lookup, and one
 * {@link Balancer} carries out least request (the default), round robin or random.
 *
 * Must not: open sockets (the proxy does), read the clock, or keep mutable state beyond the
 * balancer's in-flight counts, ejections and round-robin cursors.
 */
export { type Balanced, Balancer, type LbPolicy, type Pick } from "./lb.ts";
export {
  compileDestinationRules,
  DESTINATION_RULE_API_VERSIONS,
  type LbCompileResult,
  type LbPolicies,
  NO_LB_POLICIES,
} from "./destination_rule.ts";
export type {
  GRPCRoute,
  HTTPRoute,
  ReferenceGrant,
  Route,
  RouteKind,
  RouteSourceDoc,
  TCPRoute,
} from "./resources.ts";
export { ROUTE_API_VERSIONS } from "./resources.ts";
export type {
  Backend,
  CompiledHttpRoutes,
  CompiledTcpRoute,
  Cors,
  Filter,
  GrpcMatch,
  HasBackends,
  HeaderModifier,
  HttpMatch,
  HttpRouteEntry,
  HttpRouteMatch,
  HttpRule,
  MirrorTarget,
  PathModifier,
  Redirect,
  RetryPolicy,
  Rewrite,
  RouteRef,
  RouteTable,
  ServiceBackend,
  Timeouts,
  WeightedBackend,
} from "./model.ts";
export { type CompileOptions, type CompileResult, compileRoutes } from "./compile.ts";
export { EMPTY_ROUTE_TABLE } from "./table.ts";
export { matchHttp, type MatchRequest } from "./match.ts";
export {
  type HeaderField,
  type MatchOption,
  modifyHeaders,
  modifyRequestHeaders,
  modifyResponseHeaders,
  planRequest,
  planResponse,
  type RedirectDecision,
  redirectRequest,
  requestForBackend,
  requestMirrors,
  type RequestPlan,
  rewritePath,
  rewriteRequest,
} from "./filters.ts";
export { type CorsDecision, corsDecision, isOriginAllowed } from "./cors.ts";
export { pickBackend } from "./backend.ts";
export { DEFAULT_RETRY, shouldRetry, type TryOutcome } from "./retry.ts";
