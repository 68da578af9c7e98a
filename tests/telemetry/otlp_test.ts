/**
 * The OTLP/HTTP JSON exporter against a local collector (`Deno.serve` on 127.0.17.1), alone, after
 * requests went through a real chain, and behind a whole waypoint (HBONE client → waypoint →
 * destination stand-in → `node:http` backend on 127.0.17.2, VIP 127.10.17.1, waypoint
 * 127.0.17.200).
 */
import assert from "node:assert/strict";
import {
  bytesBody,
  compose,
  type Filter,
  HeaderMap,
  HttpContext,
  readAll,
  type RequestHead,
  runChain,
} from "../../http/mod.ts";
import {
  type FinishedSpan,
  IstioMetrics,
  metricsFilter,
  OtlpExporter,
  type OtlpExporterOptions,
  otlpTraceRequest,
  otlpUrl,
  tracingFilter,
  type TracingState,
} from "../../telemetry/mod.ts";
import { startMesh } from "../fixtures/mesh.ts";
import { Http1, json, startHttpBackends } from "../integration/_l7.ts";
import { connection, endpointOf, request, type TestState } from "./_helpers.ts";

const COLLECTOR_IP = "127.0.17.1";
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

/** The OTLP JSON shapes the tests read. */
interface KeyValue {
  key: string;
  value: { stringValue?: string; intValue?: string; boolValue?: boolean; doubleValue?: number };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: KeyValue[];
  status?: { code: number };
}
interface OtlpRequest {
  resourceSpans: {
    resource: { attributes: KeyValue[] };
    scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[];
  }[];
}

/** One POST the collector got. */
interface Post {
  readonly path: string;
  readonly headers: Headers;
  readonly body: OtlpRequest;
}

/** A local OTLP/HTTP collector that keeps what it is sent. */
function startCollector() {
  const posts: Post[] = [];
  const state = { status: 200 };
  const server = Deno.serve({ hostname: COLLECTOR_IP, port: 0, onListen() {} }, async (req) => {
    posts.push({ path: new URL(req.url).pathname, headers: req.headers, body: await req.json() });
    return new Response("{}", { status: state.status });
  });
  return {
    port: server.addr.port,
    posts,
    state,
    /** An exporter to this collector's `/v1/traces`. */
    exporter: (options: Partial<OtlpExporterOptions> = {}) =>
      new OtlpExporter({
        url: `http://${COLLECTOR_IP}:${server.addr.port}/v1/traces`,
        serviceName: "w.n",
        ...options,
      }),
    /** Every span received, in order. */
    spans: () =>
      posts.flatMap((p) =>
        p.body.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans))
      ),
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A span of the given ids with one attribute of each kind. */
function span(n: number, overrides: Partial<FinishedSpan> = {}): FinishedSpan {
  return {
    traceId: TRACE,
    spanId: n.toString(16).padStart(16, "0"),
    name: "reviews.mesh.svc.cluster.local:9080/*",
    startMs: 1_700_000_000_000.25,
    endMs: 1_700_000_000_012.5,
    error: false,
    attributes: [["http.status_code", "200"]],
    ...overrides,
  };
}

function attributeMap(attributes: KeyValue[]): Record<string, unknown> {
  return Object.fromEntries(attributes.map((a) => [a.key, Object.values(a.value)[0]]));
}

/** Flushes until the collector has `n` spans, or fails after 2 s. */
async function collected(
  exporter: { flush(): Promise<void> },
  spans: () => OtlpSpan[],
  n: number,
) {
  for (let i = 0; i < 100 && spans().length < n; i++) {
    await exporter.flush();
    if (spans().length < n) await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(spans().length, n, "spans at the collector");
  return spans();
}

Deno.test("otlpUrl() builds the collector URL from the provider", () => {
  const cases: [string, Parameters<typeof otlpUrl>[0], string][] = [
    [
      "host and port with the default path",
      { service: "otel.obs.svc.cluster.local", port: 4318 },
      "http://otel.obs.svc.cluster.local:4318/v1/traces",
    ],
    [
      "a namespace prefix dropped",
      { service: "obs/otel.obs.svc.cluster.local", port: 4318 },
      "http://otel.obs.svc.cluster.local:4318/v1/traces",
    ],
    [
      "a path without its slash",
      { service: "otel", port: 80, path: "otlp/v1/traces" },
      "http://otel:80/otlp/v1/traces",
    ],
    ["an IPv6 address", { service: "fd00::1", port: 4318, path: "/t" }, "http://[fd00::1]:4318/t"],
  ];
  for (const [name, target, want] of cases) assert.equal(otlpUrl(target), want, name);
});

Deno.test("otlpTraceRequest() encodes spans in OTLP's JSON mapping", () => {
  const body = otlpTraceRequest([
    span(1, {
      parentSpanId: SPAN,
      traceState: "a=1",
      error: true,
      attributes: [["s", "x"], ["i", 200], ["d", 1.5], ["b", true]],
    }),
    span(2),
  ], { serviceName: "waypoint.mesh", version: "0.1.0" });
  assert.deepEqual(body, {
    resourceSpans: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "waypoint.mesh" } }] },
      scopeSpans: [{
        scope: { name: "waypoint", version: "0.1.0" },
        spans: [{
          traceId: TRACE,
          spanId: "0000000000000001",
          parentSpanId: SPAN,
          traceState: "a=1",
          name: "reviews.mesh.svc.cluster.local:9080/*",
          kind: 2,
          startTimeUnixNano: "1700000000000250000",
          endTimeUnixNano: "1700000000012500000",
          attributes: [
            { key: "s", value: { stringValue: "x" } },
            { key: "i", value: { intValue: "200" } },
            { key: "d", value: { doubleValue: 1.5 } },
            { key: "b", value: { boolValue: true } },
          ],
          status: { code: 2 },
        }, {
          traceId: TRACE,
          spanId: "0000000000000002",
          name: "reviews.mesh.svc.cluster.local:9080/*",
          kind: 2,
          startTimeUnixNano: "1700000000000250000",
          endTimeUnixNano: "1700000000012500000",
          attributes: [{ key: "http.status_code", value: { stringValue: "200" } }],
        }],
      }],
    }],
  });
});

