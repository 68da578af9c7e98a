/**
 * Binding rules of `mesh/_waypoint.ts` (hbone.md §3.1), through `buildSnapshot()`: which objects
 * are bound to the waypoint `mesh/waypoint`, and the reason given for those that are not.
 */
import assert from "node:assert/strict";
import type { Snapshot } from "../../mesh/mod.ts";
import * as k8s from "../fixtures/mesh/builders.ts";

/** The bound flag and reason of `Kind ns/name` in a snapshot. */
function bindingOf(snapshot: Snapshot, ref: string): { bound: boolean; reason: string } {
  const items = [...snapshot.servicesByName.values(), ...snapshot.workloadsByAddress.values()];
  const item = items.find((i) => `${i.kind} ${i.namespace}/${i.name}` === ref);
  if (!item) throw new Error(`${ref} is not in the snapshot`);
  return { bound: item.bound, reason: item.unboundReason };
}

type Labels = Record<string, string>;
const USE = "istio.io/use-waypoint";
const FOR = "istio.io/waypoint-for";
const OURS = { [USE]: "waypoint" };
const CROSS = { [USE]: "waypoint", "istio.io/use-waypoint-namespace": "mesh" };
const SELECT_MESH = { from: "Selector", selector: { matchLabels: { app: "mesh" } } };

// The objects under test: Service mesh/a, Service app/a, Pod mesh/p.
const SVC = "Service mesh/a";
const APP = "Service app/a";
const POD = "Pod mesh/p";
const svc = (labels: Labels = {}) => k8s.service("mesh", "a", "10.0.0.1", { labels });
const appSvc = (labels: Labels = {}) => k8s.service("app", "a", "10.0.0.1", { labels });
const meshPod = k8s.pod("mesh", "p", "10.1.0.1");
/** Namespace `mesh`, by default labelled with this waypoint. */
const meshNs = (labels: Labels = OURS) => k8s.namespace("mesh", labels);
/** This waypoint's Gateway serving one traffic type. */
const serving = (waypointFor: string) => k8s.gateway({ labels: { [FOR]: waypointFor } });
/** This waypoint's Gateway with listener `allowedRoutes.namespaces`. */
const allowing = (namespaces: unknown) => k8s.gateway({ namespaces });
const gw = k8s.gateway();

