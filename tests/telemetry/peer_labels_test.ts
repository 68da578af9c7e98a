import assert from "node:assert/strict";
import type { Workload } from "../../mesh/mod.ts";
import {
  namespaceOfIdentity,
  parseBaggage,
  peerFromBaggage,
  peerFromWorkload,
  UNKNOWN_PEER,
} from "../../telemetry/mod.ts";

Deno.test("parseBaggage() reads W3C baggage members", () => {
  const cases: [string, string, [string, string][]][] = [
    [
      "ztunnel's header",
      "k8s.cluster.name=Kubernetes,k8s.namespace.name=mesh,k8s.deployment.name=productpage-v1," +
      "service.name=productpage,service.version=v1",
      [
        ["k8s.cluster.name", "Kubernetes"],
        ["k8s.namespace.name", "mesh"],
        ["k8s.deployment.name", "productpage-v1"],
        ["service.name", "productpage"],
        ["service.version", "v1"],
      ],
    ],
    ["whitespace around members and values", " a = 1 ,\tb=2 ", [["a", "1"], ["b", "2"]]],
    ["properties are dropped", "a=1;ttl=30;flag,b=2", [["a", "1"], ["b", "2"]]],
    ["values are percent-decoded", "a=hello%20world%2C%22x%22", [["a", 'hello world,"x"']]],
    ["a broken escape is kept raw", "a=100%", [["a", "100%"]]],
    ["the first of a repeated key wins", "a=1,a=2", [["a", "1"]]],
    ["members without a key or `=` are skipped", "=1,novalue,,b=", [["b", ""]]],
    ["an empty header", "", []],
  ];
  for (const [name, header, expected] of cases) {
    assert.deepEqual([...parseBaggage(header)], expected, name);
  }
});

Deno.test("parseBaggage() stops at the W3C limits of 180 members and 8192 bytes", () => {
  const many = Array.from({ length: 300 }, (_, i) => `k${i}=v`).join(",");
  assert.equal(parseBaggage(many).size, 180);
  const long = `a=${"x".repeat(9000)},b=1`;
  assert.equal(parseBaggage(long).get("a")?.length, 8190);
  assert.equal(parseBaggage(long).has("b"), false);
});

Deno.test("peerFromBaggage() maps ztunnel's keys to source labels", () => {
  const cases: [string, string | undefined, unknown][] = [
    [
      "a deployment with canonical service and revision",
      "k8s.cluster.name=east,k8s.namespace.name=mesh,k8s.deployment.name=productpage-v1," +
      "service.name=productpage,service.version=v1",
      {
        workload: "productpage-v1",
        namespace: "mesh",
        canonicalService: "productpage",
        canonicalRevision: "v1",
        app: "productpage",
        version: "v1",
        cluster: "east",
      },
    ],
    [
      "a cronjob without service keys falls back to its name and `latest`",
      "k8s.namespace.name=batch,k8s.cronjob.name=nightly",
      {
        workload: "nightly",
        namespace: "batch",
        canonicalService: "nightly",
        canonicalRevision: "latest",
        app: "unknown",
        version: "unknown",
        cluster: "unknown",
      },
    ],
    [
      "app.name and app.version win over the canonical ones for app and version",
      "k8s.namespace.name=a,k8s.pod.name=p,service.name=s,service.version=1,app.name=x,app.version=2",
      {
        workload: "p",
        namespace: "a",
        canonicalService: "s",
        canonicalRevision: "1",
        app: "x",
        version: "2",
        cluster: "unknown",
      },
    ],
    ["no header", undefined, undefined],
    ["no workload and no namespace", "service.name=x,k8s.cluster.name=c", undefined],
  ];
  for (const [name, header, expected] of cases) {
    assert.deepEqual(peerFromBaggage(header), expected, name);
  }
});

function workload(
  name: string,
  labels: Record<string, string>,
  kind: "Pod" | "WorkloadEntry" = "Pod",
): Workload {
  return {
    kind,
    namespace: "mesh",
    name,
    address: "10.0.0.1",
    serviceAccount: "sa",
    identity: "spiffe://cluster.local/ns/mesh/sa/sa",
    labels,
    bound: true,
    unboundReason: "",
    ready: true,
    portProtocols: new Map(),
  };
}

Deno.test("peerFromWorkload() follows Istio's label precedence and names the owner", () => {
  const cases: [string, Workload, Partial<Record<keyof typeof UNKNOWN_PEER, string>>][] = [
    [
      "a Deployment's Pod reports the Deployment, app and version labels",
      workload("reviews-v1-5d8f9c7b4-x2x9q", {
        app: "reviews",
        version: "v1",
        "pod-template-hash": "5d8f9c7b4",
      }),
      {
        workload: "reviews-v1",
        canonicalService: "reviews",
        canonicalRevision: "v1",
        app: "reviews",
        version: "v1",
      },
    ],
    [
      "canonical labels win over app.kubernetes.io and app",
      workload("p", {
        "service.istio.io/canonical-name": "canon",
        "service.istio.io/canonical-revision": "r7",
        "app.kubernetes.io/name": "k8sname",
        "app.kubernetes.io/version": "9",
        app: "legacy",
        version: "old",
      }),
      {
        workload: "p",
        canonicalService: "canon",
        canonicalRevision: "r7",
        app: "k8sname",
        version: "9",
      },
    ],
    [
      "a Pod without labels reports its name and `latest`",
      workload("lonely", {}),
      {
        workload: "lonely",
        canonicalService: "lonely",
        canonicalRevision: "latest",
        app: "unknown",
        version: "unknown",
      },
    ],
    [
      "a StatefulSet's Pod reports the set",
      workload("db-2", { "statefulset.kubernetes.io/pod-name": "db-2" }),
      { workload: "db", canonicalService: "db" },
    ],
    [
      "a Job's Pod reports the job",
      workload("migrate-x7k2p", { "job-name": "migrate" }),
      { workload: "migrate", canonicalService: "migrate" },
    ],
    [
      "a pod-template-hash that does not fit the name keeps the Pod name",
      workload("custom-name", { "pod-template-hash": "abc" }),
      { workload: "custom-name" },
    ],
    [
      "a WorkloadEntry keeps its name",
      workload("vm-1-abc-12345", { "pod-template-hash": "abc" }, "WorkloadEntry"),
      { workload: "vm-1-abc-12345", namespace: "mesh", cluster: "Kubernetes" },
    ],
  ];
  for (const [name, w, expected] of cases) {
    const got = peerFromWorkload(w, "Kubernetes");
    for (const [k, v] of Object.entries(expected)) {
      assert.equal(got[k as keyof typeof got], v, `${name}: ${k}`);
    }
  }
});

Deno.test("namespaceOfIdentity() reads the namespace of a SPIFFE id", () => {
  assert.equal(namespaceOfIdentity("spiffe://cluster.local/ns/mesh/sa/reviews"), "mesh");
  assert.equal(namespaceOfIdentity("spiffe://cluster.local/other"), undefined);
  assert.equal(namespaceOfIdentity(""), undefined);
});
