/**
 * Route compilation: from parsed documents and the mesh snapshot to a frozen {@link RouteTable}
 * and located problems. Runs at load, never per request.
 *
 * Steps: pick the route documents (HTTPRoute, GRPCRoute, TCPRoute, ReferenceGrant in
 * `gateway.networking.k8s.io` v1, v1beta1 or v1alpha2); resolve each route's parents
 * (`_attach.ts`); compile its rules (`_rule_compile.ts`), once for Service parents and once for our
 * Gateway parent since only the latter needs ReferenceGrants; then merge per Service port and
 * settle kind conflicts (`_assemble.ts`).
 *
 * A route that is invalid as a whole is skipped with an `error` naming its file, line and field.
 * Like Istio (`route_collections.go` `computeRoute`), one invalid rule rejects the whole route.
 * `hostnames` are ignored: mesh routing goes by the destination Service, not by Host (GEP-1294
 * "SHOULD NOT influence"), and that holds for routes on our waypoint Gateway too.
 */
import type { Problem, Snapshot } from "../mesh/model.ts";
import type { RouteRef, RouteTable } from "./model.ts";
import {
  GATEWAY_GROUP,
  ROUTE_API_VERSIONS,
  type RouteKind,
  type RouteSourceDoc,
} from "./resources.ts";
import { ProblemList, type ProblemSite, RouteConfigError, type RouteReason } from "./_problems.ts";
import { type Fields, record, records, requiredText, text } from "./_read.ts";
import { type Grant, readGrant, type RefContext } from "./_backends.ts";
import { type Attachment, attachments, type ParentGroup } from "./_attach.ts";
import { compileGrpcRule, compileHttpRule, compileTcpRule } from "./_rule_compile.ts";
import { assemble, type CompiledRoute } from "./_assemble.ts";

/** Options of {@link compileRoutes}. */
export interface CompileOptions {
  /** The waypoint's own Gateway; routes whose parentRef names it apply to all bound services. */
  readonly gateway: { readonly namespace: string; readonly name: string };
}

/** The table and the problems found. */
export interface CompileResult {
  readonly table: RouteTable;
  readonly problems: Problem[];
}

const ROUTE_KINDS: readonly string[] = ["HTTPRoute", "GRPCRoute", "TCPRoute"];
/** The HTTPRoute `rules` default of the CRD: one rule matching `PathPrefix /`, no backends. */
const DEFAULT_HTTP_RULES = Object.freeze([Object.freeze({})]);

/** A route document read far enough to attach it. */
interface RouteHead {
  readonly ref: RouteRef;
  readonly site: ProblemSite;
  readonly spec: Fields;
  readonly created: number | undefined;
}

/**
 * Compiles the Gateway API routes of a config into a route table.
 *
 * @example
 * ```ts
 * const { table, problems } = compileRoutes(docs, snapshot, {
 *   gateway: { namespace: "ns1", name: "waypoint" },
 * });
 * const routes = table.httpRoutesFor("ns1/echo", 80);
 * ```
 * @param docs Parsed documents with their file and line (other kinds are ignored)
 * @param mesh The snapshot the routes refer to (Services, ports, binding)
 * @param options Our Gateway
 * @returns The frozen table and every problem, located by `file:line`
 */
export function compileRoutes(
  docs: readonly RouteSourceDoc[],
  mesh: Snapshot,
  options: CompileOptions,
): CompileResult {
  const problems = new ProblemList();
  const { heads, grants } = collect(docs, problems);
  const allowedRoutesFrom = gatewayAllowedRoutes(docs, options.gateway);
  const compiled: CompiledRoute[] = [];
  for (const head of heads) {
    const warn = (reason: RouteReason, detail: string) => problems.warn(head.site, reason, detail);
    try {
      const attached = attachments(head.spec.parentRefs, {
        mesh,
        gateway: options.gateway,
        routeNamespace: head.ref.namespace,
        allowedRoutesFrom,
        warn,
      });
      compiled.push(...compileAttached(head, attached, { mesh, route: head.ref, grants, warn }));
    } catch (e) {
      if (!(e instanceof RouteConfigError)) throw e;
      problems.error(head.site, `${e.message}; the route is not applied`);
    }
  }
  const table = assemble(compiled, problems);
  return { table, problems: problems.list() };
}

