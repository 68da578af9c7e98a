/**
 * Where a TCP connection goes (pure): the destination itself, or the backend a TCPRoute picks by
 * weight for the service port (Gateway API TCPRoute, l7.md §6.9).
 */
import type { Destination } from "../mesh/mod.ts";
import { pickBackend } from "../routes/mod.ts";
import type { ProxyConfig } from "./config.ts";
import { describe, endpointsOf, type TcpTarget } from "./outbound.ts";

/**
 * The endpoints a TCP connection may use.
 *
 * @param config Routes of the current config
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
          label: `TCPRoute ${route.route.namespace}/${route.route.name}: ${backend.reason}`,
        };
      }
      const s = backend.service;
      return {
        endpoints: backend.port.endpoints,
        label: `${s.kind} ${s.namespace}/${s.name}:${backend.port.port}`,
      };
    }
  }
  return { endpoints: endpointsOf(destination), label: describe(destination) };
}
