/**
 * Istio's TCP metrics for one spliced connection: opened when it is set up, closed with its
 * bytes when it ends. Every connection records exactly once (STYLE habit 15), including those
 * that never reached an upstream.
 *
 * Invariants:
 * - The labels of a connection are fixed when it opens (Envoy fixes a connection's tags at its
 *   first report), so its opened, closed and byte counters always share one series.
 * - `close` counts once; later calls are ignored.
 * - With a live byte count, an open connection reports its new bytes every reporting interval
 *   (`IstioMetrics.periodic`, Envoy's `tcp_reporting_duration`), and `close` adds the rest:
 *   the counters grow while the connection is open, and sum to its totals at the end.
 * - Telemetry settings are those of the connection's config and destination; tag expressions
 *   are evaluated at open (only connection attributes exist), the access log at close with
 *   Envoy's TCP line (no request: `"- - -"`, response code 0).
 */
import type { Destination, Endpoint, Service, Snapshot } from "../mesh/mod.ts";
import type { CelAttributes } from "./cel/mod.ts";
import type { IstioMetrics, TcpTotals } from "./istio_metrics.ts";
import { destinationValues, envoyFlag, sourceValues } from "./istio_labels.ts";
import type { LabelPair, TcpSeries } from "./label_pair.ts";
import { destinationLabels, servedBy, sourceLabels } from "./mesh_labels.ts";
import { MetricsShape } from "./metric_shape.ts";
import { DEFAULT_TELEMETRY } from "./telemetry_api.ts";
import type { CompiledTelemetry, TelemetrySettings } from "./telemetry_settings.ts";
import type { AccessLogs, LogRecord } from "./access_log.ts";
import { connectionAttribute, nodeOf } from "./_exchange_record.ts";

/** What a TCP connection's labels come from. */
export interface TcpConnection {
  /** The snapshot the connection started with. */
  readonly mesh: Snapshot;
  /** SPIFFE id of the downstream peer. */
  readonly identity: string;
  /** Original client `ip:port`. */
  readonly client: string;
  /** The CONNECT's `baggage` header. */
  readonly baggage?: string;
  readonly destination: Destination;
  /** The upstream endpoint, once connected. */
  readonly endpoint?: Endpoint;
  /** The backend service when a TCPRoute sent elsewhere than the CONNECT's service. */
  readonly service?: Service;
  /**
   * Envoy flag known at open: `-` for a connection that reached its upstream, `UF` when the
   * connect failed, `UH` when there was no endpoint. @default "-"
   */
  readonly flag?: string;
  /** Compiled Telemetry of the connection's config. @default metrics on, no access log */
  readonly telemetry?: CompiledTelemetry;
  /** The CONNECT target, the downstream local address in the access log. */
  readonly target?: { readonly address: string; readonly port: number };
  /** Bytes so far, read at each periodic report; without it bytes are reported at close. */
  readonly bytes?: () => TcpTotals;
  /** The SNI of the downstream TLS connection. */
  readonly sni?: string;
  /** Why the upstream connect failed (`%UPSTREAM_TRANSPORT_FAILURE_REASON%`). */
  readonly failure?: string;
  /** Why the connection was closed by us (`%CONNECTION_TERMINATION_DETAILS%`). */
  readonly termination?: string;
}

/** An open connection's record. */
export interface TcpRecord {
  /** Counts the close and the bytes each way (totals of the connection); only the first call counts. */
  close(totals: TcpTotals): void;
}

/**
 * Counts a TCP connection as opened.
 *
 * @example
 * ```ts
 * const record = recordTcp(metrics, { mesh, identity, client, destination, endpoint }, accessLogs);
 * const result = await splice(down, up);
 * record.close({ sent: result.bToA, received: result.aToB });
 * ```
 *
 * @param metrics Where it is recorded
 * @param connection Its source, destination, flag and Telemetry
 * @param accessLogs Where Telemetry access logs are written; none without it
 * @returns The record to close when the connection ends
 */
