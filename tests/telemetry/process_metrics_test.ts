import assert from "node:assert/strict";
import { processMetrics, Registry } from "../../telemetry/mod.ts";

Deno.test("processMetrics() renders the waypoint_ families from the getters at each scrape", () => {
  let loads = { success: 1, error: 0 };
  const registry = new Registry({ maxSeries: 1 });
  registry.counter("istio_requests_total", "x").series('a="1"');
  registry.counter("istio_tcp_connections_opened_total", "x").series('a="1"');
  const render = processMetrics({
    downstreamConnections: () => 3,
    downstreamGoaways: () => new Map([["rapid_reset", 2]]),
    upstream: () => ({ connections: 2, streams: 5 }),
    configVersion: () => 7,
    configLoads: () => loads,
    certificateNotAfter: () => new Date(Date.UTC(2024, 0, 2)),
    now: () => Date.UTC(2024, 0, 1),
    accessLogDropped: () => 4,
    registry,
  });
  loads = { success: 2, error: 1 };
  const text = render();
  const samples = text.split("\n").filter((l) => l && !l.startsWith("#"));
  assert.deepEqual(samples, [
    "waypoint_downstream_connections 3",
    'waypoint_downstream_goaway_total{reason="rapid_reset"} 2',
    "waypoint_upstream_connections 2",
    "waypoint_upstream_streams 5",
    "waypoint_config_version 7",
    'waypoint_config_loads_total{result="success"} 2',
    'waypoint_config_loads_total{result="error"} 1',
    "waypoint_certificate_expiry_seconds 86400",
    "waypoint_access_log_dropped_total 4",
    "waypoint_metrics_series 2",
    "waypoint_metrics_overflow_total 0",
  ]);
  assert.match(text, /# TYPE waypoint_config_loads_total counter\n/);
  assert.match(
    text,
    /# HELP waypoint_certificate_expiry_seconds .+\n# TYPE waypoint_certificate_expiry_seconds gauge\n/,
  );
  assert.ok(text.endsWith("\n"));
  assert.doesNotMatch(text, /waypoint_trace_/, "no trace families without tracing");
});
