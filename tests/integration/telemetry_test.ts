/**
 * Telemetry through a real waypoint: `/stats/prometheus` after a scripted mix (allowed, denied,
 * 404, dead upstream, timeout, gRPC status, TCP) against the Envoy waypoint's label shape
 * (hbone.md §6.1), access logs from MeshConfig, a Telemetry override, series bounded by path,
 * and a real Prometheus scraping the waypoint. Loopback 127.0.25.x (pods, waypoints) and
 * 127.0.26.x (VIP, Prometheus).
 */
import assert from "node:assert/strict";
import http2, { type ClientHttp2Session } from "node:http2";
import { startMesh, type TestMesh } from "../fixtures/mesh.ts";
import { roundTrip, text } from "../fixtures/streams.ts";
import { HTTP_LABELS, MESSAGE_LABELS, TCP_LABELS } from "../../telemetry/mod.ts";
import {
  type Backends,
  echoHandler,
  type H2Backends,
  Http1,
  startH2Backends,
  startHttpBackends,
} from "./_l7.ts";
import { freePort } from "../telemetry/_receivers.ts";

const VIP = "127.0.26.1";
const POD = { name: "echo-1", ip: "127.0.25.1" };
const ECHO = "echo.ns1.svc.cluster.local";

/** HTTP echo, except `/hang` never answers and `/status/<n>` answers n. */
function backends(): Promise<Backends> {
  return startHttpBackends([POD.ip], (req, res, pod) => {
    if (req.url?.startsWith("/hang")) return void req.resume();
    const status = /^\/status\/(\d+)/.exec(req.url ?? "");
    if (status) {
      req.resume();
      res.writeHead(Number(status[1]), { "content-type": "text/plain" });
      return void res.end("as asked");
    }
    echoHandler(req, res, pod);
  });
}

/** gRPC: `/echo.Echo/Missing` answers NOT_FOUND (5) in trailers. */
function grpcBackends(): Promise<H2Backends> {
  return startH2Backends([POD.ip], (stream) => {
    stream.resume();
    stream.on("end", () => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
        waitForTrailers: true,
      });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "5" }));
      stream.end();
    });
  });
}

const POLICY_AND_ROUTES = `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: ns1 }
spec:
  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }]
  action: DENY
  # The port keeps the TCP port out: on TCP a DENY rule's HTTP-only fields are dropped.
  rules: [{ to: [{ operation: { paths: ["/admin*"], ports: ["80"] } }] }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: echo, namespace: ns1 }
spec:
  parentRefs: [{ group: "", kind: Service, name: echo, port: 80 }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /hang } }]
      timeouts: { request: 200ms }
      backendRefs: [{ name: echo, port: 80 }]
    - backendRefs: [{ name: echo, port: 80 }]
`;

async function telemetryMesh(
  waypointIp: string,
  http: Backends,
  grpc: H2Backends,
  options: { extraYaml?: string; meshConfig?: string } = {},
): Promise<TestMesh> {
  return await startMesh({
    waypointIp,
    vip: VIP,
    pods: [POD],
    ports: [
      { name: "http", port: 80, targetPort: http.port },
      // Nothing listens there: the destination's ztunnel cannot connect.
      { name: "http-dead", port: 81, targetPort: freePort(POD.ip) },
      { name: "grpc", port: 90, targetPort: grpc.port },
    ],
    extraYaml: POLICY_AND_ROUTES + (options.extraYaml ?? ""),
    meshConfig: options.meshConfig,
  });
}

function h2cOver(mesh: TestMesh, authority: string): Promise<ClientHttp2Session> {
  return mesh.connect(authority).then((t) => {
    const session = http2.connect("http://echo.ns1", { createConnection: () => t.stream });
    session.on("error", () => {});
    return session;
  });
}

