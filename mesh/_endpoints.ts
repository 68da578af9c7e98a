/**
 * Endpoints of one Service or ServiceEntry port, ready or not (readiness is kept so the builder
 * can learn workload port protocols from unready endpoints too).
 *
 * Service: from its EndpointSlices when any exists, else from the Pods and WorkloadEntries its
 * selector matches. ServiceEntry: inline `endpoints`, else workloads its `workloadSelector`
 * matches. Target ports are resolved per endpoint.
 */
import type { Endpoint } from "./model.ts";
import type { Located } from "./_collect.ts";
import { canonicalIp } from "../tunnel/mod.ts";
import type { LabelIndex } from "./_label_index.ts";
import type {
  EndpointSliceResource,
  ServiceEntryPortSpec,
  ServiceEntryResource,
  ServicePortSpec,
  ServiceResource,
} from "./resources.ts";
import { type Candidate, spiffeIdentity } from "./_workloads.ts";

/** An endpoint and whether it may get traffic. */
export interface EndpointDraft {
  readonly endpoint: Endpoint;
  readonly ready: boolean;
}

/** What endpoint resolution looks things up in. */
export interface EndpointContext {
  readonly trustDomain: string;
  /** Pods and WorkloadEntries with an address, in a stable order, by namespace and label. */
  readonly selectable: LabelIndex<Candidate>;
  readonly byAddress: ReadonlyMap<string, Candidate>;
  /** By `Kind namespace/name`. */
  readonly byRef: ReadonlyMap<string, Candidate>;
  /** EndpointSlices by the `namespace/name` of their `kubernetes.io/service-name`. */
  readonly slices: ReadonlyMap<string, readonly Located<EndpointSliceResource>[]>;
}

/**
 * Endpoints of one Service port.
 *
 * @param service The Service
 * @param port One of its ports
 * @param context Lookups
 * @returns Endpoints, without duplicates of address and port
 */
export function serviceEndpoints(
  service: Located<ServiceResource>,
  port: ServicePortSpec,
  context: EndpointContext,
): EndpointDraft[] {
  const slices = context.slices.get(`${service.namespace}/${service.name}`);
  if (slices) return dedupe(slices.flatMap((slice) => sliceEndpoints(slice, port, context)));
  // No dedupe: one endpoint per workload, and no two workloads share a primary address.
  const selector = service.resource.spec?.selector;
  return context.selectable.select(service.namespace, selector).flatMap((candidate) => {
    const target = serviceTargetPort(candidate, port);
    return target === undefined ? [] : [fromCandidate(candidate, target)];
  });
}

/**
 * Endpoints of one ServiceEntry port. Inline endpoints whose address is not an IP are left out.
 *
 * @param entry The ServiceEntry
 * @param port One of its ports
 * @param context Lookups
 * @returns Endpoints, without duplicates of address and port
 */
export function serviceEntryEndpoints(
  entry: Located<ServiceEntryResource>,
  port: ServiceEntryPortSpec,
  context: EndpointContext,
): EndpointDraft[] {
  const { spec } = entry.resource;
  const fallback = port.targetPort ?? port.number;
  if (spec.endpoints) {
    return dedupe(spec.endpoints.flatMap((inline) => {
      const address = canonicalIp(inline.address ?? "");
      if (address === undefined) return [];
      const serviceAccount = inline.serviceAccount || "default";
      const endpoint: Endpoint = {
        address,
        port: namedPort(inline.ports, port.name) ?? fallback,
        identity: spiffeIdentity(context.trustDomain, entry.namespace, serviceAccount),
        workload: { kind: "ServiceEntry", namespace: entry.namespace, name: entry.name },
      };
      return [{ endpoint, ready: true }];
    }));
  }
  // No dedupe, as for a Service selector.
  const selector = spec.workloadSelector?.labels;
  return context.selectable.select(entry.namespace, selector).map((candidate) => {
    const ports = candidate.ref.kind === "WorkloadEntry" ? candidate.namedPorts : undefined;
    return fromCandidate(candidate, namedPort(ports, port.name) ?? fallback);
  });
}

function sliceEndpoints(
  slice: Located<EndpointSliceResource>,
  port: ServicePortSpec,
  context: EndpointContext,
): EndpointDraft[] {
  const { resource } = slice;
  const slicePort = resource.ports?.find((p) => (p.name ?? "") === (port.name ?? ""))?.port;
  if (resource.addressType === "FQDN" || slicePort === undefined) return [];
  return (resource.endpoints ?? []).map((item) => {
    const address = canonicalIp(item.addresses[0]) as string;
    const target = item.targetRef;
    const namespace = target?.namespace || slice.namespace;
    const byRef = target?.kind && target.name
      ? context.byRef.get(`${target.kind} ${namespace}/${target.name}`)
      : undefined;
    const candidate = byRef ?? context.byAddress.get(address);
    const endpoint: Endpoint = {
      address,
      port: slicePort,
      identity: candidate?.identity ?? spiffeIdentity(context.trustDomain, namespace, "default"),
      workload: candidate?.ref ?? { kind: "Pod", namespace, name: target?.name || address },
    };
    return { endpoint, ready: item.conditions?.ready !== false };
  });
}

/**
 * A Service port's target on one workload. Pod: a named targetPort is the container port of
 * that name (none: not an endpoint). WorkloadEntry: its `ports[servicePortName]` first.
 */
function serviceTargetPort(candidate: Candidate, port: ServicePortSpec): number | undefined {
  const { targetPort } = port;
  if (candidate.ref.kind === "WorkloadEntry") {
    const own = namedPort(candidate.namedPorts, port.name);
    if (own !== undefined) return own;
  }
  if (typeof targetPort === "string") return namedPort(candidate.namedPorts, targetPort);
  return targetPort ?? port.port;
}

function namedPort(
  ports: Readonly<Record<string, number>> | undefined,
  name: string | undefined,
): number | undefined {
  return ports && name !== undefined && Object.hasOwn(ports, name) ? ports[name] : undefined;
}

function fromCandidate(candidate: Candidate, port: number): EndpointDraft {
  const endpoint: Endpoint = {
    address: candidate.addresses[0],
    port,
    identity: candidate.identity,
    workload: candidate.ref,
  };
  return { endpoint, ready: candidate.ready };
}

function dedupe(drafts: EndpointDraft[]): EndpointDraft[] {
  const seen = new Set<string>();
  return drafts.filter(({ endpoint }) => {
    const key = `${endpoint.address}|${endpoint.port}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
