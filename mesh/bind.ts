/**
 * The binding lookup of the request path: may this waypoint carry a CONNECT to `ip:port`, and
 * with which protocol and endpoints (hbone.md §3.2–3.4). A service VIP wins over a workload IP,
 * as in ztunnel's `build_request`.
 */
import type { Binding, Service, Snapshot, Workload } from "./model.ts";

/**
 * Resolves a CONNECT target against a snapshot.
 *
 * @example
 * ```ts
 * const target = parseAuthority(authority);
 * const binding = target && bind(holder.current, target.host, target.port);
 * if (!binding?.ok) refuse(404, binding?.reason ?? "bad authority");
 * ```
 * @param snapshot The snapshot this request keeps
 * @param address Canonical IP text (as from `parseAuthority`)
 * @param port Target port 1..65535
 * @returns The destination, or the reason this waypoint does not carry it
 */
export function bind(snapshot: Snapshot, address: string, port: number): Binding {
  const service = snapshot.servicesByAddress.get(address);
  if (service) return bindService(service, port);
  const workload = snapshot.workloadsByAddress.get(address);
  if (workload) return bindWorkload(workload, address, port);
  return { ok: false, reason: `no service or workload has address ${address}` };
}

function bindService(service: Service, port: number): Binding {
  if (!service.bound) return { ok: false, reason: service.unboundReason };
  const servicePort = service.ports.find((p) => p.port === port);
  if (!servicePort) {
    return {
      ok: false,
      reason: `${service.kind} ${service.namespace}/${service.name} has no port ${port}`,
    };
  }
  return { ok: true, destination: { kind: "service", service, port: servicePort } };
}

function bindWorkload(workload: Workload, address: string, port: number): Binding {
  if (!workload.bound) return { ok: false, reason: workload.unboundReason };
  const { kind, namespace, name, identity } = workload;
  return {
    ok: true,
    destination: {
      kind: "workload",
      workload,
      port,
      protocol: workload.portProtocols.get(port) ?? "unknown",
      endpoint: { address, port, identity, workload: { kind, namespace, name } },
    },
  };
}
