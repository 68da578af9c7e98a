/**
 * Pods and WorkloadEntries as workloads: address, identity, readiness, binding, and the named
 * ports a Service or ServiceEntry resolves target ports with.
 */
import type { Problem, Workload, WorkloadRef } from "./model.ts";
import type { Inventory, Located } from "./_collect.ts";
import { canonicalIp } from "../tunnel/mod.ts";
import { problem } from "./_problem.ts";
import type { PodResource, WorkloadEntryResource } from "./resources.ts";
import { type OurWaypoint, unboundReason } from "./_waypoint.ts";

/** A workload before the protocols of its ports are known. */
export type WorkloadDraft = Omit<Workload, "portProtocols">;

/** A Pod or WorkloadEntry that a Service, ServiceEntry or EndpointSlice may point at. */
export interface Candidate {
  readonly ref: WorkloadRef & { readonly kind: Workload["kind"] };
  /** Every IP, primary first; empty for a Pod without an IP or a WorkloadEntry with a hostname. */
  readonly addresses: readonly string[];
  /** The workload record, when it has an address. */
  readonly workload: WorkloadDraft | undefined;
  readonly identity: string;
  /** Labels selectors match: Pod metadata labels, WorkloadEntry spec labels over metadata labels. */
  readonly selectable: Readonly<Record<string, string>>;
  readonly ready: boolean;
  /**
   * Pod: container port by container port name (for named targetPorts). WorkloadEntry: its
   * `ports`, endpoint port by service port name.
   */
  readonly namedPorts: Readonly<Record<string, number>>;
}

/** Context the workload builder shares with the service builder. */
export interface WorkloadContext {
  readonly trustDomain: string;
  readonly waypoint: OurWaypoint;
  readonly namespaceLabels: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

/**
 * Builds every Pod and WorkloadEntry as a candidate. A second workload with an address already
 * taken is an error and is skipped.
 *
 * @returns Candidates in document order (Pods first)
 */
export function buildCandidates(
  inventory: Inventory,
  context: WorkloadContext,
  problems: Problem[],
): Candidate[] {
  const owners = new Map<string, string>();
  const out: Candidate[] = [];
  const all = [
    ...inventory.Pod.map((pod) => [pod, podCandidate(pod, context)] as const),
    ...inventory.WorkloadEntry.map((entry) =>
      [entry, entryCandidate(entry, context, problems)] as const
    ),
  ];
  for (const [located, candidate] of all) {
    const taken = candidate.addresses.find((address) => owners.has(address));
    if (taken !== undefined) {
      const message = `Duplicate address: ${taken} is already used by ${owners.get(taken)}`;
      problems.push(problem("error", located.where, message, located.ref));
      continue;
    }
    for (const address of candidate.addresses) owners.set(address, located.ref);
    out.push(candidate);
  }
  return out;
}

/** `spiffe://<trust domain>/ns/<namespace>/sa/<service account>` (hbone.md §2.1). */
export function spiffeIdentity(
  trustDomain: string,
  namespace: string,
  serviceAccount: string,
): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

function podCandidate(pod: Located<PodResource>, context: WorkloadContext): Candidate {
  const { spec, status } = pod.resource;
  const addresses = unique([status?.podIP, ...(status?.podIPs ?? []).map((p) => p.ip)]);
  const serviceAccount = spec?.serviceAccountName || spec?.serviceAccount || "default";
  const finished = status?.phase === "Succeeded" || status?.phase === "Failed";
  const unready = (status?.conditions ?? []).some((c) =>
    c.type === "Ready" && c.status === "False"
  );
  const namedPorts: Record<string, number> = {};
  for (const container of spec?.containers ?? []) {
    for (const port of container.ports ?? []) {
      if (port.name && !(port.name in namedPorts)) namedPorts[port.name] = port.containerPort;
    }
  }
  return candidate(pod, "Pod", {
    addresses,
    serviceAccount,
    ready: !finished && !unready,
    selectable: pod.labels,
    namedPorts,
  }, context);
}

function entryCandidate(
  entry: Located<WorkloadEntryResource>,
  context: WorkloadContext,
  problems: Problem[],
): Candidate {
  const spec = entry.resource.spec ?? {};
  const address = spec.address === undefined ? undefined : canonicalIp(spec.address);
  if (spec.address !== undefined && address === undefined) {
    const message = `Unsupported address: spec.address ${spec.address} is not an IP; ` +
      "DNS workloads are not resolved, so it has no address";
    problems.push(problem("warning", entry.where, message, entry.ref));
  }
  return candidate(entry, "WorkloadEntry", {
    addresses: address === undefined ? [] : [address],
    serviceAccount: spec.serviceAccount || "default",
    ready: true,
    selectable: { ...entry.labels, ...spec.labels },
    namedPorts: spec.ports ?? {},
  }, context);
}

function candidate(
  located: Located<unknown>,
  kind: Workload["kind"],
  fields: Pick<Candidate, "addresses" | "ready" | "selectable" | "namedPorts"> & {
    serviceAccount: string;
  },
  context: WorkloadContext,
): Candidate {
  const ref = { kind, namespace: located.namespace, name: located.name };
  const identity = spiffeIdentity(context.trustDomain, located.namespace, fields.serviceAccount);
  const reason = unboundReason(
    { kind, namespace: located.namespace, ref: located.ref, labels: located.labels },
    context.namespaceLabels,
    context.waypoint,
  );
  const workload: WorkloadDraft | undefined = fields.addresses.length === 0 ? undefined : {
    ...ref,
    address: fields.addresses[0],
    serviceAccount: fields.serviceAccount,
    identity,
    labels: fields.selectable,
    bound: reason === "",
    unboundReason: reason,
    ready: fields.ready,
  };
  const { addresses, ready, selectable, namedPorts } = fields;
  return { ref, addresses, workload, identity, selectable, ready, namedPorts };
}

function unique(ips: (string | undefined)[]): string[] {
  const out: string[] = [];
  for (const ip of ips) {
    const canonical = ip === undefined ? undefined : canonicalIp(ip);
    if (canonical !== undefined && !out.includes(canonical)) out.push(canonical);
  }
  return out;
}
