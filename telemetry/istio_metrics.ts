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
 * - gRPC message counters are written for gRPC requests only, with the pair's labels alone (no
 *   protocol, code, status, flag or security labels): Envoy reports them from the stream's
 *   periodic timer before the outcome is known (`reportHelper`, proxy
 *   `testdata/metric/server_request_messages.yaml.tmpl`).
 * - TCP bytes and gRPC messages may be added in several reports over a connection's life (see
 *   {@link IstioMetrics.periodic}); a counter only ever receives what is new since the last one.
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
import type { MetricsShape } from "./metric_shape.ts";
import { PeriodicReports } from "./_periodic.ts";

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
/** gRPC message counter label names: the source and destination parts only. */
export const MESSAGE_LABELS: readonly string[] = Object.freeze([
  ...SOURCE_LABELS,
  ...DESTINATION_LABELS,
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

/** The series one HTTP label set writes; a family a Telemetry disabled has none. */
interface HttpSet {
  readonly requests?: CounterSeries;
  readonly duration?: HistogramSeries;
  readonly requestBytes?: HistogramSeries;
  readonly responseBytes?: HistogramSeries;
}

/** A pair's gRPC message series; a family a Telemetry disabled has none. */
export interface MessageSeries {
  readonly request?: CounterSeries;
  readonly response?: CounterSeries;
}

/** The series of one HTTP outcome; under a shape with per-request values, a set per value. */
interface HttpSeries extends HttpSet {
  readonly protocol: string;
  readonly code: number;
  readonly grpcStatus: string;
  readonly flag: string;
  readonly byDynamic?: Map<string, HttpSet>;
}

/** The series one TCP outcome label set writes; a family a Telemetry disabled has none. */
export interface TcpSeries {
  readonly opened?: CounterSeries;
  readonly closed?: CounterSeries;
  readonly sent?: CounterSeries;
  readonly received?: CounterSeries;
}

/** Label values of a pair under a Telemetry shape (see {@link IstioMetrics.shapedPair}). */
interface Shaped {
  readonly shape: MetricsShape;
  /** Source then destination values, in {@link HTTP_LABELS} order. */
  readonly values: readonly string[];
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
  /** Set when a Telemetry changes the labels of this pair's destination. */
  readonly shaped?: Shaped;
  readonly #metrics: IstioMetrics;
  /** Few per pair (a handful of codes and flags): a scan beats building a key string. */
  readonly #http: HttpSeries[] = [];
  readonly #tcp = new Map<string, TcpSeries | Map<string, TcpSeries>>();
  readonly #messages = new Map<string, MessageSeries>();

  constructor(metrics: IstioMetrics, text: string, security: string, shaped?: Shaped) {
    this.#metrics = metrics;
    this.text = text;
    this.security = security;
    this.shaped = shaped;
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
    const outcome = [protocol, String(code), grpcStatus, flag, this.security];
    const head = { protocol, code, grpcStatus, flag };
    const dynamic = this.shaped && this.shaped.shape.dynamic.length > 0;
    const made: HttpSeries = dynamic
      ? { ...head, byDynamic: new Map() }
      : { ...head, ...this.httpSet(outcome, []) };
    all.push(made);
    return made;
  }

  /**
   * The series of an outcome under per-request label values; made on first use.
   *
   * @param s The outcome's entry
   * @param dynamic Values of the shape's per-request expressions
   */
  httpDynamic(s: HttpSeries, dynamic: readonly string[]): HttpSet {
    const key = dynamic.join("\u0000");
    let set = s.byDynamic!.get(key);
    if (!set) {
      set = this.httpSet(
        [s.protocol, String(s.code), s.grpcStatus, s.flag, this.security],
        dynamic,
      );
      s.byDynamic!.set(key, set);
    }
    return set;
  }

  /** The TCP series of a flag (and per-connection label values); made on first use. */
  tcp(flag: string, dynamic: readonly string[] = []): TcpSeries {
    const key = dynamic.length === 0 ? flag : `${flag}\u0000${dynamic.join("\u0000")}`;
    let found = this.#tcp.get(key) as TcpSeries | undefined;
    if (!found) {
      const m = this.#metrics;
      const outcome = ["tcp", flag, this.security];
      const text = this.#labels(TCP_LABELS, TCP_OUTCOME_LABELS, outcome, dynamic);
      found = {
        opened: seriesOf(m.tcpOpened, text),
        closed: seriesOf(m.tcpClosed, text),
        sent: seriesOf(m.tcpSent, text),
        received: seriesOf(m.tcpReceived, text),
      };
      this.#tcp.set(key, found);
    }
    return found;
  }

  httpSet(outcome: readonly string[], dynamic: readonly string[]): HttpSet {
    const m = this.#metrics;
    const text = this.#labels(HTTP_LABELS, HTTP_OUTCOME_LABELS, outcome, dynamic);
    return {
      requests: seriesOf(m.requests, text),
      duration: seriesOf(m.duration, text),
      requestBytes: seriesOf(m.requestBytes, text),
      responseBytes: seriesOf(m.responseBytes, text),
    };
  }

  /** The gRPC message series (pair labels only, plus per-request values); made on first use. */
  messages(dynamic: readonly string[] = []): MessageSeries {
    const key = dynamic.join("\u0000");
    let found = this.#messages.get(key);
    if (!found) {
      const shaped = this.shaped;
      const text = shaped
        ? (family: string) =>
          shaped.shape.render(
            family,
            MESSAGE_LABELS,
            shaped.values,
            dynamic,
          )
        : () => this.text;
      const m = this.#metrics;
      found = {
        request: seriesOf(m.requestMessages, text),
        response: seriesOf(m.responseMessages, text),
      };
      this.#messages.set(key, found);
    }
    return found;
  }

  /** Label text by family name: the shared text, or the shape's per family (null: disabled). */
  #labels(
    names: readonly string[],
    outcomeNames: readonly string[],
    outcome: readonly string[],
    dynamic: readonly string[],
  ): (family: string) => string | null {
    const shaped = this.shaped;
    if (!shaped) {
      const text = `${this.text},${labelText(outcomeNames, outcome)}`;
      return () => text;
    }
    const values = [...shaped.values, ...outcome];
    return (family) => shaped.shape.render(family, names, values, dynamic);
  }
}

function seriesOf<T extends { readonly labels: string }>(
  family: { readonly name: string; series(labels: string): T },
  text: (family: string) => string | null,
): T | undefined {
  const labels = text(family.name);
  return labels === null ? undefined : family.series(labels);
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

/**
 * Renders the source part of a pair: `reporter="waypoint"` … `source_cluster`.
 *
 * @param s The source labels
 */
export function sourceText(s: SourceLabels): string {
  return labelText(SOURCE_LABELS, sourceValues(s));
}

/**
 * The source label values in {@link HTTP_LABELS} order.
 *
 * @param s The source labels
 */
export function sourceValues(s: SourceLabels): string[] {
  return [
    "waypoint",
    s.workload,
    s.canonicalService,
    s.canonicalRevision,
    s.namespace,
    s.principal,
    s.app,
    s.version,
    s.cluster,
  ];
}

/**
 * Renders the destination part of a pair: `destination_workload` … `destination_cluster`.
 *
 * @param d The destination labels
 */
export function destinationText(d: DestinationLabels): string {
  return labelText(DESTINATION_LABELS, destinationValues(d));
}

/**
 * The destination label values in {@link HTTP_LABELS} order.
 *
 * @param d The destination labels
 */
export function destinationValues(d: DestinationLabels): string[] {
  return [
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
  ];
}

function securityOf(principal: string): string {
  return principal !== "unknown" ? "mutual_tls" : "none";
}

/**
 * Our flag as Envoy would report it: its short strings kept (comma lists too), others `-`.
 *
 * @param flag Our response flag
 */
export function envoyFlag(flag: string): string {
  if (flag === "-" || ENVOY_FLAGS.has(flag)) return flag;
  const kept = flag.split(",").filter((f) => ENVOY_FLAGS.has(f));
  return kept.length > 0 ? kept.join(",") : "-";
}
