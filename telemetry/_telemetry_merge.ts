/**
 * Merges the Telemetry layers that apply to one destination, earliest first, into its settings:
 * later levels override earlier ones, field by field as Istio does.
 */
import type { CelProgram } from "./cel/mod.ts";
import type { Layer } from "./_telemetry_read.ts";
import type {
  AccessLogSetting,
  CustomTag,
  MetricsSettings,
  TelemetryProviders,
  TelemetrySettings,
  TracingSettings,
} from "./telemetry_settings.ts";

/** Merges levels, earliest first (l7.md §3.2–3.4). */
export function merge(layers: readonly Layer[], providers: TelemetryProviders): TelemetrySettings {
  return Object.freeze({
    metrics: mergeMetrics(layers, providers),
    accessLogs: mergeLogging(layers, providers),
    tracing: mergeTracing(layers, providers),
  });
}

function mergeMetrics(layers: readonly Layer[], providers: TelemetryProviders): MetricsSettings {
  let names: readonly string[] = providers.defaults.metrics;
  const overrides = new Map<string, { disabled: boolean; tags: Map<string, CelProgram | null> }>();
  for (const layer of layers) {
    for (const entry of layer.metrics) {
      if (entry.providers) names = entry.providers;
      for (const o of entry.overrides) {
        for (const family of o.families) {
          const found = overrides.get(family) ?? { disabled: false, tags: new Map() };
          if (o.disabled !== undefined) found.disabled = o.disabled;
          for (const [tag, op] of o.tags) found.tags.set(tag, op);
          overrides.set(family, found);
        }
      }
    }
  }
  for (const [family, o] of overrides) {
    if (!o.disabled && o.tags.size === 0) overrides.delete(family);
  }
  return {
    enabled: names.some((n) => providers.prometheus.has(n)),
    overrides,
  };
}

function mergeLogging(
  layers: readonly Layer[],
  providers: TelemetryProviders,
): readonly AccessLogSetting[] {
  let names: readonly string[] = providers.defaults.accessLogging;
  const settings = new Map<string, { disabled: boolean; filter?: CelProgram }>();
  for (const layer of layers) {
    for (const entry of layer.accessLogging) {
      if (entry.providers) names = entry.providers;
      for (const name of names) {
        const prior = settings.get(name);
        settings.set(name, {
          disabled: entry.disabled ?? prior?.disabled ?? false,
          filter: entry.filter ?? prior?.filter,
        });
      }
    }
  }
  return names
    .filter((n) => providers.accessLog.has(n) && !settings.get(n)?.disabled)
    .map((n) => ({ provider: n, filter: settings.get(n)?.filter }));
}

function mergeTracing(layers: readonly Layer[], providers: TelemetryProviders): TracingSettings {
  let provider: string | undefined = providers.defaults.tracing[0];
  let sampling: number | undefined;
  let customTags: readonly CustomTag[] = [];
  let disableSpanReporting = false;
  for (const layer of layers) {
    for (const entry of layer.tracing) {
      if (entry.providers) provider = entry.providers[0];
      if (entry.sampling !== undefined) sampling = entry.sampling;
      if (entry.customTags) customTags = entry.customTags;
      if (entry.disableSpanReporting !== undefined) {
        disableSpanReporting = entry.disableSpanReporting;
      }
    }
  }
  return { provider, sampling, customTags, disableSpanReporting };
}
