import assert from "node:assert/strict";
import { parseConfigText } from "../../mesh/mod.ts";
import {
  AccessLogs,
  compileTelemetry,
  DEFAULT_JSON_LABELS,
  DEFAULT_PROVIDERS,
  IstioMetrics,
  recordTcp,
} from "../../telemetry/mod.ts";
import { endpointOf, Harness, MESH, PRODUCTPAGE_ID, serviceDestination } from "./_helpers.ts";

const DB = {
  mesh: MESH,
  identity: PRODUCTPAGE_ID,
  client: "10.2.0.1:41001",
  destination: serviceDestination("db"),
};

function value(text: string, name: string, flag: string): number | undefined {
  const line = text.split("\n").find((l) =>
    l.startsWith(`${name}{`) && l.includes(`response_flags="${flag}"`)
  );
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

Deno.test("recordTcp() counts opened at once and closed with bytes once", async () => {
  const { metrics } = new Harness();
  const record = recordTcp(metrics, { ...DB, endpoint: endpointOf("db") });
  const open = await metrics.registry.renderText();
  assert.equal(value(open, "istio_tcp_connections_opened_total", "-"), 1);
  // The series of a connection exist from its open, at 0.
  assert.equal(value(open, "istio_tcp_connections_closed_total", "-"), 0);
  record.close({ sent: 10, received: 20 });
  record.close({ sent: 10, received: 20 });
  const closed = await metrics.registry.renderText();
  assert.equal(value(closed, "istio_tcp_connections_closed_total", "-"), 1);
  assert.equal(value(closed, "istio_tcp_sent_bytes_total", "-"), 10);
  assert.equal(value(closed, "istio_tcp_received_bytes_total", "-"), 20);
  assert.match(
    closed,
    /request_protocol="tcp",response_flags="-",connection_security_policy="mutual_tls"/,
  );
});

Deno.test("recordTcp() keeps the flag of the open for the whole connection", async () => {
  const { metrics } = new Harness();
  recordTcp(metrics, { ...DB, flag: "UH" }).close({ sent: 0, received: 0 });
  recordTcp(metrics, { ...DB, flag: "RBAC" }).close({ sent: 0, received: 0 });
  const text = await metrics.registry.renderText();
  assert.equal(value(text, "istio_tcp_connections_closed_total", "UH"), 1);
  // Not one of Envoy's flags: reported as none.
  assert.equal(value(text, "istio_tcp_connections_closed_total", "-"), 1);
});

Deno.test("recordTcp() applies Telemetry to TCP: tag overrides at open, Envoy's TCP log line at close", async () => {
  const { documents } = parseConfigText(
    `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: db, namespace: mesh }
spec:
  targetRefs: [{ kind: Service, group: "", name: db }]
  metrics:
    - overrides:
        - match: { metric: TCP_OPENED_CONNECTIONS }
          tagOverrides:
            source_principal: { operation: REMOVE }
            mtls: { value: "string(connection.mtls)" }
  accessLogging:
    - providers: [{ name: envoy }]
      filter: { expression: "destination.port == 5432" }`,
    "db.yaml",
  );
  const { telemetry, problems } = compileTelemetry(documents, {
    self: { namespace: "mesh", name: "waypoint" },
    rootNamespace: "istio-system",
    providers: DEFAULT_PROVIDERS,
  });
  assert.deepEqual(problems, []);
  const lines: string[] = [];
  const logs = new AccessLogs([{ name: "envoy", path: "/dev/stdout" }], {
    open: () => ({
      write: (b: Uint8Array) => {
        lines.push(new TextDecoder().decode(b));
        return Promise.resolve(b.length);
      },
    }),
  });
  const { metrics } = new Harness();
  const target = { address: "10.0.0.7", port: 5432 };
  recordTcp(metrics, { ...DB, telemetry, target, flag: "UF" }, logs).close({
    sent: 0,
    received: 0,
  });
  await logs.drain();
  assert.equal(lines.length, 1);
  assert.match(
    lines[0],
    /^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] "- - -" 0 UF - - "-" 0 0 \d+ - "-" "-" "-" "-" "-" inbound-vip\|5432\|tcp\|db\.mesh\.svc\.cluster\.local - 10\.0\.0\.7:5432 10\.2\.0\.1:41001 - -\n$/,
  );
  const text = await metrics.registry.renderText();
  const opened = text.split("\n").filter((l) =>
    l.startsWith("istio_tcp_connections_opened_total{")
  );
  assert.equal(opened.length, 1);
  assert.doesNotMatch(opened[0], /source_principal/);
  assert.match(opened[0], /connection_security_policy="mutual_tls",mtls="true"\} 1$/);
  const closed = text.split("\n").filter((l) =>
    l.startsWith("istio_tcp_connections_closed_total{")
  );
  assert.match(closed[0], /source_principal="spiffe/);
});

