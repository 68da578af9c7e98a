/**
 * Small shape checks for the manifests in `deploy/`: known kinds, the fields each kind needs, and
 * the cross-references Kubernetes only checks at run time (selectors, named ports, probes, RBAC).
 * Each check returns problems as text naming the file, kind/name and field; none means fine.
 */
import { parseAllDocuments } from "yaml";

/** One parsed document and where it came from. */
export interface Manifest {
  readonly file: string;
  // deno-lint-ignore no-explicit-any
  readonly doc: any;
}

/** apiVersion of each kind we ship, and the fields (dotted paths) it must have. */
const KINDS: Readonly<Record<string, { apiVersion: string; required: readonly string[] }>> = {
  Kustomization: { apiVersion: "kustomize.config.k8s.io/v1beta1", required: ["resources"] },
  GatewayClass: {
    apiVersion: "gateway.networking.k8s.io/v1",
    required: ["metadata.name", "spec.controllerName"],
  },
  Gateway: {
    apiVersion: "gateway.networking.k8s.io/v1",
    required: ["metadata.name", "spec.gatewayClassName", "spec.listeners"],
  },
  ServiceAccount: { apiVersion: "v1", required: ["metadata.name"] },
  ClusterRole: { apiVersion: "rbac.authorization.k8s.io/v1", required: ["metadata.name", "rules"] },
  ClusterRoleBinding: {
    apiVersion: "rbac.authorization.k8s.io/v1",
    required: ["metadata.name", "roleRef.name", "subjects"],
  },
  Deployment: {
    apiVersion: "apps/v1",
    required: [
      "metadata.name",
      "spec.selector.matchLabels",
      "spec.template.metadata.labels",
      "spec.template.spec.containers",
    ],
  },
  Service: { apiVersion: "v1", required: ["metadata.name", "spec.selector", "spec.ports"] },
  PodDisruptionBudget: {
    apiVersion: "policy/v1",
    required: ["metadata.name", "spec.selector.matchLabels"],
  },
  HorizontalPodAutoscaler: {
    apiVersion: "autoscaling/v2",
    required: ["metadata.name", "spec.scaleTargetRef.name", "spec.maxReplicas"],
  },
};

/**
 * Parses every document of the YAML files in a folder.
 *
 * @throws Error naming the file on a YAML error
 */
export async function readManifests(dir: string): Promise<Manifest[]> {
  const out: Manifest[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !/\.ya?ml$/.test(entry.name)) continue;
    const text = await Deno.readTextFile(`${dir}/${entry.name}`);
    for (const d of parseAllDocuments(text)) {
      if (d.errors.length > 0) throw new Error(`${entry.name}: ${d.errors[0].message}`);
      if (d.contents !== null) out.push({ file: entry.name, doc: d.toJS() });
    }
  }
  return out.sort((a, b) => a.file.localeCompare(b.file));
}

/** `file: Kind name` for messages. */
export function where(m: Manifest): string {
  return `${m.file}: ${m.doc?.kind} ${m.doc?.metadata?.name ?? ""}`.trimEnd();
}

/** The value at a dotted path, or undefined. */
export function at(doc: unknown, path: string): unknown {
  // deno-lint-ignore no-explicit-any
  return path.split(".").reduce((v: any, k) => v?.[k], doc);
}

/** Known kind, its apiVersion, and its required fields. */
export function checkShape(m: Manifest): string[] {
  const spec = KINDS[m.doc?.kind];
  if (!spec) return [`${where(m)}: unknown kind`];
  const problems = m.doc.apiVersion === spec.apiVersion
    ? []
    : [`${where(m)}: apiVersion ${m.doc.apiVersion}, want ${spec.apiVersion}`];
  for (const path of spec.required) {
    const v = at(m.doc, path);
    if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) {
      problems.push(`${where(m)}: ${path} is missing`);
    }
  }
  return problems;
}

/** Every `key: value` of `selector` is among `labels`. */
export function selects(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** A port reference (number or name) that matches none of the container ports, as text. */
export function unknownPort(
  ref: number | string,
  // deno-lint-ignore no-explicit-any
  containerPorts: readonly any[],
): string | undefined {
  const hit = containerPorts.some((p) =>
    typeof ref === "number" ? p.containerPort === ref : p.name === ref
  );
  return hit ? undefined : String(ref);
}

/**
 * Whether RBAC rules grant `verbs` on `resource` of `group`.
 *
 * @param rules ClusterRole rules
 */
export function grants(
  // deno-lint-ignore no-explicit-any
  rules: readonly any[],
  group: string,
  resource: string,
  verbs: readonly string[],
): boolean {
  const allowed = new Set<string>();
  for (const r of rules) {
    if (r.apiGroups?.includes(group) && r.resources?.includes(resource)) {
      for (const v of r.verbs ?? []) allowed.add(v);
    }
  }
  return verbs.every((v) => allowed.has(v) || allowed.has("*"));
}
