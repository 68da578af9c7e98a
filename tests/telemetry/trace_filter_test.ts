import assert from "node:assert/strict";
import {
  type Body,
  bytesBody,
  compose,
  EMPTY_BODY,
  type Filter,
  HeaderMap,
  HttpContext,
  LocalReply,
  readAll,
  type RequestHead,
  runChain,
} from "../../http/mod.ts";
import type { RequestState } from "../../proxy/mod.ts";
import { parseConfigText } from "../../mesh/mod.ts";
import {
  compileTelemetry,
  DEFAULT_PROVIDERS,
  type FinishedSpan,
  type SpanSink,
  tracingFilter,
  type TracingFilterOptions,
  type TracingState,
} from "../../telemetry/mod.ts";
import { connection, endpointOf, request, type TestState } from "./_helpers.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";
const ORIGIN = 1_700_000_000_000;
const PROXY = { nodeId: "waypoint~10.0.0.9~waypoint-abc.mesh~mesh.svc.cluster.local" } as const;

// The lead wires the filter into the proxy's chain: it must accept the proxy's state as is.
const _wired: Filter<RequestState> = tracingFilter<RequestState>({
  sink: { add() {}, fault() {} },
  proxy: { ...PROXY, canonicalService: "waypoint", namespace: "mesh" },
});

type State = TestState & TracingState;

/** Spans and faults as the filter reports them. */
class Collected implements SpanSink {
  readonly spans: FinishedSpan[] = [];
  readonly faults: unknown[] = [];
  add(span: FinishedSpan): void {
    this.spans.push(span);
  }
  fault(error: unknown): void {
    this.faults.push(error);
  }
}

/** What the upstream would have received, and the exchange's spans. */
interface Sent {
  readonly upstream?: HeaderMap;
  readonly ctx: HttpContext<State>;
  readonly sink: Collected;
}

const newState = (): State => ({ ...connection({ service: "reviews" })(), requestId: "req-1" });

/**
 * Runs one request through the tracing filter and `inner`, at time 0, then reads the response
 * body at time 12 ms as a codec would.
 */
async function send(
  head: RequestHead,
  inner: Filter<State>,
  options: Partial<TracingFilterOptions> & { body?: Uint8Array; consume?: boolean } = {},
): Promise<Sent> {
  const sink = new Collected();
  let at = 0;
  const filter = tracingFilter<State>({
    sink,
    proxy: { ...PROXY, canonicalService: "waypoint", namespace: "mesh" },
    now: () => at,
    timeOrigin: ORIGIN,
    random: () => 0.5,
    ...options,
  });
  let upstream: HeaderMap | undefined;
  const spy: Filter<State> = async (ctx, next) => {
    upstream = ctx.request.head.headers.clone();
    await next();
  };
  const body = options.body ? bytesBody(options.body) : EMPTY_BODY;
  const ctx = new HttpContext<State>({ head, body }, newState(), 0);
  await runChain(compose([filter, spy, inner]), ctx);
  at = 12;
  if (options.consume !== false) await readAll(ctx.response!.body, 1 << 20);
  return { upstream, ctx, sink };
}

/** An upstream answer: reads the request, picks the reviews endpoint, responds. */
function answer(status = 200, body: Body = bytesBody("hello"), fields: [string, string][] = []) {
  return (async (ctx) => {
    await readAll(ctx.request.body, 1 << 20);
    ctx.state.endpoint = endpointOf("reviews");
    ctx.response = { head: { status, headers: new HeaderMap(fields) }, body };
  }) satisfies Filter<State>;
}

function attributes(span: FinishedSpan): Record<string, unknown> {
  return Object.fromEntries(span.attributes);
}

function upstreamParent(sent: Sent): string[] {
  return sent.upstream?.get("traceparent")?.split("-") ?? [];
}

