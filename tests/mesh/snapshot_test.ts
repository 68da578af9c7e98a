import assert from "node:assert/strict";
import { buildSnapshot, parseConfigText, readConfig, type Snapshot } from "../../mesh/mod.ts";
import {
  gateway,
  gatewayClass,
  namespace,
  pod,
  service,
  snapshotFromYaml,
  yamlDocs,
} from "../fixtures/mesh/builders.ts";

/** The bound flag and reason of `Kind ns/name` in a snapshot. */
function bindingOf(snapshot: Snapshot, ref: string): { bound: boolean; reason: string } {
  const items = [...snapshot.servicesByName.values(), ...snapshot.workloadsByAddress.values()];
  const item = items.find((i) => `${i.kind} ${i.namespace}/${i.name}` === ref);
  if (!item) throw new Error(`${ref} is not in the snapshot`);
  return { bound: item.bound, reason: item.unboundReason };
}

const USE = "istio.io/use-waypoint";
const USE_NS = "istio.io/use-waypoint-namespace";
const FOR = "istio.io/waypoint-for";
const MESH = { app: "mesh" };
const CROSS = { [USE]: "waypoint", [USE_NS]: "mesh" };

interface BindingCase {
  name: string;
  docs: string[];
  target: string;
  /** Empty when bound, else a piece of the expected reason. */
  reason: string;
}

