/**
 * Services and ServiceEntries as {@link Service}s: VIPs (unique across all of them), ports with
 * protocol and ready endpoints, hostname, and binding.
 */
import type { Problem, Service, ServicePort } from "./model.ts";
import type { Inventory, Located } from "./_collect.ts";
import {
  type EndpointContext,
  type EndpointDraft,
  serviceEndpoints,
  serviceEntryEndpoints,
} from "./_endpoints.ts";
import { canonicalIp } from "../tunnel/mod.ts";
import { problem } from "./_problem.ts";
import { portProtocol, serviceEntryProtocol } from "./protocol.ts";
import type { ServiceEntryResource, ServiceResource } from "./resources.ts";
import { unboundReason } from "./_waypoint.ts";
import type { WorkloadContext } from "./_workloads.ts";

/** A built service with every endpoint of each port, ready or not, in port order. */
export interface BuiltService {
  readonly service: Service;
  readonly endpoints: readonly (readonly EndpointDraft[])[];
}

/**
 * Builds every Service, then every ServiceEntry. One whose address another already has is an
 * error and is skipped.
 */
export function buildServices(
  inventory: Inventory,
  endpoints: EndpointContext,
  workloads: WorkloadContext,
  problems: Problem[],
): BuiltService[] {
  const owners = new Map<string, string>();
  const out: BuiltService[] = [];
  const claim = (located: Located<unknown>, addresses: readonly string[]): boolean => {
    const taken = addresses.find((address) => owners.has(address));
    if (taken === undefined) {
      for (const address of addresses) owners.set(address, located.ref);
      return true;
    }
    const message = `Duplicate address: ${taken} is already used by ${owners.get(taken)}`;
    problems.push(problem("error", located.where, message, located.ref));
    return false;
  };
  for (const service of inventory.Service) {
    const built = buildService(service, endpoints, workloads);
    if (claim(service, built.service.addresses)) out.push(built);
  }
  for (const entry of inventory.ServiceEntry) {
    const built = buildServiceEntry(entry, endpoints, workloads, problems);
    if (claim(entry, built.service.addresses)) out.push(built);
  }
  return out;
}

function buildService(
  located: Located<ServiceResource>,
  context: EndpointContext,
  workloads: WorkloadContext,
): BuiltService {
  const spec = located.resource.spec ?? {};
  const ips = [spec.clusterIP, ...(spec.clusterIPs ?? [])].flatMap((ip) => {
    const canonical = canonicalIp(ip ?? "");
    return canonical === undefined ? [] : [canonical];
  });
  // The waypoint carries TCP only; UDP and SCTP ports are not its business (as Envoy skips UDP).
  const specPorts = (spec.ports ?? []).filter((p) => (p.protocol ?? "TCP") === "TCP");
  const endpoints = specPorts.map((port) => serviceEndpoints(located, port, context));
  const ports = specPorts.map((port, i) =>
    servicePort(port.name ?? "", port.port, portProtocol(port), endpoints[i])
  );
  const hostname = `${located.name}.${located.namespace}.svc.cluster.local`;
  return {
    service: service(located, "Service", hostname, [...new Set(ips)], ports, workloads),
    endpoints,
  };
}

function buildServiceEntry(
  located: Located<ServiceEntryResource>,
  context: EndpointContext,
  workloads: WorkloadContext,
  problems: Problem[],
): BuiltService {
  const { spec } = located.resource;
  const addresses = seAddresses(located, problems);
  for (const [i, endpoint] of (spec.endpoints ?? []).entries()) {
    if (canonicalIp(endpoint.address ?? "") !== undefined) continue;
    const message = `Unsupported address: spec.endpoints[${i}].address ${endpoint.address} ` +
      "is not an IP; DNS endpoints are not resolved, so it is left out";
    problems.push(problem("warning", located.where, message, located.ref));
  }
  const specPorts = spec.ports ?? [];
  const endpoints = specPorts.map((port) => serviceEntryEndpoints(located, port, context));
  const ports = specPorts.map((port, i) =>
    servicePort(port.name ?? "", port.number, serviceEntryProtocol(port.protocol), endpoints[i])
  );
  return {
    service: service(located, "ServiceEntry", spec.hosts[0], addresses, ports, workloads),
    endpoints,
  };
}

/** ServiceEntry addresses; a CIDR wider than one address gives no VIP and is skipped. */
function seAddresses(located: Located<ServiceEntryResource>, problems: Problem[]): string[] {
  const out: string[] = [];
  for (const [i, text] of (located.resource.spec.addresses ?? []).entries()) {
    const [ip, bits] = text.split("/");
    const canonical = canonicalIp(ip) as string;
    const single = bits === undefined || bits === (canonical.includes(":") ? "128" : "32");
    if (single && !out.includes(canonical)) out.push(canonical);
    if (single) continue;
    const message =
      `Unsupported address: spec.addresses[${i}] ${text} is a CIDR, not a VIP; skipped`;
    problems.push(problem("warning", located.where, message, located.ref));
  }
  return out;
}

function servicePort(
  name: string,
  port: number,
  protocol: ServicePort["protocol"],
  endpoints: readonly EndpointDraft[],
): ServicePort {
  return {
    name,
    port,
    protocol,
    endpoints: endpoints.filter((d) => d.ready).map((d) => d.endpoint),
  };
}

function service(
  located: Located<unknown>,
  kind: Service["kind"],
  hostname: string,
  addresses: string[],
  ports: ServicePort[],
  workloads: WorkloadContext,
): Service {
  const target = { kind, namespace: located.namespace, ref: located.ref, labels: located.labels };
  const reason = unboundReason(target, workloads.namespaceLabels, workloads.waypoint);
  return {
    kind,
    namespace: located.namespace,
    name: located.name,
    hostname,
    addresses,
    ports,
    bound: reason === "",
    unboundReason: reason,
  };
}
