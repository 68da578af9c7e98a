/**
 * A small HTTP/2 (RFC 9113, RFC 7541) for HBONE: classic CONNECT streams carrying bytes over any
 * node `Duplex` (a `tls.TLSSocket` in production), without `node:http2`.
 *
 * - Server: `serveH2(socket, options, (stream, headers) => stream.respond(200))`.
 * - Client: `const s = connectH2(socket, options); await s.ready; s.request({...})`, then the
 *   stream's `response` event.
 * - Streams are node `Duplex`es; attach an `error` listener to each, as with any node stream.
 */
import type { TunnelConfig } from "../config.ts";
import type { H2Options } from "./session.ts";

export { ErrorCode, errorName } from "./frame.ts";
export {
  connectH2,
  type H2Options,
  H2Session,
  type H2Settings,
  type RequestOptions,
  serveH2,
  type StreamHandler,
} from "./session.ts";
export { type H2Headers, H2Stream, H2StreamError, type RespondOptions } from "./stream.ts";

/**
 * Session options from the tunnel tunables (windows, frame size, limits, keepalive).
 *
 * @param config Tunables shared by the HBONE server and pool
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
