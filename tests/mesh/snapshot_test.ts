import assert from "node:assert/strict";
import { buildSnapshot, parseConfigText, readConfig } from "../../mesh/mod.ts";
import { gateway, pod, service, snapshotFromYaml, yamlDocs } from "../fixtures/mesh/builders.ts";

interface InvalidCase {
  name: string;
  doc: string;
  /** Piece of the message. */
  message: string;
  resource: string;
}

const invalidCases: InvalidCase[] = [
  {
    name: "rejects a Service without metadata.name",
    doc: "apiVersion: v1\nkind: Service\nmetadata: { namespace: app }",
    message: "Missing field: metadata.name",
    resource: "Service app/(unnamed)",
  },
  {
    name: "rejects a Service port of 0",
    doc: service("app", "bad", "10.0.0.2", { ports: [{ port: 0 }] }),
    message: "Invalid port: spec.ports[0].port is 0",
    resource: "Service app/bad",
  },
  {
    name: "rejects a Service port above 65535",
    doc: service("app", "bad", "10.0.0.2", { ports: [{ port: 65536 }] }),
    message: "Invalid port: spec.ports[0].port is 65536",
    resource: "Service app/bad",
  },
  {
    name: "rejects a Service port written as a string",
    doc: service("app", "bad", "10.0.0.2", { ports: [{ port: "80" }] }),
    message: 'Invalid port: spec.ports[0].port is "80"',
    resource: "Service app/bad",
  },
  {
    name: "rejects a clusterIP that is not an IP",
    doc: service("app", "bad", "10.0.0"),
    message: "Invalid IP address: spec.clusterIP",
    resource: "Service app/bad",
  },
  {
    name: "rejects unnamed ports on a Service with several ports",
    doc: service("app", "bad", "10.0.0.2", { ports: [{ port: 80 }, { name: "b", port: 81 }] }),
    message: "Missing field: spec.ports[0].name",
    resource: "Service app/bad",
  },
  {
    name: "rejects a second Service with a VIP already taken",
    doc: service("app", "bad", "10.0.0.1"),
    message: "Duplicate address: 10.0.0.1 is already used by Service app/good",
    resource: "Service app/bad",
  },
  {
    name: "rejects a second resource with the same kind and namespace/name",
    doc: service("app", "good", "10.0.0.2"),
    message: "Duplicate resource: Service app/good is already defined at test.yaml:2",
    resource: "Service app/good",
  },
  {
    name: "rejects a label value that is not a string",
    doc:
      "apiVersion: v1\nkind: Pod\nmetadata: { name: bad, namespace: app, labels: { version: 2 } }",
    message: "Wrong type: metadata.labels.version is 2",
    resource: "Pod app/bad",
  },
  {
    name: "rejects a second workload with an IP already taken",
    doc: pod("app", "bad", "10.1.0.1"),
    message: "Duplicate address: 10.1.0.1 is already used by Pod app/good",
    resource: "Pod app/bad",
  },
  {
    name: "rejects a ServiceEntry with both endpoints and workloadSelector",
    doc: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: bad, namespace: app }
spec:
  hosts: [bad.example.com]
  workloadSelector: { labels: { app: x } }
  endpoints: [{ address: 10.2.0.1 }]`,
    message: "Conflicting fields: spec.endpoints and spec.workloadSelector",
    resource: "ServiceEntry app/bad",
  },
  {
    name: "rejects a ServiceEntry port with an unknown protocol",
    doc: `apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: { name: bad, namespace: app }
spec: { hosts: [bad.example.com], ports: [{ number: 80, name: web, protocol: SPDY }] }`,
    message: "Invalid value: spec.ports[0].protocol",
    resource: "ServiceEntry app/bad",
  },
  {
    name: "rejects a Gateway listener without a port",
    doc: `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: bad, namespace: app }
