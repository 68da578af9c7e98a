/**
 * The admin ports of `run`: readiness, the Prometheus scrape (Istio's metrics, our process
 * metrics and the plugins' own) and the admin app with the config dump.
 */
import { adminApp, metricsApp, readinessApp, serveApp, type ServedApp } from "../admin/mod.ts";
import { log } from "../log/mod.ts";
import type { SnapshotHolder } from "../mesh/mod.ts";
import { dumpConfig, nodeText, type ProxyConfig } from "../proxy/mod.ts";
import {
  type AccessLogs,
  type IstioMetrics,
  processMetrics,
  prometheusStream,
  type TraceExporters,
} from "../telemetry/mod.ts";
import type { HbonePool, HboneServer, IdentitySource } from "../tunnel/mod.ts";
import type { WasmRuntime } from "../wasm/mod.ts";
import type { HostPort } from "./flags.ts";
import type { RunOptions } from "./run_options.ts";

/** What the admin ports read: live views of the running pieces. */
export interface AdminSources {
  readonly ready: () => boolean;
  readonly hbone: HboneServer;
  readonly pool: HbonePool;
  readonly holder: SnapshotHolder<ProxyConfig>;
  readonly loads: { readonly success: number; readonly error: number };
  readonly identity: IdentitySource;
  readonly metrics: IstioMetrics;
  readonly accessLogs: AccessLogs;
  readonly traces: TraceExporters;
  readonly wasm: WasmRuntime;
}

/**
 * Serves the readiness, metrics and admin apps on their ports.
 *
 * @param options The three addresses
 * @param sources What the apps read
 * @returns The served apps, to shut down at close
 */
export function serveAdmin(
  options: Pick<RunOptions, "readiness" | "metrics" | "admin">,
  sources: AdminSources,
): ServedApp[] {
  const { hbone, pool, holder, loads, identity, metrics, accessLogs, traces, wasm } = sources;
  const scrapeExtra = withWasm(
    wasm,
    processMetrics({
      downstreamConnections: () => hbone.sessions,
      downstreamGoaways: () => hbone.goaways,
      upstream: () => pool.stats,
      configVersion: () => holder.current.version,
      configLoads: () => loads,
      certificateNotAfter: () => identity.current.notAfter,
      accessLogDropped: () => accessLogs.dropped,
      logDropped: () => log.dropped,
      traces: () => traces.stats,
      registry: metrics.registry,
      recordFailures: () => metrics.recordFailures,
    }),
  );
  return [
    serveApp(readinessApp(sources.ready), addressText(options.readiness)),
    serveApp(
      metricsApp(() => prometheusStream(metrics.registry, { extra: scrapeExtra })),
      addressText(options.metrics),
    ),
    serveApp(
      adminApp({ configDump: () => dumpConfig(holder.current) }),
      addressText(options.admin),
    ),
  ];
}

function addressText(a: HostPort): string {
  return nodeText(a.hostname, a.port);
}

/** Our process metrics followed by the plugins' own (proxy-wasm `proxy_define_metric`). */
function withWasm(wasm: WasmRuntime, process: () => string): () => string {
  return () => process() + wasm.prometheus();
}