function grpcCall(session: ClientHttp2Session, path: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    let status: string | undefined;
    req.on("trailers", (t) => status = String(t["grpc-status"]));
    req.on("response", (h) => status ??= h["grpc-status"] as string | undefined);
    req.on("data", () => {});
    req.on("end", () => resolve(status));
    req.on("error", reject);
    req.end(new Uint8Array([0, 0, 0, 0, 1, 65]));
  });
}

/** The mix of the issue, through the waypoint. */
async function scriptedMix(mesh: TestMesh): Promise<void> {
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  assert.equal((await c.fetch("GET", "/reviews/1")).status, 200);
  assert.equal((await c.fetch("GET", "/reviews/2")).status, 200);
  assert.equal((await c.fetch("POST", "/admin", [], "{}")).status, 403);
  assert.equal((await c.fetch("GET", "/status/404")).status, 404);
  assert.equal((await c.fetch("GET", "/hang")).status, 504);
  const dead = new Http1((await mesh.connect(`${VIP}:81`)).stream);
  assert.equal((await dead.fetch("GET", "/")).status, 503);
  const session = await h2cOver(mesh, `${VIP}:90`);
  assert.equal(await grpcCall(session, "/echo.Echo/Missing"), "5");
  session.close();
  const tcp = await mesh.connect(`${VIP}:9000`);
  assert.equal(text(await roundTrip(tcp.stream, "over tcp")), "over tcp");
}

async function scrape(mesh: TestMesh): Promise<string> {
  const res = await fetch(`http://${mesh.waypoint.admin[1].addr}/stats/prometheus`);
  assert.equal(res.status, 200);
  return await res.text();
}

interface Sample {
  readonly name: string;
  readonly labels: [string, string][];
  readonly value: number;
}

function samples(text: string): Sample[] {
  return text.split("\n").filter((l) => l && !l.startsWith("#")).map((line) => {
    const brace = line.indexOf("{");
    const end = line.lastIndexOf("}");
    const name = brace < 0 ? line.slice(0, line.indexOf(" ")) : line.slice(0, brace);
    const body = brace < 0 ? "" : line.slice(brace + 1, end);
    const labels = [...body.matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((m) =>
      [m[1], m[2]] as [string, string]
    );
    return { name, labels, value: Number(line.slice(line.lastIndexOf(" ") + 1)) };
  });
}

const label = (s: Sample, name: string) => s.labels.find(([n]) => n === name)?.[1];

/** Polls until the waypoint has recorded `n` HTTP requests (records land when bodies end). */
async function settled(mesh: TestMesh, n: number): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const text = await scrape(mesh);
    const total = samples(text).filter((s) => s.name === "istio_requests_total")
      .reduce((sum, s) => sum + s.value, 0);
    if (total >= n) return text;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`The waypoint did not record ${n} requests`);
}

/** The JSON lines of a log file once it has `n` of them (written in the background). */
async function logLines(file: string, n: number): Promise<Record<string, unknown>[]> {
  let lines: string[] = [];
  for (let i = 0; i < 100 && lines.length < n; i++) {
    lines = (await Deno.readTextFile(file)).split("\n").filter((l) => l);
    if (lines.length < n) await new Promise((r) => setTimeout(r, 20));
  }
  return lines.map((l) => JSON.parse(l));
}

