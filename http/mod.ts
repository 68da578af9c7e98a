/**
 * @module
 * HTTP inside a tunnel stream: the message model ({@link HeaderMap}, heads, pulled {@link Body}),
 * our own HTTP/1.1 codec (server {@link serveH1}, client {@link H1ClientConnection}, and the pure
 * parsers under them) and the h2c adapter. `node:http` stalls when fed an HTTP/2 stream under
 * Deno, so the HTTP/1.1 codec is ours; it is strict per RFC 9112 to leave no room for request
 * smuggling.
 *
 * It must not know about specific policies, routes or the mesh: callers hand it a connection and
 * a handler. Hop-by-hop fields (`connection`, `keep-alive`, `te`, `upgrade`, ...) are left to the
 * proxy, except that the codecs always set the framing fields themselves.
 */
export * from "./types.ts";
export { HttpCodecError, type HttpCodecErrorKind } from "./errors.ts";
export {
  ChunkedDecoder,
  type ChunkedDecoderOptions,
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_MAX_HEADERS,
  type Framing,
  type HeadParseOptions,
  type ParsedRequest,
  type ParsedResponse,
  parseRequestHead,
  parseResponseHead,
  type ResponseParseOptions,
} from "./h1_parse.ts";
export { type H1Exchange, type H1Handler, type H1ServerOptions, serveH1 } from "./h1_server.ts";
export { H1ClientConnection, type H1ClientOptions, type H1Response } from "./h1_client.ts";
export { H2cClientConnection, type H2cOptions, serveH2c } from "./h2c.ts";
export { chainVariants, compose, type Filter, LocalReply, runChain } from "./chain.ts";
export { Deadline } from "./deadline.ts";
export { HttpContext, type Message } from "./context.ts";
export { pumpBody, readableBody } from "./stream_body.ts";
export { grpcStatusForHttp } from "./grpc.ts";