const bindingCases: BindingCase[] = [
  {
    name: "binds a Service labelled with this waypoint",
    docs: [gateway(), service("mesh", "a", "10.0.0.1", { labels: { [USE]: "waypoint" } })],
    target: "Service mesh/a",
    reason: "",
  },
  {
    name: "binds a Service through its Namespace label",
    docs: [gateway(), namespace("mesh", { [USE]: "waypoint" }), service("mesh", "a", "10.0.0.1")],
    target: "Service mesh/a",
    reason: "",
  },
  {
    name: "lets the object label win over the Namespace label",
    docs: [
      gateway(),
      namespace("mesh", { [USE]: "other" }),
      service("mesh", "a", "10.0.0.1", { labels: { [USE]: "waypoint" } }),
    ],
    target: "Service mesh/a",
    reason: "",
  },
  {
    name: "does not bind a Service whose own label names another waypoint over the Namespace's",
    docs: [
      gateway(),
      namespace("mesh", { [USE]: "waypoint" }),
      service("mesh", "a", "10.0.0.1", { labels: { [USE]: "other" } }),
    ],
    target: "Service mesh/a",
    reason: "Service mesh/a uses waypoint mesh/other",
  },
  {
    name: "lets none on the object opt out of a Namespace label",
    docs: [
      gateway(),
      namespace("mesh", { [USE]: "waypoint" }),
      service("mesh", "a", "10.0.0.1", { labels: { [USE]: "none" } }),
    ],
    target: "Service mesh/a",
    reason: "opts out with istio.io/use-waypoint: none",
  },
  {
    name: "does not bind when neither the object nor its Namespace has a label",
    docs: [gateway(), namespace("mesh"), service("mesh", "a", "10.0.0.1")],
    target: "Service mesh/a",
    reason: "has no istio.io/use-waypoint label",
  },
  {
    name: "follows use-waypoint-namespace to this waypoint from another namespace",
    docs: [gateway({ namespaces: { from: "All" } }), service("app", "a", "10.0.0.1", { labels: CROSS })],
    target: "Service app/a",
    reason: "",
  },
  {
    name: "reads use-waypoint-namespace from the Namespace when the label is inherited",
    docs: [
      gateway({ namespaces: { from: "All" } }),
      namespace("app", CROSS),
      service("app", "a", "10.0.0.1"),
    ],
    target: "Service app/a",
    reason: "",
  },
  {
    name: "resolves use-waypoint without a namespace in the object's own namespace",
    docs: [gateway({ namespaces: { from: "All" } }), service("app", "a", "10.0.0.1", { labels: { [USE]: "waypoint" } })],
    target: "Service app/a",
    reason: "uses waypoint app/waypoint",
  },
  {
    name: "does not bind a Pod when waypoint-for defaults to service",
    docs: [gateway(), namespace("mesh", { [USE]: "waypoint" }), pod("mesh", "p", "10.1.0.1")],
    target: "Pod mesh/p",
    reason: "waypoint-for is service, not workload",
  },
  {
    name: "binds a Pod when waypoint-for is workload",
    docs: [gateway({ labels: { [FOR]: "workload" } }), namespace("mesh", { [USE]: "waypoint" }), pod("mesh", "p", "10.1.0.1")],
    target: "Pod mesh/p",
    reason: "",
  },
  {
    name: "does not bind a Service when waypoint-for is workload",
    docs: [gateway({ labels: { [FOR]: "workload" } }), namespace("mesh", { [USE]: "waypoint" }), service("mesh", "a", "10.0.0.1")],
    target: "Service mesh/a",
    reason: "waypoint-for is workload, not service",
  },
  {
    name: "binds a Pod when waypoint-for is all",
    docs: [gateway({ labels: { [FOR]: "all" } }), namespace("mesh", { [USE]: "waypoint" }), pod("mesh", "p", "10.1.0.1")],
    target: "Pod mesh/p",
    reason: "",
  },
  {
    name: "binds a Service when waypoint-for is all",
    docs: [gateway({ labels: { [FOR]: "all" } }), namespace("mesh", { [USE]: "waypoint" }), service("mesh", "a", "10.0.0.1")],
    target: "Service mesh/a",
    reason: "",
  },
  {
    name: "binds nothing when waypoint-for is none",
    docs: [gateway({ labels: { [FOR]: "none" } }), namespace("mesh", { [USE]: "waypoint" }), service("mesh", "a", "10.0.0.1")],
    target: "Service mesh/a",
    reason: "waypoint-for is none",
  },
  {
    name: "takes waypoint-for from the GatewayClass when the Gateway has none",
    docs: [
      gatewayClass("istio-waypoint", { [FOR]: "workload" }),
      gateway(),
      namespace("mesh", { [USE]: "waypoint" }),
      pod("mesh", "p", "10.1.0.1"),
    ],
    target: "Pod mesh/p",
    reason: "",
  },
  {
    name: "lets the Gateway's waypoint-for win over the GatewayClass's",
    docs: [
      gatewayClass("istio-waypoint", { [FOR]: "workload" }),
      gateway({ labels: { [FOR]: "service" } }),
      namespace("mesh", { [USE]: "waypoint" }),
      pod("mesh", "p", "10.1.0.1"),
    ],
    target: "Pod mesh/p",
    reason: "waypoint-for is service, not workload",
  },
  {
    name: "refuses another namespace when allowedRoutes is Same by default",
    docs: [gateway(), service("app", "a", "10.0.0.1", { labels: CROSS })],
    target: "Service app/a",
    reason: "namespace app not allowed by Gateway mesh/waypoint listener mesh (from: Same)",
  },
  {
    name: "refuses another namespace when allowedRoutes is Same explicitly",
    docs: [gateway({ namespaces: { from: "Same" } }), service("app", "a", "10.0.0.1", { labels: CROSS })],
    target: "Service app/a",
    reason: "(from: Same)",
  },
  {
    name: "accepts a namespace whose labels match the allowedRoutes selector",
    docs: [
      gateway({ namespaces: { from: "Selector", selector: { matchLabels: MESH } } }),
      namespace("app", { ...CROSS, ...MESH }),
      service("app", "a", "10.0.0.1"),
    ],
    target: "Service app/a",
    reason: "",
  },
  {
    name: "refuses a namespace whose labels do not match the allowedRoutes selector",
    docs: [
      gateway({ namespaces: { from: "Selector", selector: { matchLabels: MESH } } }),
      namespace("app", CROSS),
      service("app", "a", "10.0.0.1"),
    ],
    target: "Service app/a",
    reason: "(from: Selector)",
  },
  {
    name: "accepts a namespace that matches selector matchExpressions",
    docs: [
      gateway({
        namespaces: {
          from: "Selector",
          selector: { matchExpressions: [{ key: "app", operator: "In", values: ["x", "mesh"] }] },
        },
      }),
      namespace("app", { ...CROSS, ...MESH }),
      service("app", "a", "10.0.0.1"),
    ],
    target: "Service app/a",
    reason: "",
  },
  {
    name: "applies the selector to the Gateway's own namespace too",
    docs: [
      gateway({ namespaces: { from: "Selector", selector: { matchLabels: MESH } } }),
      namespace("mesh", { [USE]: "waypoint" }),
      service("mesh", "a", "10.0.0.1"),
    ],
    target: "Service mesh/a",
    reason: "namespace mesh not allowed",
  },
  {
    name: "treats a Gateway without an HBONE listener as allowing Same only",
    docs: [gateway({ protocol: "HTTP", namespaces: { from: "All" } }), service("app", "a", "10.0.0.1", { labels: CROSS })],
    target: "Service app/a",
    reason: "no HBONE listener on 15008, so from: Same",
  },
  {
    name: "binds nothing when this waypoint's Gateway is missing",
    docs: [gateway({ name: "other" }), service("mesh", "a", "10.0.0.1", { labels: { [USE]: "waypoint" } })],
    target: "Service mesh/a",
    reason: "but Gateway mesh/waypoint is not in the config",
  },
  {
    name: "never binds the waypoint's own Service",
    docs: [
      gateway(),
      namespace("mesh", { [USE]: "waypoint" }),
      service("mesh", "waypoint", "10.0.0.9", { labels: { "gateway.istio.io/managed": "istio.io-mesh-controller" } }),
    ],
    target: "Service mesh/waypoint",
    reason: "belongs to a waypoint",
  },
];

