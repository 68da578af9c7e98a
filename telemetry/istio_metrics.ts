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
 * - `response_flags` only carries Envoy's short flags; anything else (our `RBAC`) becomes `-`,
 *   since Envoy's RBAC filter denies with 403 and no flag (`rbac_access_denied_matched_policy`
 *   is response code details, not a flag).
 * - Durations are whole milliseconds (`absl::FromChrono(d) / absl::Milliseconds(1)`).
 * - gRPC message counters are written for gRPC requests only.
 */
import {
  type Counter,
  type CounterSeries,
  type Histogram,
  type HistogramSeries,
  labelText,
  Registry,
} from "./registry.ts";
import type { PeerLabels } from "./peer_labels.ts";

/** Envoy's response flag short strings (`ResponseFlagUtils`). */
const ENVOY_FLAGS = new Set(
  "UH UF UO NR URX NC DT DC LH UT LR UR UC DI FI RL UAEX RLSE IH SI DPE UPE UMSDR OM DF DO DR UDO"
    .split(" "),
);

const SOURCE_LABELS = [
  "reporter",
  "source_workload",
  "source_canonical_service",
  "source_canonical_revision",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "source_version",
  "source_cluster",
] as const;
const DESTINATION_LABELS = [
  "destination_workload",
  "destination_workload_namespace",
  "destination_principal",
  "destination_app",
  "destination_version",
  "destination_service",
  "destination_canonical_service",
  "destination_canonical_revision",
  "destination_service_name",
  "destination_service_namespace",
  "destination_cluster",
] as const;
const HTTP_OUTCOME_LABELS = [
  "request_protocol",
  "response_code",
  "grpc_response_status",
  "response_flags",
  "connection_security_policy",
] as const;
const TCP_OUTCOME_LABELS = [
  "request_protocol",
  "response_flags",
  "connection_security_policy",
] as const;

/** HTTP label names in Envoy's order. */
export const HTTP_LABELS: readonly string[] = Object.freeze([
  ...SOURCE_LABELS,
  ...DESTINATION_LABELS,
  ...HTTP_OUTCOME_LABELS,
]);
/** TCP label names in Envoy's order (no `response_code`, `grpc_response_status`). */
export const TCP_LABELS: readonly string[] = Object.freeze([
  ...SOURCE_LABELS,
  ...DESTINATION_LABELS,
  ...TCP_OUTCOME_LABELS,
]);

/** The downstream peer: its labels plus the SPIFFE id from its certificate. */
export interface SourceLabels extends PeerLabels {
  /** `source_principal`; `unknown` without a certificate. */
  readonly principal: string;
}

/** The upstream endpoint and service. */
export interface DestinationLabels extends PeerLabels {
  /** The endpoint's SPIFFE id. */
  readonly principal: string;
  /** Service FQDN. */
  readonly service: string;
  readonly serviceName: string;
  readonly serviceNamespace: string;
}

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
  /** gRPC messages, counted only when `protocol` is `grpc`. */
  readonly requestMessages: number;
  readonly responseMessages: number;
}

/** What one finished TCP connection adds. */
export interface TcpTotals {
  /** Bytes sent to the downstream (response direction). */
  readonly sent: number;
  /** Bytes received from the downstream (request direction). */
  readonly received: number;
}

/** The series one HTTP outcome label set writes. */
interface HttpSeries {
  readonly protocol: string;
  readonly code: number;
  readonly grpcStatus: string;
  readonly flag: string;
  readonly requests: CounterSeries;
  readonly duration: HistogramSeries;
  readonly requestBytes: HistogramSeries;
  readonly responseBytes: HistogramSeries;
  readonly requestMessages?: CounterSeries;
  readonly responseMessages?: CounterSeries;
}

/** The series one TCP outcome label set writes. */
export interface TcpSeries {
  readonly opened: CounterSeries;
  readonly closed: CounterSeries;
  readonly sent: CounterSeries;
  readonly received: CounterSeries;
}

/**
 * The precomputed source + destination label text of one (source, destination) pair, with its
 * series by outcome. Made by {@link IstioMetrics.pair}.
 */
export class LabelPair {
  /** `reporter="waypoint",…,destination_cluster="…"` */
  readonly text: string;
  /** `mutual_tls` or `none`. */
  readonly security: string;
  readonly #metrics: IstioMetrics;
  /** Few per pair (a handful of codes and flags): a scan beats building a key string. */
  readonly #http: HttpSeries[] = [];
  readonly #tcp = new Map<string, TcpSeries>();

  constructor(metrics: IstioMetrics, text: string, security: string) {
    this.#metrics = metrics;
    this.text = text;
    this.security = security;
  }