spec: { gatewayClassName: x, listeners: [{ name: mesh, protocol: HBONE }] }`,
    message: "Missing field: spec.listeners[0].port",
    resource: "Gateway app/bad",
  },
  {
    name: "rejects an allowedRoutes selector expression with an unknown operator",
    doc: gateway({
      name: "bad",
      namespaces: {
        from: "Selector",
        selector: { matchExpressions: [{ key: "a", operator: "Is" }] },
      },
    }),
    message: "spec.listeners[0].allowedRoutes.namespaces.selector.matchExpressions[0].operator",
    resource: "Gateway mesh/bad",
  },
];

for (const c of invalidCases) {
  Deno.test(`buildSnapshot() ${c.name} and keeps the rest`, () => {
    const good = [
      service("app", "good", "10.0.0.1"),
      pod("app", "good", "10.1.0.1", { labels: { app: "good" } }),
    ];
    const { snapshot, problems } = snapshotFromYaml(yamlDocs(...good, c.doc));
    const errors = problems.filter((p) => p.severity === "error");
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.ok(errors[0].message.includes(c.message), errors[0].message);
    assert.equal(errors[0].resource, c.resource);
    assert.match(errors[0].where, /^test\.yaml:\d+$/);
    assert.equal(snapshot.servicesByName.get("app/good")?.ports[0].endpoints.length, 1);
  });
}

Deno.test("buildSnapshot() locates an invalid resource at the line its document starts", () => {
  const text = yamlDocs(
    gateway(),
    service("app", "good", "10.0.0.1"),
    service("app", "bad", "10.0.0.1"),
  );
  const { problems } = snapshotFromYaml(text);
  // 1-based line of each `---`; the third document starts on the line after the third one.
  const separators = text.split("\n").flatMap((line, i) => (line === "---" ? [i + 1] : []));
  assert.deepEqual(problems.map((p) => p.where), [`test.yaml:${separators[2] + 1}`]);
});

Deno.test("buildSnapshot() warns about an unknown kind and keeps quiet about kinds compiled later", () => {
  const text = yamlDocs(
    gateway(),
    "apiVersion: example.com/v1\nkind: Widget\nmetadata: { name: w }",
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: r }",
    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: p }",
    "apiVersion: apps/v1\nkind: Service\nmetadata: { name: s }",
  );
  const { problems } = snapshotFromYaml(text);
  assert.deepEqual(problems.map((p) => [p.severity, p.message]), [
    ["warning", "Unknown kind: Widget (apiVersion example.com/v1) is ignored"],
    ["warning", "Unknown kind: Service (apiVersion apps/v1) is ignored"],
  ]);
});

Deno.test("buildSnapshot() defaults a missing namespace to default", () => {
  const text =
    "apiVersion: v1\nkind: Service\nmetadata: { name: a }\nspec: { clusterIP: 10.0.0.1 }";
  const { snapshot } = snapshotFromYaml(text);
  const svc = snapshot.servicesByName.get("default/a");
  assert.equal(svc?.hostname, "a.default.svc.cluster.local");
  assert.equal(snapshot.servicesByAddress.get("10.0.0.1"), svc);
});

Deno.test("buildSnapshot() indexes every cluster IP in canonical form and skips None", () => {
  const text = yamlDocs(
    `apiVersion: v1
kind: Service
metadata: { name: dual, namespace: app }
spec: { clusterIP: 10.0.0.1, clusterIPs: [10.0.0.1, "FD00::0001"] }`,
    "apiVersion: v1\nkind: Service\nmetadata: { name: headless, namespace: app }\nspec: { clusterIP: None }",
  );
  const { snapshot, problems } = snapshotFromYaml(text);
  assert.deepEqual(problems.filter((p) => p.severity === "error"), []);
  assert.deepEqual([...snapshot.servicesByAddress.keys()], ["10.0.0.1", "fd00::1"]);
  assert.deepEqual(snapshot.servicesByName.get("app/headless")?.addresses, []);
});

Deno.test("buildSnapshot() indexes a dual-stack Pod under both IPs", () => {
  const text = `apiVersion: v1