for (const c of bindingCases) {
  Deno.test(`buildSnapshot() ${c.name}`, () => {
    const { snapshot } = snapshotFromYaml(yamlDocs(...c.docs));
    const { bound, reason } = bindingOf(snapshot, c.target);
    if (c.reason === "") {
      assert.equal(reason, "");
      assert.equal(bound, true);
    } else {
      assert.equal(bound, false);
      assert.ok(reason.includes(c.reason), `reason "${reason}" lacks "${c.reason}"`);
    }
  });
}

Deno.test("buildSnapshot() warns and reports gatewayFound false when the Gateway is missing", () => {
  const { snapshot, problems } = snapshotFromYaml(yamlDocs(namespace("mesh")));
  assert.equal(snapshot.gatewayFound, false);
  assert.deepEqual(problems.map((p) => [p.severity, p.where]), [["warning", "Gateway mesh/waypoint"]]);
});

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
    message: "Invalid port: spec.ports[0].port is \"80\"",
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
    doc: "apiVersion: v1\nkind: Pod\nmetadata: { name: bad, namespace: app, labels: { version: 2 } }",
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
      namespaces: { from: "Selector", selector: { matchExpressions: [{ key: "a", operator: "Is" }] } },
    }),
    message: "spec.listeners[0].allowedRoutes.namespaces.selector.matchExpressions[0].operator",
    resource: "Gateway mesh/bad",
  },
];

for (const c of invalidCases) {
  Deno.test(`buildSnapshot() ${c.name} and keeps the rest`, () => {
    const good = [service("app", "good", "10.0.0.1"), pod("app", "good", "10.1.0.1", { labels: { app: "good" } })];
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
  const text = yamlDocs(gateway(), service("app", "good", "10.0.0.1"), service("app", "bad", "10.0.0.1"));
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
  const text = "apiVersion: v1\nkind: Service\nmetadata: { name: a }\nspec: { clusterIP: 10.0.0.1 }";
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
  const { snapshot, problems } = snapshotFromYaml("apiVersion: v1\nkind: Pod\nmetadata: { name: p }");
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
  assert.equal(snapshot.workloadsByAddress.get("10.1.0.1")?.identity, "spiffe://example.org/ns/app/sa/reviews");
  assert.equal(snapshot.workloadsByAddress.get("10.1.0.2")?.identity, "spiffe://example.org/ns/app/sa/default");
  assert.deepEqual(snapshot.self.trustDomains, ["example.org", "old.org"]);
});

interface EndpointCase {
  name: string;
  docs: string[];
  /** `ns/name` of the service and the port number. */
  service: string;
  port: number;
  /** `address:port identity-sa` of each ready endpoint. */
  endpoints: string[];
}

const slice = (ready: boolean) =>
  `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: a-1, namespace: app, labels: { kubernetes.io/service-name: a } }
addressType: IPv4
ports: [{ name: http, port: 9090 }]
endpoints:
  - { addresses: [10.1.0.7], targetRef: { kind: Pod, name: p } }
  - { addresses: [10.1.0.8], conditions: { ready: ${ready} } }`;

const endpointCases: EndpointCase[] = [
  {
    name: "resolves a numeric targetPort on Pods the selector matches",
    docs: [service("app", "a", "10.0.0.1"), pod("app", "p", "10.1.0.1", { labels: { app: "a" } }), pod("app", "q", "10.1.0.2")],
    service: "app/a",
    port: 80,
    endpoints: ["10.1.0.1:8080 p"],
  },
  {
    name: "resolves a named targetPort to the container port of that name",
    docs: [
      service("app", "a", "10.0.0.1", { ports: [{ name: "http", port: 80, targetPort: "web" }] }),
      pod("app", "p", "10.1.0.1", { labels: { app: "a" }, containerPorts: [{ name: "web", containerPort: 7070 }] }),
      pod("app", "q", "10.1.0.2", { labels: { app: "a" } }),
    ],
    service: "app/a",
    port: 80,
    endpoints: ["10.1.0.1:7070 p"],
  },
  {
    name: "uses the port itself when targetPort is missing",
    docs: [service("app", "a", "10.0.0.1", { ports: [{ name: "http", port: 80 }] }), pod("app", "p", "10.1.0.1", { labels: { app: "a" } })],
    service: "app/a",
    port: 80,
    endpoints: ["10.1.0.1:80 p"],
  },
  {
    name: "leaves out Pods whose Ready condition is False",
    docs: [
      service("app", "a", "10.0.0.1"),
      pod("app", "p", "10.1.0.1", { labels: { app: "a" }, ready: "True" }),
      pod("app", "q", "10.1.0.2", { labels: { app: "a" }, ready: "False" }),
    ],
    service: "app/a",
    port: 80,
    endpoints: ["10.1.0.1:8080 p"],
  },
  {
    name: "does not select Pods in another namespace",
    docs: [service("app", "a", "10.0.0.1"), pod("other", "p", "10.1.0.1", { labels: { app: "a" } })],
    service: "app/a",
    port: 80,
    endpoints: [],
  },
  {
    name: "prefers EndpointSlices over the selector and takes identity from the targetRef Pod",
    docs: [
      service("app", "a", "10.0.0.1"),
      pod("app", "p", "10.1.0.1", { labels: { app: "a" }, serviceAccount: "sa-p" }),
      slice(true),
    ],
    service: "app/a",
    port: 80,
    endpoints: ["10.1.0.7:9090 sa-p", "10.1.0.8:9090 default"],
  },
  {
    name: "leaves out EndpointSlice endpoints whose ready condition is false",
    docs: [service("app", "a", "10.0.0.1"), pod("app", "p", "10.1.0.9", { serviceAccount: "sa-p" }), slice(false)],
    service: "app/a",
    port: 80,
    endpoints: ["10.1.0.7:9090 sa-p"],
  },
  {
    name: "maps ServiceEntry inline endpoints by port name, then targetPort, then number",
    docs: [`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: app }
spec:
  hosts: [ext.example.com, alt.example.com]
  addresses: [240.0.0.1]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 8000 }, { number: 443, name: tls, protocol: TLS }]
  resolution: STATIC
  endpoints:
    - { address: 10.2.0.1, ports: { http: 8080 }, serviceAccount: ext }
    - { address: 10.2.0.2 }`],
    service: "app/ext",
    port: 80,
    endpoints: ["10.2.0.1:8080 ext", "10.2.0.2:8000 default"],
  },
  {
    name: "selects WorkloadEntries in its namespace with a ServiceEntry workloadSelector",
    docs: [
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: vm, namespace: app }
spec:
  hosts: [vm.example.com]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: vm } }`,
      `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: vm-1, namespace: app }
