/**
 * Where a TCP connection goes (pure): the destination itself, or the backend a TCPRoute picks by
 * weight for the service port (Gateway API TCPRoute, l7.md §6.9), with the load-balancing policy
 * of the service port the endpoints belong to.
 */
import type { Destination } from "../mesh/mod.ts";
import { pickBackend } from "../routes/mod.ts";
import type { ProxyConfig } from "./config.ts";
import { describe, endpointsOf, type TcpTarget } from "./outbound.ts";

/**
 * The endpoints a TCP connection may use.
 *
 * @param config Routes and load-balancing policies of the current config
 * @param destination The bound destination
 * @param random Randomness for weighted backends
 * @returns The target; a route whose backend cannot be used gives no endpoints (the caller's 503)
 */
export function tcpTarget(
  config: ProxyConfig,
  destination: Destination,
  random: () => number,
): TcpTarget {
  if (destination.kind === "service") {
    const { service, port } = destination;
    const route = config.routes.tcpRoutesFor(`${service.namespace}/${service.name}`, port.port);
    if (route) {
      const backend = pickBackend(route, random);
      if (backend.kind === "error") {
        return {
          endpoints: [],
          lbPolicy: "LEAST_REQUEST",
          label: `TCPRoute ${route.route.namespace}/${route.route.name}: ${backend.reason}`,
        };
      }
      const s = backend.service;
      return {
        endpoints: backend.port.endpoints,
        lbPolicy: config.lb.lbPolicyFor(s.hostname, backend.port.port),
        label: `${s.kind} ${s.namespace}/${s.name}:${backend.port.port}`,
      };
    }
    return {
      endpoints: port.endpoints,
      lbPolicy: config.lb.lbPolicyFor(service.hostname, port.port),
      label: describe(destination),
    };
  }
  return {
    endpoints: endpointsOf(destination),
    lbPolicy: "LEAST_REQUEST",
    label: describe(destination),
  };
}
