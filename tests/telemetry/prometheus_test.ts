import assert from "node:assert/strict";
import { bytesBody, type Filter, HeaderMap, LocalReply, readAll } from "../../http/mod.ts";
import {
  HTTP_LABELS,
  MESSAGE_LABELS,
  prometheusRenderer,
  prometheusStream,
  recordTcp,
  TCP_LABELS,
} from "../../telemetry/mod.ts";
import {
  connection,
  endpointOf,
  grpcFrames,
  Harness,
  MESH,
  request,
  serviceDestination,
  type TestState,
} from "./_helpers.ts";

const GOLDEN = new URL("./testdata/waypoint_stats.prom", import.meta.url);
const RESET = "upstream connect error or disconnect/reset before headers. reset reason: ";

/** The router forwarding the request body and answering with the upstream's response. */
function upstream(
  service: string,
  status: number,
  body: Uint8Array | string,
  fields: [string, string][],
  trailers?: [string, string][],
): Filter<TestState> {
  return async (ctx) => {
    await readAll(ctx.request.body, 1 << 20);
    ctx.state.endpoint = endpointOf(service);
    ctx.response = {
      head: { status, headers: new HeaderMap(fields) },
      body: bytesBody(body, trailers ? new HeaderMap(trailers) : undefined),
    };
  };
}

/** A filter or the router ending the request with a local reply, after picking `endpoint`. */
function fail(reply: LocalReply, service?: string): Filter<TestState> {
  return (ctx) => {
    if (service) ctx.state.endpoint = endpointOf(service);
    return Promise.reject(reply);
  };
}

const GRPC = ["content-type", "application/grpc"] as [string, string];

/** The scripted mix of the issue: allowed, denied, 404, 503, 504, gRPC status, TCP. */
async function scriptedMix(h: Harness): Promise<void> {
  const productpage = connection({ service: "reviews" });
  const text = ["content-type", "text/plain"] as [string, string];
  await h.send(
    productpage(),
    request("GET", "/reviews/1"),
    upstream("reviews", 200, "hello", [text]),
    {
      durationMs: 7.9,
    },
  );
  await h.send(
    productpage(),
    request("GET", "/reviews/2"),
    upstream("reviews", 200, "hello again", [text]),
    { durationMs: 30 },
  );
  await h.send(
    productpage(),
    request("POST", "/admin"),
    fail(new LocalReply(403, "RBAC: access denied", { flag: "RBAC" })),
    { body: new TextEncoder().encode("{}") },
  );
  await h.send(
    productpage(),
    request("GET", "/nowhere"),
    fail(new LocalReply(404, "", { flag: "NR" })),
  );
  await h.send(
    productpage(),
    request("GET", "/reviews/3"),
    fail(new LocalReply(503, RESET + "connection failure", { flag: "UF" }), "reviews"),
    { durationMs: 2 },
  );
  await h.send(
    productpage(),
    request("GET", "/reviews/4"),
    fail(new LocalReply(504, "upstream request timeout", { flag: "UT" }), "reviews"),
    { durationMs: 15_000 },
  );
  const echo = connection({ service: "echo" });
  await h.send(
    echo(),
    request("POST", "/echo.Echo/Get", [GRPC]),
    upstream("echo", 200, grpcFrames(10), [GRPC], [["grpc-status", "5"]]),
    { body: grpcFrames(3, 4), durationMs: 3 },
  );
  await h.send(
    echo(),
    request("POST", "/echo.Echo/Delete", [GRPC]),
    fail(new LocalReply(403, "RBAC: access denied", { flag: "RBAC" })),
    { body: grpcFrames(1) },
  );
  const legacy = connection({
    service: "reviews",
    identity: "spiffe://cluster.local/ns/other/sa/legacy",
    client: "10.3.0.1:5000",
    baggage: "k8s.cluster.name=east,k8s.namespace.name=other,k8s.deployment.name=legacy-v2," +
      "service.name=legacy,service.version=v2",
  });
  await h.send(legacy(), request("GET", "/reviews/1"), upstream("reviews", 200, "hi", [text]));
  const db = {
    mesh: MESH,
    identity: "spiffe://cluster.local/ns/mesh/sa/bookinfo-productpage",
    client: "10.2.0.1:41001",
    destination: serviceDestination("db"),
  };
  recordTcp(h.metrics, { ...db, endpoint: endpointOf("db") }).close({ sent: 1234, received: 567 });
  recordTcp(h.metrics, { ...db, flag: "UF" }).close({ sent: 0, received: 0 });
}

const EXTRA = "# TYPE waypoint_config_version gauge\nwaypoint_config_version 1\n";

Deno.test("prometheusRenderer() renders a scripted mix as the checked-in golden file", async () => {
  const h = new Harness();
  await scriptedMix(h);
  const text = await prometheusRenderer(h.metrics.registry, { extra: () => EXTRA })();
  if (Deno.env.get("UPDATE_GOLDEN")) await Deno.writeTextFile(GOLDEN, text);
  assert.equal(text, await Deno.readTextFile(GOLDEN));
});

/** `name{labels} value` lines split into the name and the label names in order. */
function samples(text: string): { name: string; labels: string[]; line: string }[] {
  return text.split("\n").filter((l) => l && !l.startsWith("#")).map((line) => {
    const name = line.slice(0, line.indexOf("{"));
    const labels = [...line.matchAll(/([a-z_]+)="(?:[^"\\]|\\.)*"/g)].map((m) => m[1]);
    return { name, labels, line };
  });
}

Deno.test("prometheusRenderer() writes Istio's names with labels in Envoy's order", async () => {
  const h = new Harness();
  await scriptedMix(h);
  const text = await prometheusRenderer(h.metrics.registry)();
  const names = new Set<string>();
  for (const s of samples(text)) {
    const base = s.name.replace(/_(bucket|sum|count)$/, "");
    names.add(base);
    const expected = base.startsWith("istio_tcp_")
      ? TCP_LABELS
      : base.endsWith("_messages_total")
      ? MESSAGE_LABELS
      : HTTP_LABELS;
    const labels = s.name.endsWith("_bucket") ? s.labels.slice(0, -1) : s.labels;
    assert.deepEqual(labels, expected, s.line);
    assert.match(s.line, /^[^{]+\{reporter="waypoint",/, s.line);
  }
  assert.deepEqual([...names].sort(), [
    "istio_request_bytes",
    "istio_request_duration_milliseconds",
    "istio_request_messages_total",
    "istio_requests_total",
    "istio_response_bytes",
    "istio_response_messages_total",
    "istio_tcp_connections_closed_total",
    "istio_tcp_connections_opened_total",
    "istio_tcp_received_bytes_total",
    "istio_tcp_sent_bytes_total",
  ]);
  for (const type of ["counter", "histogram"]) {
    assert.match(text, new RegExp(`# TYPE \\w+ ${type}`));
  }
});

Deno.test("prometheusStream() streams the same text as prometheusRenderer()", async () => {
  const h = new Harness();
  await scriptedMix(h);
  const options = { extra: () => EXTRA, sliceMs: 0 };
  const streamed = await new Response(prometheusStream(h.metrics.registry, options)).text();
  assert.equal(streamed, await prometheusRenderer(h.metrics.registry, options)());
});
