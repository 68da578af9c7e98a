/**
 * The framing decisions of RFC 9112 §6 from a head's fields: Content-Length, Transfer-Encoding and
 * Connection, gathered in one pass over the fields.
 */
import { HttpCodecError, type HttpCodecErrorKind } from "./errors.ts";
import type { Framing } from "./h1_parse.ts";
import type { RequestHead, ResponseHead } from "./types.ts";
import { listTokens } from "./_h1_fields.ts";

/** The fields that decide framing and routing, gathered in one pass. */
export interface FramingFields {
  hosts: number;
  host: string;
  contentLength?: string;
  transferEncoding?: string;
  connection?: string;
  expect?: string;
  upgrade: boolean;
}

/** Gathers the framing fields; repeated list fields are joined with `,` (RFC 9110 §5.3). */
export function framingFields(fields: readonly [string, string][]): FramingFields {
  const f: FramingFields = { hosts: 0, host: "", upgrade: false };
  for (const [name, value] of fields) {
    switch (name) {
      case "host":
        f.hosts++;
        f.host = value;
        break;
      case "content-length":
        f.contentLength = joined(f.contentLength, value);
        break;
      case "transfer-encoding":
        f.transferEncoding = joined(f.transferEncoding, value);
        break;
      case "connection":
        f.connection = joined(f.connection, value);
        break;
      case "expect":
        f.expect = value;
        break;
      case "upgrade":
        f.upgrade = true;
    }
  }
  return f;
}

function joined(prev: string | undefined, value: string): string {
  return prev === undefined ? value : `${prev},${value}`;
}

/** `close`, `keep-alive` and `upgrade` tokens of the Connection field. */
export function connectionTokens(value: string | undefined) {
  if (value === undefined) return NO_TOKENS;
  const tokens = listTokens(value);
  return {
    close: tokens.includes("close"),
    keepAlive: tokens.includes("keep-alive"),
    upgrade: tokens.includes("upgrade"),
  };
}

const NO_TOKENS = Object.freeze({ close: false, keepAlive: false, upgrade: false });

/** Request body framing, RFC 9112 §6.1–§6.3. */
export function requestFraming(head: RequestHead, f: FramingFields): number | "chunked" {
  const te = f.transferEncoding;
  const cl = contentLength(f.contentLength, "bad_request");
  if (head.method === "CONNECT" && (te !== undefined || (cl ?? 0) > 0)) {
    throw new HttpCodecError("bad_request", "CONNECT", "A CONNECT request has no content");
  }
  if (te === undefined) return cl ?? 0;
  if (cl !== undefined) {
    throw new HttpCodecError("bad_request", "header transfer-encoding", "Both CL and TE");
  }
  if (head.version === "1.0") {
    // RFC 9112 §6.1: TE in HTTP/1.0 MUST be treated as faulty framing.
    throw new HttpCodecError("bad_request", "header transfer-encoding", "TE in HTTP/1.0");
  }
  return chunkedOnly(te, "bad_request", "not_implemented");
}

/** Response body framing, RFC 9112 §6.3 (items 1–7). */
export function responseFraming(head: ResponseHead, method: string, f: FramingFields): Framing {
  const s = head.status;
  if (method === "HEAD" || s < 200 || s === 204 || s === 304) return 0;
  if (method === "CONNECT" && s < 300) return 0;
  const te = f.transferEncoding;
  const cl = contentLength(f.contentLength, "bad_response");
  if (te === undefined) return cl ?? "close";
  if (cl !== undefined) {
    // §6.3 item 3: "ought to be handled as an error"; a proxy must not pick one.
    throw new HttpCodecError("bad_response", "header transfer-encoding", "Both CL and TE");
  }
  return chunkedOnly(te, "bad_response", "bad_response");
}

function chunkedOnly(
  te: string,
  bad: HttpCodecErrorKind,
  unknown: HttpCodecErrorKind,
): "chunked" {
  const codings = listTokens(te);
  const chunked = codings.filter((c) => c === "chunked").length;
  if (codings.at(-1) !== "chunked") {
    // §6.3 item 4: a request whose final coding is not chunked MUST get 400.
    throw new HttpCodecError(bad, "header transfer-encoding", `Final coding is not chunked: ${te}`);
  }
  if (chunked > 1) {
    // §7: chunked MUST NOT be applied more than once.
    throw new HttpCodecError(bad, "header transfer-encoding", `Chunked twice: ${te}`);
  }
  if (codings.length > 1) {
    throw new HttpCodecError(unknown, "header transfer-encoding", `Unsupported coding: ${te}`);
  }
  return "chunked";
}

/** The Content-Length, undefined when absent. Identical repeats are one value (RFC 9110 §8.6). */
function contentLength(value: string | undefined, bad: HttpCodecErrorKind): number | undefined {
  if (value === undefined) return undefined;
  let length = -1;
  for (const part of value.split(",")) {
    const v = part.trim();
    if (!/^\d{1,15}$/.test(v)) {
      throw new HttpCodecError(bad, "header content-length", `Invalid ${JSON.stringify(value)}`);
    }
    if (length >= 0 && Number(v) !== length) {
      throw new HttpCodecError(bad, "header content-length", `Differing values ${value}`);
    }
    length = Number(v);
  }
  return length;
}
