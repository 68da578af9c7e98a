/**
 * One exporter per tracing provider: Telemetry `tracing[].providers` sends each destination's
 * spans to its own OTLP/HTTP receiver (two `Deno.serve` receivers on 127.0.28.1 and .2), and a
 * MeshConfig reload retires the exporters of providers it removed or changed.
 */
import assert from "node:assert/strict";
import {
  bytesBody,
  compose,
  type Filter,
  HeaderMap,
  HttpContext,
  readAll,
  runChain,
} from "../../http/mod.ts";
import { parseConfigText } from "../../mesh/mod.ts";
import {
  compileTelemetry,
  DEFAULT_PROVIDERS,
  type OtlpProvider,
  TraceExporters,
  tracingFilter,
  type TracingState,
} from "../../telemetry/mod.ts";
import { otlpReceiver } from "./_receivers.ts";
import { connection, endpointOf, request, type TestState } from "./_helpers.ts";

const TELEMETRY = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-wide, namespace: mesh }
spec:
  tracing: [{ providers: [{ name: otel-a }], randomSamplingPercentage: 100 }]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: reviews, namespace: mesh }
spec:
  targetRefs: [{ kind: Service, group: "", name: reviews }]
  tracing: [{ providers: [{ name: otel-b }] }]
`;

type State = TestState & TracingState;

const answer: Filter<State> = async (ctx) => {
  await readAll(ctx.request.body, 1 << 20);
  ctx.state.endpoint = endpointOf("reviews");
  ctx.response = { head: { status: 200, headers: new HeaderMap() }, body: bytesBody("ok") };
};

Deno.test("tracingFilter() with TraceExporters sends each destination's spans to the provider its Telemetry names", async () => {
  await using a = otlpReceiver("127.0.28.1");
  await using b = otlpReceiver("127.0.28.2");
  const providers = new Map([["otel-a", a.provider("otel-a")], ["otel-b", b.provider("otel-b")]]);
  const { documents } = parseConfigText(TELEMETRY, "telemetry.yaml");
  const { telemetry, problems } = compileTelemetry(documents, {
    self: { namespace: "mesh", name: "waypoint" },
    rootNamespace: "istio-system",
    providers: {
      ...DEFAULT_PROVIDERS,
      tracing: new Set(providers.keys()),
      all: new Set(providers.keys()),
    },
  });
  assert.deepEqual(problems, []);
  const traces = new TraceExporters({ serviceName: "waypoint.mesh" });
  const chain = compose<State>([
    tracingFilter<State>({
      sink: traces,
      sinkFor: (name) => traces.sinkFor(name, providers),
      proxy: { nodeId: "waypoint~n", canonicalService: "waypoint", namespace: "mesh" },
      samplingPercentage: 0,
    }),
    answer,
  ]);
  const send = async (service: string, path: string) => {
    const ctx = new HttpContext<State>(
      { head: request("GET", path), body: bytesBody("") },
      { ...connection({ service, telemetry })(), requestId: path },
      performance.now(),
    );
    await runChain(chain, ctx);
    await readAll(ctx.response!.body, 1 << 20);
  };
  await send("reviews", "/to-b");
  await send("echo", "/to-a-1");
  await send("echo", "/to-a-2");
  assert.equal(traces.size, 2, "one exporter per provider in use");
  await traces.close();
  assert.deepEqual(a.paths.sort(), ["/to-a-1", "/to-a-2"]);
  assert.deepEqual(b.paths, ["/to-b"]);
  assert.equal(traces.stats.exported, 3);
});

Deno.test("TraceExporters.sinkFor() finds a provider's exporter again and makes none without OTLP/HTTP", async () => {
  await using a = otlpReceiver("127.0.28.1");
  const traces = new TraceExporters({ serviceName: "waypoint.mesh" });
  const otel = a.provider("otel");
  const grpcOnly: OtlpProvider = { name: "grpc", service: "otel", port: 4317 };
  const providers = new Map([["otel", otel], ["grpc", grpcOnly]]);
  const sink = traces.sinkFor("otel", providers);
  assert.ok(sink);
  assert.equal(traces.sinkFor("otel", providers), sink);
  assert.equal(traces.sinkFor("grpc", providers), undefined);
  assert.equal(traces.sinkFor("missing", providers), undefined);
  assert.equal(traces.sinkFor(undefined, providers), undefined);
  assert.equal(traces.size, 1);
  await traces.close();
  assert.equal(traces.sinkFor("otel", providers), undefined, "closed: nothing traced");
});

Deno.test("TraceExporters.retain() retires exporters of providers a reload removed or changed", async () => {
  await using a = otlpReceiver("127.0.28.1");
  await using b = otlpReceiver("127.0.28.2");
  const traces = new TraceExporters({ serviceName: "waypoint.mesh" });
  const first = new Map([["otel-a", a.provider("otel-a")], ["otel-b", b.provider("otel-b")]]);
  const sinkA = traces.sinkFor("otel-a", first)!;
  traces.sinkFor("otel-b", first);
  assert.equal(traces.size, 2);
  // The reload drops otel-b and moves otel-a to another path of the same receiver.
  const second = new Map([["otel-a", a.provider("otel-a", "/other")]]);
  await traces.retain(second);
  assert.equal(traces.size, 0);
  const movedA = traces.sinkFor("otel-a", second);
  assert.ok(movedA && movedA !== sinkA, "a changed provider gets a new exporter");
  assert.equal(traces.size, 1);
  await traces.retain(second);
  assert.equal(traces.sinkFor("otel-a", second), movedA, "an unchanged provider keeps its own");
  await traces.close();
});
