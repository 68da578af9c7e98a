/**
 * Istio's Telemetry API (`telemetry.istio.io/v1`) compiled at load into settings per
 * destination (l7.md §3): which metrics are recorded with which labels, which access logs are
 * written with which filter, and how requests are traced.
 *
 * Invariants:
 * - Levels merge in Istio's order (`applicableTelemetries`): the root namespace's namespace-wide
 *   Telemetry, this waypoint's namespace's, the destination Service's namespace's (if different),
 *   then Telemetries whose `targetRefs` name our Gateway (or GatewayClass `istio-waypoint` from
 *   the root namespace), then those naming the Service. Later levels override earlier ones.
 * - A waypoint is a SERVER: entries whose `match.mode` is `CLIENT` are skipped; `selector`
 *   Telemetries do not apply to waypoints (only `targetRefs` do) and are reported.
 * - The request path only looks settings up (two map reads); every CEL expression is compiled
 *   here, and a bad one is an error naming the resource, its `file:line` and the field.
 */
import type { Problem, SourceDoc } from "../mesh/mod.ts";
import { merge } from "./_telemetry_merge.ts";
import { type Layer, problem, readTelemetry } from "./_telemetry_read.ts";
import {
  CompiledTelemetry,
  DEFAULT_PROVIDERS,
  type TelemetryContext,
  type TelemetrySettings,
} from "./telemetry_settings.ts";

/** Settings with no Telemetry resource: Prometheus on, no logs, tracing as the proxy starts. */
export const DEFAULT_TELEMETRY: CompiledTelemetry = new CompiledTelemetry(
  merge([], DEFAULT_PROVIDERS),
);

const API_VERSIONS = ["telemetry.istio.io/v1", "telemetry.istio.io/v1alpha1"];

/**
 * Compiles the Telemetry resources of a load.
 *
 * @param documents Every document of the load
 * @param context This waypoint, the root namespace and the MeshConfig providers
 * @returns The settings index and the problems found
 */
export function compileTelemetry(
  documents: readonly SourceDoc[],
  context: TelemetryContext,
): { telemetry: CompiledTelemetry; problems: Problem[] } {
  const problems: Problem[] = [];
  const namespaceWide = new Map<string, Layer>();
  const gatewayRefs: Layer[] = [];
  const serviceRefs = new Map<string, Layer[]>();
  for (const doc of documents) {
    const o = doc.object as { kind?: string; apiVersion?: string };
    if (o?.kind !== "Telemetry" || !API_VERSIONS.includes(o.apiVersion ?? "")) continue;
    const read = readTelemetry(doc, context, problems);
    if (!read) continue;
    const { layer, namespace, targets, where } = read;
    if (targets === "namespace") {
      if (namespaceWide.has(namespace)) {
        problems.push(
          problem(
            "warning",
            where,
            layer.ref,
            "Another namespace-wide Telemetry of this namespace is used; this one is ignored",
          ),
        );
      } else namespaceWide.set(namespace, layer);
      continue;
    }
    if (targets.gateway) gatewayRefs.push(layer);
    for (const key of targets.services) {
      const list = serviceRefs.get(key) ?? [];
      list.push(layer);
      serviceRefs.set(key, list);
    }
  }
  const { rootNamespace, self } = context;
  const base = [namespaceWide.get(rootNamespace), namespaceWide.get(self.namespace)]
    .filter((l, i) => l && (i === 0 || self.namespace !== rootNamespace)) as Layer[];
  const levels = (namespace?: string, service: Layer[] = []) => {
    const own = namespace !== undefined && namespace !== rootNamespace &&
        namespace !== self.namespace
      ? namespaceWide.get(namespace)
      : undefined;
    return [...base, ...(own ? [own] : []), ...gatewayRefs, ...service];
  };
  const p = context.providers;
  const namespaces = new Map<string, TelemetrySettings>();
  for (const ns of namespaceWide.keys()) {
    if (ns !== rootNamespace && ns !== self.namespace) namespaces.set(ns, merge(levels(ns), p));
  }
  const services = new Map<string, TelemetrySettings>();
  for (const [key, layers] of serviceRefs) {
    services.set(key, merge(levels(key.slice(0, key.indexOf("/")), layers), p));
  }
  return { telemetry: new CompiledTelemetry(merge(levels(), p), namespaces, services), problems };
}
