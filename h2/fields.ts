/**
 * Header field rules of HTTP/2 (RFC 9113 §8.2, §8.3): turning caller-given fields into a block we
 * may send, and checking a received block.
 *
 * Invariants:
 * - Field names on the wire are lower-case tokens; values carry no NUL, CR or LF and no leading or
 *   trailing whitespace (§8.2.1). Connection-specific fields never pass, and `te` only as
 *   `trailers` (§8.2.2).
 * - A request is checked the same way whichever side made it: `request()` throws for what the
 *   server would reset with PROTOCOL_ERROR (§8.1.1).
 */

/** Header fields as received: lower-case names; repeated fields become arrays. */
export type H2Headers = Record<string, string | string[]>;

/**
 * Header fields to send: an object (a repeated field as an array; `undefined` is skipped), or
 * `[name, value]` pairs in order (an array, or anything iterable such as a header map).
 */
export type OutgoingHeaders =
  | Readonly<Record<string, string | readonly string[] | undefined>>
  | Iterable<readonly [string, string]>;

/** Which header block is being checked. */
export type BlockKind = "request" | "response" | "trailers";

/** HTTP/2 forbids these fields (RFC 9113 §8.2.2). */
export const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\0\r\n]|[^\0-\xff]|^[ \t]|[ \t]$/;
/** RFC 3986 §3.1 scheme. */
const SCHEME = /^[A-Za-z][A-Za-z0-9+\-.]*$/;
/** absolute-path [ "?" query ] (RFC 9113 §8.3.1): no controls, space or DEL; obs-text passes. */
const PATH = /^[^\0-\x20\x7f]+$/;
/** RFC 3986 authority without userinfo: reg-name or IP literal, optional port. */
const AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=%:[\]]+$/;
const REQUEST_PSEUDO = new Set([":method", ":scheme", ":authority", ":path"]);

/**
 * Appends caller-given fields after pseudo-headers: names lower-cased and checked.
 *
 * @param out The block being built
 * @param headers Regular fields only
 * @throws TypeError for a name or value HTTP/2 cannot carry, or a connection-specific field
 */
