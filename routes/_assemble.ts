/**
 * Merging compiled routes per Service port into the table.
 *
 * For each Service port:
 * 1. Parent groups never merge (GEP-1294). Routes attached to the Service itself (producer routes)
 *    replace routes attached to our waypoint Gateway; the Gateway's routes apply to a port only
 *    when no Service-attached route does.
 * 2. Only kinds the port can carry apply, as Istio builds chains by port protocol (hbone.md §3.5):
 *    HTTPRoute and GRPCRoute on http, http2, grpc and unknown (sniffed) ports; TCPRoute on tcp,
 *    tls and unknown ports. A route that names such a port explicitly gets a warning.
 * 3. Of the kinds left, one wins by GEP-1294 specificity, GRPCRoute > HTTPRoute > TCPRoute; the
 *    others are `Conflicted`.
 * 4. HTTP and gRPC rules of all winning routes are merged and sorted once by precedence; of several
 *    TCPRoutes the oldest (then by namespace/name) applies, as Istio takes the first matching
 *    VirtualService, and the rest are `Conflicted`.
 */
import type { PortProtocol, Service, ServicePort } from "../mesh/model.ts";
import type {
  CompiledHttpRoutes,
  CompiledTcpRoute,
  HasBackends,
  HttpRouteEntry,
  RouteRef,
  RouteTable,
} from "./model.ts";
import type { RouteKind } from "./resources.ts";
import type { ProblemList } from "./_problems.ts";
import type { Attachment, ParentGroup } from "./_attach.ts";
import type { CompiledRule } from "./_rule_compile.ts";
import { byPrecedence, type RankedEntry } from "./_precedence.ts";
import { makeRouteTable, portKey } from "./table.ts";

/** A route compiled for one parent group, with the ports it attaches to. */
export interface CompiledRoute {
  readonly ref: RouteRef;
  readonly created: number | undefined;
  readonly group: ParentGroup;
  readonly attachments: readonly Attachment[];
  /** HTTPRoute and GRPCRoute. */
  readonly rules?: readonly CompiledRule[];
  /** TCPRoute. */
  readonly tcp?: HasBackends;
}

/** The routes competing for one Service port. */
interface PortSlot {
  readonly service: Service;
  readonly port: ServicePort;
  readonly groups: Record<ParentGroup, { route: CompiledRoute; explicitPort: boolean }[]>;
}

const KIND_ORDER: readonly RouteKind[] = ["GRPCRoute", "HTTPRoute", "TCPRoute"];
const CARRIES: Readonly<Record<RouteKind, readonly PortProtocol[]>> = {
  GRPCRoute: ["http", "http2", "grpc", "unknown"],
  HTTPRoute: ["http", "http2", "grpc", "unknown"],
  TCPRoute: ["tcp", "tls", "unknown"],
};

/**
 * Builds the table from compiled routes, reporting conflicts.
 *
 * @param routes Every compiled route, per parent group
 * @param problems Where warnings go
 * @returns The frozen table
 */
export function assemble(routes: readonly CompiledRoute[], problems: ProblemList): RouteTable {
  const http: CompiledHttpRoutes[] = [];
  const tcp: CompiledTcpRoute[] = [];
  const conflicts = new Conflicts();
  for (const slot of slots(routes)) {
    const candidates = slot.groups.service.length > 0 ? slot.groups.service : slot.groups.gateway;
    const fitting = candidates.filter(({ route, explicitPort }) => {
      const fits = CARRIES[route.ref.kind].includes(slot.port.protocol);
      if (!fits && explicitPort) conflicts.unfit(route.ref, slot);
      return fits;
    }).map((c) => c.route);
    const winner = KIND_ORDER.find((kind) => fitting.some((r) => r.ref.kind === kind));
    if (!winner) continue;
    for (const loser of fitting.filter((r) => r.ref.kind !== winner)) {
      conflicts.add(loser.ref, slot, winner);
    }
    const chosen = fitting.filter((r) => r.ref.kind === winner);
    if (winner === "TCPRoute") tcp.push(tcpRoute(chosen, slot, conflicts));
    else http.push(httpRoutes(winner, chosen, slot));
  }
  conflicts.report(problems);
  return makeRouteTable(http, tcp);
}