kind: Pod
metadata: { name: p, namespace: app }
status: { podIP: 10.1.0.1, podIPs: [{ ip: 10.1.0.1 }, { ip: "fd00::0:1" }] }`;
  const { snapshot } = snapshotFromYaml(text);
  assert.deepEqual([...snapshot.workloadsByAddress.keys()], ["10.1.0.1", "fd00::1"]);
  assert.equal(snapshot.workloadsByAddress.get("fd00::1")?.address, "10.1.0.1");
});

Deno.test("buildSnapshot() accepts a Pod without an IP but gives it no workload", () => {
  const { snapshot, problems } = snapshotFromYaml(
    "apiVersion: v1\nkind: Pod\nmetadata: { name: p }",
  );
  assert.deepEqual(problems.filter((p) => p.severity === "error"), []);
  assert.equal(snapshot.workloadsByAddress.size, 0);
});

Deno.test("buildSnapshot() builds identities from the trust domain and service account", () => {
  const { snapshot } = snapshotFromYaml(
    yamlDocs(
      pod("app", "p", "10.1.0.1", { serviceAccount: "reviews" }),
      "apiVersion: v1\nkind: Pod\nmetadata: { name: q, namespace: app }\nstatus: { podIP: 10.1.0.2 }",
    ),
    { trustDomain: "example.org", trustDomainAliases: ["old.org", "example.org"] },
  );
  assert.equal(
    snapshot.workloadsByAddress.get("10.1.0.1")?.identity,
    "spiffe://example.org/ns/app/sa/reviews",
  );
  assert.equal(
    snapshot.workloadsByAddress.get("10.1.0.2")?.identity,
    "spiffe://example.org/ns/app/sa/default",
  );
  assert.deepEqual(snapshot.self.trustDomains, ["example.org", "old.org"]);
});

Deno.test("buildSnapshot() gives a ServiceEntry its first host and protocol field", () => {
  const { snapshot } = snapshotFromYaml(`apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: { name: ext, namespace: app }
spec:
  hosts: [ext.example.com, alt.example.com]
  addresses: [240.0.0.1, 240.0.1.0/24]
  ports: [{ number: 8080, name: web, protocol: GRPC }]`);
  const entry = snapshot.servicesByAddress.get("240.0.0.1");
  assert.equal(entry?.hostname, "ext.example.com");
  assert.equal(entry?.ports[0].protocol, "grpc");
  const cidr = snapshot.problems.find((p) => p.message.startsWith("Unsupported address"));
  assert.equal(
    cidr?.message,
    "Unsupported address: spec.addresses[1] 240.0.1.0/24 is a CIDR, not a VIP; skipped",
  );
  assert.deepEqual([...snapshot.servicesByAddress.keys()], ["240.0.0.1"]);
});

Deno.test("buildSnapshot() freezes the snapshot so the request path cannot change it", () => {
  const { snapshot } = snapshotFromYaml(
    yamlDocs(
      service("app", "a", "10.0.0.1"),
      pod("app", "p", "10.1.0.1", { labels: { app: "a" } }),
    ),
  );
  const svc = snapshot.servicesByName.get("app/a")!;
  const mutations: [string, () => void][] = [
    [
      "a map entry",
      () => (snapshot.servicesByAddress as unknown as Map<string, unknown>).set("x", 1),
    ],
    ["a service field", () => ((svc as { bound: boolean }).bound = true)],
    ["an endpoint list", () => (svc.ports[0].endpoints as unknown[]).push({})],
    ["an endpoint", () => ((svc.ports[0].endpoints[0] as { port: number }).port = 1)],
    ["the problems", () => (snapshot.problems as unknown[]).push({})],
  ];
  for (const [what, mutate] of mutations) assert.throws(mutate, TypeError, what);
});

Deno.test("buildSnapshot() builds the demo mesh without problems", async () => {
  const { documents, problems: loadProblems } = await readConfig(["demo/mesh.yaml"]);
  const { snapshot, problems } = buildSnapshot(documents, {
    namespace: "demo",
    name: "waypoint",
    version: 1,
  });
  assert.deepEqual([...loadProblems, ...problems], []);
  assert.equal(snapshot.servicesByAddress.get("127.10.0.1")?.bound, true);
  assert.equal(snapshot.servicesByAddress.get("127.10.0.2")?.bound, false);
  assert.equal(snapshot.workloadsByAddress.get("127.0.1.2")?.bound, true);
  assert.equal(snapshot.workloadsByAddress.get("127.0.2.1")?.bound, false);
});

Deno.test("parseConfigText() and buildSnapshot() agree on the line of a List item", () => {
  const text = `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata: { name: a }
  - apiVersion: v1
    kind: Service
    metadata: { name: b }
    spec: { ports: [{ port: 0 }] }
`;
  const { documents } = parseConfigText(text, "list.yaml");
  const { problems } = buildSnapshot(documents, {
    namespace: "mesh",
    name: "waypoint",
    version: 1,
  });
  assert.deepEqual(problems.filter((p) => p.severity === "error").map((p) => p.where), [
    "list.yaml:7",
  ]);
});
