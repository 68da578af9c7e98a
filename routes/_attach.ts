/**
 * Which Service ports a route attaches to (l7.md §6.1; GEP-1294; Istio `conversion.go`
 * `referenceAllowed`, `listener_waypoint.go` `getVirtualServiceForWaypoint`).
 *
 * - `kind: Service` with group `""`/`core` (and Istio's `ServiceEntry` in `networking.istio.io`):
 *   that Service, on `port` only when set (and on the port named `sectionName` when set), else on
 *   every port. Only producer routes count: Istio waypoints use routes in the Service's namespace
 *   or in the waypoint's own namespace, so a consumer route from any other namespace does not
 *   attach (`NoMatchingParent`). A Service not bound to this waypoint still gets the route: it is
 *   simply never asked for, and the mesh loader reports binding problems.
 * - `kind: Gateway` naming our waypoint Gateway: every Service bound to this waypoint, on every
 *   port. Istio itself does not convert routes attached to a waypoint Gateway
 *   (`gateway_collection.go`: "Waypoint doesn't convert routes to VirtualServices"), so there such
 *   a route does nothing; we follow the project brief, which reads the parentRef as "everything this
 *   waypoint serves", like kgateway's waypoint. A `port` must then be the HBONE listener's 15008;
 *   `sectionName` is not checked. The listener's `allowedRoutes.namespaces.from` (default `Same`)
 *   decides which route namespaces may attach (`NotAllowedByListeners` otherwise): `All` lets any
 *   namespace in; `Selector` is read as `Same` here, as namespace labels are not at hand.
 * - Any other parent (another Gateway, another kind) is someone else's and is ignored silently.
 */
import type { Service, ServicePort, Snapshot } from "../mesh/model.ts";
import { GATEWAY_GROUP } from "./resources.ts";
import type { RouteReason } from "./_problems.ts";
import { integer, records, requiredText, text } from "./_read.ts";
import { isCore } from "./_backends.ts";

/** The HBONE listener port of a waypoint Gateway. */
const HBONE_PORT = 15008;

/** The two groups of parents, which never merge (GEP-1294). */
export type ParentGroup = "service" | "gateway";

/** One Service port a route attaches to. */
export interface Attachment {
  readonly group: ParentGroup;
  readonly service: Service;
  readonly port: ServicePort;
  /** Whether the parentRef named this port (by `port` or `sectionName`). */
  readonly explicitPort: boolean;
}

/** What attaching needs to know. */
export interface AttachContext {
  readonly mesh: Snapshot;
  readonly gateway: { readonly namespace: string; readonly name: string };
  readonly routeNamespace: string;
  /** Our Gateway's listener `allowedRoutes.namespaces.from`. @default "Same" */
  readonly allowedRoutesFrom?: "Same" | "All" | "Selector";
  readonly warn: (reason: RouteReason, detail: string) => void;
}

/**
 * Resolves a route's `parentRefs`.
 *
 * @param parentRefs `spec.parentRefs` as written
 * @param ctx Snapshot, our Gateway, the route's namespace and warnings
 * @returns Each attached Service port once per group
 * @throws RouteConfigError when a parentRef is malformed
 */
export function attachments(parentRefs: unknown, ctx: AttachContext): Attachment[] {
  const out = new Map<string, Attachment>();
  const add = (a: Attachment) => {
    const key = `${a.group} ${a.service.namespace}/${a.service.name}:${a.port.port}`;
    const seen = out.get(key);
    if (!seen || (a.explicitPort && !seen.explicitPort)) out.set(key, a);
  };
  for (const [ref, path] of records(parentRefs, "spec.parentRefs")) {
    const group = text(ref.group, `${path}.group`) ?? GATEWAY_GROUP;
    const kind = text(ref.kind, `${path}.kind`) ?? "Gateway";
    const parent = {
      path,
      name: requiredText(ref.name, `${path}.name`),
      namespace: text(ref.namespace, `${path}.namespace`) || ctx.routeNamespace,
      port: integer(ref.port, `${path}.port`, 1, 65535),
      sectionName: text(ref.sectionName, `${path}.sectionName`) || undefined,
    };
    if (
      (isCore(group) && kind === "Service") ||
      (group === "networking.istio.io" && kind === "ServiceEntry")
    ) {
      serviceParent({ ...parent, kind }, ctx).forEach(add);
    } else if (group === GATEWAY_GROUP && kind === "Gateway") {
      gatewayParent(parent, ctx).forEach(add);
    }
  }
  return [...out.values()];
}

interface Parent {
  readonly path: string;
  readonly name: string;
  readonly namespace: string;
  readonly port?: number;
  readonly sectionName?: string;
}

function serviceParent(parent: Parent & { kind: string }, ctx: AttachContext): Attachment[] {
  const key = `${parent.namespace}/${parent.name}`;
  const service = ctx.mesh.servicesByName.get(key);
  if (!service || service.kind !== parent.kind) {
    ctx.warn("NoMatchingParent", `${parent.path} ${parent.kind} ${key} not found`);
    return [];
  }
  if (ctx.routeNamespace !== service.namespace && ctx.routeNamespace !== ctx.gateway.namespace) {
    ctx.warn(
      "NoMatchingParent",
      `${parent.path} ${parent.kind} ${key}: consumer routes (from namespace ${ctx.routeNamespace}) ` +
        `are not supported by waypoints; put the route in ${service.namespace} or ${ctx.gateway.namespace}`,
    );
    return [];
  }
  const explicitPort = parent.port !== undefined || parent.sectionName !== undefined;
  const ports = service.ports.filter((p) =>
    (parent.port === undefined || p.port === parent.port) &&
    (parent.sectionName === undefined || p.name === parent.sectionName)
  );
  if (ports.length === 0) {
    const wanted = [
      parent.port && `port ${parent.port}`,
      parent.sectionName && `port name ${parent.sectionName}`,
    ];
    ctx.warn(
      "NoMatchingParent",
      `${parent.path} ${parent.kind} ${key} has no ${wanted.filter(Boolean).join(" and ")}`,
    );
  }
  return ports.map((port) => ({ group: "service", service, port, explicitPort }));
}

function gatewayParent(parent: Parent, ctx: AttachContext): Attachment[] {
  if (parent.namespace !== ctx.gateway.namespace || parent.name !== ctx.gateway.name) return [];
  const key = `${parent.namespace}/${parent.name}`;
  if (parent.port !== undefined && parent.port !== HBONE_PORT) {
    ctx.warn(
      "NoMatchingParent",
      `${parent.path} Gateway ${key} has no listener on port ${parent.port}`,
    );
    return [];
  }
  const from = ctx.allowedRoutesFrom ?? "Same";
  if (from !== "All" && ctx.routeNamespace !== ctx.gateway.namespace) {
    const detail = `${parent.path} Gateway ${key} admits routes from its own namespace only ` +
      `(allowedRoutes from ${from}${from === "Selector" ? ", read as Same" : ""})`;
    ctx.warn("NotAllowedByListeners", detail);
    return [];
  }
  const out: Attachment[] = [];
  for (const service of ctx.mesh.servicesByName.values()) {
    if (!service.bound) continue;
    for (const port of service.ports) {
      out.push({ group: "gateway", service, port, explicitPort: false });
    }
  }
  return out;
}
