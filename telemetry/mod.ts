/**
 * @module
 * Telemetry of the waypoint. Istio's standard metrics, with the names, labels (in Envoy's
 * order) and values an Envoy waypoint reports (`reporter="waypoint"`): a small registry of our
 * own keyed by precomputed label text ({@link Registry}), Istio's families and label derivation
 * from the mesh model and ztunnel's `baggage` ({@link IstioMetrics}), the chain filter that
 * records every HTTP request ({@link metricsFilter}, first in the chain), {@link recordTcp} for
 * spliced connections, and the sliced Prometheus text ({@link prometheusRenderer}). Tracing:
 * W3C and B3 trace context ({@link extractTrace}, {@link injectTrace}), the filter that continues
 * or starts a trace and records a server span per sampled request ({@link tracingFilter}, right
 * after the metrics filter), and the batching OTLP/HTTP JSON exporter ({@link OtlpExporter}), one
 * per MeshConfig provider in use ({@link TraceExporters}). Open TCP connections and gRPC streams
 * report every interval through one shared timer (`IstioMetrics.periodic`).
 * Telemetry API: `telemetry.istio.io/v1` resources compiled per destination at load
 * ({@link compileTelemetry}) with a CEL subset ({@link compileCel}); metric overrides as
 * precomputed label shapes ({@link MetricsShape}); Envoy-format access logs ({@link AccessLogs})
 * written by the metrics filter and by {@link recordTcp}; the `waypoint_` process metrics
 * ({@link processMetrics}).
 *
 * Must not: block the request path (recording is a few field updates on precomputed series;
 * rendering yields to the event loop between slices; spans are exported in the background from
 * a bounded queue), fail a request because of trace context, or import `proxy/`: the filters read
 * the request state through {@link MetricsState} and {@link TracingState}.
 */
export {
  Counter,
  CounterSeries,
  DEFAULT_BUCKETS,
  DEFAULT_MAX_SERIES,
  escapeLabelValue,
  Histogram,
  HistogramSeries,
  labelText,
  Registry,
  type RegistryOptions,
  type RenderOptions,
} from "./registry.ts";
export {
  type HttpOutcome,
  IstioMetrics,
  type IstioMetricsOptions,
  type TcpTotals,
} from "./istio_metrics.ts";
export {
  type DestinationLabels,
  destinationText,
  HTTP_LABELS,
  MESSAGE_LABELS,
  type SourceLabels,
  sourceText,
  TCP_LABELS,
} from "./istio_labels.ts";
export { LabelPair, type MessageSeries, type TcpSeries } from "./label_pair.ts";
export {
  namespaceOfIdentity,
  parseBaggage,
  peerFromBaggage,
  peerFromWorkload,
  type PeerLabels,
  UNKNOWN,
  UNKNOWN_PEER,
} from "./peer_labels.ts";
export {
  destinationLabels,
  type ServedBy,
  servedBy,
  type SourceFacts,
  sourceLabels,
} from "./mesh_labels.ts";
export { metricsFilter, type MetricsFilterOptions, type MetricsState } from "./filter.ts";
export type { RecordState } from "./_exchange_record.ts";
export { recordTcp, type TcpConnection, type TcpRecord } from "./tcp.ts";
export { type PrometheusOptions, prometheusRenderer, prometheusStream } from "./prometheus.ts";
export {
  decideSampling,
  extractTrace,
  type FinishedSpan,
  formatTraceparent,
  type IncomingTrace,
  injectTrace,
  parseB3Multi,
  parseB3Single,
  parseTraceparent,
  type ServerContext,
  serverContext,
  type SpanAttribute,
  type SpanContext,
  type SpanSink,
  type TraceFormat,
  TraceIds,
} from "./trace.ts";
export {
  type ProxyTags,
  tracingFilter,
  type TracingFilterOptions,
  type TracingState,
} from "./trace_filter.ts";
export {
  type ExportStats,
  OtlpExporter,
  type OtlpExporterOptions,
  type OtlpTarget,
  otlpTraceRequest,
  otlpUrl,
} from "./otlp.ts";
export {
  type OtlpProvider,
  TraceExporters,
  type TraceExportersOptions,
} from "./trace_exporters.ts";
export {
  ATTRIBUTES,
  type CelAttributes,
  CelError,
  type CelMap,
  type CelProgram,
  compileCel,
} from "./cel/mod.ts";
export { compileTelemetry, DEFAULT_TELEMETRY } from "./telemetry_api.ts";
export {
  type AccessLogSetting,
  type CompiledTelemetry,
  type CustomTag,
  DEFAULT_PROVIDERS,
  METRIC_NAMES,
  type MetricOverride,
  type MetricsSettings,
  type TelemetryContext,
  type TelemetryProviders,
  type TelemetrySettings,
  type TracingSettings,
} from "./telemetry_settings.ts";
export { MetricsShape } from "./metric_shape.ts";
export {
  type AccessLogFormat,
  type AccessLogProvider,
  AccessLogs,
  type AccessLogsOptions,
  compileFormat,
  DEFAULT_JSON_LABELS,
  DEFAULT_TEXT_FORMAT,
  type LogRecord,
} from "./access_log.ts";
export { processMetrics, type ProcessSources } from "./process_metrics.ts";
