/**
 * Pure, incremental HTTP/1.1 parsing (RFC 9112): request and response heads over byte buffers,
 * with the framing each head implies, and the chunked body decoder (re-exported from
 * `_h1_chunked.ts`). No I/O: callers feed bytes and get heads or `null` (need more bytes).
 *
 * Invariants (strict on purpose; a proxy that frames differently from its peers is a smuggling
 * vector):
 * - Requests with both Content-Length and Transfer-Encoding, differing Content-Length values, a
 *   Transfer-Encoding whose final coding is not `chunked`, `chunked` twice, obs-fold, bare LF,
 *   whitespace before a colon, or CTL/DEL bytes are rejected with 400; a final `chunked` after
 *   another coding is 501 (we implement no other coding).
 * - A head larger than `maxHeaderBytes` (the request line counts) or with more than `maxHeaders`
 *   fields is 431. HTTP/1.1 requests need exactly one Host.
 */
import { HttpCodecError, type HttpCodecErrorKind } from "./errors.ts";
import { HeaderMap, type RequestHead, type ResponseHead } from "./types.ts";
import {
  connectionTokens,
  type FramingFields,
  framingFields,
  requestFraming,
  responseFraming,
} from "./_h1_framing.ts";
import {
  type FieldRules,
  fieldsOf,
  firstInvalid,
  HOST,
  latin1,
  scanHead,
  startLineOf,
  TARGET,
  TCHAR,
  VALUE,
} from "./_h1_fields.ts";

export { ChunkedDecoder, type ChunkedDecoderOptions } from "./_h1_chunked.ts";

/** Default head size limit in bytes, as Envoy's `max_request_headers_kb` (60 KiB). */
export const DEFAULT_MAX_HEADER_BYTES = 60 * 1024;
/** Default field count limit, as Envoy's `max_headers_count`. */
export const DEFAULT_MAX_HEADERS = 100;

/** How a message body is delimited: a byte count (0: no body), chunked, or until close. */
export type Framing = number | "chunked" | "close";

/** Limits of a head parse, and where to resume scanning. */
export interface HeadParseOptions {
  /** Most bytes in the head, start line included. @default {60 * 1024} */
  maxHeaderBytes?: number;
  /** Most header fields. @default {100} */
  maxHeaders?: number;
  /**
   * Offset from which the end of the head is searched; pass the previous buffer length minus 2
   * when calling again with more bytes, so that a head arriving byte by byte costs linear time.
   * @default {0}
   */
  scanFrom?: number;
}

/** A parsed request head and what it means for the connection. */
export interface ParsedRequest {
  head: RequestHead;
  /** Bytes of the buffer the head used, leading empty lines included. */
  size: number;
  /** Body framing; CONNECT and requests without CL/TE have 0. */
  framing: number | "chunked";
  /** Whether the connection may carry another request after this one. */
  keepAlive: boolean;
  /** `Expect: 100-continue` on an HTTP/1.1 request. */
  expectContinue: boolean;
  /** CONNECT, or `Connection: upgrade` with an `Upgrade` field: the handler may take the socket. */
  upgrade: boolean;
}

/** A parsed response head and its framing. */
export interface ParsedResponse {
  head: ResponseHead;
  size: number;
  version: "1.0" | "1.1";
  /** Body framing per RFC 9112 §6.3, given the request method. */
  framing: Framing;
  keepAlive: boolean;
}

/** Options of {@link parseResponseHead}. */
export interface ResponseParseOptions extends HeadParseOptions {
  /** The request's method: HEAD responses have no body, CONNECT 2xx start a tunnel. */
  method?: string;
}

const VERSION_RE = /^HTTP\/\d\.\d$/;

/**
 * Parses a request head at the start of `buf`.
 *
 * @param buf Bytes received so far on the connection
 * @param options Limits and the scan offset
 * @returns The head and its framing, or `null` when the head is not complete yet
 * @throws {HttpCodecError} `bad_request` (400), `headers_too_large` (431), `not_implemented`
 *   (501) or `version_not_supported` (505)
 * @example
 * ```ts
 * const r = parseRequestHead(new TextEncoder().encode("GET / HTTP/1.1\r\nhost: a\r\n\r\n"));
 * r?.head.authority; // "a"
 * ```
 */
