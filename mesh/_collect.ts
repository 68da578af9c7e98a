/**
 * First pass of a build: sorts documents by kind, checks each one we read, defaults namespaces,
 * and refuses a second resource with the same kind and namespace/name. What comes out is valid.
 */
import type { Problem } from "./model.ts";
import { checkResource } from "./_check.ts";
import { problem, whereOf } from "./_problem.ts";
import {
  type EndpointSliceResource,
  type GatewayClassResource,
  type GatewayResource,
  isClusterScoped,
  kindUse,
  type NamespaceResource,
  type ObjectMeta,
  type PodResource,
  type ReadKind,
  type ServiceEntryResource,
  type ServiceResource,
  type SourceDoc,
  type WorkloadEntryResource,
} from "./resources.ts";

/** The resource type of each kind we read. */
export interface ResourceOf {
  Namespace: NamespaceResource;
  Service: ServiceResource;
  Pod: PodResource;
  EndpointSlice: EndpointSliceResource;
  ServiceEntry: ServiceEntryResource;
  WorkloadEntry: WorkloadEntryResource;
  Gateway: GatewayResource;
  GatewayClass: GatewayClassResource;
}

/** A valid resource with its defaulted namespace and its location. */
export interface Located<T> {
  readonly resource: T;
  /** `metadata.namespace`, or `default`; empty for cluster-scoped kinds. */
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** `Kind namespace/name`, or `Kind name` for cluster-scoped kinds. */
  readonly ref: string;
  /** `file:line` */
  readonly where: string;
}

/** Valid resources by kind, in document order. */
export type Inventory = { readonly [K in ReadKind]: Located<ResourceOf[K]>[] };

/**
 * Sorts, checks and de-duplicates documents.
 *
 * @param documents Parsed documents in load order
 * @param problems Receives one problem per invalid, duplicate or unknown document
 * @returns The valid resources we read, by kind
 */
export function collect(documents: readonly SourceDoc[], problems: Problem[]): Inventory {
  const inventory: { [K in ReadKind]: Located<ResourceOf[K]>[] } = {
    Namespace: [],
    Service: [],
    Pod: [],
    EndpointSlice: [],
    ServiceEntry: [],
    WorkloadEntry: [],
    Gateway: [],
    GatewayClass: [],
  };
  const seen = new Map<string, string>();
  for (const doc of documents) {
    const { apiVersion, kind } = doc.object;
    const use = kindUse(apiVersion, kind);
    if (use.use === "unknown") {
      const message = `Unknown kind: ${kind} (apiVersion ${apiVersion}) is ignored`;
      problems.push(problem("warning", whereOf(doc), message));
    }
    if (use.use !== "read") continue;
    const located = locate(use.kind, doc);
    const reasons = checkResource(use.kind, doc.object);
    for (const reason of reasons) {
      problems.push(problem("error", located.where, reason, located.ref));
    }
    if (reasons.length > 0) continue;
    const key = `${apiVersion.split("/")[0]} ${located.ref}`;
    const first = seen.get(key);
    if (first !== undefined) {
      const message = `Duplicate resource: ${located.ref} is already defined at ${first}`;
      problems.push(problem("error", located.where, message, located.ref));
      continue;
    }
    seen.set(key, located.where);
    (inventory[use.kind] as Located<unknown>[]).push(located);
  }
  return inventory;
}

function locate(kind: ReadKind, doc: SourceDoc): Located<never> {
  // Shape is only trusted after checkResource; read defensively here.
  const meta = (doc.object.metadata ?? {}) as Partial<ObjectMeta>;
  const name = typeof meta.name === "string" && meta.name !== "" ? meta.name : "(unnamed)";
  const clusterScoped = isClusterScoped(kind);
  const namespace = clusterScoped
    ? ""
    : typeof meta.namespace === "string" && meta.namespace !== ""
    ? meta.namespace
    : "default";
  return {
    resource: doc.object as never,
    namespace,
    name,
    labels: meta.labels ?? {},
    ref: clusterScoped ? `${kind} ${name}` : `${kind} ${namespace}/${name}`,
    where: whereOf(doc),
  };
}