Deno.test("OtlpExporter posts full batches at once and the rest on flush", async () => {
  await using collector = startCollector();
  const exporter = new OtlpExporter({
    url: `http://${COLLECTOR_IP}:${collector.port}/custom/traces`,
    serviceName: "waypoint.mesh",
    headers: [["authorization", "Bearer t0k3n"]],
    maxBatch: 3,
  });
  for (let i = 1; i <= 3; i++) exporter.add(span(i));
  await collected(exporter, collector.spans, 3);
  assert.equal(collector.posts.length, 1, "the full batch went alone");
  for (let i = 4; i <= 8; i++) exporter.add(span(i));
  await exporter.close();
  assert.deepEqual(collector.posts.map((p) => p.body.resourceSpans[0].scopeSpans[0].spans.length), [
    3,
    3,
    2,
  ]);
  const first = collector.posts[0];
  assert.equal(first.path, "/custom/traces");
  assert.equal(first.headers.get("content-type"), "application/json");
  assert.equal(first.headers.get("authorization"), "Bearer t0k3n");
  assert.deepEqual(exporter.stats, {
    exported: 8,
    dropped: 0,
    failed: 0,
    exportErrors: 0,
    faults: 0,
  });
});

Deno.test("OtlpExporter drops and counts spans that find the queue full", async () => {
  await using collector = startCollector();
  const exporter = collector.exporter({
    maxQueue: 4,
    maxBatch: 100,
  });
  for (let i = 1; i <= 10; i++) exporter.add(span(i));
  assert.equal(exporter.queued, 4);
  await exporter.close();
  exporter.add(span(11));
  assert.deepEqual(collector.spans().map((s) => s.spanId.slice(-1)), ["1", "2", "3", "4"]);
  assert.equal(exporter.stats.dropped, 7, "6 over the bound and 1 after close");
});

Deno.test("OtlpExporter counts failed exports and keeps going", async () => {
  await using collector = startCollector();
  collector.state.status = 503;
  const exporter = collector.exporter();
  exporter.add(span(1));
  exporter.add(span(2));
  await exporter.flush();
  collector.state.status = 200;
  exporter.add(span(3));
  await exporter.flush();
  // A port nothing listens on any more: the connection is refused.
  const closed = Deno.listen({ hostname: COLLECTOR_IP, port: 0 });
  const closedPort = closed.addr.port;
  closed.close();
  const refused = new OtlpExporter({
    url: `http://${COLLECTOR_IP}:${closedPort}/v1/traces`,
    serviceName: "w.n",
  });
  refused.add(span(4));
  await refused.close();
  await exporter.close();
  assert.deepEqual(exporter.stats, {
    exported: 1,
    dropped: 0,
    failed: 2,
    exportErrors: 1,
    faults: 0,
  });
  assert.deepEqual([refused.stats.failed, refused.stats.exportErrors], [1, 1]);
});

