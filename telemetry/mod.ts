/**
 * @module
 * Telemetry of the waypoint. For now Istio's standard metrics, with the names, labels (in
 * Envoy's order) and values an Envoy waypoint reports (`reporter="waypoint"`): a small registry
 * of our own keyed by precomputed label text ({@link Registry}), Istio's families and label
 * derivation from the mesh model and ztunnel's `baggage` ({@link IstioMetrics}), the chain
 * filter that records every HTTP request ({@link metricsFilter}, first in the chain),
 * {@link recordTcp} for spliced connections, and the sliced Prometheus text
 * ({@link prometheusRenderer}).
 *
 * Must not: block the request path (recording is a few field updates on precomputed series;
 * rendering yields to the event loop between slices), or import `proxy/`: the filter reads the
 * request state through {@link MetricsState}.
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
  type DestinationLabels,
  destinationText,
  HTTP_LABELS,
  type HttpOutcome,
  IstioMetrics,
  type IstioMetricsOptions,
  LabelPair,
  type SourceLabels,
  sourceText,
  TCP_LABELS,
  type TcpSeries,
  type TcpTotals,
} from "./istio_metrics.ts";
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
export { recordTcp, type TcpConnection, type TcpRecord } from "./tcp.ts";
export { type PrometheusOptions, prometheusRenderer, prometheusStream } from "./prometheus.ts";