/** Polls `read` until it gives `want` (reports come from a timer); bounded. */
async function until(read: () => Promise<number | undefined>, want: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await read() === want) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(await read(), want);
}

Deno.test("recordTcp() reports an open connection's new bytes every interval and the rest at close", async () => {
  const metrics = new IstioMetrics({ cluster: "Kubernetes", reportIntervalMs: 5 });
  const live = { sent: 10, received: 20 };
  const record = recordTcp(metrics, { ...DB, endpoint: endpointOf("db"), bytes: () => live });
  const read = (name: string) => async () => value(await metrics.registry.renderText(), name, "-");
  await until(read("istio_tcp_sent_bytes_total"), 10);
  assert.equal(await read("istio_tcp_received_bytes_total")(), 20);
  assert.equal(await read("istio_tcp_connections_opened_total")(), 1);
  assert.equal(await read("istio_tcp_connections_closed_total")(), 0, "still open");
  live.sent = 15;
  await until(read("istio_tcp_sent_bytes_total"), 15);
  record.close({ sent: 40, received: 25 });
  assert.equal(await read("istio_tcp_sent_bytes_total")(), 40, "totals at close");
  assert.equal(await read("istio_tcp_received_bytes_total")(), 25);
  assert.equal(await read("istio_tcp_connections_closed_total")(), 1);
  assert.equal(metrics.periodic.size, 0, "a closed connection leaves the timer");
});

Deno.test("PeriodicReports runs every open report from one timer and stops with the last", async () => {
  const metrics = new IstioMetrics({ reportIntervalMs: 5 });
  const runs = new Array(100).fill(0);
  const stops = runs.map((_, i) => metrics.periodic.add(() => runs[i]++));
  const failing = metrics.periodic.add(() => {
    throw new Error("a bug");
  });
  for (let i = 0; i < 500 && runs.some((n) => n === 0); i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(runs.every((n) => n > 0), "every report ran although one threw");
  assert.ok(metrics.periodic.failures > 0);
  for (const stop of [...stops, failing]) stop();
  stops[0]();
  // The test's op sanitizer fails the test if the interval were still set.
  assert.equal(metrics.periodic.size, 0);
});

Deno.test("recordTcp() logs the downstream SNI, why the upstream failed and why we closed", async () => {
  const { documents } = parseConfigText(
    `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: logs, namespace: istio-system }
spec:
  accessLogging: [{ providers: [{ name: json }] }]`,
    "logs.yaml",
  );
  const providers = {
    ...DEFAULT_PROVIDERS,
    accessLog: new Set(["json"]),
    all: new Set(["prometheus", "json"]),
  };
  const { telemetry } = compileTelemetry(documents, {
    self: { namespace: "mesh", name: "waypoint" },
    rootNamespace: "istio-system",
    providers,
  });
  const lines: string[] = [];
  const logs = new AccessLogs(
    [{ name: "json", path: "/dev/stdout", labels: DEFAULT_JSON_LABELS }],
    {
      open: () => ({
        write: (b: Uint8Array) => {
          lines.push(new TextDecoder().decode(b));
          return Promise.resolve(b.length);
        },
      }),
    },
  );
  const { metrics } = new Harness();
  const closed = { sent: 0, received: 0 };
  const base = { ...DB, telemetry, sni: "db.mesh.svc.cluster.local" };
  recordTcp(metrics, { ...base, flag: "UF", failure: "connect ECONNREFUSED" }, logs).close(closed);
  const termination = "rbac_access_denied_matched_policy[ns[mesh]-policy[deny-db]-rule[0]]";
  recordTcp(metrics, { ...base, termination }, logs).close(closed);
  await logs.drain();
  // Lines of one event-loop turn are written together.
  const [failed, denied] = lines.join("").trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(failed.upstream_transport_failure_reason, "connect ECONNREFUSED");
  assert.equal(failed.requested_server_name, "db.mesh.svc.cluster.local");
  assert.equal(failed.connection_termination_details, null);
  assert.equal(denied.connection_termination_details, termination);
  assert.equal(denied.upstream_transport_failure_reason, null);
});
