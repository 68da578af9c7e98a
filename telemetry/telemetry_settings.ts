/**
 * What the Telemetry API decides for one destination (which metrics with which labels, which
 * access logs with which filter, how requests are traced), the MeshConfig providers it chooses
 * from, and {@link CompiledTelemetry}, the index a request looks its settings up in.
 */
import type { Destination, WaypointSelf } from "../mesh/mod.ts";
import type { CelProgram } from "./cel/mod.ts";

/** Telemetry metric enum → family name (l7.md §3.2). */
export const METRIC_NAMES: Readonly<Record<string, string>> = Object.freeze({
  REQUEST_COUNT: "istio_requests_total",
  REQUEST_DURATION: "istio_request_duration_milliseconds",
  REQUEST_SIZE: "istio_request_bytes",
  RESPONSE_SIZE: "istio_response_bytes",
  GRPC_REQUEST_MESSAGES: "istio_request_messages_total",
  GRPC_RESPONSE_MESSAGES: "istio_response_messages_total",
  TCP_OPENED_CONNECTIONS: "istio_tcp_connections_opened_total",
  TCP_CLOSED_CONNECTIONS: "istio_tcp_connections_closed_total",
  TCP_SENT_BYTES: "istio_tcp_sent_bytes_total",
  TCP_RECEIVED_BYTES: "istio_tcp_received_bytes_total",
});

/** One metric's overrides after merging: `null` removes a label, a program upserts it. */
export interface MetricOverride {
  readonly disabled: boolean;
  /** Tag name → UPSERT value, or `null` for REMOVE; in the order they were first named. */
  readonly tags: ReadonlyMap<string, CelProgram | null>;
}

/** What the metrics filter and TCP recording do for a destination. */
export interface MetricsSettings {
  /** A `prometheus` provider is in force. */
  readonly enabled: boolean;
  /** Family name → override, only for families something was set on. */
  readonly overrides: ReadonlyMap<string, MetricOverride>;
}

/** One access log to write for a destination. */
export interface AccessLogSetting {
  /** The MeshConfig provider's name. */
  readonly provider: string;
  /** `filter.expression`; none logs everything. */
  readonly filter?: CelProgram;
}

/** A `customTags` entry. */
export type CustomTag =
  | { readonly name: string; readonly kind: "literal"; readonly value: string }
  | {
    readonly name: string;
    readonly kind: "header";
    readonly header: string;
    readonly defaultValue: string;
  };

/** How requests to a destination are traced. */
export interface TracingSettings {
  /** The first provider named; undefined keeps the one MeshConfig's defaults chose. */
  readonly provider?: string;
  /** `randomSamplingPercentage`; undefined keeps the proxy's default. */
  readonly sampling?: number;
  /** Environment tags are resolved at load, so only literal and header tags remain. */
  readonly customTags: readonly CustomTag[];
  readonly disableSpanReporting: boolean;
}

/** Everything Telemetry decides for one destination. */
export interface TelemetrySettings {
  readonly metrics: MetricsSettings;
  readonly accessLogs: readonly AccessLogSetting[];
  readonly tracing: TracingSettings;
}

/** The providers MeshConfig declares, by kind, and its `defaultProviders`. */
export interface TelemetryProviders {
  /** `prometheus` provider names (a provider named `prometheus` always exists). */
  readonly prometheus: ReadonlySet<string>;
  /** `envoyFileAccessLog` provider names (the built-in `envoy` always exists). */
  readonly accessLog: ReadonlySet<string>;
  /** Tracing provider names. */
  readonly tracing: ReadonlySet<string>;
  /** Every provider name of any kind, to tell a wrong kind from a typo. */
  readonly all: ReadonlySet<string>;
  readonly defaults: {
    readonly metrics: readonly string[];
    readonly accessLogging: readonly string[];
    readonly tracing: readonly string[];
  };
}

/** Istio's defaults: `prometheus` metrics, no access log, no tracing. */
export const DEFAULT_PROVIDERS: TelemetryProviders = Object.freeze({
  prometheus: new Set(["prometheus"]),
  accessLog: new Set(["envoy"]),
  tracing: new Set<string>(),
  all: new Set(["prometheus", "envoy"]),
  defaults: { metrics: ["prometheus"], accessLogging: [], tracing: [] },
});

/** What compiling needs to know. */
export interface TelemetryContext {
  readonly self: Pick<WaypointSelf, "namespace" | "name">;
  readonly rootNamespace: string;
  readonly providers: TelemetryProviders;
  /** Environment for `customTags.environment`. @default Deno.env */
  readonly env?: (name: string) => string | undefined;
}

/** Settings looked up by a request's destination. */
export class CompiledTelemetry {
  /** For workloads and services no namespace-wide or targetRef Telemetry names. */
  readonly wide: TelemetrySettings;
  readonly #namespaces: ReadonlyMap<string, TelemetrySettings>;
  readonly #services: ReadonlyMap<string, TelemetrySettings>;

  constructor(
    wide: TelemetrySettings,
    namespaces: ReadonlyMap<string, TelemetrySettings> = new Map(),
    services: ReadonlyMap<string, TelemetrySettings> = new Map(),
  ) {
    this.wide = wide;
    this.#namespaces = namespaces;
    this.#services = services;
  }

  /**
   * The settings for a CONNECT's destination; no allocation.
   *
   * @param destination Service or workload addressed
   */
  lookup(destination: Destination): TelemetrySettings {
    if (destination.kind !== "service") return this.wide;
    const s = destination.service;
    return this.#services.get(`${s.namespace}/${s.name}`) ?? this.#namespaces.get(s.namespace) ??
      this.wide;
  }
}
