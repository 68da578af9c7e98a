/**
 * The snapshot as plain JSON for `/config_dump` and for comparing two loads: every service and
 * workload once, address indexes as references, object keys sorted at every level.
 */
import { FrozenMap } from "./_freeze.ts";
import type { Service, Snapshot, Workload } from "./model.ts";

/**
 * Turns a snapshot into sorted, JSON-ready data.
 *
 * @example
 * ```ts
 * JSON.stringify(dumpSnapshot(holder.current), null, 2);
 * ```
 * @param snapshot Any snapshot
 * @returns Plain objects, arrays, strings, numbers and booleans only
 */
export function dumpSnapshot(snapshot: Snapshot): unknown {
  const services = new Map<string, Service>();
  for (
    const service of [...snapshot.servicesByName.values(), ...snapshot.servicesByAddress.values()]
  ) {
    services.set(refOf(service), service);
  }
  const workloads = new Map<string, Workload>();
  for (const workload of snapshot.workloadsByAddress.values()) {
    workloads.set(refOf(workload), workload);
  }
  return toPlain({
    version: snapshot.version,
    self: snapshot.self,
    gatewayFound: snapshot.gatewayFound,
    services,
    servicesByAddress: mapValues(snapshot.servicesByAddress, refOf),
    servicesByName: mapValues(snapshot.servicesByName, refOf),
    workloads,
    workloadsByAddress: mapValues(snapshot.workloadsByAddress, refOf),
    problems: snapshot.problems,
  });
}

function refOf(item: { kind: string; namespace: string; name: string }): string {
  return `${item.kind} ${item.namespace}/${item.name}`;
}

function mapValues<V>(map: ReadonlyMap<string, V>, f: (value: V) => string): Map<string, string> {
  return new Map([...map].map(([key, value]) => [key, f(value)]));
}

/** Maps become objects; object keys are sorted; arrays keep their (already stable) order. */
function toPlain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof Map || value instanceof FrozenMap) {
    const entries = [...(value as ReadonlyMap<unknown, unknown>)].map(([k, v]) =>
      [String(k), v] as const
    );
    return sortedObject(entries);
  }
  if (typeof value === "object" && value !== null) return sortedObject(Object.entries(value));
  return value;
}

function sortedObject(entries: (readonly [string, unknown])[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, item] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    out[key] = toPlain(item);
  }
  return out;
}
