import assert from "node:assert/strict";
import { destinationLabels, servedBy, sourceLabels } from "../../telemetry/mod.ts";
import { endpointOf, MESH, PRODUCTPAGE_ID, serviceDestination } from "./_helpers.ts";

const BAGGAGE = "k8s.namespace.name=legacy,k8s.deployment.name=old-v1,service.name=old";

Deno.test("sourceLabels() prefers the model, then baggage, with the namespace of the SPIFFE id", () => {
  const cases: [string, Parameters<typeof sourceLabels>[1], Record<string, string>][] = [
    [
      "a pod the model knows, even with baggage",
      { identity: PRODUCTPAGE_ID, client: "10.2.0.1:41000", baggage: BAGGAGE },
      {
        workload: "productpage-v1",
        namespace: "mesh",
        canonicalService: "productpage",
        principal: PRODUCTPAGE_ID,
      },
    ],
    [
      "an unknown address with baggage",
      {
        identity: "spiffe://cluster.local/ns/legacy/sa/old",
        client: "10.8.0.1:1",
        baggage: BAGGAGE,
      },
      {
        workload: "old-v1",
        namespace: "legacy",
        canonicalService: "old",
        canonicalRevision: "latest",
        cluster: "unknown",
      },
    ],
    [
      "the SAN's namespace wins over the baggage's",
      { identity: "spiffe://cluster.local/ns/real/sa/old", client: "10.8.0.1:1", baggage: BAGGAGE },
      { namespace: "real" },
    ],
    [
      "nothing known but the identity: revision `latest`, like Envoy's sources",
      { identity: "spiffe://cluster.local/ns/x/sa/y", client: "[fd00::9]:80" },
      {
        workload: "unknown",
        namespace: "x",
        canonicalService: "unknown",
        canonicalRevision: "latest",
        app: "unknown",
      },
    ],
    [
      "no certificate",
      { identity: "", client: "10.8.0.1:1" },
      { namespace: "unknown", principal: "unknown" },
    ],
  ];
  for (const [name, facts, expected] of cases) {
    const got = sourceLabels(MESH, facts, "Kubernetes");
    for (const [k, v] of Object.entries(expected)) {
      assert.equal(got[k as keyof typeof got], v, `${name}: ${k}`);
    }
  }
});

Deno.test("destinationLabels() describes the endpoint and the service it was routed to", () => {
  const reviews = serviceDestination("reviews");
  const service = reviews.kind === "service" ? reviews.service : undefined;
  const cases: [string, Parameters<typeof destinationLabels>, Record<string, string>][] = [
    [
      "an endpoint of a service",
      [MESH, service, endpointOf("reviews"), "Kubernetes"],
      {
        workload: "reviews-v1",
        namespace: "mesh",
        principal: "spiffe://cluster.local/ns/mesh/sa/bookinfo-reviews",
        service: "reviews.mesh.svc.cluster.local",
        serviceName: "reviews",
        serviceNamespace: "mesh",
        canonicalRevision: "v1",
        cluster: "Kubernetes",
      },
    ],
    [
      "no endpoint picked yet",
      [MESH, service, undefined, "Kubernetes"],
      {
        workload: "unknown",
        principal: "unknown",
        canonicalRevision: "unknown",
        service: "reviews.mesh.svc.cluster.local",
      },
    ],
    [
      "an endpoint the model does not know",
      [MESH, undefined, {
        address: "192.0.2.1",
        port: 80,
        identity: "",
        workload: { kind: "ServiceEntry", namespace: "ext", name: "api" },
      }, "Kubernetes"],
      {
        workload: "unknown",
        namespace: "ext",
        principal: "unknown",
        service: "unknown",
        serviceNamespace: "unknown",
      },
    ],
  ];
  for (const [name, args, expected] of cases) {
    const got = destinationLabels(...args);
    for (const [k, v] of Object.entries(expected)) {
      assert.equal(got[k as keyof typeof got], v, `${name}: ${k}`);
    }
  }
});

Deno.test("servedBy() prefers what the router chose over the CONNECT target", () => {
  const reviews = serviceDestination("reviews");
  const echo = serviceDestination("echo");
  const ep = endpointOf("echo");
  assert.equal(servedBy(reviews).service?.name, "reviews");
  assert.equal(servedBy(reviews).endpoint, undefined);
  const routed = servedBy(reviews, {
    service: echo.kind === "service" ? echo.service : undefined,
    endpoint: ep,
  });
  assert.equal(routed.service?.name, "echo");
  assert.equal(routed.endpoint, ep);
});
