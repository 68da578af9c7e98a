/**
 * The one error type of `http/`: what went wrong, where in the message, and the status a server
 * answers with (STYLE habit 12). A codec that rejects a message throws it; the server turns it
 * into a response in one place (`h1_server.ts`).
 */

/** Closed set of HTTP codec failure kinds. */
export type HttpCodecErrorKind =
  | "bad_request" // malformed request: smuggling shapes, invalid bytes, missing Host (400)
  | "headers_too_large" // head bigger than the byte limit or with too many fields (431)
  | "payload_too_large" // a body buffered by a filter went over its bound (413)
  | "timeout" // the request head did not arrive in time (408)
  | "not_implemented" // a transfer coding other than a final `chunked` (501)
  | "version_not_supported" // an HTTP version other than 1.0 or 1.1 (505)
  | "bad_response" // malformed response from the upstream (502)
  | "bad_message" // a head we were asked to send is invalid, e.g. CR LF in a value (500)
  | "closed" // the peer closed or reset the connection in the middle of a message (502)
  | "busy"; // a second request on a client connection that is still busy (500)

const STATUS: Record<HttpCodecErrorKind, number> = {
  bad_request: 400,
  headers_too_large: 431,
  payload_too_large: 413,
  timeout: 408,
  not_implemented: 501,
  version_not_supported: 505,
  bad_response: 502,
  bad_message: 500,
  closed: 502,
  busy: 500,
};

const LABEL: Record<HttpCodecErrorKind, string> = {
  bad_request: "Bad request",
  headers_too_large: "Headers too large",
  payload_too_large: "Payload too large",
  timeout: "Request timeout",
  not_implemented: "Not implemented",
  version_not_supported: "HTTP version not supported",
  bad_response: "Bad response",
  bad_message: "Invalid outgoing message",
  closed: "Connection closed",
  busy: "Connection busy",
};

/**
 * A rejected or failed HTTP/1.1 message.
 *
 * @example
 * ```ts
 * const e = new HttpCodecError("bad_request", "header content-length", 'Differing values "1, 2"');
 * e.status; // 400
 * e.message; // 'Bad request at header content-length: Differing values "1, 2"'
 * ```
 */
export class HttpCodecError extends Error {
  readonly kind: HttpCodecErrorKind;
  /** The status a server answers with (400, 431, 501, ...). */
  readonly status: number;
  /** Where in the message the fault is: `request line`, `header host`, `chunk size`, ... */
  readonly where: string;
  /** What is wrong there. */
  readonly detail: string;

  /**
   * @param kind The failure kind; it fixes the status
   * @param where The part of the message at fault
   * @param detail What is wrong with it
   */
  constructor(kind: HttpCodecErrorKind, where: string, detail: string) {
    super(`${LABEL[kind]} at ${where}: ${detail}`);
    this.name = "HttpCodecError";
    this.kind = kind;
    this.status = STATUS[kind];
    this.where = where;
    this.detail = detail;
  }
}
