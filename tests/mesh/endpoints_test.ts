/**
 * Endpoint resolution of `mesh/_endpoints.ts`, through `buildSnapshot()`: EndpointSlices, Service
 * selectors with numeric and named target ports, and ServiceEntry endpoints and workloadSelector.
 */
import assert from "node:assert/strict";
import { pod, service, snapshotFromYaml, yamlDocs } from "../fixtures/mesh/builders.ts";

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
    docs: [
      service("app", "a", "10.0.0.1"),
      pod("app", "p", "10.1.0.1", { labels: { app: "a" } }),
      pod("app", "q", "10.1.0.2"),
    ],
    service: "app/a",
    port: 80,
    endpoints: ["10.1.0.1:8080 p"],
  },
  {
    name: "resolves a named targetPort to the container port of that name",
    docs: [
      service("app", "a", "10.0.0.1", { ports: [{ name: "http", port: 80, targetPort: "web" }] }),
      pod("app", "p", "10.1.0.1", {
        labels: { app: "a" },
        containerPorts: [{ name: "web", containerPort: 7070 }],
      }),
      pod("app", "q", "10.1.0.2", { labels: { app: "a" } }),
    ],
    service: "app/a",
    port: 80,
    endpoints: ["10.1.0.1:7070 p"],
  },
  {
    name: "uses the port itself when targetPort is missing",
    docs: [
      service("app", "a", "10.0.0.1", { ports: [{ name: "http", port: 80 }] }),
      pod("app", "p", "10.1.0.1", { labels: { app: "a" } }),
    ],
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
    docs: [
      service("app", "a", "10.0.0.1"),
      pod("other", "p", "10.1.0.1", { labels: { app: "a" } }),
    ],
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
    docs: [
      service("app", "a", "10.0.0.1"),
      pod("app", "p", "10.1.0.9", { serviceAccount: "sa-p" }),
      slice(false),
    ],
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
