/**
 * Which traffic a policy attaches to in this waypoint (istio `policyattachment.go`
 * `ShouldAttachPolicy` for a waypoint proxy), and an index of compiled policies by the target a
 * request is addressed to, so the request path only walks what applies.
 *
 * Rules (waypoint proxies):
 * - no targetRefs: ignored (selector policies are ztunnel's; Istio's waypoint status says nothing);
 * - Gateway `<our name>` from our namespace, or GatewayClass `istio-waypoint` from the root
 *   namespace: all traffic through this waypoint;
 * - Service / ServiceEntry `<name>`: traffic to that service in the policy's own namespace.
 */
import type { Problem, Snapshot, WaypointSelf } from "../mesh/mod.ts";
import { located, type PolicyHead } from "./_resource.ts";

/** The destination a request was addressed to, as policy attachment sees it. */
export type PolicyTarget =
  | { readonly kind: "Service" | "ServiceEntry"; readonly namespace: string; readonly name: string }
  /** Workload-addressed traffic: only Gateway and GatewayClass policies apply. */
  | { readonly kind: "workload" };

/** What policy compilation needs to know about this waypoint. */
export interface AttachContext {
  readonly self: WaypointSelf;
  /** Mesh root namespace. @default "istio-system" (by the caller) */
  readonly rootNamespace: string;
  readonly mesh: Snapshot;
}

/** Where one policy applies. */
export interface Attachment {
  /** Applies to everything through this waypoint (Gateway or GatewayClass ref). */
  readonly wide: boolean;
  /** `Kind/ns/name` of the services it applies to. */
  readonly services: readonly string[];
}

const WAYPOINT_CLASS = "istio-waypoint";
const GATEWAY_GROUP = "gateway.networking.k8s.io";

/**
 * Decides where a policy applies, warning like Istio's `WaypointAccepted` status where a ref
 * cannot bind (GatewayClass outside the root namespace, a Service that does not exist).
 */
export function attachmentOf(
  head: PolicyHead,
  context: AttachContext,
  problems: Problem[],
): Attachment {
  let wide = false;
  const services: string[] = [];
  const { self, rootNamespace, mesh } = context;
  for (const ref of head.targetRefs) {
    if (
      (ref.group === "core" && ref.kind === "Service") ||
      (ref.group === "networking.istio.io" && ref.kind === "ServiceEntry")
    ) {
      const key = `${ref.kind}/${head.namespace}/${ref.name}`;
      services.push(key);
      const found = mesh.servicesByName.get(`${head.namespace}/${ref.name}`);
      if (!found || found.kind !== ref.kind) {
        problems.push(
          located(
            "warning",
            head,
            `Target not found: ${ref.path} names ${ref.kind} ${head.namespace}/${ref.name}, which is not in the config`,
          ),
        );
      }
    } else if (ref.group === GATEWAY_GROUP && ref.kind === "GatewayClass") {
      if (head.namespace !== rootNamespace) {
        problems.push(
          located(
            "warning",
            head,
            `Invalid target: ${ref.path} names a GatewayClass, which needs the policy in the root namespace ${rootNamespace}`,
          ),
        );
      } else if (ref.name !== WAYPOINT_CLASS) {
        problems.push(
          located(
            "warning",
            head,
            `Invalid target: ${ref.path} names GatewayClass ${ref.name}; waypoints only take ${WAYPOINT_CLASS}`,
          ),
        );
      } else {
        wide = true;
      }
    } else if (ref.group === GATEWAY_GROUP && ref.kind === "Gateway") {
      wide ||= head.namespace === self.namespace && ref.name === self.name &&
        (ref.namespace === "" || ref.namespace === self.namespace);
    }
  }
  return { wide, services };
}

/** Compiled policies by target: a merged value for each service with its own policies. */
export class TargetIndex<T> {
  /** The value for traffic no service-attached policy covers (and for workloads). */
  readonly wide: T;
  readonly #services: ReadonlyMap<string, ReadonlyMap<string, T>>;
  readonly #entries: ReadonlyMap<string, ReadonlyMap<string, T>>;

  private constructor(
    wide: T,
    services: ReadonlyMap<string, ReadonlyMap<string, T>>,
    serviceEntries: ReadonlyMap<string, ReadonlyMap<string, T>>,
  ) {
    this.wide = wide;
    this.#services = services;
    this.#entries = serviceEntries;
  }

  /**
   * Builds the index.
   *
   * @param entries Policies in evaluation order with their attachment
   * @param merge Builds the value for a list of policies (possibly empty)
   */
  static build<I, T>(
    entries: readonly { readonly attachment: Attachment; readonly item: I }[],
    merge: (items: I[]) => T,
  ): TargetIndex<T> {
    const wideAt = entries.flatMap((e, i) => e.attachment.wide ? [i] : []);
    const wide = merge(wideAt.map((i) => entries[i].item));
    const maps = {
      Service: new Map<string, Map<string, T>>(),
      ServiceEntry: new Map<string, Map<string, T>>(),
    };
    for (const [key, ownAt] of positionsByService(entries)) {
      const [kind, namespace, name] = key.split("/") as [
        "Service" | "ServiceEntry",
        string,
        string,
      ];
      const byNs = maps[kind];
      if (!byNs.has(namespace)) byNs.set(namespace, new Map());
      const items = mergePositions(wideAt, ownAt).map((i) => entries[i].item);
      byNs.get(namespace)!.set(name, merge(items));
    }
    return new TargetIndex(wide, maps.Service, maps.ServiceEntry);
  }

  /** The value that applies to a request's target; no allocation. */
  lookup(target: PolicyTarget): T {
    if (target.kind === "workload") return this.wide;
    const byNs = target.kind === "Service" ? this.#services : this.#entries;
    return byNs.get(target.namespace)?.get(target.name) ?? this.wide;
  }
}

/**
 * Positions of the entries that name each service, ascending (repeated when an entry names it
 * twice), keyed in order of first mention. One pass: filtering every entry for every service key
 * made a build with a policy per service quadratic.
 */
function positionsByService(
  entries: readonly { readonly attachment: Attachment }[],
): Map<string, number[]> {
  const positions = new Map<string, number[]>();
  entries.forEach((entry, i) => {
    for (const key of entry.attachment.services) {
      const list = positions.get(key);
      if (list === undefined) positions.set(key, [i]);
      else list.push(i);
    }
  });
  return positions;
}

/** The union of two ascending position lists, ascending, without repeats. */
function mergePositions(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0, j = 0;
  while (i < a.length || j < b.length) {
    const next = j >= b.length || (i < a.length && a[i] <= b[j]) ? a[i++] : b[j++];
    if (out[out.length - 1] !== next) out.push(next);
  }
  return out;
}
