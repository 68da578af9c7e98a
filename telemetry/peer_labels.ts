/**
 * Who a peer is, as Istio's metrics describe it: workload, namespace, canonical service and
 * revision, app, version and cluster. Derived from the mesh model's {@link Workload} when it
 * knows the address, else from the `baggage` header ztunnel puts on its CONNECT (hbone.md §1.4).
 *
 * Invariants:
 * - A missing value is `unknown`; a known workload without a revision label gets `latest`, as
 *   Istio's metadata does.
 * - The workload name is the owner's name where the Pod's labels tell it (Deployment through
 *   `pod-template-hash`, StatefulSet, Job); file mode has no owner references, so any other
 *   Pod reports its own name.
 */
import type { Workload } from "../mesh/mod.ts";

/** The value Istio reports when it does not know one. */
export const UNKNOWN = "unknown";

/** A peer's metric labels, without its principal. */
export interface PeerLabels {
  readonly workload: string;
  readonly namespace: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly app: string;
  readonly version: string;
  readonly cluster: string;
}

/** A peer nothing is known about. */
export const UNKNOWN_PEER: PeerLabels = Object.freeze({
  workload: UNKNOWN,
  namespace: UNKNOWN,
  canonicalService: UNKNOWN,
  canonicalRevision: UNKNOWN,
  app: UNKNOWN,
  version: UNKNOWN,
  cluster: UNKNOWN,
});

/** Istio's label precedence (`pkg/model` canonical service and revision, app and version). */
const CANONICAL_NAME = ["service.istio.io/canonical-name", "app.kubernetes.io/name", "app"];
const CANONICAL_REVISION = [
  "service.istio.io/canonical-revision",
  "app.kubernetes.io/version",
  "version",
];
const APP = ["app.kubernetes.io/name", "app"];
const VERSION = ["app.kubernetes.io/version", "version"];

/**
 * Labels of a workload from the mesh model.
 *
 * @example
 * ```ts
 * peerFromWorkload(workload, "Kubernetes").canonicalService; // "reviews"
 * ```
 *
 * @param workload A Pod or WorkloadEntry of the snapshot
 * @param cluster The cluster the model describes
 * @returns Its labels
 */
export function peerFromWorkload(workload: Workload, cluster: string): PeerLabels {
  const labels = workload.labels;
  const name = workloadName(workload);
  return {
    workload: name,
    namespace: workload.namespace,
    canonicalService: firstLabel(labels, CANONICAL_NAME) ?? name,
    canonicalRevision: firstLabel(labels, CANONICAL_REVISION) ?? "latest",
    app: firstLabel(labels, APP) ?? UNKNOWN,
    version: firstLabel(labels, VERSION) ?? UNKNOWN,
    cluster,
  };
}

/**
 * The owner's name of a Pod where its labels tell it, else its own name: a Deployment's Pod is
 * `<deployment>-<pod-template-hash>-<5 chars>`, a StatefulSet's `<set>-<ordinal>`, a Job's
 * carries `job-name`.
 */
function workloadName(workload: Workload): string {
  const { name, labels } = workload;
  if (workload.kind !== "Pod") return name;
  const hash = labels["pod-template-hash"];
  if (hash) {
    const suffix = new RegExp(`-${escapeRegExp(hash)}-[a-z0-9]{5}$`);
    if (suffix.test(name)) return name.replace(suffix, "");
  }
  if (labels["statefulset.kubernetes.io/pod-name"] === name && /-\d+$/.test(name)) {
    return name.replace(/-\d+$/, "");
  }
  return labels["job-name"] || name;
}

/** The W3C baggage members of the `baggage` header ztunnel sends. */
const BAGGAGE_WORKLOAD = /^k8s\.([a-z]+)\.name$/;

/**
 * Labels of a source from ztunnel's `baggage` header: `k8s.namespace.name`,
 * `k8s.<deployment|cronjob|pod|job|...>.name`, `service.name` (canonical service),
 * `service.version` (canonical revision), `k8s.cluster.name`; `app.name`/`app.version` when
 * present, else app and version follow the canonical ones, as ztunnel reports a derived source.
 *
 * @param header The header value, possibly absent
 * @returns The labels, or undefined when the header names neither a workload nor a namespace
 */
export function peerFromBaggage(header: string | undefined): PeerLabels | undefined {
  if (!header) return undefined;
  const bag = parseBaggage(header);
  let workload: string | undefined;
  for (const [key, value] of bag) {
    const m = BAGGAGE_WORKLOAD.exec(key);
    if (m && m[1] !== "namespace" && m[1] !== "cluster" && m[1] !== "node") {
      workload ??= value;
    }
  }
  const namespace = bag.get("k8s.namespace.name");
  if (!workload && !namespace) return undefined;
  const service = bag.get("service.name");
  const revision = bag.get("service.version");
  return {
    workload: workload || UNKNOWN,
    namespace: namespace || UNKNOWN,
    canonicalService: service || workload || UNKNOWN,
    canonicalRevision: revision || "latest",
    app: bag.get("app.name") || service || UNKNOWN,
    version: bag.get("app.version") || revision || UNKNOWN,
    cluster: bag.get("k8s.cluster.name") || UNKNOWN,
  };
}

/** W3C Baggage limits: 180 members, 8192 bytes. */
const MAX_BAGGAGE_BYTES = 8192;
const MAX_BAGGAGE_MEMBERS = 180;

/**
 * Parses a W3C `baggage` header (`key=value;prop, key2=value2`): whitespace around members,
 * keys and values is dropped, properties are ignored, values are percent-decoded (kept raw when
 * the encoding is broken), and the first of a repeated key wins. Past the W3C limits the rest is
 * ignored.
 *
 * @param header The header value
 * @returns Keys to values, in order
 */
export function parseBaggage(header: string): Map<string, string> {
  const out = new Map<string, string>();
  const text = header.length > MAX_BAGGAGE_BYTES ? header.slice(0, MAX_BAGGAGE_BYTES) : header;
  for (const member of text.split(",")) {
    if (out.size >= MAX_BAGGAGE_MEMBERS) break;
    const semi = member.indexOf(";");
    const pair = semi < 0 ? member : member.slice(0, semi);
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    const key = pair.slice(0, eq).trim();
    if (!key || out.has(key)) continue;
    out.set(key, decode(pair.slice(eq + 1).trim()));
  }
  return out;
}

/**
 * The namespace of a SPIFFE id `spiffe://<td>/ns/<ns>/sa/<sa>`.
 *
 * @param identity The id
 * @returns The namespace, or undefined for another shape
 */
export function namespaceOfIdentity(identity: string): string | undefined {
  const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/.exec(identity);
  return m ? m[1] : undefined;
}

function decode(value: string): string {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function firstLabel(labels: Readonly<Record<string, string>>, keys: string[]): string | undefined {
  for (const k of keys) {
    const v = labels[k];
    if (v) return v;
  }
  return undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