Deno.test("tracingFilter() continues a sampled trace and records a server span", async () => {
  const head = request("POST", "/reviews/1?x=y", [
    ["traceparent", `00-${TRACE}-${SPAN}-01`],
    ["tracestate", "vendor=abc"],
    ["user-agent", "curl/8"],
  ]);
  const sent = await send(head, answer(), { body: new Uint8Array(7) });
  const [version, traceId, spanId, flags] = upstreamParent(sent);
  assert.deepEqual([version, traceId, flags], ["00", TRACE, "01"]);
  assert.equal(sent.upstream?.get("tracestate"), "vendor=abc");
  assert.equal(sent.sink.spans.length, 1);
  const span = sent.sink.spans[0];
  assert.equal(span.traceId, TRACE);
  assert.equal(span.parentSpanId, SPAN);
  assert.equal(span.spanId, spanId, "the upstream's parent is our server span");
  assert.notEqual(span.spanId, SPAN);
  assert.equal(span.traceState, "vendor=abc");
  assert.equal(span.name, "reviews.mesh.svc.cluster.local:9080/*");
  assert.deepEqual([span.startMs, span.endMs], [ORIGIN, ORIGIN + 12]);
  assert.equal(span.error, false);
  const endpoint = endpointOf("reviews");
  assert.deepEqual(attributes(span), {
    "guid:x-request-id": "req-1",
    "http.url": "http://reviews.mesh.svc.cluster.local:9080/reviews/1?x=y",
    "http.method": "POST",
    "downstream_cluster": "-",
    "user_agent": "curl/8",
    "http.protocol": "HTTP/1.1",
    "peer.address": "10.2.0.1",
    "request_size": "7",
    "response_size": "5",
    "response_flags": "-",
    "http.status_code": "200",
    "upstream_cluster": "inbound-vip|9080|http|reviews.mesh.svc.cluster.local",
    "upstream_address": `${endpoint.address}:${endpoint.port}`,
    "node_id": PROXY.nodeId,
    "zone": "",
    "component": "proxy",
    "istio.canonical_revision": "latest",
    "istio.canonical_service": "waypoint",
    "istio.cluster_id": "Kubernetes",
    "istio.mesh_id": "cluster.local",
    "istio.namespace": "mesh",
    "istio.source_workload": "productpage-v1",
    "istio.source_namespace": "mesh",
    "istio.source_cluster_id": "Kubernetes",
    "istio.source_canonical_service": "productpage",
    "istio.source_canonical_revision": "v1",
    "istio.source_app": "productpage",
    "istio.source_app_version": "v1",
    "istio.destination_workload": "reviews-v1",
    "istio.destination_namespace": "mesh",
    "istio.destination_cluster_id": "Kubernetes",
    "istio.destination_canonical_service": "reviews",
    "istio.destination_canonical_revision": "v1",
    "istio.destination_app": "reviews",
    "istio.destination_app_version": "v1",
  });
});

Deno.test("tracingFilter() starts a new trace when the request has none", async () => {
  const sent = await send(request("GET", "/"), answer(), { samplingPercentage: 100 });
  const [, traceId, spanId, flags] = upstreamParent(sent);
  assert.match(traceId, /^[0-9a-f]{32}$/);
  assert.equal(flags, "01");
  const [span] = sent.sink.spans;
  assert.deepEqual([span.traceId, span.spanId, span.parentSpanId], [traceId, spanId, undefined]);
});

Deno.test("tracingFilter() propagates an unsampled trace without recording or wrapping", async () => {
  const body = bytesBody("hello");
  const cases: [string, [string, string][], number][] = [
    ["an unsampled parent at 100 %", [["traceparent", `00-${TRACE}-${SPAN}-00`]], 100],
    ["no parent and a draw over the percentage", [], 1],
  ];
  for (const [name, fields, samplingPercentage] of cases) {
    const sent = await send(request("GET", "/", fields), answer(200, body), {
      samplingPercentage,
      consume: false,
    });
    const [, traceId, spanId, flags] = upstreamParent(sent);
    assert.equal(flags, "00", name);
    if (fields.length > 0) assert.equal(traceId, TRACE, name);
    assert.notEqual(spanId, SPAN, name);
    assert.equal(sent.sink.spans.length, 0, name);
    assert.equal(sent.ctx.response?.body, body, `${name}: the response body is not wrapped`);
  }
});

Deno.test("tracingFilter() ignores a malformed traceparent and starts over", async () => {
  const head = request("GET", "/", [["traceparent", `00-${TRACE.toUpperCase()}-${SPAN}-01`]]);
  const sent = await send(head, answer(), { samplingPercentage: 100 });
  assert.equal(sent.ctx.response?.head.status, 200);
  const [span] = sent.sink.spans;
  assert.notEqual(span.traceId, TRACE);
  assert.equal(span.parentSpanId, undefined);
});

Deno.test("tracingFilter() ends spans of refused and failed requests", async () => {
  const refuse = (reply: LocalReply): Filter<State> => () => Promise.reject(reply);
  const cases: [string, RequestHead, Filter<State>, Record<string, string>, boolean][] = [
    [
      "a 403 from a policy",
      request("GET", "/"),
      refuse(new LocalReply(403, "RBAC: access denied")),
      { "http.status_code": "403", "response_size": "19", "response_flags": "-" },
      false,
    ],
    [
      "a 503 with a flag",
      request("GET", "/"),
      refuse(new LocalReply(503, "", { flag: "UF" })),
      { "http.status_code": "503", "response_flags": "UF", "error": "true" },
      true,
    ],
    [
      "an unexpected throw",
      request("GET", "/"),
      () => Promise.reject(new Error("bug")),
      { "http.status_code": "500", "error": "true" },
      true,
    ],
    [
      "a gRPC request refused",
      request("POST", "/pkg.Svc/Call", [["content-type", "application/grpc"]]),
      refuse(new LocalReply(403)),
      { "http.status_code": "200", "grpc.status_code": "7" },
      false,
    ],
  ];
  for (const [name, head, inner, want, error] of cases) {
    const sent = await send(head, inner, { samplingPercentage: 100, consume: false });
    await readAll(sent.ctx.response!.body, 1 << 20).catch(() => {});
    assert.equal(sent.sink.spans.length, 1, name);
    const got = attributes(sent.sink.spans[0]);
    for (const [key, value] of Object.entries(want)) {
      assert.equal(got[key], value, `${name}: ${key}`);
    }
    assert.equal(sent.sink.spans[0].error, error, name);
  }
});