/** Compiles a route once per parent group it attaches through. */
function compileAttached(
  head: RouteHead,
  attached: readonly Attachment[],
  base: Omit<RefContext, "enforceGrants">,
): CompiledRoute[] {
  const out: CompiledRoute[] = [];
  for (const group of ["service", "gateway"] as ParentGroup[]) {
    const ports = attached.filter((a) => a.group === group);
    if (ports.length === 0) continue;
    const ctx: RefContext = { ...base, enforceGrants: group === "gateway" };
    out.push({
      ref: head.ref,
      created: head.created,
      group,
      attachments: ports,
      ...compileBody(head, ctx),
    });
  }
  return out;
}

function compileBody(head: RouteHead, ctx: RefContext): Pick<CompiledRoute, "rules" | "tcp"> {
  const rules = records(head.spec.rules, "spec.rules");
  switch (head.ref.kind) {
    case "HTTPRoute": {
      const written = rules.length > 0 ? rules.map(([r]) => r) : DEFAULT_HTTP_RULES;
      return { rules: written.map((r, i) => compileHttpRule(r, i, ctx)) };
    }
    case "GRPCRoute":
      return { rules: rules.map(([r], i) => compileGrpcRule(r, i, ctx)) };
    case "TCPRoute":
      return { tcp: compileTcpRule(rules, ctx) };
  }
}

/** Picks route documents and ReferenceGrants, reporting malformed and duplicate ones. */
function collect(docs: readonly RouteSourceDoc[], problems: ProblemList) {
  const heads: RouteHead[] = [];
  const grants: Grant[] = [];
  const seen = new Map<string, string>();
  for (const doc of docs) {
    const object = doc.object as Fields | null | undefined;
    const kind = object?.kind;
    if (typeof kind !== "string" || (!ROUTE_KINDS.includes(kind) && kind !== "ReferenceGrant")) {
      continue;
    }
    if (!ROUTE_API_VERSIONS.includes(String(object!.apiVersion))) continue;
    const where = `${doc.file}:${doc.line}`;
    try {
      if (kind === "ReferenceGrant") {
        grants.push(readGrant(object!));
        continue;
      }
      const head = readHead(object!, kind as RouteKind, where);
      const first = seen.get(head.site.resource);
      if (first !== undefined) {
        problems.error(
          head.site,
          `Duplicate resource: ${head.site.resource} is already defined at ${first}`,
        );
        continue;
      }
      seen.set(head.site.resource, where);
      heads.push(head);
    } catch (e) {
      if (!(e instanceof RouteConfigError)) throw e;
      problems.error(
        { where, resource: resourceName(kind, object!) },
        `${e.message}; it is not applied`,
      );
    }
  }
  return { heads, grants };
}

function readHead(object: Fields, kind: RouteKind, where: string): RouteHead {
  const meta = record(object.metadata, "metadata", true)!;
  const name = requiredText(meta.name, "metadata.name");
  const namespace = text(meta.namespace, "metadata.namespace") || "default";
  const stamp = Date.parse(text(meta.creationTimestamp, "metadata.creationTimestamp") ?? "");
  return {
    ref: Object.freeze({ kind, namespace, name, where }),
    site: { where, resource: `${kind} ${namespace}/${name}` },
    spec: record(object.spec, "spec", true)!,
    created: Number.isNaN(stamp) ? undefined : stamp,
  };
}

/**
 * `allowedRoutes.namespaces.from` of our Gateway's HBONE listener (15008), when the Gateway is
 * among the documents; the API default `Same` otherwise.
 */
function gatewayAllowedRoutes(
  docs: readonly RouteSourceDoc[],
  gateway: CompileOptions["gateway"],
): "Same" | "All" | "Selector" {
  for (const doc of docs) {
    const object = doc.object as Fields | null | undefined;
    if (object?.kind !== "Gateway" || !String(object.apiVersion).startsWith(`${GATEWAY_GROUP}/`)) {
      continue;
    }
    const meta = (object.metadata ?? {}) as Fields;
    if (meta.name !== gateway.name || (meta.namespace || "default") !== gateway.namespace) continue;
    const listeners = ((object.spec ?? {}) as Fields).listeners;
    const hbone = Array.isArray(listeners) ? listeners.find((l) => l?.port === 15008) : undefined;
    const from = hbone?.allowedRoutes?.namespaces?.from;
    return from === "All" || from === "Selector" ? from : "Same";
  }
  return "Same";
}

function resourceName(kind: string, object: Fields): string {
  const meta = (object.metadata ?? {}) as Fields;
  const name = typeof meta.name === "string" ? meta.name : "?";
  const namespace = typeof meta.namespace === "string" && meta.namespace
    ? meta.namespace
    : "default";
  return `${kind} ${namespace}/${name}`;
}