export function parseRequestHead(
  buf: Uint8Array,
  options: HeadParseOptions = {},
): ParsedRequest | null {
  const section = readSection(buf, options, "bad_request", "headers_too_large");
  if (section === null) return null;
  const { line, fields, f } = section;
  const sp1 = line.indexOf(" ");
  const sp2 = sp1 < 0 ? -1 : line.indexOf(" ", sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || sp2 === sp1 + 1) {
    throw new HttpCodecError("bad_request", "request line", "Not method SP target SP version");
  }
  if (firstInvalid(line, 0, sp1, TCHAR) >= 0) {
    throw new HttpCodecError("bad_request", "request line", "Invalid method");
  }
  if (firstInvalid(line, sp1 + 1, sp2, TARGET) >= 0) {
    throw new HttpCodecError("bad_request", "request target", "Invalid char");
  }
  const version = parseVersion(line.slice(sp2 + 1), "bad_request", "request line");
  const head: RequestHead = {
    method: line.slice(0, sp1),
    path: "",
    authority: "",
    scheme: "http",
    version,
    headers: HeaderMap.fromLowerCase(fields),
  };
  applyTarget(head, line.slice(sp1 + 1, sp2), f);
  const conn = connectionTokens(f.connection);
  return {
    head,
    size: section.end,
    framing: requestFraming(head, f),
    keepAlive: version === "1.1" ? !conn.close : conn.keepAlive && !conn.close,
    expectContinue: version === "1.1" && f.expect?.toLowerCase() === "100-continue",
    upgrade: head.method === "CONNECT" || (conn.upgrade && f.upgrade),
  };
}

/**
 * Parses a response head at the start of `buf`.
 *
 * @param buf Bytes received so far on the connection
 * @param options Limits, scan offset and the request method
 * @returns The head and its framing, or `null` when the head is not complete yet
 * @throws {HttpCodecError} `bad_response` (502) for any malformed or oversized head
 */
export function parseResponseHead(
  buf: Uint8Array,
  options: ResponseParseOptions = {},
): ParsedResponse | null {
  const section = readSection(buf, options, "bad_response", "bad_response");
  if (section === null) return null;
  const { line, fields, f } = section;
  const sp1 = line.indexOf(" ");
  if (sp1 < 0 || line.length - sp1 < 4) {
    throw new HttpCodecError("bad_response", "status line", "Not version SP status");
  }
  const version = parseVersion(line.slice(0, sp1), "bad_response", "status line");
  const code = line.slice(sp1 + 1, sp1 + 4);
  if (!/^[1-5]\d\d$/.test(code) || (line.length > sp1 + 4 && line.charCodeAt(sp1 + 4) !== 0x20)) {
    throw new HttpCodecError(
      "bad_response",
      "status line",
      `Invalid status ${JSON.stringify(code)}`,
    );
  }
  const reason = line.slice(sp1 + 5);
  if (firstInvalid(reason, 0, reason.length, VALUE) >= 0) {
    throw new HttpCodecError("bad_response", "status line", "Invalid char in reason");
  }
  const head: ResponseHead = {
    status: Number(code),
    reason,
    headers: HeaderMap.fromLowerCase(fields),
  };
  const conn = connectionTokens(f.connection);
  const framing = responseFraming(head, options.method ?? "GET", f);
  return {
    head,
    size: section.end,
    version,
    framing,
    keepAlive: framing !== "close" && !conn.close && (version === "1.1" || conn.keepAlive),
  };
}

/** A head cut into its start line and fields, with the fields that decide framing. */
interface Section {
  line: string;
  fields: [string, string][];
  f: FramingFields;
  /** Offset after the blank line. */
  end: number;
}