export function appendFields(out: [string, string][], headers: OutgoingHeaders): void {
  for (const [key, v] of entriesOf(headers)) {
    const name = key.toLowerCase();
    if (!TOKEN.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(key)}`);
    if (BAD_VALUE.test(v)) throw new TypeError(`invalid value for header ${name}`);
    if (CONNECTION_SPECIFIC.has(name) || (name === "te" && v !== "trailers")) {
      throw new TypeError(`header ${name} is not allowed in HTTP/2`);
    }
    out.push([name, v]);
  }
}

/**
 * A request block to send: the pseudo-headers first, in the order given, then the fields.
 *
 * @param headers Pseudo-headers (`:method`, ...) and fields, mixed
 * @returns The block, not yet checked as a request (see {@link checkFields})
 * @throws TypeError as {@link appendFields} does
 */
export function requestFields(headers: OutgoingHeaders): [string, string][] {
  const pseudo: [string, string][] = [];
  const regular: [string, string][] = [];
  for (const [name, value] of entriesOf(headers)) {
    if (name.charCodeAt(0) === 0x3a) pseudo.push([name, value]);
    else regular.push([name, value]);
  }
  appendFields(pseudo, regular);
  return pseudo;
}

/**
 * Checks a received header block (RFC 9113 §8.1–8.5) and turns it into an object.
 *
 * @param fields The decoded block, in order
 * @param kind What the block is
 * @returns The headers, or a string saying why the block is malformed
 */
export function checkFields(
  fields: readonly (readonly [string, string])[],
  kind: BlockKind,
): H2Headers | string {
  const out: H2Headers = Object.create(null);
  let regular = false;
  for (const [name, value] of fields) {
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) return `pseudo-header ${name} after a regular field`;
      if (kind === "trailers") return `pseudo-header ${name} in trailers`;
      if (kind === "request" ? !REQUEST_PSEUDO.has(name) : name !== ":status") {
        return `pseudo-header ${name} not allowed in a ${kind}`;
      }
      if (name in out) return `duplicate ${name}`;
      if (BAD_VALUE.test(value)) return `invalid value of ${name}`;
      out[name] = value;
      continue;
    }
    regular = true;
    const why = checkRegular(name, value, out);
    if (why) return why;
  }
  if (kind === "request") return checkRequest(out) ?? out;
  if (kind === "response") {
    const status = out[":status"];
    if (typeof status !== "string" || !/^[1-9][0-9]{2}$/.test(status)) return "bad :status";
  }
  return out;
}

/**
 * The announced content length of a checked block (RFC 9113 §8.1.1), if it has one.
 *
 * @param headers A block that passed {@link checkFields}
 * @returns The length, or undefined when the block has no `content-length`
 */
export function contentLengthOf(headers: H2Headers): number | undefined {
  const v = headers["content-length"];
  return typeof v === "string" ? Number(v) : undefined;
}

/** Checks one regular field and adds it to `out`; returns why it is malformed, if it is. */
function checkRegular(name: string, value: string, out: H2Headers): string | undefined {
  if (!TOKEN.test(name)) return `invalid field name ${JSON.stringify(name)}`;
  if (BAD_VALUE.test(value)) return `invalid value of field ${name}`;
  if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
  if (name === "te" && value !== "trailers") return "te other than trailers";
  const prev = out[name];
  if (name === "content-length") {
    // One decimal value: a second one, even equal, is how lengths get smuggled past a proxy.
    if (prev !== undefined) return "repeated content-length";
    if (!/^[0-9]{1,15}$/.test(value)) return "invalid content-length";
  }
  if (prev === undefined) out[name] = value;
  else if (name === "cookie") out[name] = `${prev}; ${value}`;
  else if (Array.isArray(prev)) prev.push(value);
  else out[name] = [prev, value];
  return undefined;
}

/** The request pseudo-header rules (RFC 9113 §8.3.1, §8.5); returns why they are broken. */
function checkRequest(h: H2Headers): string | undefined {
  const method = h[":method"] as string | undefined;
  if (method === undefined || method === "") return "missing :method";
  if (!METHOD.test(method)) return "invalid :method";
  const authority = h[":authority"] as string | undefined;
  if (authority !== undefined && !AUTHORITY.test(authority)) {
    // Also refuses an empty value and userinfo ("user@host"), which §8.3.1 forbids.
    return "invalid :authority";
  }
  if (method === "CONNECT") {
    if (authority === undefined) return "CONNECT without :authority";
    if (":scheme" in h || ":path" in h) return "CONNECT with :scheme or :path";
    return undefined;
  }
  const scheme = h[":scheme"] as string | undefined;
  const path = h[":path"] as string | undefined;
  if (!scheme || !path) return `${method} without :scheme and :path`;
  if (!SCHEME.test(scheme)) return "invalid :scheme";
  if (!PATH.test(path)) return "invalid :path";
  const web = scheme === "http" || scheme === "https";
  if (web && path[0] !== "/" && !(path === "*" && method === "OPTIONS")) {
    return "a :path of http(s) starts with / (or is * for OPTIONS)";
  }
  // §8.3.1: a host field naming another entity than :authority makes the request malformed.
  const host = h.host;
  if (
    host !== undefined && authority !== undefined &&
    (typeof host !== "string" || host.toLowerCase() !== authority.toLowerCase())
  ) {
    return "host differs from :authority";
  }
  return undefined;
}

/** The `[name, value]` pairs of either form of {@link OutgoingHeaders}. */
function* entriesOf(headers: OutgoingHeaders): Iterable<readonly [string, string]> {
  if (Symbol.iterator in headers) {
    for (const [name, value] of headers as Iterable<readonly [string, string]>) {
      yield [name, String(value)];
    }
    return;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  for (const name in record) {
    const value = record[name];
    if (value === undefined) continue;
    if (typeof value === "string") yield [name, value];
    else if (Array.isArray(value)) { for (const v of value) yield [name, String(v)]; }
    else yield [name, String(value)];
  }
}
