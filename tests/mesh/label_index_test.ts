/**
 * The label index of `mesh/_label_index.ts`, through `buildSnapshot()`: Service and ServiceEntry
 * selectors must pick exactly the workloads a scan of every Pod would, in the same order.
 */
import assert from "node:assert/strict";
import type { Snapshot } from "../../mesh/mod.ts";
import { pod, service, snapshotFromYaml, yamlDocs } from "../fixtures/mesh/builders.ts";

/** `address:port` of each ready endpoint of port 80 of `ns/name`. */
function endpointsOf(snapshot: Snapshot, key: string): string[] | undefined {
  const port = snapshot.servicesByName.get(key)?.ports.find((p) => p.port === 80);
  return port?.endpoints.map((e) => `${e.address}:${e.port}`);
}

function build(...docs: string[]): Snapshot {
  const { snapshot, problems } = snapshotFromYaml(yamlDocs(...docs));
  assert.deepEqual(problems.filter((p) => p.severity === "error"), []);
  return snapshot;
}

const noSelector = (ns: string, name: string, ip: string) =>
  `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${ns} }
spec: { clusterIP: "${ip}", ports: [{ name: http, port: 80, targetPort: 8080 }] }`;

interface IndexCase {
  name: string;
  docs: string[];
  service: string;
  endpoints: string[];
}

const WEB = { app: "web", tier: "front" };

const cases: IndexCase[] = [
  {
    name: "selects with several labels only the Pods that have all of them",
    docs: [
      service("app", "web", "10.0.0.1", { selector: WEB }),
      pod("app", "both", "10.1.0.1", { labels: { ...WEB, version: "v1" } }),
      pod("app", "app-only", "10.1.0.2", { labels: { app: "web" } }),
      pod("app", "tier-only", "10.1.0.3", { labels: { tier: "front" } }),
      pod("app", "other-value", "10.1.0.4", { labels: { app: "web", tier: "back" } }),
    ],
    service: "app/web",
    endpoints: ["10.1.0.1:8080"],
  },
  {
    name: "leaves out Pods with the same labels in other namespaces",
    docs: [
      service("app", "web", "10.0.0.1", { selector: WEB }),
      pod("other", "twin", "10.1.0.1", { labels: WEB }),
      pod("app", "own", "10.1.0.2", { labels: WEB }),
      pod("zzz", "twin", "10.1.0.3", { labels: WEB }),
    ],
    service: "app/web",
    endpoints: ["10.1.0.2:8080"],
  },
  {
    name: "keeps namespace/name order whatever the document order",
    docs: [
      service("app", "web", "10.0.0.1", { selector: WEB }),
      pod("app", "c", "10.1.0.3", { labels: WEB }),
      pod("app", "a", "10.1.0.1", { labels: { ...WEB, extra: "x" } }),
      pod("app", "b", "10.1.0.2", { labels: WEB }),
    ],
    service: "app/web",
    endpoints: ["10.1.0.1:8080", "10.1.0.2:8080", "10.1.0.3:8080"],
  },
  {
    name: "selects WorkloadEntries by their spec labels beside Pods",
    docs: [
      service("app", "web", "10.0.0.1", { selector: WEB }),
      pod("app", "p", "10.1.0.1", { labels: WEB }),
      `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: vm, namespace: app, labels: { app: web } }
spec: { address: 10.3.0.1, labels: { tier: front } }`,
    ],
    service: "app/web",
    endpoints: ["10.1.0.1:8080", "10.3.0.1:8080"],
  },
  {
    name: "gives a Service without a selector its EndpointSlice endpoints",
    docs: [
      noSelector("app", "ext", "10.0.0.1"),
      pod("app", "p", "10.1.0.1", { labels: { app: "ext" } }),
      `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ext-1, namespace: app, labels: { kubernetes.io/service-name: ext } }
addressType: IPv4
ports: [{ name: http, port: 9000 }]
endpoints: [{ addresses: [10.5.0.1] }]`,
      `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ext-1, namespace: other, labels: { kubernetes.io/service-name: ext } }
addressType: IPv4
ports: [{ name: http, port: 9000 }]
endpoints: [{ addresses: [10.5.0.2] }]`,
    ],
    service: "app/ext",
    endpoints: ["10.5.0.1:9000"],
  },
  {
    name: "gives a Service without a selector or EndpointSlice no endpoints",
    docs: [noSelector("app", "ext", "10.0.0.1"), pod("app", "p", "10.1.0.1")],
    service: "app/ext",
    endpoints: [],
  },
];

for (const c of cases) {
  Deno.test(`buildSnapshot() ${c.name}`, () => {
    assert.deepEqual(endpointsOf(build(...c.docs), c.service), c.endpoints);
  });
}

Deno.test("buildSnapshot() drops a Pod whose labels stop matching and adds one that starts", () => {
  const web = service("app", "web", "10.0.0.1", { selector: WEB });
  const before = build(
    web,
    pod("app", "p", "10.1.0.1", { labels: WEB }),
    pod("app", "q", "10.1.0.2", { labels: { app: "web" } }),
  );
  assert.deepEqual(endpointsOf(before, "app/web"), ["10.1.0.1:8080"]);
  const after = build(
    web,
    pod("app", "p", "10.1.0.1", { labels: { app: "web", tier: "back" } }),
    pod("app", "q", "10.1.0.2", { labels: WEB }),
  );
  assert.deepEqual(endpointsOf(after, "app/web"), ["10.1.0.2:8080"]);
});

/** A seeded generator (mulberry32), so a failure repeats. */
function random(seed: number): (n: number) => number {
  return (n) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

Deno.test("buildSnapshot() selects what a scan of every Pod selects on random labels", () => {
  const pick = random(7);
  const namespaces = ["a", "b", "c"];
  const labelsOf = () => {
    const labels: Record<string, string> = {};
    for (const key of ["app", "tier", "version", "zone"]) {
      if (pick(3) > 0) labels[key] = `${key}${pick(3)}`;
    }
    return labels;
  };
  const pods = Array.from({ length: 150 }, (_, i) => ({
    ns: namespaces[pick(3)],
    name: `p${String(i).padStart(3, "0")}`,
    ip: `10.1.${i >> 8}.${i & 255}`,
    labels: labelsOf(),
  }));
  const services = Array.from({ length: 60 }, (_, i) => ({
    ns: namespaces[i % 3],
    name: `s${i}`,
    selector: labelsOf(),
  }));
  const snapshot = build(
    ...services.map((s, i) => service(s.ns, s.name, `10.0.0.${i + 1}`, { selector: s.selector })),
    ...pods.map((p) => pod(p.ns, p.name, p.ip, { labels: p.labels })),
  );
  let selected = 0;
  for (const s of services) {
    const keys = Object.entries(s.selector);
    const want = pods
      .filter((p) => p.ns === s.ns && keys.length > 0)
      .filter((p) => keys.every(([key, value]) => p.labels[key] === value))
      .map((p) => `${p.ip}:8080`);
    selected += want.length;
    assert.deepEqual(endpointsOf(snapshot, `${s.ns}/${s.name}`), want, `${s.ns}/${s.name}`);
  }
  // The data must exercise both outcomes, or the comparison proves little.
  assert.ok(selected > 20 && selected < pods.length * services.length / 3, `${selected}`);
});
