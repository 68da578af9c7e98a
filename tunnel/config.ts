/**
 * HTTP/2 and timing parameters for HBONE, defaulting to what ztunnel uses so that ztunnel peers
 * see the behaviour they expect (hbone.md §1.7, §1.8).
 */
import type { H2Options } from "../h2/mod.ts";

/** TLS 1.3 suites ztunnel offers and accepts (hbone.md §1.6): AES-GCM only, no ChaCha20. */
export const CIPHERS = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256";

/** Tunables shared by the HBONE server and client. */
export interface TunnelConfig {
  /** Initial stream flow-control window. @default 4 MiB (ztunnel HTTP2_STREAM_WINDOW_SIZE) */
  streamWindow: number;
  /** Connection flow-control window. @default 16 MiB (ztunnel HTTP2_CONNECTION_WINDOW_SIZE) */
  connectionWindow: number;
  /** Largest frame we accept. @default 1 MiB (ztunnel HTTP2_FRAME_SIZE) */
  maxFrameSize: number;
  /** Streams we allow a peer to open at once; Envoy's waypoint advertises 100. @default 100 */
  maxConcurrentStreams: number;
  /** Largest header block accepted on a CONNECT. @default 64 KiB */
  maxHeaderListSize: number;
  /** Keepalive PING interval. @default 10 s */
  pingIntervalMs: number;
  /** A peer that does not answer a PING within this is dropped. @default 20 s */
  pingTimeoutMs: number;
  /** TCP plus TLS plus HTTP/2 setup bound for outbound tunnels. @default 10 s */
  connectTimeoutMs: number;
  /** Outbound streams per pooled connection, capped by the peer's own limit. @default 100 */
  poolMaxStreams: number;
  /** An outbound connection without streams for this long is closed. @default 5 min */
  poolIdleMs: number;
  /** TLS handshake bound on inbound connections. @default 10 s */
  handshakeTimeoutMs: number;
}

/** ztunnel-compatible defaults. */
export const DEFAULT_TUNNEL_CONFIG: Readonly<TunnelConfig> = Object.freeze({
  streamWindow: 4 << 20,
  connectionWindow: 16 << 20,
  maxFrameSize: 1 << 20,
  maxConcurrentStreams: 100,
  maxHeaderListSize: 64 << 10,
  pingIntervalMs: 10_000,
  pingTimeoutMs: 20_000,
  connectTimeoutMs: 10_000,
  poolMaxStreams: 100,
  poolIdleMs: 5 * 60_000,
  handshakeTimeoutMs: 10_000,
});

/**
 * Session options of `h2/` from the tunnel tunables (windows, frame size, limits, keepalive).
 *
 * @param config Tunables shared by the HBONE server and pool
 * @returns The options for `serveH2` and `connectH2`
 */
export function h2Options(config: TunnelConfig): H2Options {
  return {
    initialWindowSize: config.streamWindow,
    connectionWindowSize: config.connectionWindow,
    maxFrameSize: config.maxFrameSize,
    maxConcurrentStreams: config.maxConcurrentStreams,
    maxHeaderListSize: config.maxHeaderListSize,
    pingIntervalMs: config.pingIntervalMs,
    pingTimeoutMs: config.pingTimeoutMs,
  };
}
