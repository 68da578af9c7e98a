/**
 * Telemetry of long-lived traffic and live provider changes through a real waypoint: an open TCP
 * connection and a running gRPC stream report while they last (short reporting interval), each
 * destination's spans reach the OTLP/HTTP receiver its Telemetry names, and a MeshConfig reload
 * moves tracing and access logs without a restart. Loopback 127.0.29.x.
 */
import assert from "node:assert/strict";
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from "node:http2";
import type { Duplex } from "node:stream";
import { startMesh, type TestMesh } from "../fixtures/mesh.ts";
import { roundTrip, text } from "../fixtures/streams.ts";
import { parseConfigText } from "../../mesh/mod.ts";
import { buildConfig, parseMeshConfig } from "../../proxy/mod.ts";
import { type H2Backends, Http1, startH2Backends, startHttpBackends } from "./_l7.ts";
import { freePort, otlpReceiver } from "../telemetry/_receivers.ts";

const VIP = "127.0.29.1";
const POD = { name: "echo-1", ip: "127.0.29.2" };

async function scrape(mesh: TestMesh): Promise<string> {
  const res = await fetch(`http://${mesh.waypoint.admin[1].addr}/stats/prometheus`);
  assert.equal(res.status, 200);
  return await res.text();
}

/** The sum of a family's samples. */
function total(text: string, name: string): number {
  return text.split("\n").filter((l) => l.startsWith(`${name}{`))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

/** Polls the scrape until `done` holds (reports come from a timer); bounded. */
async function until(mesh: TestMesh, done: (text: string) => boolean): Promise<string> {
  let text = "";
  for (let i = 0; i < 200; i++) {
    text = await scrape(mesh);
    if (done(text)) return text;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(
    `Not reported in time:\n${text.split("\n").filter((l) => l.startsWith("istio_")).join("\n")}`,
  );
}

/** Reads `n` bytes from a stream. */
function readBytes(stream: Duplex, n: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const onData = (c: Uint8Array) => {
      got += new TextDecoder().decode(c);
      if (got.length < n) return;
      stream.off("data", onData);
      stream.pause();
      resolve(got);
    };
    stream.on("data", onData);
    stream.once("error", reject);
    // A paused stream stays paused when a listener is added.
    stream.resume();
  });
}

Deno.test("an open TCP connection through the waypoint reports its bytes before it closes", async () => {
  await using mesh = await startMesh({
    waypointIp: "127.0.29.200",
    vip: VIP,
    pods: [POD],
    run: { metricsReportIntervalMs: 20 },
  });
  const { stream } = await mesh.connect(`${VIP}:9000`);
  stream.write("hello");
  assert.equal(await readBytes(stream, 5), "hello");
  const open = await until(mesh, (t) => total(t, "istio_tcp_sent_bytes_total") === 5);
  assert.equal(total(open, "istio_tcp_received_bytes_total"), 5);
  assert.equal(total(open, "istio_tcp_connections_opened_total"), 1);
  assert.equal(total(open, "istio_tcp_connections_closed_total"), 0, "still open");
  stream.resume();
  assert.equal(text(await roundTrip(stream, "bye")), "bye");
  const closed = await until(mesh, (t) => total(t, "istio_tcp_connections_closed_total") === 1);
  assert.equal(total(closed, "istio_tcp_sent_bytes_total"), 8, "no byte counted twice");
  assert.equal(total(closed, "istio_tcp_received_bytes_total"), 8);
});

/** gRPC: answers each request message with one response message, ends with the request. */
function streamingBackends(): Promise<H2Backends> {
  return startH2Backends([POD.ip], (stream) => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
      waitForTrailers: true,
    });
    stream.on("data", (chunk: Uint8Array) => stream.write(chunk));
    stream.on("end", () => stream.end());
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  });
}

const MESSAGE = new Uint8Array([0, 0, 0, 0, 2, 104, 105]);

Deno.test("a gRPC stream through the waypoint reports its messages while it runs", async () => {
  await using grpc = await streamingBackends();
  await using mesh = await startMesh({
    waypointIp: "127.0.29.201",
    vip: VIP,
    pods: [POD],
    ports: [{ name: "grpc", port: 90, targetPort: grpc.port }],
    run: { metricsReportIntervalMs: 20 },
  });
  const tunnel = await mesh.connect(`${VIP}:90`);
  const session: ClientHttp2Session = http2.connect("http://echo.ns1", {
    createConnection: () => tunnel.stream,
  });
  session.on("error", () => {});
  const call: ClientHttp2Stream = session.request({
    ":method": "POST",
    ":path": "/echo.Echo/Chat",
    "content-type": "application/grpc",
    te: "trailers",
  });
  call.on("error", () => {});
  for (let i = 0; i < 2; i++) {
    call.write(MESSAGE);
    assert.equal((await readBytes(call, MESSAGE.length)).length, MESSAGE.length);
  }
  const running = await until(mesh, (t) =>
    total(t, "istio_request_messages_total") === 2 &&
    total(t, "istio_response_messages_total") === 2);
  assert.equal(total(running, "istio_requests_total"), 0, "the stream is still open");
  assert.match(running, /istio_response_messages_total\{[^}]*destination_cluster="Kubernetes"\} 2/);
  const ended = new Promise((resolve) => call.on("end", resolve));
  call.resume();
  call.end(MESSAGE);
  await ended;
  const done = await until(mesh, (t) => total(t, "istio_requests_total") === 1);
  assert.equal(total(done, "istio_request_messages_total"), 3, "the end adds only the rest");
  assert.equal(total(done, "istio_response_messages_total"), 3);
  session.close();
});

