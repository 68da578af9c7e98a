/**
 * Binding decisions (hbone.md §3.1), after istio `pilot/pkg/serviceregistry/ambient/waypoints.go`:
 * which waypoint an object names (`fetchWaypointForTarget`), whether that is this waypoint, whether
 * its Gateway lets the object's namespace attach (`AllowsAttachmentFromNamespace`), and whether the
 * waypoint serves that kind of traffic (`fetchWaypointForService`, `fetchWaypointForWorkload`).
 */
import type { Problem } from "./model.ts";
import type { Inventory, Located } from "./_collect.ts";
import { problem } from "./_problem.ts";
import { matchesSelector } from "./_selector.ts";
import type { GatewayResource, LabelSelector, ListenerSpec } from "./resources.ts";

const USE_WAYPOINT = "istio.io/use-waypoint";
const USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace";
const WAYPOINT_FOR = "istio.io/waypoint-for";
const GATEWAY_MANAGED = "gateway.istio.io/managed";
/** `constants.ManagedGatewayMeshControllerLabel`, `ManagedGatewayEastWestControllerLabel` */
const MANAGED_GATEWAYS = ["istio.io-mesh-controller", "istio.io-eastwest-controller"];
const TRAFFIC_TYPES = ["service", "workload", "all", "none"];

type Labels = Readonly<Record<string, string>>;

/** This waypoint's Gateway as the binding rules see it. */
export interface OurWaypoint {
  readonly namespace: string;
  readonly name: string;
  /** `Gateway namespace/name` */
  readonly ref: string;
  readonly found: boolean;
  /** `istio.io/waypoint-for` of the Gateway, else of its GatewayClass, else `service`. */
  readonly trafficType: string;
  /** The `HBONE` listener on 15008 whose `allowedRoutes` gate attachment, if any. */
  readonly listener: string | undefined;
  readonly from: "Same" | "All" | "Selector";
  /** For `Selector`; absent matches no namespace. */
  readonly selector: LabelSelector | undefined;
}

/** An object that can use a waypoint. */
export interface BindTarget {
  readonly kind: "Service" | "ServiceEntry" | "Pod" | "WorkloadEntry";
  readonly namespace: string;
  /** `Kind namespace/name` */
  readonly ref: string;
  /** `metadata.labels`, where `istio.io/use-waypoint` is read. */
  readonly labels: Labels;
}

/**
 * Finds this waypoint's Gateway and reads its traffic type and attachment rules.
 *
 * @param inventory Valid resources
 * @param self Our Gateway's namespace and name
 * @param problems Receives a warning when the Gateway is missing or its waypoint-for is invalid
 */
export function findWaypoint(
  inventory: Inventory,
  self: { readonly namespace: string; readonly name: string },
  problems: Problem[],
): OurWaypoint {
  const ref = `Gateway ${self.namespace}/${self.name}`;
  const gateway = inventory.Gateway.find((g) =>
    g.namespace === self.namespace && g.name === self.name
  );
  if (!gateway) {
    problems.push(problem("warning", ref, "Gateway not found: nothing is bound to this waypoint"));
    return {
      ...self,
      ref,
      found: false,
      trafficType: "none",
      listener: undefined,
      from: "Same",
      selector: undefined,
    };
  }
  const trafficType = trafficTypeOf(gateway, inventory);
  if (!TRAFFIC_TYPES.includes(trafficType)) {
    const message = `Invalid label: ${WAYPOINT_FOR} is "${trafficType}" ` +
      `(want service, workload, all or none); nothing is bound`;
    problems.push(problem("warning", gateway.where, message, ref));
  }
  const listener = hboneListener(gateway.resource);
  const namespaces = listener?.allowedRoutes?.namespaces;
  return {
    ...self,
    ref,
    found: true,
    trafficType,
    listener: listener?.name,
    from: namespaces?.from ?? "Same",
    selector: namespaces?.selector,
  };
}