  /** The HTTP series of an outcome; made on first use. */
  http(protocol: string, code: number, grpcStatus: string, flag: string): HttpSeries {
    const all = this.#http;
    for (let i = 0; i < all.length; i++) {
      const s = all[i];
      if (
        s.code === code && s.flag === flag && s.grpcStatus === grpcStatus && s.protocol === protocol
      ) {
        return s;
      }
    }
    const values = [protocol, String(code), grpcStatus, flag, this.security];
    const labels = `${this.text},${labelText(HTTP_OUTCOME_LABELS, values)}`;
    const m = this.#metrics;
    const made: HttpSeries = {
      protocol,
      code,
      grpcStatus,
      flag,
      requests: m.requests.series(labels),
      duration: m.duration.series(labels),
      requestBytes: m.requestBytes.series(labels),
      responseBytes: m.responseBytes.series(labels),
      requestMessages: protocol === "grpc" ? m.requestMessages.series(labels) : undefined,
      responseMessages: protocol === "grpc" ? m.responseMessages.series(labels) : undefined,
    };
    all.push(made);
    return made;
  }

  /** The TCP series of a flag; made on first use. */
  tcp(flag: string): TcpSeries {
    let found = this.#tcp.get(flag);
    if (!found) {
      const outcome = labelText(TCP_OUTCOME_LABELS, ["tcp", flag, this.security]);
      const labels = `${this.text},${outcome}`;
      const m = this.#metrics;
      found = {
        opened: m.tcpOpened.series(labels),
        closed: m.tcpClosed.series(labels),
        sent: m.tcpSent.series(labels),
        received: m.tcpReceived.series(labels),
      };
      this.#tcp.set(flag, found);
    }
    return found;
  }
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
      pair = new LabelPair(this, text, principal !== "unknown" ? "mutual_tls" : "none");
      this.#pairs.set(text, pair);
    }
    return pair;
  }

  /**
   * Records one finished HTTP request.
   *
   * @param pair Its source and destination
   * @param outcome What happened
   */
  recordHttp(pair: LabelPair, outcome: HttpOutcome): void {
    const s = pair.http(
      outcome.protocol,
      outcome.code,
      outcome.grpcStatus,
      envoyFlag(outcome.flag),
    );
    s.requests.value++;
    s.duration.observe(Math.floor(outcome.durationMs));
    s.requestBytes.observe(outcome.requestBytes);
    s.responseBytes.observe(outcome.responseBytes);
    if (s.requestMessages) s.requestMessages.value += outcome.requestMessages;
    if (s.responseMessages) s.responseMessages.value += outcome.responseMessages;
  }

  /**
   * Counts a TCP connection as opened; its labels stay fixed for its close, as Envoy fixes a
   * connection's tags at its first report.
   *
   * @param pair Its source and destination
   * @param flag Envoy flag known at open. @default "-"
   * @returns The series to close it on
   */
  openTcp(pair: LabelPair, flag = "-"): TcpSeries {
    const s = pair.tcp(envoyFlag(flag));
    s.opened.value++;
    return s;
  }

  /**
   * Counts a TCP connection as closed with its bytes.
   *
   * @param series What {@link IstioMetrics.openTcp} returned
   * @param totals Bytes each way
   */
  closeTcp(series: TcpSeries, totals: TcpTotals): void {
    series.closed.value++;
    series.sent.value += totals.sent;
    series.received.value += totals.received;
  }
}

/**
 * Renders the source part of a pair: `reporter="waypoint"` … `source_cluster`.
 *
 * @param s The source labels
 */
export function sourceText(s: SourceLabels): string {
  return labelText(SOURCE_LABELS, [
    "waypoint",
    s.workload,
    s.canonicalService,
    s.canonicalRevision,
    s.namespace,
    s.principal,
    s.app,
    s.version,
    s.cluster,
  ]);
}

/**
 * Renders the destination part of a pair: `destination_workload` … `destination_cluster`.
 *
 * @param d The destination labels
 */
export function destinationText(d: DestinationLabels): string {
  return labelText(DESTINATION_LABELS, [
    d.workload,
    d.namespace,
    d.principal,
    d.app,
    d.version,
    d.service,
    d.canonicalService,
    d.canonicalRevision,
    d.serviceName,
    d.serviceNamespace,
    d.cluster,
  ]);
}

/** Our flag as Envoy would report it: its short strings kept (comma lists too), others `-`. */
function envoyFlag(flag: string): string {
  if (flag === "-" || ENVOY_FLAGS.has(flag)) return flag;
  const kept = flag.split(",").filter((f) => ENVOY_FLAGS.has(f));
  return kept.length > 0 ? kept.join(",") : "-";
}