function providersYaml(a: { port: number }, b: { port: number }, extra = ""): string {
  return `extensionProviders:
  - name: otel-a
    opentelemetry: { service: obs/127.0.29.10, port: ${a.port}, http: { path: /v1/traces } }
  - name: otel-b
    opentelemetry: { service: obs/127.0.29.11, port: ${b.port}, http: { path: /v1/traces } }
${extra}`;
}

const TRACE_TELEMETRY = `---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: all, namespace: ns1 }
spec:
  tracing: [{ randomSamplingPercentage: 100 }]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: echo, namespace: ns1 }
spec:
  targetRefs: [{ kind: Service, group: "", name: echo }]
  tracing: [{ providers: [{ name: otel-b }] }]
`;

Deno.test("the waypoint sends spans to the provider each destination's Telemetry names, and follows a MeshConfig reload", async () => {
  await using a = otlpReceiver("127.0.29.10");
  await using b = otlpReceiver("127.0.29.11");
  await using http = await startHttpBackends([POD.ip]);
  const logA = await Deno.makeTempFile({ suffix: ".log" });
  const logB = await Deno.makeTempFile({ suffix: ".log" });
  await using mesh = await startMesh({
    waypointIp: "127.0.29.202",
    vip: VIP,
    pods: [POD],
    ports: [{ name: "http", port: 80, targetPort: http.port }],
    extraYaml: TRACE_TELEMETRY,
    meshConfig: providersYaml(
      a,
      b,
      `defaultProviders: { tracing: [otel-a] }
accessLogFile: ${logA}
`,
    ),
  });
  try {
    const viaService = new Http1((await mesh.connect(`${VIP}:80`)).stream);
    const viaPod = new Http1((await mesh.connect(`${POD.ip}:${http.port}`)).stream);
    assert.equal((await viaService.fetch("GET", "/service")).status, 200);
    assert.equal((await viaPod.fetch("GET", "/pod")).status, 200);
    const traces = mesh.waypoint.traces;
    await traces.flush();
    assert.deepEqual(a.paths, ["/pod"], "the default provider");
    assert.deepEqual(b.paths, ["/service"], "the Service's Telemetry provider");
    assert.equal(traces.size, 2);

    // What a new `istio` ConfigMap does: a config built with the new MeshConfig replaces the old.
    const meshConfig = parseMeshConfig(
      providersYaml(a, b, `defaultProviders: { tracing: [otel-b] }\naccessLogFile: ${logB}\n`),
      "istio ConfigMap",
    );
    const { documents } = parseConfigText(await Deno.readTextFile(mesh.configFile), "mesh.yaml");
    const holder = mesh.waypoint.holder;
    const next = buildConfig(documents, holder.current.version + 1, {
      namespace: "ns1",
      name: "waypoint",
      trustDomain: "cluster.local",
      trustDomainAliases: [],
      meshConfig,
    });
    holder.replace(next.snapshot);
    // A connection keeps the config it started with: the next one sees the reload.
    const later = new Http1((await mesh.connect(`${POD.ip}:${http.port}`)).stream);
    assert.equal((await later.fetch("GET", "/pod-after")).status, 200);
    await traces.flush();
    assert.deepEqual(b.paths, ["/service", "/pod-after"], "the new default provider");
    assert.deepEqual(a.paths, ["/pod"]);
    let lines = "";
    for (let i = 0; i < 100 && !lines.includes("/pod-after"); i++) {
      lines = await Deno.readTextFile(logB);
      if (!lines.includes("/pod-after")) await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(lines, /"GET \/pod-after HTTP\/1.1" 200/, "the access log moved to the new file");
    assert.doesNotMatch(await Deno.readTextFile(logA), /pod-after/);
  } finally {
    await Deno.remove(logA);
    await Deno.remove(logB);
  }
});

Deno.test("the waypoint's TCP access log says why it closed a denied connection and why a connect failed", async () => {
  const logFile = await Deno.makeTempFile({ suffix: ".log" });
  await using mesh = await startMesh({
    waypointIp: "127.0.29.203",
    vip: VIP,
    pods: [POD],
    ports: [{ name: "tcp-dead", port: 9001, targetPort: freePort(POD.ip) }],
    extraYaml: `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-echo, namespace: ns1 }
spec:
  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }]
  action: DENY
  rules: [{ to: [{ operation: { ports: ["9000"] } }] }]
`,
    meshConfig: `accessLogFile: ${logFile}\naccessLogEncoding: JSON\n`,
  });
  try {
    await assert.rejects(mesh.connect(`${VIP}:9000`), /401/);
    await assert.rejects(mesh.connect(`${VIP}:9001`), /503/);
    let lines: Record<string, unknown>[] = [];
    for (let i = 0; i < 100 && lines.length < 2; i++) {
      lines = (await Deno.readTextFile(logFile)).split("\n").filter((l) => l).map((l) =>
        JSON.parse(l)
      );
      if (lines.length < 2) await new Promise((r) => setTimeout(r, 20));
    }
    const denied = lines.find((l) => String(l.upstream_cluster).includes("|9000|"));
    const failed = lines.find((l) => String(l.upstream_cluster).includes("|9001|"));
    assert.equal(
      denied?.connection_termination_details,
      "rbac_access_denied_matched_policy[ns[ns1]-policy[deny-echo]-rule[0]]",
    );
    assert.equal(failed?.response_flags, "UF");
    assert.match(String(failed?.upstream_transport_failure_reason), /.+/);
    assert.equal(failed?.connection_termination_details, null);
  } finally {
    await Deno.remove(logFile);
  }
});