/**
 * Decides whether traffic to an object goes through this waypoint.
 *
 * @param target The Service, ServiceEntry, Pod or WorkloadEntry
 * @param namespaceLabels Labels of every Namespace object, by name
 * @param waypoint This waypoint
 * @returns Empty when bound, else a sentence saying why not
 */
export function unboundReason(
  target: BindTarget,
  namespaceLabels: ReadonlyMap<string, Labels>,
  waypoint: OurWaypoint,
): string {
  const isService = target.kind === "Service" || target.kind === "ServiceEntry";
  if (isService && MANAGED_GATEWAYS.includes(target.labels[GATEWAY_MANAGED])) {
    return `${target.ref} belongs to a waypoint or east-west gateway, which uses no waypoint`;
  }
  const nsLabels = namespaceLabels.get(target.namespace) ?? {};
  const named = namedWaypoint(target, nsLabels);
  if (typeof named === "string") return named;
  if (named.namespace !== waypoint.namespace || named.name !== waypoint.name) {
    return `${target.ref} uses waypoint ${named.namespace}/${named.name}${named.via}`;
  }
  if (!waypoint.found) {
    return `${target.ref} uses waypoint ${named.namespace}/${named.name}${named.via}, ` +
      `but ${waypoint.ref} is not in the config`;
  }
  if (!allowsNamespace(waypoint, target.namespace, nsLabels)) {
    const listener = waypoint.listener === undefined
      ? "(no HBONE listener on 15008, so from: Same)"
      : `listener ${waypoint.listener} (from: ${waypoint.from})`;
    return `${target.ref}: namespace ${target.namespace} not allowed by ${waypoint.ref} ${listener}`;
  }
  const wanted = isService ? "service" : "workload";
  if (waypoint.trafficType !== wanted && waypoint.trafficType !== "all") {
    return waypoint.trafficType === "none"
      ? `${target.ref}: waypoint-for is none, which binds nothing`
      : `${target.ref}: waypoint-for is ${waypoint.trafficType}, not ${wanted}`;
  }
  return "";
}

/** The waypoint an object names (its own label first, else its namespace's), or why none. */
function namedWaypoint(
  target: BindTarget,
  nsLabels: Labels,
): { namespace: string; name: string; via: string } | string {
  const own = target.labels[USE_WAYPOINT];
  if (own === "none") return `${target.ref} opts out with ${USE_WAYPOINT}: none`;
  if (own !== undefined) {
    return {
      name: own,
      namespace: target.labels[USE_WAYPOINT_NAMESPACE] ?? target.namespace,
      via: "",
    };
  }
  const inherited = nsLabels[USE_WAYPOINT];
  if (inherited === "none") {
    return `${target.ref}: namespace ${target.namespace} opts out with ${USE_WAYPOINT}: none`;
  }
  if (inherited === undefined) {
    return `${target.ref} has no ${USE_WAYPOINT} label, nor has namespace ${target.namespace}`;
  }
  return {
    name: inherited,
    namespace: nsLabels[USE_WAYPOINT_NAMESPACE] ?? target.namespace,
    via: ` (from namespace ${target.namespace})`,
  };
}

function allowsNamespace(waypoint: OurWaypoint, namespace: string, nsLabels: Labels): boolean {
  switch (waypoint.from) {
    case "All":
      return true;
    case "Selector":
      return matchesSelector(waypoint.selector, nsLabels);
    case "Same":
      return namespace === waypoint.namespace;
  }
}

/** Gateway label wins over the GatewayClass label; `service` when neither sets it. */
function trafficTypeOf(gateway: Located<GatewayResource>, inventory: Inventory): string {
  const className = gateway.resource.spec.gatewayClassName;
  const gatewayClass = inventory.GatewayClass.find((c) => c.name === className);
  return gateway.labels[WAYPOINT_FOR] ?? gatewayClass?.labels[WAYPOINT_FOR] ?? "service";
}

/** `makeAllowedRoutes`: the listener with protocol HBONE on port 15008. */
function hboneListener(gateway: GatewayResource): ListenerSpec | undefined {
  return gateway.spec.listeners.find((l) => l.protocol === "HBONE" && l.port === 15008);
}
