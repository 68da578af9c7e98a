import assert from "node:assert/strict";
import { dumpSnapshot } from "../../mesh/mod.ts";
import * as k8s from "../fixtures/mesh/builders.ts";

const DOCS = [
  k8s.gateway({ labels: { "istio.io/waypoint-for": "all" } }),
  k8s.namespace("mesh", { "istio.io/use-waypoint": "waypoint" }),
  k8s.service("mesh", "b", "10.0.0.2"),
  k8s.service("mesh", "a", "10.0.0.1", { selector: { app: "b" } }),
  k8s.pod("mesh", "p", "10.1.0.1", { labels: { app: "b" } }),
];

/** Whether every object in a JSON value has its keys in sorted order. */
function keysSorted(value: unknown): boolean {
  if (Array.isArray(value)) return value.every(keysSorted);
  if (typeof value !== "object" || value === null) return true;
  const keys = Object.keys(value).filter((k) => !/^\d+$/.test(k));
  return keys.every((k, i) => i === 0 || keys[i - 1] < k) && Object.values(value).every(keysSorted);
}

Deno.test("dumpSnapshot() gives plain JSON with sorted keys at every level", () => {
  const dump = dumpSnapshot(k8s.snapshotFromYaml(k8s.yamlDocs(...DOCS)).snapshot);
  assert.ok(keysSorted(dump));
  assert.deepEqual(JSON.parse(JSON.stringify(dump)), dump);
});

Deno.test("dumpSnapshot() lists each service once and indexes by reference", () => {
  const dump = dumpSnapshot(k8s.snapshotFromYaml(k8s.yamlDocs(...DOCS)).snapshot) as Record<
    string,
    Record<string, unknown>
  >;
  assert.deepEqual(Object.keys(dump.services), ["Service mesh/a", "Service mesh/b"]);
  assert.deepEqual(dump.servicesByAddress, {
    "10.0.0.1": "Service mesh/a",
    "10.0.0.2": "Service mesh/b",
  });
  assert.deepEqual(dump.workloadsByAddress, { "10.1.0.1": "Pod mesh/p" });
  assert.deepEqual((dump.workloads["Pod mesh/p"] as Record<string, unknown>).portProtocols, {
    8080: "http",
  });
});

Deno.test("dumpSnapshot() gives the same text for the same config written in another order", () => {
  const one = JSON.stringify(dumpSnapshot(k8s.snapshotFromYaml(k8s.yamlDocs(...DOCS)).snapshot));
  const other = JSON.stringify(
    dumpSnapshot(k8s.snapshotFromYaml(k8s.yamlDocs(...[...DOCS].reverse())).snapshot),
  );
  assert.equal(one, other);
});
