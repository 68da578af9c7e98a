/**
 * {@link LabelPair}: the precomputed label text of one (source, destination) pair and the series
 * of each outcome on it, made on first use, under a Telemetry shape when one applies.
 *
 * Invariants:
 * - The source part (`reporter` … `source_cluster`) and the destination part
 *   (`destination_workload` … `destination_cluster`) are rendered once per pair and shared; a
 *   {@link LabelPair} is interned by its text, so connections to the same pair share series.
 * - A family a Telemetry disabled has no series: its slot stays undefined and nothing records.
 */
import { type CounterSeries, type HistogramSeries, labelText } from "./registry.ts";
import type { MetricsShape } from "./metric_shape.ts";
import type { IstioMetrics } from "./istio_metrics.ts";
import {
  HTTP_LABELS,
  HTTP_OUTCOME_LABELS,
  MESSAGE_LABELS,
  TCP_LABELS,
  TCP_OUTCOME_LABELS,
} from "./istio_labels.ts";

/** The series one HTTP label set writes; a family a Telemetry disabled has none. */
export interface HttpSet {
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
export interface HttpSeries extends HttpSet {
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
export interface Shaped {
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
