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