export function recordTcp(
  metrics: IstioMetrics,
  connection: TcpConnection,
  accessLogs?: AccessLogs,
): TcpRecord {
  const settings = (connection.telemetry ?? DEFAULT_TELEMETRY).lookup(connection.destination);
  const facts = new TcpFacts(connection);
  const series = settings.metrics.enabled
    ? openSeries(metrics, connection, settings, facts)
    : undefined;
  let closed = false;
  let sent = 0, received = 0;
  const added = (totals: TcpTotals): TcpTotals => {
    const delta = { sent: totals.sent - sent, received: totals.received - received };
    sent = totals.sent;
    received = totals.received;
    return delta;
  };
  const bytes = connection.bytes;
  const stop = series && bytes
    ? metrics.periodic.add(() => metrics.reportTcp(series, added(bytes())))
    : undefined;
  return {
    close(totals) {
      if (closed) return;
      closed = true;
      stop?.();
      if (series) metrics.closeTcp(series, added(totals));
      if (accessLogs) writeLogs(accessLogs, settings, facts, totals, metrics);
    },
  };
}

function openSeries(
  metrics: IstioMetrics,
  connection: TcpConnection,
  settings: TelemetrySettings,
  facts: TcpFacts,
): TcpSeries {
  const { mesh } = connection;
  const served = servedBy(connection.destination, {
    service: connection.service,
    endpoint: connection.endpoint,
  });
  const source = sourceLabels(mesh, connection, metrics.cluster);
  const destination = destinationLabels(mesh, served.service, served.endpoint, metrics.cluster);
  const shape = MetricsShape.of(settings.metrics);
  const pair: LabelPair = shape
    ? metrics.shapedPair(
      sourceValues(source),
      destinationValues(destination),
      source.principal,
      shape,
    )
    : metrics.pair(source, destination);
  const dynamic = shape && shape.dynamic.length > 0 ? shape.values(facts) : undefined;
  return metrics.openTcp(pair, connection.flag, dynamic);
}

function writeLogs(
  logs: AccessLogs,
  settings: TelemetrySettings,
  facts: TcpFacts,
  totals: TcpTotals,
  metrics: IstioMetrics,
): void {
  if (settings.accessLogs.length === 0) return;
  try {
    const record = facts.finish(totals);
    for (const log of settings.accessLogs) {
      if (!log.filter || log.filter.test(facts)) logs.write(log.provider, record);
    }
  } catch {
    metrics.recordFailures++;
  }
}

/** A connection as CEL attributes, and its access-log record once closed. */
class TcpFacts implements CelAttributes {
  readonly #c: TcpConnection;
  readonly #startMs = Date.now();
  readonly #started = performance.now();

  constructor(connection: TcpConnection) {
    this.#c = connection;
  }

  attribute(name: string): unknown {
    const c = this.#c;
    return connectionAttribute(name, {
      destination: c.destination,
      peer: { identity: c.identity },
      client: c.client,
      target: c.target,
      endpoint: c.endpoint,
    });
  }

  finish(totals: TcpTotals): LogRecord {
    const c = this.#c;
    const none = () => undefined;
    const d = c.destination;
    const port = d.kind === "service" ? d.port.port : d.port;
    return {
      startMs: this.#startMs,
      code: 0,
      flags: envoyFlag(c.flag ?? "-"),
      bytesReceived: totals.received,
      bytesSent: totals.sent,
      durationMs: performance.now() - this.#started,
      upstreamHost: c.endpoint ? nodeOf(c.endpoint.address, c.endpoint.port) : undefined,
      upstreamCluster: d.kind === "service"
        ? `inbound-vip|${port}|tcp|${(c.service ?? d.service).hostname}`
        : `inbound-pod|${port}||${d.workload.address}`,
      downstreamLocal: c.target ? nodeOf(c.target.address, c.target.port) : undefined,
      downstreamRemote: c.client,
      peerSan: c.identity || undefined,
      requestedServerName: c.sni,
      upstreamFailure: c.failure,
      terminationDetails: c.termination,
      requestHeader: none,
      responseHeader: none,
      responseTrailer: none,
    };
  }
}