Deno.test("tracingFilter() ends the span of a response the client abandoned", async () => {
  const sent = await send(request("GET", "/"), answer(), {
    consume: false,
    samplingPercentage: 100,
  });
  assert.equal(sent.sink.spans.length, 0, "not before the body is over");
  sent.ctx.response!.body.cancel(new Error("client left"));
  const got = attributes(sent.sink.spans[0]);
  assert.deepEqual([got["response_flags"], got["response_size"]], ["DC", "0"]);
});

Deno.test("tracingFilter() never fails a request because tracing failed", async () => {
  const broken = (): number => {
    throw new Error("no randomness");
  };
  const sent = await send(request("GET", "/"), answer(), { random: broken });
  assert.equal(sent.ctx.response?.head.status, 200);
  assert.equal(sent.sink.faults.length, 1);
  const throwing: SpanSink = {
    add: () => {
      throw new Error("sink full");
    },
    fault: () => faults++,
  };
  let faults = 0;
  const again = await send(request("GET", "/"), answer(), {
    sink: throwing,
    samplingPercentage: 100,
  });
  assert.equal(again.ctx.response?.head.status, 200);
  assert.equal(faults, 1);
});

Deno.test("tracingFilter() writes B3 headers only when B3 is on", async () => {
  const head = () => request("GET", "/", [["x-b3-traceid", TRACE], ["x-b3-spanid", SPAN]]);
  const off = await send(head(), answer(), { samplingPercentage: 0 });
  assert.equal(off.upstream?.get("x-b3-spanid"), SPAN);
  assert.notEqual(upstreamParent(off)[1], TRACE, "B3 is not read when off");
  const on = await send(head(), answer(), { b3: true, samplingPercentage: 100 });
  const [span] = on.sink.spans;
  assert.deepEqual([span.traceId, span.parentSpanId], [TRACE, SPAN]);
  assert.equal(on.upstream?.get("x-b3-spanid"), span.spanId);
  assert.equal(on.upstream?.get("x-b3-parentspanid"), SPAN);
  assert.equal(on.upstream?.get("x-b3-sampled"), "1");
});

Deno.test("tracingFilter() refuses a sampling percentage outside 0–100", () => {
  for (const samplingPercentage of [-1, 100.5, NaN]) {
    assert.throws(
      () =>
        tracingFilter({
          sink: new Collected(),
          proxy: { ...PROXY, canonicalService: "w", namespace: "n" },
          samplingPercentage,
        }),
      RangeError,
    );
  }
});

Deno.test("tracingFilter() samples, tags and reports as the destination's Telemetry says", async () => {
  const telemetryOf = (spec: string) =>
    compileTelemetry(
      parseConfigText(
        `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: tracing, namespace: mesh }
spec:
  tracing:
    - ${spec}`,
        "tracing.yaml",
      ).documents,
      {
        self: { namespace: "mesh", name: "waypoint" },
        rootNamespace: "istio-system",
        providers: DEFAULT_PROVIDERS,
        env: (name) => (name === "POD_ZONE" ? "zone-a" : undefined),
      },
    ).telemetry;
  const run = async (spec: string, fields: [string, string][] = []) => {
    const sink = new Collected();
    const filter = tracingFilter<State>({
      sink,
      proxy: { ...PROXY, canonicalService: "waypoint", namespace: "mesh" },
      // The proxy's own percentage would sample everything; Telemetry's must win.
      samplingPercentage: 100,
      random: () => 0.5,
    });
    const state = {
      ...connection({ service: "reviews", telemetry: telemetryOf(spec) })(),
      requestId: "req-1",
    };
    const ctx = new HttpContext<State>(
      { head: request("GET", "/", fields), body: EMPTY_BODY },
      state,
      0,
    );
    const answer: Filter<State> = (c) => {
      c.response = { head: { status: 200, headers: new HeaderMap() }, body: EMPTY_BODY };
      return Promise.resolve();
    };
    await runChain(compose([filter, answer]), ctx);
    return { spans: sink.spans, traceparent: ctx.request.head.headers.get("traceparent") };
  };
  const none = await run("randomSamplingPercentage: 0");
  assert.equal(none.spans.length, 0);
  assert.match(none.traceparent ?? "", /-00$/, "the unsampled decision still goes upstream");
  const all = await run(
    `{ randomSamplingPercentage: 100, customTags: { zone: { environment: { name: POD_ZONE } }, team: { literal: { value: books } }, user: { header: { name: X-User, defaultValue: anonymous } } } }`,
    [["x-user", "alice"]],
  );
  assert.equal(all.spans.length, 1);
  assert.deepEqual(all.spans[0].attributes.slice(-3), [
    ["zone", "zone-a"],
    ["team", "books"],
    ["user", "alice"],
  ]);
  const quiet = await run("{ randomSamplingPercentage: 100, disableSpanReporting: true }");
  assert.equal(quiet.spans.length, 0);
  assert.match(quiet.traceparent ?? "", /-01$/, "the sampled decision still goes upstream");
});
