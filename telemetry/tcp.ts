/**
 * Istio's TCP metrics for one spliced connection: opened when it is set up, closed with its
 * bytes when it ends. Every connection records exactly once (STYLE habit 15), including those
 * that never reached an upstream.
 *
 * Invariants:
 * - The labels of a connection are fixed when it opens (Envoy fixes a connection's tags at its
 *   first report), so its opened, closed and byte counters always share one series.
 * - `close` counts once; later calls are ignored.
 */
import type { Destination, Endpoint, Service, Snapshot } from "../mesh/mod.ts";
import type { IstioMetrics, TcpTotals } from "./istio_metrics.ts";
import { destinationLabels, servedBy, sourceLabels } from "./mesh_labels.ts";

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
}

/** An open connection's record. */
export interface TcpRecord {
  /** Counts the close and the bytes each way; only the first call counts. */
  close(totals: TcpTotals): void;
}

/**
 * Counts a TCP connection as opened.
 *
 * @example
 * ```ts
 * const record = recordTcp(metrics, { mesh, identity, client, destination, endpoint });
 * const result = await splice(down, up);
 * record.close({ sent: result.bToA, received: result.aToB });
 * ```
 *
 * @param metrics Where it is recorded
 * @param connection Its source, destination and flag
 * @returns The record to close when the connection ends
 */
export function recordTcp(metrics: IstioMetrics, connection: TcpConnection): TcpRecord {
  const { mesh } = connection;
  const served = servedBy(connection.destination, {
    service: connection.service,
    endpoint: connection.endpoint,
  });
  const pair = metrics.pair(
    sourceLabels(mesh, connection, metrics.cluster),
    destinationLabels(mesh, served.service, served.endpoint, metrics.cluster),
  );
  const series = metrics.openTcp(pair, connection.flag);
  let closed = false;
  return {
    close(totals) {
      if (closed) return;
      closed = true;
      metrics.closeTcp(series, totals);
    },
  };
}