/** Groups attachments by Service port. */
function slots(routes: readonly CompiledRoute[]): PortSlot[] {
  const out = new Map<string, PortSlot>();
  for (const route of routes) {
    for (const a of route.attachments) {
      const key = portKey(`${a.service.namespace}/${a.service.name}`, a.port.port);
      let slot = out.get(key);
      if (!slot) {
        slot = { service: a.service, port: a.port, groups: { service: [], gateway: [] } };
        out.set(key, slot);
      }
      slot.groups[a.group].push({ route, explicitPort: a.explicitPort });
    }
  }
  return [...out.values()];
}

function httpRoutes(
  kind: "HTTPRoute" | "GRPCRoute",
  routes: CompiledRoute[],
  slot: PortSlot,
): CompiledHttpRoutes {
  const ranked: RankedEntry[] = routes.flatMap((route) =>
    (route.rules ?? []).flatMap(({ rule, matches }) =>
      matches.map((match, matchIndex) => ({ rule, match, matchIndex, created: route.created }))
    )
  );
  const entries: HttpRouteEntry[] = byPrecedence(ranked).map(({ rule, match }) =>
    Object.freeze({ rule, match })
  );
  return Object.freeze({
    kind,
    service: `${slot.service.namespace}/${slot.service.name}`,
    port: slot.port.port,
    entries: Object.freeze(entries),
  });
}

function tcpRoute(routes: CompiledRoute[], slot: PortSlot, conflicts: Conflicts): CompiledTcpRoute {
  const [first, ...rest] = [...routes].sort((a, b) =>
    (a.created ?? Infinity) - (b.created ?? Infinity) ||
    (`${a.ref.namespace}/${a.ref.name}` < `${b.ref.namespace}/${b.ref.name}` ? -1 : 1)
  );
  for (const loser of rest) conflicts.add(loser.ref, slot, "TCPRoute");
  return Object.freeze({
    route: first.ref,
    service: `${slot.service.namespace}/${slot.service.name}`,
    port: slot.port.port,
    backends: first.tcp!.backends,
  });
}

/** Collects conflicts per route so each route gets one warning. */
class Conflicts {
  readonly #lost = new Map<RouteRef, string[]>();
  readonly #unfit = new Map<RouteRef, string[]>();

  add(ref: RouteRef, slot: PortSlot, winner: RouteKind): void {
    this.#push(this.#lost, ref, `${portName(slot)} (${winner} applies)`);
  }

  unfit(ref: RouteRef, slot: PortSlot): void {
    this.#push(this.#unfit, ref, `${portName(slot)} (${slot.port.protocol})`);
  }

  report(problems: ProblemList): void {
    for (const [ref, ports] of this.#lost) {
      problems.warn(
        site(ref),
        "Conflicted",
        `not applied on ${list(ports)}: only one route kind applies per Service port ` +
          `(GRPCRoute > HTTPRoute > TCPRoute; of several TCPRoutes the oldest)`,
      );
    }
    for (const [ref, ports] of this.#unfit) {
      const detail = `not applied on ${
        list(ports)
      }: that protocol does not carry ${ref.kind} traffic`;
      problems.warn(site(ref), "UnsupportedValue", detail);
    }
  }

  #push(map: Map<RouteRef, string[]>, ref: RouteRef, text: string): void {
    const ports = map.get(ref) ?? [];
    if (!ports.includes(text)) ports.push(text);
    map.set(ref, ports);
  }
}

function portName(slot: PortSlot): string {
  return `Service ${slot.service.namespace}/${slot.service.name} port ${slot.port.port}`;
}

function site(ref: RouteRef) {
  return { where: ref.where, resource: `${ref.kind} ${ref.namespace}/${ref.name}` };
}

function list(items: readonly string[]): string {
  const shown = items.slice(0, 5).join(", ");
  return items.length > 5 ? `${shown} and ${items.length - 5} more` : shown;
}
