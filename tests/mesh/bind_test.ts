import assert from "node:assert/strict";
import { bind, type Binding } from "../../mesh/mod.ts";
import * as k8s from "../fixtures/mesh/builders.ts";

const USE = { "istio.io/use-waypoint": "waypoint" };

/** A mesh namespace bound to `mesh/waypoint`, which serves `waypointFor`. */
function mesh(waypointFor: string, ...docs: string[]) {
  const labels = { "istio.io/waypoint-for": waypointFor };
  return k8s.snapshotFromYaml(
    k8s.yamlDocs(k8s.gateway({ labels }), k8s.namespace("mesh", USE), ...docs),
  ).snapshot;
}

const ports = [
  { name: "http", port: 80, targetPort: 8080 },
  { name: "grpc", port: 90, targetPort: 9090 },
];
const echo = k8s.service("mesh", "echo", "10.0.0.1", { ports });
const echoPod = k8s.pod("mesh", "echo-1", "10.1.0.1", {
  labels: { app: "echo" },
  serviceAccount: "echo",
});
const other = k8s.service("other", "away", "10.0.0.2");

/** What a binding looks like in one line, for table comparisons. */
function summary(binding: Binding): string {
  if (!binding.ok) return `refused: ${binding.reason}`;
  const d = binding.destination;
  if (d.kind === "service") {
    const endpoints = d.port.endpoints.map((e) => `${e.address}:${e.port}`).join(",");
    return `service ${d.service.namespace}/${d.service.name}:${d.port.port} ${d.port.protocol} -> ${endpoints}`;
  }
  return `workload ${d.workload.namespace}/${d.workload.name}:${d.port} ${d.protocol} -> ` +
    `${d.endpoint.address}:${d.endpoint.port} ${d.endpoint.identity}`;
}

const cases: {
  name: string;
  waypointFor: string;
  docs: string[];
  address: string;
  port: number;
  want: string;
}[] = [
  {
    name: "resolves a bound service VIP and port to its endpoints",
    waypointFor: "service",
    docs: [echo, echoPod],
    address: "10.0.0.1",
    port: 80,
    want: "service mesh/echo:80 http -> 10.1.0.1:8080",
  },
  {
    name: "gives each service port its own protocol",
    waypointFor: "service",
    docs: [echo, echoPod],
    address: "10.0.0.1",
    port: 90,
    want: "service mesh/echo:90 grpc -> 10.1.0.1:9090",
  },
  {
    name: "refuses a service VIP with a port the service does not have",
    waypointFor: "service",
    docs: [echo, echoPod],
    address: "10.0.0.1",
    port: 81,
    want: "refused: Service mesh/echo has no port 81",
  },
  {
    name: "refuses a service that is not bound to this waypoint",
    waypointFor: "service",
    docs: [echo, other],
    address: "10.0.0.2",
    port: 80,
    want: "refused: Service other/away has no istio.io/use-waypoint label, nor has namespace other",
  },
  {
    name:
      "resolves a bound pod IP to the pod itself with the protocol of the service port that targets it",
    waypointFor: "all",
    docs: [echo, echoPod],
    address: "10.1.0.1",
    port: 8080,
    want: "workload mesh/echo-1:8080 http -> 10.1.0.1:8080 spiffe://cluster.local/ns/mesh/sa/echo",
  },
  {
    name: "gives a pod port no service targets the unknown protocol",
    waypointFor: "workload",
    docs: [echo, echoPod],
    address: "10.1.0.1",
    port: 7000,
    want:
      "workload mesh/echo-1:7000 unknown -> 10.1.0.1:7000 spiffe://cluster.local/ns/mesh/sa/echo",
  },
  {
    name: "takes a pod port's protocol from the first service by namespace/name",
    waypointFor: "all",
    docs: [
      k8s.service("mesh", "zz-tcp", "10.0.0.3", {
        selector: { app: "echo" },
        ports: [{ name: "tcp", port: 1, targetPort: 8080 }],
      }),
      echo,
      echoPod,
    ],
    address: "10.1.0.1",
    port: 8080,
    want: "workload mesh/echo-1:8080 http -> 10.1.0.1:8080 spiffe://cluster.local/ns/mesh/sa/echo",
  },
  {
    name: "refuses a pod IP when the waypoint serves services only",
    waypointFor: "service",
    docs: [echo, echoPod],
    address: "10.1.0.1",
    port: 8080,
    want: "refused: Pod mesh/echo-1: waypoint-for is service, not workload",
  },
  {
    name: "refuses an address no service or workload has",
    waypointFor: "all",
    docs: [echo, echoPod],
    address: "10.9.9.9",
    port: 80,
    want: "refused: no service or workload has address 10.9.9.9",
  },
];

for (const c of cases) {
  Deno.test(`bind() ${c.name}`, () => {
    assert.equal(summary(bind(mesh(c.waypointFor, ...c.docs), c.address, c.port)), c.want);
  });
}

Deno.test("bind() prefers a service VIP over a workload with the same address", () => {
  const snapshot = mesh("all", echo, k8s.pod("mesh", "odd", "10.0.0.1"));
  const binding = bind(snapshot, "10.0.0.1", 80);
  assert.ok(binding.ok && binding.destination.kind === "service");
});
