/**
 * The waypoint's own `waypoint_` metrics: connections, streams, pools, config loads,
 * certificate expiry, dropped log lines, trace export, and the metrics registry itself. The
 * numbers are read through getters at each scrape, so this module holds no state and knows none
 * of the pieces it reports on.
 *
 * Invariants:
 * - Every family has `# HELP` and `# TYPE`; counters end in `_total`.
 * - A getter that is not given leaves its family out (tracing off, no CA).
 */
import type { ExportStats } from "./otlp.ts";
import type { Registry } from "./registry.ts";

/** Where the numbers come from; each is read once per scrape. */
export interface ProcessSources {
  /** HBONE connections from ztunnels now open. */
  readonly downstreamConnections: () => number;
  /** HBONE connections we ended for the peer's fault (floods, protocol errors), by reason. */
  readonly downstreamGoaways?: () => ReadonlyMap<string, number>;
  /** The HBONE client pool: connections and streams open. */
  readonly upstream: () => { readonly connections: number; readonly streams: number };
  /** The version of the config in force. */
  readonly configVersion: () => number;
  /** Config loads since start, by result. */
  readonly configLoads: () => { readonly success: number; readonly error: number };
  /** When the workload certificate expires. */
  readonly certificateNotAfter?: () => Date;
  /** Access-log lines dropped because a queue was full. */
  readonly accessLogDropped?: () => number;
  /** Process log lines dropped because the queue was full. */
  readonly logDropped?: () => number;
  /** Span export counters, when tracing is on. */
  readonly traces?: () => ExportStats;
  /** Istio's registry: its series count and records lost to the series bound. */
  readonly registry?: Registry;
  /** Records dropped because recording failed (bugs). */
  readonly recordFailures?: () => number;
  /** Unix epoch ms now. @default Date.now */
  readonly now?: () => number;
}

/**
 * Makes the renderer of the `waypoint_` families, for `prometheusRenderer`'s `extra`.
 *
 * @example
 * ```ts
 * const extra = processMetrics({ downstreamConnections: () => hbone.sessions, ... });
 * prometheusRenderer(metrics.registry, { extra });
 * ```
 *
 * @param sources Getters for the numbers
 * @returns A function rendering the exposition text, ending in a line feed
 */
export function processMetrics(sources: ProcessSources): () => string {
  return () => {
    const out: string[] = [];
    const family = (name: string, type: string, help: string, samples: [string, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) out.push(`${name}${labels} ${value}`);
    };
    const up = sources.upstream();
    const loads = sources.configLoads();
    family("waypoint_downstream_connections", "gauge", "HBONE connections from ztunnels", [
      ["", sources.downstreamConnections()],
    ]);
    if (sources.downstreamGoaways) {
      const samples: [string, number][] = [];
      for (const [reason, n] of sources.downstreamGoaways()) {
        samples.push([`{reason="${reason}"}`, n]);
      }
      family(
        "waypoint_downstream_goaway_total",
        "counter",
        "HBONE connections ended with GOAWAY for the peer's fault, by reason",
        samples,
      );
    }
    family("waypoint_upstream_connections", "gauge", "HBONE connections to ztunnels", [
      ["", up.connections],
    ]);
    family("waypoint_upstream_streams", "gauge", "CONNECT streams open upstream", [
      ["", up.streams],
    ]);
    family("waypoint_config_version", "gauge", "Version of the config in force", [
      ["", sources.configVersion()],
    ]);
    family("waypoint_config_loads_total", "counter", "Config loads by result", [
      ['{result="success"}', loads.success],
      ['{result="error"}', loads.error],
    ]);
    if (sources.certificateNotAfter) {
      const now = sources.now?.() ?? Date.now();
      const seconds = Math.floor((sources.certificateNotAfter().getTime() - now) / 1000);
      family(
        "waypoint_certificate_expiry_seconds",
        "gauge",
        "Seconds until the workload certificate expires",
        [["", seconds]],
      );
    }
    if (sources.accessLogDropped) {
      family("waypoint_access_log_dropped_total", "counter", "Access-log lines dropped", [
        ["", sources.accessLogDropped()],
      ]);
    }
    if (sources.logDropped) {
      family("waypoint_log_dropped_total", "counter", "Log lines dropped", [
        ["", sources.logDropped()],
      ]);
    }
    if (sources.traces) traceFamilies(family, sources.traces());
    if (sources.registry) {
      family("waypoint_metrics_series", "gauge", "Series of Istio's metric families", [
        ["", sources.registry.seriesCount],
      ]);
      family(
        "waypoint_metrics_overflow_total",
        "counter",
        "Records that found their family at its series bound",
        [["", sources.registry.overflow]],
      );
    }
    if (sources.recordFailures) {
      family("waypoint_metrics_record_failures_total", "counter", "Records lost to a fault", [
        ["", sources.recordFailures()],
      ]);
    }
    out.push("");
    return out.join("\n");
  };
}

function traceFamilies(
  family: (name: string, type: string, help: string, samples: [string, number][]) => void,
  t: ExportStats,
): void {
  family("waypoint_trace_spans_exported_total", "counter", "Spans the collector accepted", [
    ["", t.exported],
  ]);
  family("waypoint_trace_spans_dropped_total", "counter", "Spans dropped", [
    ['{reason="queue_full"}', t.dropped],
    ['{reason="export_failed"}', t.failed],
  ]);
  family("waypoint_trace_export_errors_total", "counter", "Span exports that failed", [
    ["", t.exportErrors],
  ]);
}