Deno.test("waypoint /stats/prometheus after a scripted mix has the Envoy waypoint's series and labels", async () => {
  const logFile = await Deno.makeTempFile({ suffix: ".log" });
  await using http = await backends();
  await using grpc = await grpcBackends();
  await using mesh = await telemetryMesh("127.0.25.200", http, grpc, {
    meshConfig: `accessLogFile: ${logFile}\naccessLogEncoding: JSON\n`,
  });
  try {
    await scriptedMix(mesh);
    const all = samples(await settled(mesh, 7));
    const requests = all.filter((s) => s.name === "istio_requests_total");
    const outcomes = requests.map((s) =>
      [
        label(s, "request_protocol"),
        label(s, "response_code"),
        label(s, "grpc_response_status"),
        label(s, "response_flags"),
        s.value,
      ].join(" ")
    ).sort();
    assert.deepEqual(outcomes, [
      "grpc 200 5 - 1",
      "http 200  - 2",
      "http 403  - 1",
      "http 404  - 1",
      "http 503  URX 1",
      "http 504  UT 1",
    ]);
    for (const s of all.filter((s) => s.name.startsWith("istio_"))) {
      const names = s.labels.map(([n]) => n).filter((n) => n !== "le");
      const expected = s.name.startsWith("istio_tcp_")
        ? TCP_LABELS
        : s.name.endsWith("_messages_total")
        ? MESSAGE_LABELS
        : HTTP_LABELS;
      assert.deepEqual(names, expected, s.name);
      assert.equal(label(s, "reporter"), "waypoint");
      assert.equal(label(s, "source_principal"), "spiffe://cluster.local/ns/ns1/sa/client");
      assert.equal(label(s, "destination_service"), ECHO);
      assert.equal(label(s, "destination_service_namespace"), "ns1");
      if (expected !== MESSAGE_LABELS) {
        assert.equal(label(s, "connection_security_policy"), "mutual_tls");
      }
    }
    const ok = requests.find((s) =>
      label(s, "response_code") === "200" && label(s, "request_protocol") === "http"
    )!;
    assert.equal(label(ok, "destination_principal"), "spiffe://cluster.local/ns/ns1/sa/echo");
    assert.equal(label(ok, "destination_workload"), "echo-1");
    const tcp = (name: string) => all.find((s) => s.name === name)?.value;
    assert.equal(tcp("istio_tcp_connections_opened_total"), 1);
    assert.equal(tcp("istio_tcp_connections_closed_total"), 1);
    assert.equal(tcp("istio_tcp_received_bytes_total"), 8);
    assert.equal(tcp("istio_tcp_sent_bytes_total"), 8);
    const grpcMessages = all.find((s) => s.name === "istio_request_messages_total");
    assert.equal(grpcMessages?.value, 1);
    const own = (name: string, labels = "") =>
      all.find((s) => s.name === name && s.labels.map(([n, v]) => `${n}=${v}`).join(",") === labels)
        ?.value;
    assert.equal(own("waypoint_config_loads_total", "result=success"), 1);
    assert.equal(own("waypoint_config_loads_total", "result=error"), 0);
    assert.ok(own("waypoint_certificate_expiry_seconds")! > 0);
    assert.equal(own("waypoint_access_log_dropped_total"), 0);
    // The legacy MeshConfig access log, in Istio's JSON, one line per request and connection.
    const lines = await logLines(logFile, 8);
    assert.deepEqual(lines.map((l) => l.response_code).sort(), [
      0,
      200,
      200,
      200,
      403,
      404,
      503,
      504,
    ]);
    const denied = lines.find((l) => l.response_code === 403)!;
    assert.equal(
      denied.response_code_details,
      "rbac_access_denied_matched_policy[ns[ns1]-policy[deny-admin]-rule[0]]",
    );
    assert.equal(lines.find((l) => l.response_code === 504)?.response_flags, "UT");
    // Our router retries a failed connect (Istio's default retry policy): retries exhausted.
    assert.equal(lines.find((l) => l.response_code === 503)?.response_flags, "URX");
    assert.equal(
      lines.find((l) => l.response_code === 0)?.upstream_cluster,
      `inbound-vip|9000|tcp|${ECHO}`,
    );
  } finally {
    await Deno.remove(logFile);
  }
});