/** Sentence, documents, target, and "" when bound or else a piece of the reason. */
const cases: [string, string[], string, string][] = [
  ["binds a Service labelled with this waypoint", [gw, svc(OURS)], SVC, ""],
  ["binds a Service through its Namespace label", [gw, meshNs(), svc()], SVC, ""],
  [
    "lets the object label win over the Namespace label",
    [gw, meshNs({ [USE]: "other" }), svc(OURS)],
    SVC,
    "",
  ],
  [
    "does not bind a Service whose own label names another waypoint over the Namespace's",
    [gw, meshNs(), svc({ [USE]: "other" })],
    SVC,
    "Service mesh/a uses waypoint mesh/other",
  ],
  [
    "lets none on the object opt out of a Namespace label",
    [gw, meshNs(), svc({ [USE]: "none" })],
    SVC,
    "opts out with istio.io/use-waypoint: none",
  ],
  [
    "does not bind when neither the object nor its Namespace has a label",
    [gw, meshNs({}), svc()],
    SVC,
    "has no istio.io/use-waypoint label",
  ],
  [
    "follows use-waypoint-namespace to this waypoint from another namespace",
    [allowing({ from: "All" }), appSvc(CROSS)],
    APP,
    "",
  ],
  [
    "reads use-waypoint-namespace from the Namespace when the label is inherited",
    [allowing({ from: "All" }), k8s.namespace("app", CROSS), appSvc()],
    APP,
    "",
  ],
  [
    "resolves use-waypoint without a namespace in the object's own namespace",
    [allowing({ from: "All" }), appSvc(OURS)],
    APP,
    "uses waypoint app/waypoint",
  ],
  [
    "does not bind a Pod when waypoint-for defaults to service",
    [gw, meshNs(), meshPod],
    POD,
    "waypoint-for is service, not workload",
  ],
  ["binds a Pod when waypoint-for is workload", [serving("workload"), meshNs(), meshPod], POD, ""],
  [
    "does not bind a Service when waypoint-for is workload",
    [serving("workload"), meshNs(), svc()],
    SVC,
    "waypoint-for is workload, not service",
  ],
  ["binds a Pod when waypoint-for is all", [serving("all"), meshNs(), meshPod], POD, ""],
  ["binds a Service when waypoint-for is all", [serving("all"), meshNs(), svc()], SVC, ""],
  [
    "binds nothing when waypoint-for is none",
    [serving("none"), meshNs(), svc()],
    SVC,
    "waypoint-for is none",
  ],
  [
    "takes waypoint-for from the GatewayClass when the Gateway has none",
    [k8s.gatewayClass("istio-waypoint", { [FOR]: "workload" }), gw, meshNs(), meshPod],
    POD,
    "",
  ],
  [
    "lets the Gateway's waypoint-for win over the GatewayClass's",
    [
      k8s.gatewayClass("istio-waypoint", { [FOR]: "workload" }),
      serving("service"),
      meshNs(),
      meshPod,
    ],
    POD,
    "waypoint-for is service, not workload",
  ],
  [
    "refuses another namespace when allowedRoutes is Same by default",
    [gw, appSvc(CROSS)],
    APP,
    "namespace app not allowed by Gateway mesh/waypoint listener mesh (from: Same)",
  ],
  [
    "refuses another namespace when allowedRoutes is Same explicitly",
    [allowing({ from: "Same" }), appSvc(CROSS)],
    APP,
    "(from: Same)",
  ],
  [
    "accepts a namespace whose labels match the allowedRoutes selector",
    [allowing(SELECT_MESH), k8s.namespace("app", { ...CROSS, app: "mesh" }), appSvc()],
    APP,
    "",
  ],
  [
    "refuses a namespace whose labels do not match the allowedRoutes selector",
    [allowing(SELECT_MESH), k8s.namespace("app", CROSS), appSvc()],
    APP,
    "(from: Selector)",
  ],
  [
    "accepts a namespace that matches selector matchExpressions",
    [
      allowing({
        from: "Selector",
        selector: { matchExpressions: [{ key: "app", operator: "In", values: ["x", "mesh"] }] },
      }),
      k8s.namespace("app", { ...CROSS, app: "mesh" }),
      appSvc(),
    ],
    APP,
    "",
  ],
  [
    "applies the selector to the Gateway's own namespace too",
    [allowing(SELECT_MESH), meshNs(), svc()],
    SVC,
    "namespace mesh not allowed",
  ],
  [
    "treats a Gateway without an HBONE listener as allowing Same only",
    [k8s.gateway({ protocol: "HTTP", namespaces: { from: "All" } }), appSvc(CROSS)],
    APP,
    "no HBONE listener on 15008, so from: Same",
  ],
  [
    "binds nothing when this waypoint's Gateway is missing",
    [k8s.gateway({ name: "other" }), svc(OURS)],
    SVC,
    "but Gateway mesh/waypoint is not in the config",
  ],
  [
    "never binds the waypoint's own Service",
    [gw, meshNs(), svc({ "gateway.istio.io/managed": "istio.io-mesh-controller" })],
    SVC,
    "belongs to a waypoint",
  ],
];

for (const [name, docs, target, want] of cases) {
  Deno.test(`buildSnapshot() ${name}`, () => {
    const { snapshot } = k8s.snapshotFromYaml(k8s.yamlDocs(...docs));
    const { bound, reason } = bindingOf(snapshot, target);
    if (want === "") {
      assert.equal(reason, "");
      assert.equal(bound, true);
    } else {
      assert.equal(bound, false);
      assert.ok(reason.includes(want), `reason "${reason}" lacks "${want}"`);
    }
  });
}

Deno.test("buildSnapshot() warns and reports gatewayFound false when the Gateway is missing", () => {
  const { snapshot, problems } = k8s.snapshotFromYaml(k8s.yamlDocs(meshNs()));
  assert.equal(snapshot.gatewayFound, false);
  assert.deepEqual(problems.map((p) => `${p.severity} ${p.where}`), [
    "warning Gateway mesh/waypoint",
  ]);
});
