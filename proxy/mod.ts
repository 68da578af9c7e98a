/**
 * @module
 * The request path glue, like ztunnel's `src/proxy`: `inbound` takes one CONNECT through
 * identity, binding and planning to a TCP splice; `outbound` turns an endpoint into a pooled
 * tunnel. The only folder that wires `tunnel/`, `mesh/` and `routes/` together; it holds no policy
 * or routing logic itself.
 */
export {
  fromHbone,
  fromSandwich,
  inboundHandler,
  type InboundInputs,
  type InboundPlan,
  type InboundRejection,
  type InboundStream,
  planInbound,
} from "./inbound.ts";
export {
  endpointsOf,
  NoEndpointError,
  Outbound,
  type OutboundInputs,
  planUpstream,
  type TcpTarget,
  type TunnelOpener,
  type Upstream,
  type UpstreamContext,
} from "./outbound.ts";
export { buildForwarded, forwardedFor, nodeText } from "./forwarded.ts";
export {
  buildConfig,
  type ConfigOptions,
  dumpConfig,
  emptyConfig,
  type ProxyConfig,
} from "./config.ts";
export { HttpUpstreams, type HttpUpstreamsOptions } from "./http_pool.ts";
export { router, type RouterInputs } from "./router.ts";
export { type HttpInputs, serveHttp } from "./http_serve.ts";
export type { HttpCodec, HttpSession, RequestState } from "./http_state.ts";
export { type ForwardPlan, planHttp, type RespondPlan } from "./http_plan.ts";
export { tcpTarget } from "./tcp_plan.ts";
export { type DevHttpOptions, listenDevHttp, resolveHost } from "./dev_http.ts";
export { authnFilter, authzFilter, customAuthzFilter, policyTarget } from "./policy_filters.ts";
export { wasmFilter, type WasmFilterOptions } from "./wasm_filter.ts";
export { wasmGrpcCaller } from "./wasm_grpc_call.ts";
export { wasmHttpCaller } from "./wasm_http_call.ts";
export { ExtAuthz, type ExtAuthzInputs, type ExtAuthzVerdict } from "./ext_authz.ts";
export {
  DEFAULT_MESH_CONFIG,
  type ExtAuthzGrpcProvider,
  type ExtAuthzHttpProvider,
  type ExtAuthzProvider,
  type MeshConfig,
  type OtelTracingProvider,
  parseMeshConfig,
  readMeshConfig,
} from "./mesh_config.ts";
export * from "./check.ts";