Deno.test("waypoint applies a Telemetry override and keeps series bounded over 10,000 paths", async () => {
  await using http = await backends();
  await using grpc = await grpcBackends();
  await using mesh = await telemetryMesh("127.0.25.201", http, grpc, {
    extraYaml: `---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: custom, namespace: ns1 }
spec:
  metrics:
    - overrides:
        - match: { metric: REQUEST_COUNT }
          tagOverrides:
            custom_dimension: { value: "'test'" }
            source_principal: { operation: REMOVE }
`,
  });
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  assert.equal((await c.fetch("GET", "/warmup")).status, 200);
  const before = samples(await settled(mesh, 1));
  const count = (s: Sample[]) => s.filter((x) => x.name.startsWith("istio_")).length;
  const rssBefore = Deno.memoryUsage().rss;
  const paths = 10_000;
  for (let i = 0; i < paths; i++) await c.fetch("GET", `/items/${i}?q=${i}`);
  const after = samples(await settled(mesh, paths + 1));
  const rssAfter = Deno.memoryUsage().rss;
  assert.equal(count(after), count(before), "series do not grow with paths");
  const requests = after.filter((s) => s.name === "istio_requests_total");
  assert.equal(requests.length, 1);
  assert.equal(requests[0].value, paths + 1);
  assert.equal(label(requests[0], "custom_dimension"), "test");
  assert.equal(label(requests[0], "source_principal"), undefined);
  console.log(
    `series after ${paths} paths: ${count(after)} samples (${
      after.find((s) => s.name === "waypoint_metrics_series")?.value
    } series); RSS ${(rssBefore / 2 ** 20).toFixed(0)} → ${
      (rssAfter / 2 ** 20).toFixed(0)
    } MiB (test process, waypoint included)`,
  );
});

/** Prometheus 2.x from Debian, if installed. */
function prometheusBinary(): string | undefined {
  for (const p of ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // not there
    }
  }
  return undefined;
}

Deno.test("a real Prometheus scraping the waypoint answers the rate of requests by service and code", async (t) => {
  const binary = prometheusBinary();
  if (!binary) {
    console.warn("SKIP: prometheus is not installed (apt-get install prometheus; tests/setup.sh)");
    return;
  }
  await using http = await backends();
  await using grpc = await grpcBackends();
  await using mesh = await telemetryMesh("127.0.25.202", http, grpc);
  const dir = await Deno.makeTempDir({ prefix: "waypoint-prometheus-" });
  const listen = `127.0.26.2:${freePort("127.0.26.2")}`;
  await Deno.writeTextFile(
    `${dir}/prometheus.yml`,
    `global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: waypoint
    metrics_path: /stats/prometheus
    static_configs: [{ targets: ["${mesh.waypoint.admin[1].addr}"] }]
`,
  );
  const prometheus = new Deno.Command(binary, {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=${listen}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = prometheus.stderr.pipeTo(new WritableStream());
  try {
    const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
    const query =
      'sum(rate(istio_requests_total{reporter="waypoint"}[1m])) by (destination_service, response_code)';
    let result: { metric: Record<string, string>; value: [number, string] }[] = [];
    // Keep traffic flowing until two scrapes saw it; bounded at 60 s.
    for (let i = 0; i < 120 && result.length < 2; i++) {
      for (let j = 0; j < 5; j++) await c.fetch("GET", `/ok/${j}`);
      await c.fetch("GET", "/status/404");
      await new Promise((r) => setTimeout(r, 500));
      try {
        const res = await fetch(`http://${listen}/api/v1/query?query=${encodeURIComponent(query)}`);
        const body = await res.json();
        result = body.data?.result ?? [];
      } catch {
        // Prometheus is still starting.
      }
    }
    await t.step("the query returns one series per code for the Service", () => {
      const series = result.map((r) => `${r.metric.destination_service} ${r.metric.response_code}`)
        .sort();
      assert.deepEqual(series, [`${ECHO} 200`, `${ECHO} 404`]);
      for (const r of result) assert.ok(Number(r.value[1]) > 0, JSON.stringify(r));
    });
  } finally {
    prometheus.kill("SIGTERM");
    await prometheus.status;
    await stderr;
    await Deno.remove(dir, { recursive: true });
  }
});
