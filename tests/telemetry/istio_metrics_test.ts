import assert from "node:assert/strict";
import { IstioMetrics, Registry } from "../../telemetry/mod.ts";
import { destination, outcome, source } from "./_bench_fixtures.ts";

Deno.test("IstioMetrics.pair() interns pairs by their label text", () => {
  const m = new IstioMetrics();
  const a = m.pair(source(1), destination(1));
  assert.equal(m.pair(source(1), destination(1)), a);
  assert.notEqual(m.pair(source(2), destination(1)), a);
  assert.match(a.text, /^reporter="waypoint",source_workload="productpage-v1",/);
  assert.match(a.text, /,destination_cluster="Kubernetes"$/);
  assert.equal(a.security, "mutual_tls");
  assert.equal(m.pair({ ...source(1), principal: "unknown" }, destination(1)).security, "none");
});

Deno.test("IstioMetrics.recordHttp() keeps Envoy's flags and reports others as `-`", () => {
  const cases: [string, string][] = [
    ["-", "-"],
    ["UF", "UF"],
    ["UAEX", "UAEX"],
    ["RBAC", "-"],
    ["UF,URX", "UF,URX"],
    ["RBAC,UT", "UT"],
  ];
  for (const [flag, expected] of cases) {
    const m = new IstioMetrics();
    m.recordHttp(m.pair(source(1), destination(1)), { ...outcome(0), flag });
    const [series] = m.requests.values();
    assert.match(series.labels, new RegExp(`response_flags="${expected}",`), flag);
  }
});

Deno.test("IstioMetrics.recordHttp() records whole milliseconds, and gRPC messages for gRPC only with the pair's labels", () => {
  const m = new IstioMetrics();
  const pair = m.pair(source(1), destination(1));
  m.recordHttp(pair, { ...outcome(0), durationMs: 0.9 });
  m.recordHttp(pair, { ...outcome(0), durationMs: 10.99 });
  m.recordHttp(pair, { ...outcome(0), requestMessages: 3, responseMessages: 4 });
  const grpc = { ...outcome(0), protocol: "grpc" as const, grpcStatus: "0" };
  m.recordHttp(pair, { ...grpc, requestMessages: 3, responseMessages: 4 });
  const [http] = m.duration.values();
  assert.equal(http.sum, 0 + 10 + 12);
  assert.deepEqual([...http.counts.slice(0, 4)], [1, 0, 0, 1]);
  assert.equal(m.requestMessages.size, 1);
  const [messages] = m.requestMessages.values();
  // Envoy reports messages before the outcome is known: no outcome labels (proxy testdata).
  assert.equal(messages.labels, pair.text);
  assert.equal(messages.value, 3);
  assert.equal([...m.responseMessages.values()][0].value, 4);
});

Deno.test("IstioMetrics registers Istio's ten names once per registry", () => {
  const registry = new Registry();
  const m = new IstioMetrics({ registry, cluster: "east" });
  assert.equal(m.cluster, "east");
  assert.throws(
    () => new IstioMetrics({ registry }),
    /Metric already registered: istio_requests_total/,
  );
});
