/**
 * @module
 * Our own HTTP/2 (RFC 9113, HPACK RFC 7541) over any node `Duplex`, without `node:http2`: its
 * nghttp2 can abort the whole process when a peer sends GOAWAY (denoland/deno#36788). It carries
 * HBONE's classic CONNECT streams (`tunnel/`, over TLS) and ordinary requests with bodies and
 * trailers (h2c inside a tunnel stream, `http/h2c.ts`).
 *
 * - Server: `serveH2(socket, options, (stream, headers) => stream.respond(200))`.
 * - Client: `const s = connectH2(socket, options); await s.ready; s.request({...})`, then the
 *   stream's `response` event.
 * - Streams are node `Duplex`es; attach an `error` listener to each, as with any node stream.
 *   `sendTrailers()` ends one with trailers; received trailers come as a `trailers` event.
 * - Abusive peers (rapid reset, control-frame and CONTINUATION floods, idle request streams)
 *   are cut off within fixed budgets (`guard.ts`, `idle.ts`); `session.stats` counts them.
 *
 * It owns framing, HPACK, flow control, stream states and the header rules of RFC 9113 §8. It
 * must not know about tunnels, the mesh or HTTP semantics beyond those rules: tunables come in
 * as {@link H2Options} (`tunnel/config.ts` maps HBONE's), and what a request means is for the
 * caller.
 */
export { ErrorCode, errorName } from "./frame.ts";
export {
  connectH2,
  type GoawayReason,
  type H2Options,
  H2Session,
  type H2Settings,
  type H2Stats,
  type RequestOptions,
  serveH2,
  type StreamHandler,
} from "./session.ts";
export { type H2Headers, type OutgoingHeaders } from "./fields.ts";
export { H2Stream, H2StreamError, type RespondOptions } from "./stream.ts";
