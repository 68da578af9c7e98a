/**
 * Resolving `backendRefs` (and mirror targets) against the mesh snapshot.
 *
 * Rules (gateway-api `HTTPBackendRef` doc, Istio `conversion.go` `buildDestination`):
 * - Only core `Service` is a backend here; any other group/kind is `InvalidKind`.
 * - A missing Service, or a port it does not have, is `BackendNotFound`.
 * - Mesh (Service-attached) routes may point into any namespace (GEP-1294). Routes attached to the
 *   waypoint Gateway follow Gateway rules: a cross-namespace backend needs a ReferenceGrant in the
 *   backend's namespace, else `RefNotPermitted` (Istio's `enforceRefGrant = !mesh`).
 * - An unresolvable backend stays in the list as a 500 backend with its weight, and a warning is
 *   recorded. A malformed ref (no name, no port for a Service, weight out of range) makes the route
 *   invalid instead, as the CRD validation would have refused it.
 */
import type { Snapshot } from "../mesh/model.ts";
import type { Backend, RouteRef, WeightedBackend } from "./model.ts";
import { GATEWAY_GROUP } from "./resources.ts";
import { invalid, type RouteReason } from "./_problems.ts";
import { type Fields, integer, records, requiredText, text } from "./_read.ts";

/** A ReferenceGrant reduced to what the check needs. */
export interface Grant {
  /** The namespace it lives in (where the referenced objects are). */
  readonly namespace: string;
  readonly from: readonly {
    readonly group: string;
    readonly kind: string;
    readonly namespace: string;
  }[];
  readonly to: readonly { readonly group: string; readonly kind: string; readonly name?: string }[];
}

/** What resolving a ref needs to know. */
export interface RefContext {
  readonly mesh: Snapshot;
  readonly route: RouteRef;
  /** True for routes attached to the waypoint Gateway: cross-namespace refs need a grant. */
  readonly enforceGrants: boolean;
  readonly grants: readonly Grant[];
  /** Records a warning about the route. */
  readonly warn: (reason: RouteReason, detail: string) => void;
}

/**
 * Resolves one backend object reference to a service port, or to a 500 backend with a warning.
 *
 * @param ref The `backendRef` (or mirror `backendRef`) mapping
 * @param path Its field path, for messages
 * @param ctx Snapshot, route and grants
 * @param use What an unresolved ref costs, for the warning: a 500 share or a dropped mirror
 * @returns The backend, without backendRef-level filters
 * @throws RouteConfigError when the ref is malformed
 */
export function resolveRef(
  ref: Fields,
  path: string,
  ctx: RefContext,
  use: "backend" | "mirror" = "backend",
): Backend {
  const failed = (reason: RouteReason, detail: string) => fail(ctx, use, reason, detail);
  const group = text(ref.group, `${path}.group`) ?? "";
  const kind = text(ref.kind, `${path}.kind`) ?? "Service";
  const name = requiredText(ref.name, `${path}.name`);
  const namespace = text(ref.namespace, `${path}.namespace`) || ctx.route.namespace;
  const port = integer(ref.port, `${path}.port`, 1, 65535);
  if (!isCore(group) || kind !== "Service") {
    return failed("InvalidKind", `${path} refers to ${group || "core"}/${kind} (want a Service)`);
  }
  if (port === undefined) {
    invalid("UnsupportedValue", `${path}.port is missing (required for a Service)`);
  }
  const key = `${namespace}/${name}`;
  if (ctx.enforceGrants && namespace !== ctx.route.namespace && !isGranted(ctx, namespace, name)) {
    return failed(
      "RefNotPermitted",
      `${path} Service ${key} needs a ReferenceGrant in ${namespace}`,
    );
  }
  const service = ctx.mesh.servicesByName.get(key);
  if (!service || service.kind !== "Service") {
    return failed("BackendNotFound", `${path} Service ${key} not found`);
  }
  const servicePort = service.ports.find((p) => p.port === port);
  if (!servicePort) {
    return failed("BackendNotFound", `${path} Service ${key} has no port ${port}`);
  }
  return Object.freeze({ kind: "service", service, port: servicePort, filters: Object.freeze([]) });
}

/**
 * Resolves a `backendRefs` list with weights.
 *
 * @param value The list as written
 * @param path Its field path
 * @param ctx Snapshot, route and grants
 * @param withFilters Compiles backendRef-level filters onto a resolved backend
 * @returns Weighted backends in the order written (weight defaults to 1)
 * @throws RouteConfigError when a ref is malformed
 */
export function resolveBackendRefs(
  value: unknown,
  path: string,
  ctx: RefContext,
  withFilters: (backend: Backend, ref: Fields, path: string) => Backend = (b) => b,
): readonly WeightedBackend[] {
  const out = records(value, path).map(([ref, at]): WeightedBackend => {
    const weight = integer(ref.weight, `${at}.weight`, 0, 1_000_000) ?? 1;
    const backend = withFilters(resolveRef(ref, at, ctx), ref, at);
    return Object.freeze({ weight, backend });
  });
  return Object.freeze(out);
}

/**
 * Reads a ReferenceGrant document.
 *
 * @param object The ReferenceGrant object
 * @returns The grant
 * @throws RouteConfigError when it is malformed
 */
export function readGrant(object: Fields): Grant {
  const meta = object.metadata as Fields | undefined;
  const spec = (object.spec ?? {}) as Fields;
  const from = records(spec.from, "spec.from").map(([f, at]) => ({
    group: text(f.group, `${at}.group`) ?? "",
    kind: requiredText(f.kind, `${at}.kind`),
    namespace: requiredText(f.namespace, `${at}.namespace`),
  }));
  const to = records(spec.to, "spec.to").map(([t, at]) => ({
    group: text(t.group, `${at}.group`) ?? "",
    kind: requiredText(t.kind, `${at}.kind`),
    name: text(t.name, `${at}.name`) || undefined,
  }));
  return { namespace: text(meta?.namespace, "metadata.namespace") || "default", from, to };
}

/** Whether a group name means the Kubernetes core group. */
export function isCore(group: string): boolean {
  return group === "" || group === "core";
}

function isGranted(ctx: RefContext, namespace: string, name: string): boolean {
  return ctx.grants.some((grant) =>
    grant.namespace === namespace &&
    grant.from.some((f) =>
      f.group === GATEWAY_GROUP && f.kind === ctx.route.kind && f.namespace === ctx.route.namespace
    ) &&
    grant.to.some((t) => isCore(t.group) && t.kind === "Service" && (!t.name || t.name === name))
  );
}

function fail(
  ctx: RefContext,
  use: "backend" | "mirror",
  reason: RouteReason,
  detail: string,
): Backend {
  ctx.warn(
    reason,
    `${detail}; ${use === "backend" ? "its share of traffic gets 500" : "the mirror is dropped"}`,
  );
  return Object.freeze({ kind: "error", status: 500, reason: `${reason}: ${detail}` });
}
