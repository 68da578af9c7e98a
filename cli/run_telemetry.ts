/**
 * The telemetry of `run`: Istio's metrics, the access logs and span exporters that follow the
 * MeshConfig's providers across reloads, the tracing filter, and the check of the default
 * tracing provider.
 */
import { log } from "../log/mod.ts";
import type { SnapshotHolder } from "../mesh/mod.ts";
import type { MeshConfig, ProxyConfig, RequestState } from "../proxy/mod.ts";
import { AccessLogs, IstioMetrics, TraceExporters, tracingFilter } from "../telemetry/mod.ts";
import type { RunOptions } from "./run_options.ts";

/** The telemetry pieces `run` hands to the chain, the listeners and the admin port. */
export interface RunTelemetry {
  readonly metrics: IstioMetrics;
  readonly accessLogs: AccessLogs;
  readonly traces: TraceExporters;
  /** Stops following the MeshConfig, flushes spans and access logs, and closes them. */
  close(): Promise<void>;
}

/**
 * Makes the metric families, the access logs and the span exporters, and keeps the providers in
 * step with MeshConfig reloads.
 *
 * @param options Parsed `run` flags
 * @param holder The config holder, for the current MeshConfig and its changes
 * @returns The pieces and their close
 */
export function startTelemetry(
  options: RunOptions,
  holder: SnapshotHolder<ProxyConfig>,
): RunTelemetry {
  const metrics = new IstioMetrics({
    cluster: options.cluster ?? "Kubernetes",
    reportIntervalMs: options.metricsReportIntervalMs,
  });
  // Providers follow MeshConfig reloads (the `istio` ConfigMap in Kubernetes mode).
  const accessLogs = new AccessLogs(holder.current.meshConfig.accessLog.values());
  const traces = new TraceExporters({ serviceName: `${options.name}.${options.namespace}` });
  const unsubscribeProviders = holder.subscribe((next, previous) => {
    if (next.meshConfig === previous.meshConfig) return;
    accessLogs.update(next.meshConfig.accessLog.values()).catch((e) =>
      log.warn("Access log providers not updated", { reason: String(e) })
    );
    void traces.retain(next.meshConfig.tracing);
  });
  return {
    metrics,
    accessLogs,
    traces,
    close: async () => {
      unsubscribeProviders();
      await traces.close();
      await accessLogs.drain();
      accessLogs.close();
    },
  };
}

/**
 * Checks the default tracing provider: `--trace-provider` must name an `opentelemetry`
 * provider with `http`; a MeshConfig default that cannot be used is a warning (Istio: "no
 * provider resolved ⇒ tracing disabled").
 *
 * @throws Error when `--trace-provider` names no `opentelemetry` provider with `http`
 */
export function checkTracingProvider(options: RunOptions, meshConfig: MeshConfig): void {
  const name = meshConfig.defaultProviders.tracing[0];
  if (!name) return;
  const provider = meshConfig.tracing.get(name);
  if (provider?.http) {
    log.info("Tracing", { provider: name, sampling: options.tracing?.sampling ?? 1 });
    return;
  }
  const reason = provider
    ? "exports with gRPC; only OTLP/HTTP (opentelemetry.http) is supported"
    : meshConfig.providerNames.includes(name)
    ? "is not an opentelemetry provider"
    : "is not among the MeshConfig's extensionProviders";
  if (options.tracing?.provider) throw new Error(`Tracing provider "${name}" ${reason}`);
  log.warn("Tracing is off by default", { provider: name, reason });
}
/**
 * The tracing filter: spans go to the exporter of the provider each request's Telemetry chose,
 * under the request's MeshConfig, with plain HTTP, not through the mesh.
 */
export function tracingFilterFor(options: RunOptions, traces: TraceExporters) {
  const { namespace, name: gateway } = options;
  const podIp = options.tracing?.podIp ?? options.hbone.hostname;
  const podName = options.tracing?.podName ?? gateway;
  return tracingFilter<RequestState>({
    sink: traces,
    sinkFor: (provider, state) => traces.sinkFor(provider, state.config.meshConfig.tracing),
    samplingPercentage: options.tracing?.sampling,
    proxy: {
      nodeId: `waypoint~${podIp}~${podName}.${namespace}~${namespace}.svc.cluster.local`,
      canonicalService: gateway,
      namespace,
      meshId: options.trustDomain,
      clusterId: options.cluster ?? "Kubernetes",
    },
  });
}
