/**
 * Finding a service port by host name, for the calls the waypoint makes itself (ext_authz
 * providers, Wasm `proxy_http_call`): these name services by host, not by VIP.
 */
import type { ServicePort, Snapshot } from "../mesh/mod.ts";

/**
 * The port of the service with this host name.
 *
 * @param mesh The snapshot to search
 * @param host FQDN (`name.ns.svc.cluster.local`) or a ServiceEntry host
 * @param port The service port; without one, the service's first port
 * @param namespace Restricts the search to one namespace (`ns/host` provider syntax)
 * @returns The port, or undefined when no service or port matches
 */
export function servicePortByHost(
  mesh: Snapshot,
  host: string,
  port?: number,
  namespace?: string,
): ServicePort | undefined {
  for (const s of mesh.servicesByName.values()) {
    if (s.hostname !== host || (namespace && s.namespace !== namespace)) continue;
    return port === undefined ? s.ports[0] : s.ports.find((p) => p.port === port);
  }
  return undefined;
}