spec: { address: 10.3.0.1, labels: { app: vm }, ports: { http: 8081 }, serviceAccount: vm }`,
      `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: vm-2, namespace: other }
spec: { address: 10.3.0.2, labels: { app: vm } }`,
    ],
    service: "app/vm",
    port: 80,
    endpoints: ["10.3.0.1:8081 vm"],
  },
];

for (const c of endpointCases) {
  Deno.test(`buildSnapshot() ${c.name}`, () => {
    const { snapshot, problems } = snapshotFromYaml(yamlDocs(...c.docs));
    assert.deepEqual(problems.filter((p) => p.severity === "error"), []);
    const port = snapshot.servicesByName.get(c.service)?.ports.find((p) => p.port === c.port);
    const got = port?.endpoints.map((e) => `${e.address}:${e.port} ${e.identity.split("/sa/")[1]}`);
    assert.deepEqual(got, c.endpoints);
  });
}

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
  assert.equal(cidr?.message, "Unsupported address: spec.addresses[1] 240.0.1.0/24 is a CIDR, not a VIP; skipped");
  assert.deepEqual([...snapshot.servicesByAddress.keys()], ["240.0.0.1"]);
});

Deno.test("buildSnapshot() freezes the snapshot so the request path cannot change it", () => {
  const { snapshot } = snapshotFromYaml(yamlDocs(service("app", "a", "10.0.0.1"), pod("app", "p", "10.1.0.1", { labels: { app: "a" } })));
  const svc = snapshot.servicesByName.get("app/a")!;
  const mutations: [string, () => void][] = [
    ["a map entry", () => (snapshot.servicesByAddress as unknown as Map<string, unknown>).set("x", 1)],
    ["a service field", () => ((svc as { bound: boolean }).bound = true)],
    ["an endpoint list", () => (svc.ports[0].endpoints as unknown[]).push({})],
    ["an endpoint", () => ((svc.ports[0].endpoints[0] as { port: number }).port = 1)],
    ["the problems", () => (snapshot.problems as unknown[]).push({})],
  ];
  for (const [what, mutate] of mutations) assert.throws(mutate, TypeError, what);
});

Deno.test("buildSnapshot() builds the demo mesh without problems", async () => {
  const { documents, problems: loadProblems } = await readConfig(["demo/mesh.yaml"]);
  const { snapshot, problems } = buildSnapshot(documents, { namespace: "demo", name: "waypoint", version: 1 });
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
  const { problems } = buildSnapshot(documents, { namespace: "mesh", name: "waypoint", version: 1 });
  assert.deepEqual(problems.filter((p) => p.severity === "error").map((p) => p.where), ["list.yaml:7"]);
});