Deno.test("OtlpExporter sends the queue on its interval", async () => {
  await using collector = startCollector();
  const exporter = collector.exporter({
    intervalMs: 30,
  });
  exporter.add(span(1));
  for (let i = 0; i < 100 && collector.spans().length === 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(collector.spans().length, 1);
  await exporter.close();
});

type State = TestState & TracingState;

/** A router stand-in: answers with the `traceparent` it was sent. */
const router: Filter<State> = async (ctx) => {
  await readAll(ctx.request.body, 1 << 20);
  ctx.state.endpoint = endpointOf("reviews");
  const seen = ctx.request.head.headers.get("traceparent") ?? "";
  ctx.response = { head: { status: 200, headers: new HeaderMap() }, body: bytesBody(seen) };
};

Deno.test("spans of requests through a real chain reach the collector with their ids", async () => {
  await using collector = startCollector();
  const exporter = new OtlpExporter({
    url: otlpUrl({ service: COLLECTOR_IP, port: collector.port }),
    serviceName: "waypoint.mesh",
  });
  const chain = compose<State>([
    metricsFilter(new IstioMetrics()),
    tracingFilter({
      sink: exporter,
      proxy: {
        nodeId: "waypoint~10.0.0.9~w.mesh~mesh.svc.cluster.local",
        canonicalService: "waypoint",
        namespace: "mesh",
      },
      samplingPercentage: 0,
    }),
    router,
  ]);
  const state = connection({ service: "reviews" });
  const run = async (head: RequestHead) => {
    const ctx = new HttpContext<State>({ head, body: bytesBody("abc") }, {
      ...state(),
      requestId: "r",
    }, performance.now());
    await runChain(chain, ctx);
    return new TextDecoder().decode(await readAll(ctx.response!.body, 1 << 20));
  };
  const sampled = await run(request("GET", "/a", [["traceparent", `00-${TRACE}-${SPAN}-01`]]));
  const unsampled = await run(request("GET", "/b", [["traceparent", `00-${TRACE}-${SPAN}-00`]]));
  const fresh = await run(request("GET", "/c"));
  assert.match(unsampled, /-00$/);
  assert.match(fresh, /-00$/, "0 % samples no new trace");
  const [got] = await collected(exporter, collector.spans, 1);
  await exporter.close();
  const resource = collector.posts[0].body.resourceSpans[0].resource;
  assert.deepEqual(attributeMap(resource.attributes), { "service.name": "waypoint.mesh" });
  assert.equal(got.traceId, TRACE);
  assert.equal(got.parentSpanId, SPAN);
  assert.equal(`00-${TRACE}-${got.spanId}-01`, sampled, "the upstream's parent is our span");
  assert.equal(got.kind, 2);
  assert.match(got.startTimeUnixNano, /^\d{19}$/);
  assert.ok(BigInt(got.endTimeUnixNano) >= BigInt(got.startTimeUnixNano));
  const attrs = attributeMap(got.attributes);
  assert.equal(attrs["http.url"], "http://reviews.mesh.svc.cluster.local:9080/a");
  assert.equal(attrs["http.status_code"], "200");
  assert.equal(attrs["request_size"], "3");
  assert.equal(attrs["response_size"], String(sampled.length));
  assert.equal(attrs["component"], "proxy");
  assert.equal(got.status, undefined);
});

Deno.test("a waypoint with an opentelemetry provider continues the caller's trace and exports the span", async () => {
  await using collector = startCollector();
  await using backends = await startHttpBackends(["127.0.17.2"]);
  await using mesh = await startMesh({
    waypointIp: "127.0.17.200",
    vip: "127.10.17.1",
    pods: [{ name: "echo-1", ip: "127.0.17.2" }],
    ports: [{ name: "http", port: 80, targetPort: backends.port }],
    meshConfig: `extensionProviders:
  - name: otel
    opentelemetry:
      service: observability/${COLLECTOR_IP}
      port: ${collector.port}
      http: { path: /v1/traces, timeout: 2s, headers: [{ name: x-tenant, value: mesh }] }
defaultProviders: { tracing: [otel] }
`,
  });
  const exporter = mesh.waypoint.traces;
  const c = new Http1((await mesh.connect("127.10.17.1:80")).stream);
  const res = await c.fetch("GET", "/traced", [["traceparent", `00-${TRACE}-${SPAN}-01`], [
    "tracestate",
    "v=1",
  ]]);
  assert.equal(res.status, 200);
  const echoed = json(res).headers;
  const upstream = echoed.find(([n]) => n === "traceparent")?.[1] ?? "";
  const [got] = await collected(exporter, collector.spans, 1);
  assert.equal(collector.posts[0].headers.get("x-tenant"), "mesh");
  assert.equal(upstream, `00-${TRACE}-${got.spanId}-01`);
  assert.deepEqual(echoed.find(([n]) => n === "tracestate"), ["tracestate", "v=1"]);
  assert.deepEqual([got.traceId, got.parentSpanId, got.traceState], [TRACE, SPAN, "v=1"]);
  assert.equal(got.name, "echo.ns1.svc.cluster.local:80/*");
  const attrs = attributeMap(got.attributes);
  assert.equal(attrs["upstream_cluster"], "inbound-vip|80|http|echo.ns1.svc.cluster.local");
  assert.equal(attrs["node_id"], "waypoint~127.0.17.200~waypoint.ns1~ns1.svc.cluster.local");
  assert.equal(attrs["istio.canonical_service"], "waypoint");
  assert.equal(attrs["istio.destination_workload"], "echo-1");
  const resource = attributeMap(collector.posts[0].body.resourceSpans[0].resource.attributes);
  assert.equal(resource["service.name"], "waypoint.ns1");
});
