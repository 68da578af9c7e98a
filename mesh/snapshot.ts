/**
 * Builds the immutable {@link Snapshot} from parsed documents: validates them, decides binding to
 * this waypoint, resolves endpoints and indexes services and workloads by address and name.
 * Pure: no I/O, no clock; the same documents and options give the same snapshot.
 */
import type { PortProtocol, Problem, Service, Snapshot, WaypointSelf, Workload } from "./model.ts";
import { collect, type Inventory, type Located } from "./_collect.ts";
import type { EndpointContext } from "./_endpoints.ts";
import { deepFreeze, FrozenMap } from "./_freeze.ts";
import { LabelIndex } from "./_label_index.ts";
import { problem } from "./_problem.ts";
import type { EndpointSliceResource, SourceDoc } from "./resources.ts";
import { buildServices, type BuiltService } from "./_services.ts";
import { findWaypoint } from "./_waypoint.ts";
import { buildCandidates, type Candidate } from "./_workloads.ts";

const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/** Who we are and which version the snapshot gets. */
export interface BuildOptions {
  /** Namespace of this waypoint's Gateway. */
  readonly namespace: string;
  /** Name of this waypoint's Gateway. */
  readonly name: string;
  /** @default "cluster.local" */
  readonly trustDomain?: string;
  /** Other trust domains accepted from peers. @default [] */
  readonly trustDomainAliases?: readonly string[];
  readonly version: number;
}

/** A snapshot and every problem met while building it. */
export interface BuildResult {
  readonly snapshot: Snapshot;
  /** Errors (the resource was skipped) and warnings, in document order. */
  readonly problems: readonly Problem[];
}

/**
 * Builds a snapshot. Invalid or duplicate resources are reported and skipped; the rest stays.
 *
 * @example
 * ```ts
 * const { documents } = parseConfigText(yamlText, "mesh.yaml");
 * const { snapshot, problems } = buildSnapshot(documents, { namespace: "demo", name: "waypoint", version: 1 });
 * ```
 * @param documents Parsed documents, as from `readConfig`
 * @param options This waypoint's Gateway, trust domain and the version to stamp
 * @returns The frozen snapshot and the problems found
 */
export function buildSnapshot(documents: readonly SourceDoc[], options: BuildOptions): BuildResult {
  const problems: Problem[] = [];
  const inventory = collect(documents, problems);
  const self = selfOf(options);
  const waypoint = findWaypoint(inventory, self, problems);
  const namespaceLabels = new Map(inventory.Namespace.map((ns) => [ns.name, ns.labels]));
  const context = { trustDomain: self.trustDomain, waypoint, namespaceLabels };
  const candidates = buildCandidates(inventory, context, problems).sort(byRef);
  const endpoints = endpointContext(inventory, candidates, self.trustDomain);
  const services = buildServices(inventory, endpoints, context, problems);
  const workloads = finishWorkloads(candidates, services);
  const snapshot: Snapshot = {
    version: options.version,
    self,
    gatewayFound: waypoint.found,
    servicesByAddress: new FrozenMap(
      services.flatMap(({ service }) => service.addresses.map((a) => [a, service] as const)),
    ),
    servicesByName: new FrozenMap(servicesByName(services, problems)),
    workloadsByAddress: new FrozenMap(workloads),
    problems: [...problems],
  };
  return { snapshot: deepFreeze(snapshot), problems: Object.freeze([...problems]) };
}

/**
 * The snapshot before any config is loaded: version 0, nothing bound.
 *
 * @param options This waypoint's Gateway and trust domain; `version` is ignored
 */
export function emptySnapshot(options: Omit<BuildOptions, "version">): Snapshot {
  return deepFreeze({
    version: 0,
    self: selfOf(options),
    gatewayFound: false,
    servicesByAddress: new FrozenMap<string, Service>(),
    servicesByName: new FrozenMap<string, Service>(),
    workloadsByAddress: new FrozenMap<string, Workload>(),
    problems: [],
  });
}

function selfOf(options: Omit<BuildOptions, "version">): WaypointSelf {
  const trustDomain = options.trustDomain ?? "cluster.local";
  return {
    namespace: options.namespace,
    name: options.name,
    trustDomain,
    trustDomains: [...new Set([trustDomain, ...(options.trustDomainAliases ?? [])])],
  };
}

function endpointContext(
  inventory: Inventory,
  candidates: readonly Candidate[],
  trustDomain: string,
): EndpointContext {
  const slices = new Map<string, Located<EndpointSliceResource>[]>();
  const sorted = [...inventory.EndpointSlice].sort((a, b) => compare(a.name, b.name));
  for (const slice of sorted) {
    const service = slice.labels[SERVICE_NAME_LABEL];
    if (service === undefined) continue;
    const key = `${slice.namespace}/${service}`;
    const list = slices.get(key);
    if (list === undefined) slices.set(key, [slice]);
    else list.push(slice);
  }
  return {
    trustDomain,
    selectable: new LabelIndex(
      candidates.filter((c) => c.addresses.length > 0),
      (c) => c.ref.namespace,
      (c) => c.selectable,
    ),
    byAddress: new Map(candidates.flatMap((c) => c.addresses.map((a) => [a, c] as const))),
    byRef: new Map(candidates.map((c) => [`${c.ref.kind} ${c.ref.namespace}/${c.ref.name}`, c])),
    slices,
  };
}

/** Adds port protocols, learnt from services in namespace/name order, and indexes by address. */
function finishWorkloads(
  candidates: readonly Candidate[],
  services: readonly BuiltService[],
): [string, Workload][] {
  const protocols = new Map<string, Map<number, PortProtocol>>();
  const ordered = services
    .map((built) => ({ built, key: `${built.service.namespace}/${built.service.name}` }))
    .sort((a, b) => compare(a.key, b.key) || compare(a.built.service.kind, b.built.service.kind));
  for (const { built: { service, endpoints } } of ordered) {
    service.ports.forEach((port, i) => {
      for (const { endpoint } of endpoints[i]) {
        let ports = protocols.get(endpoint.address);
        if (ports === undefined) protocols.set(endpoint.address, ports = new Map());
        if (!ports.has(endpoint.port)) ports.set(endpoint.port, port.protocol);
      }
    });
  }
  return candidates.flatMap(({ workload, addresses }) => {
    if (!workload) return [];
    const ports = addresses.flatMap((a) => [...(protocols.get(a) ?? [])]);
    const done: Workload = {
      ...workload,
      portProtocols: new FrozenMap(ports.sort((a, b) => a[0] - b[0])),
    };
    return addresses.map((address) => [address, done] as [string, Workload]);
  });
}

/** `namespace/name` → service; a Service keeps the name over a ServiceEntry that repeats it. */
function servicesByName(
  services: readonly BuiltService[],
  problems: Problem[],
): [string, Service][] {
  const byName = new Map<string, Service>();
  for (const { service } of services) {
    const key = `${service.namespace}/${service.name}`;
    const other = byName.get(key);
    if (other === undefined) {
      byName.set(key, service);
      continue;
    }
    const ref = `${service.kind} ${key}`;
    const message = `Name clash: ${ref} has the name of ${other.kind} ${key}, ` +
      `which keeps it in the name index (the ${service.kind} is still reachable by address)`;
    problems.push(problem("warning", ref, message, ref));
  }
  return [...byName].sort((a, b) => compare(a[0], b[0]));
}

function byRef(a: Candidate, b: Candidate): number {
  return compare(a.ref.kind, b.ref.kind) || compare(a.ref.namespace, b.ref.namespace) ||
    compare(a.ref.name, b.ref.name);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
