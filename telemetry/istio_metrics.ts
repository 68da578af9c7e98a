/**
 * Istio's standard metrics as an Envoy waypoint reports them (reporter `SERVER_GATEWAY`,
 * istio/proxy `istio_stats.cc`; hbone.md §6.1): names, label names in Envoy's order, and values.
 * Label text is precomputed per (source, destination) pair, so a request only picks the series
 * for its protocol, response code, gRPC status and flag from a small map.
 *
 * Invariants:
 * - The source part (`reporter` … `source_cluster`) and the destination part
 *   (`destination_workload` … `destination_cluster`) are rendered once per pair and shared; a
 *   {@link LabelPair} is interned by its text, so connections to the same pair share series.
 * - Durations are whole milliseconds (`absl::FromChrono(d) / absl::Milliseconds(1)`).
 * - gRPC message counters are written for gRPC requests only, with the pair's labels alone (no
 *   protocol, code, status, flag or security labels): Envoy reports them from the stream's
 *   periodic timer before the outcome is known (`reportHelper`, proxy
 *   `testdata/metric/server_request_messages.yaml.tmpl`).
 * - TCP bytes and gRPC messages may be added in several reports over a connection's life (see
 *   {@link IstioMetrics.periodic}); a counter only ever receives what is new since the last one.
 */
import { type Counter, type Histogram, labelText, Registry } from "./registry.ts";
import type { MetricsShape } from "./metric_shape.ts";
import { PeriodicReports } from "./_periodic.ts";
import {
  type DestinationLabels,
  destinationText,
  envoyFlag,
  HTTP_LABELS,
  securityOf,
  type SourceLabels,
  sourceText,
} from "./istio_labels.ts";
import { LabelPair, type TcpSeries } from "./label_pair.ts";

/** What one finished HTTP request adds. */
export interface HttpOutcome {
  readonly protocol: "http" | "grpc";
  /** HTTP status on the wire; 0 when none was sent. */
  readonly code: number;
  /** `grpc_response_status`; empty for plain HTTP. */
  readonly grpcStatus: string;
  /** Envoy response flag, `-` for none. */
  readonly flag: string;
  /** Whole milliseconds are recorded; fractions are dropped as Envoy does. */
  readonly durationMs: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
  /** gRPC messages not yet reported, counted only when `protocol` is `grpc`. */
  readonly requestMessages: number;
  readonly responseMessages: number;
}

/** Bytes of a TCP connection, all so far or what a report adds. */
export interface TcpTotals {
  /** Bytes sent to the downstream (response direction). */
  readonly sent: number;
  /** Bytes received from the downstream (request direction). */
  readonly received: number;
}

/** Options of {@link IstioMetrics}. */
export interface IstioMetricsOptions {
  /** Where the families are registered. @default a new registry */
  readonly registry?: Registry;
  /**
   * The cluster the mesh model describes: `destination_cluster`, and `source_cluster` of
   * sources the model knows. Istio's default cluster id is `Kubernetes`. @default "unknown"
   */
  readonly cluster?: string;
  /**
   * Time between the reports of open TCP connections and gRPC streams (the stats filter's
   * `tcp_reporting_duration`, whose default is 5 s in istio/proxy). @default 5000
   */
  readonly reportIntervalMs?: number;
}

/** Istio's standard metric families and the recording of one request or connection. */
export class IstioMetrics {
  readonly registry: Registry;
  readonly cluster: string;
  readonly requests: Counter;
  readonly duration: Histogram;
  readonly requestBytes: Histogram;
  readonly responseBytes: Histogram;
  readonly requestMessages: Counter;
  readonly responseMessages: Counter;
  readonly tcpOpened: Counter;
  readonly tcpClosed: Counter;
  readonly tcpSent: Counter;
  readonly tcpReceived: Counter;
  /** One timer for the periodic reports of open connections and streams. */
  readonly periodic: PeriodicReports;
  /** Records dropped because recording threw (a bug; the request went on). */
  recordFailures = 0;
  readonly #pairs = new Map<string, LabelPair>();

  /**
   * Registers the ten families.
   *
   * @param options Registry and cluster name
   * @throws Error when the registry already has one of Istio's names
   */
  constructor(options: IstioMetricsOptions = {}) {
    const r = this.registry = options.registry ?? new Registry();
    this.cluster = options.cluster ?? "unknown";
    this.periodic = new PeriodicReports(options.reportIntervalMs ?? 5_000);
    this.requests = r.counter("istio_requests_total", "Requests handled by the waypoint");
    this.duration = r.histogram(
      "istio_request_duration_milliseconds",
      "Request duration in milliseconds",
    );
    this.requestBytes = r.histogram("istio_request_bytes", "Request size in bytes on the wire");
    this.responseBytes = r.histogram("istio_response_bytes", "Response size in bytes on the wire");
    this.requestMessages = r.counter("istio_request_messages_total", "gRPC request messages");
    this.responseMessages = r.counter("istio_response_messages_total", "gRPC response messages");
    this.tcpOpened = r.counter("istio_tcp_connections_opened_total", "TCP connections opened");
    this.tcpClosed = r.counter("istio_tcp_connections_closed_total", "TCP connections closed");
    this.tcpSent = r.counter("istio_tcp_sent_bytes_total", "Bytes sent to the downstream");
    this.tcpReceived = r.counter(
      "istio_tcp_received_bytes_total",
      "Bytes received from the downstream",
    );
  }