/** Scans, checks and cuts the head at the start of `buf`, or returns null when incomplete. */
function readSection(
  buf: Uint8Array,
  options: HeadParseOptions,
  bad: HttpCodecErrorKind,
  tooLarge: HttpCodecErrorKind,
): Section | null {
  const rules: FieldRules = {
    bad,
    tooLarge,
    maxFields: options.maxHeaders ?? DEFAULT_MAX_HEADERS,
    maxBytes: options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
    startLine: true,
    section: "header",
  };
  // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
  let start = 0;
  while (start + 1 < buf.length && buf[start] === 13 && buf[start + 1] === 10) start += 2;
  if (start > rules.maxBytes) {
    throw new HttpCodecError(tooLarge, "head", `Over ${rules.maxBytes} bytes`);
  }
  const scanFrom = options.scanFrom ?? 0;
  if (scanFrom > start && !hasBlankLine(buf, scanFrom)) {
    // The bytes before scanFrom were seen by an earlier call; only the limit can change.
    if (buf.length - start > rules.maxBytes) {
      throw new HttpCodecError(tooLarge, "head", `Over ${rules.maxBytes} bytes`);
    }
    return null;
  }
  const end = scanHead(buf, start, rules);
  if (end < 0) return null;
  const text = latin1(buf.subarray(start, end));
  const fields = fieldsOf(text, rules);
  return { line: startLineOf(text), fields, f: framingFields(fields), end };
}

/** Whether an LF at or after `from` is followed by CR LF or LF: the end of a head may be here. */
function hasBlankLine(buf: Uint8Array, from: number): boolean {
  for (let i = buf.indexOf(10, from); i >= 0; i = buf.indexOf(10, i + 1)) {
    if (buf[i + 1] === 10 || (buf[i + 1] === 13 && buf[i + 2] === 10)) return true;
  }
  return false;
}

function parseVersion(v: string, bad: HttpCodecErrorKind, where: string): "1.0" | "1.1" {
  if (v === "HTTP/1.1") return "1.1";
  if (v === "HTTP/1.0") return "1.0";
  if (bad === "bad_request" && VERSION_RE.test(v)) {
    throw new HttpCodecError("version_not_supported", where, `Version ${v}`);
  }
  throw new HttpCodecError(bad, where, `Invalid version ${JSON.stringify(v.slice(0, 16))}`);
}

/** Sets path, authority and scheme from the request-target and Host (RFC 9112 §3.2, §3.3). */
function applyTarget(head: RequestHead, target: string, f: FramingFields): void {
  if (f.hosts > 1 || (head.version === "1.1" && f.hosts === 0)) {
    throw new HttpCodecError("bad_request", "header host", `${f.hosts} Host fields`);
  }
  const host = f.host;
  if (firstInvalid(host, 0, host.length, HOST) >= 0) {
    throw new HttpCodecError("bad_request", "header host", `Invalid host ${JSON.stringify(host)}`);
  }
  head.authority = host;
  if (head.method === "CONNECT") {
    if (!isHostPort(target)) {
      throw new HttpCodecError("bad_request", "request target", "CONNECT needs host:port");
    }
    head.path = target;
    head.authority = target;
  } else if (target.charCodeAt(0) === 0x2f) {
    head.path = target;
  } else if (target === "*") {
    if (head.method !== "OPTIONS") {
      throw new HttpCodecError("bad_request", "request target", "Asterisk form needs OPTIONS");
    }
    head.path = target;
  } else {
    applyAbsolute(head, target);
  }
}

function applyAbsolute(head: RequestHead, target: string): void {
  const m = /^(https?):\/\/([^/?]*)(.*)$/i.exec(target);
  if (m === null) {
    throw new HttpCodecError("bad_request", "request target", "Not origin, absolute or * form");
  }
  const authority = m[2];
  if (authority === "" || firstInvalid(authority, 0, authority.length, HOST) >= 0) {
    // `@` is outside HOST: RFC 9110 §4.2.4 says to treat userinfo as an error.
    throw new HttpCodecError("bad_request", "request target", "Invalid authority");
  }
  // RFC 9112 §3.2.2: the authority of an absolute-form target replaces the Host field.
  head.scheme = m[1].toLowerCase();
  head.authority = authority;
  head.path = m[3] === "" ? "/" : m[3].charCodeAt(0) === 0x3f ? `/${m[3]}` : m[3];
}

/** `host:port` with a port (the authority-form of RFC 9112 §3.2.3). */
function isHostPort(authority: string): boolean {
  const colon = authority.lastIndexOf(":");
  const port = authority.slice(colon + 1);
  const host = authority.slice(0, colon);
  const bracketed = host.startsWith("[") === host.endsWith("]");
  return colon > 0 && /^\d{1,5}$/.test(port) && Number(port) <= 65535 && bracketed &&
    firstInvalid(host, 0, host.length, HOST) < 0;
}