  /**
   * The label pair of a source and a destination, interned: compute it once per connection and
   * destination, then record many outcomes on it.
   *
   * @param source The downstream peer
   * @param destination The upstream endpoint and service
   * @returns The shared pair
   */
  pair(source: SourceLabels, destination: DestinationLabels): LabelPair {
    return this.pairOf(sourceText(source), destinationText(destination), source.principal);
  }

  /**
   * The pair of already rendered parts (see {@link sourceText}, {@link destinationText}).
   *
   * @param source Rendered source part
   * @param destination Rendered destination part
   * @param principal The source principal; `unknown` means no mutual TLS
   */
  pairOf(source: string, destination: string, principal: string): LabelPair {
    const text = `${source},${destination}`;
    let pair = this.#pairs.get(text);
    if (!pair) {
      pair = new LabelPair(this, text, securityOf(principal));
      this.#pairs.set(text, pair);
    }
    return pair;
  }

  /**
   * The pair of a source and a destination whose labels a Telemetry changes.
   *
   * @param source Values of {@link sourceValues}
   * @param destination Values of {@link destinationValues}
   * @param principal The source principal
   * @param shape The destination's shape
   */
  shapedPair(
    source: readonly string[],
    destination: readonly string[],
    principal: string,
    shape: MetricsShape,
  ): LabelPair {
    const values = [...source, ...destination];
    const key = `${shape.id}\u0000${values.join("\u0000")}`;
    let pair = this.#pairs.get(key);
    if (!pair) {
      const text = labelText(HTTP_LABELS.slice(0, values.length), values);
      pair = new LabelPair(this, text, securityOf(principal), { shape, values });
      this.#pairs.set(key, pair);
    }
    return pair;
  }

  /**
   * Records one finished HTTP request.
   *
   * @param pair Its source and destination
   * @param outcome What happened
   */
  recordHttp(pair: LabelPair, outcome: HttpOutcome, dynamic?: readonly string[]): void {
    const entry = pair.http(
      outcome.protocol,
      outcome.code,
      outcome.grpcStatus,
      envoyFlag(outcome.flag),
    );
    const s = entry.byDynamic ? pair.httpDynamic(entry, dynamic ?? []) : entry;
    if (s.requests) s.requests.value++;
    s.duration?.observe(Math.floor(outcome.durationMs));
    s.requestBytes?.observe(outcome.requestBytes);
    s.responseBytes?.observe(outcome.responseBytes);
    if (outcome.protocol === "grpc") {
      this.recordMessages(pair, outcome.requestMessages, outcome.responseMessages, dynamic);
    }
  }

  /**
   * Adds gRPC messages of one stream: the rest at its end, or what is new at a periodic report.
   *
   * @param pair Its source and destination
   * @param request Request messages to add
   * @param response Response messages to add
   * @param dynamic Values of the shape's per-request expressions
   */
  recordMessages(
    pair: LabelPair,
    request: number,
    response: number,
    dynamic?: readonly string[],
  ): void {
    const s = pair.messages(dynamic);
    if (s.request) s.request.value += request;
    if (s.response) s.response.value += response;
  }

  /**
   * Counts a TCP connection as opened; its labels stay fixed for its close, as Envoy fixes a
   * connection's tags at its first report.
   *
   * @param pair Its source and destination
   * @param flag Envoy flag known at open. @default "-"
   * @returns The series to close it on
   */
  openTcp(pair: LabelPair, flag = "-", dynamic?: readonly string[]): TcpSeries {
    const s = pair.tcp(envoyFlag(flag), dynamic);
    if (s.opened) s.opened.value++;
    return s;
  }

  /**
   * Adds the bytes an open TCP connection moved since its last report.
   *
   * @param series What {@link IstioMetrics.openTcp} returned
   * @param added Bytes each way since the last report
   */
  reportTcp(series: TcpSeries, added: TcpTotals): void {
    if (series.sent) series.sent.value += added.sent;
    if (series.received) series.received.value += added.received;
  }

  /**
   * Counts a TCP connection as closed with the bytes not yet reported.
   *
   * @param series What {@link IstioMetrics.openTcp} returned
   * @param added Bytes each way since the last report
   */
  closeTcp(series: TcpSeries, added: TcpTotals): void {
    if (series.closed) series.closed.value++;
    this.reportTcp(series, added);
  }
}
