/**
 * Byte classes and field-line parsing shared by the head parsers and the chunked trailer parser.
 *
 * Invariants:
 * - Heads are decoded once to a Latin-1 string (one char per byte), then cut by `indexOf`; every
 *   char is checked against a 256-entry table, so bytes 0x80–0xFF (obs-text) survive a round trip.
 * - Lines end with CR LF; a bare LF or CR anywhere is an error (RFC 9112 §2.2 allows accepting a
 *   bare LF, we refuse: a proxy that reads lines differently from its upstream invites smuggling).
 * - The scan keeps line bounds in module scratch space: {@link fieldsOf} must run right after
 *   {@link scanHead}, with no other scan in between (both are synchronous).
 */
import { HttpCodecError, type HttpCodecErrorKind } from "./errors.ts";

function table(test: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = test(c) ? 1 : 0;
  return t;
}

const ALPHA_DIGIT = (c: number) =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

/** `tchar` of RFC 9110 §5.6.2 (field names, methods): 1, or 2 for an upper-case letter. */
export const TCHAR: Uint8Array = table((c) => ALPHA_DIGIT(c) || "!#$%&'*+-.^_`|~".includes(chr(c)))
  .map((ok, c) => ok && c >= 0x41 && c <= 0x5a ? 2 : ok);

/** Field-value chars of RFC 9110 §5.5: VCHAR, obs-text, SP and HTAB; no CTL, no DEL. */
export const VALUE: Uint8Array = table((c) => c === 0x09 || (c >= 0x20 && c !== 0x7f));

/**
 * Request-target chars: visible ASCII except `#` (a target has no fragment). We accept the few
 * printable chars RFC 3986 wants escaped (`"`, `{`, `|`, ...), as Envoy and llhttp do, since real
 * clients send them unescaped; CTLs, SP, DEL and non-ASCII bytes are refused.
 */
export const TARGET: Uint8Array = table((c) => c > 0x20 && c < 0x7f && c !== 0x23);

/** `uri-host [":" port]` chars of a Host value or an authority (RFC 3986 §3.2.2). */
export const HOST: Uint8Array = table((c) =>
  ALPHA_DIGIT(c) || "-._~!$&'()*+,;=:[]%".includes(chr(c))
);

function chr(c: number): string {
  return String.fromCharCode(c);
}

const utf8 = new TextDecoder();

/**
 * Decodes bytes as Latin-1, one char per byte. ASCII (the common case) goes through the native
 * decoder; a result with the same length and no U+FFFD proves every byte was ASCII.
 */
export function latin1(bytes: Uint8Array): string {
  const s = utf8.decode(bytes);
  if (s.length === bytes.length && s.indexOf("\uFFFD") === -1) return s;
  let out = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return out;
}

/** Index of the first char of `s[from, to)` not in `t`, or -1. */
export function firstInvalid(s: string, from: number, to: number, t: Uint8Array): number {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || t[c] === 0) return i;
  }
  return -1;
}

/** Limits and the error kind for one head or trailer section. */
export interface FieldRules {
  /** Error kind for a malformed line: `bad_request` or `bad_response`. */
  readonly bad: HttpCodecErrorKind;
  /** Error kind for a section over its limits: `headers_too_large` or `bad_response`. */
  readonly tooLarge: HttpCodecErrorKind;
  /** Most fields accepted. */
  readonly maxFields: number;
  /** Most bytes in the section, start line included. */
  readonly maxBytes: number;
  /** Whether the section opens with a request or status line (heads) or not (trailers). */
  readonly startLine: boolean;
  /** `header` or `trailer`, for error locations. */
  readonly section: string;
}

// Byte classes of the head scan: 0 plain, 1 LF, 2 CR, 3 colon, 4 forbidden (CTL but HTAB, DEL).
const CLASS = table((c) => c === 0x09 || (c >= 0x20 && c !== 0x7f)).map((ok, c) =>
  c === 10 ? 1 : c === 13 ? 2 : c === 0x3a ? 3 : ok ? 0 : 4
);

/** Line bounds found by the last {@link scanHead}, relative to its `start`: [start, colon, cr]. */
let lines = new Int32Array(3 * 128);
let lineCount = 0;

/**
 * Finds the end of a head (or trailer section) and checks its bytes in one pass: every line ends
 * with CR LF, no byte is a CTL (HTAB aside) or DEL, and the limits hold. Line bounds are kept for
 * {@link fieldsOf}.
 *
 * @returns The offset after the blank line, or -1 when more bytes are needed
 * @throws {HttpCodecError} On a bare CR or LF, a forbidden byte, or a section over its limits
 */
export function scanHead(buf: Uint8Array, start: number, rules: FieldRules): number {
  const n = Math.min(buf.length, start + rules.maxBytes + 1);
  const maxLines = rules.maxFields + (rules.startLine ? 1 : 0);
  if (lines.length < 3 * (maxLines + 1)) lines = new Int32Array(3 * (maxLines + 1));
  let lineStart = start, colon = -1;
  lineCount = 0;
  for (let i = start; i < n; i++) {
    const k = CLASS[buf[i]];
    if (k === 0) continue;
    if (k === 3) {
      if (colon < 0) colon = i;
    } else if (k === 2) {
      if (i + 1 < buf.length && buf[i + 1] !== 10) {
        throw new HttpCodecError(rules.bad, lineName(rules), "Bare CR");
      }
    } else if (k === 1) {
      if (i === lineStart || buf[i - 1] !== 13) {
        throw new HttpCodecError(rules.bad, lineName(rules), "Line ends with a bare LF");
      }
      if (i - 1 === lineStart) return i + 1;
      if (lineCount === maxLines) {
        throw new HttpCodecError(
          rules.tooLarge,
          `${rules.section}s`,
          `Over ${rules.maxFields} fields`,
        );
      }
      const at = 3 * lineCount++;
      lines[at] = lineStart - start;
      lines[at + 1] = colon - start;
      lines[at + 2] = i - 1 - start;
      lineStart = i + 1;
      colon = -1;
    } else {
      throw new HttpCodecError(rules.bad, lineName(rules), `Forbidden byte 0x${hex(buf[i])}`);
    }
  }
  if (n - start > rules.maxBytes) {
    throw new HttpCodecError(rules.tooLarge, `${rules.section}s`, `Over ${rules.maxBytes} bytes`);
  }
  return -1;
}

/** `request line`, `header line 3`: the line the scan is on. */
function lineName(rules: FieldRules): string {
  const l = lineCount + (rules.startLine ? 0 : 1);
  return l === 0 ? "start line" : `${rules.section} line ${l}`;
}

function hex(c: number): string {
  return c.toString(16).padStart(2, "0");
}

/** The start line found by the last {@link scanHead}, without its CR LF. */
export function startLineOf(s: string): string {
  return s.slice(0, lines[2]);
}

/**
 * Cuts the fields out of the section decoded from the bytes of the last {@link scanHead}.
 *
 * @param s The section as Latin-1 text, from the scan's `start`
 * @returns `[name, value]` pairs with lower-case names and trimmed values
 * @throws {HttpCodecError} On obs-fold, a missing colon, whitespace before it, a bad name
 */
export function fieldsOf(s: string, rules: FieldRules): [string, string][] {
  const fields: [string, string][] = [];
  for (let l = rules.startLine ? 1 : 0; l < lineCount; l++) {
    const pos = lines[3 * l], colon = lines[3 * l + 1], cr = lines[3 * l + 2];
    const first = s.charCodeAt(pos);
    if (first === 0x20 || first === 0x09) {
      // RFC 9112 §5.2: a server MAY reject obs-fold with 400; a proxy must not pass it on.
      throw new HttpCodecError(rules.bad, `${rules.section} line ${l}`, "Obsolete line folding");
    }
    if (colon < 0 || colon > cr) {
      throw new HttpCodecError(rules.bad, `${rules.section} line ${l}`, "No colon");
    }
    // One pass checks the name and tells whether it needs lower-casing (TCHAR is 2 for A-Z).
    let upper = false, bad = -1;
    for (let i = pos; i < colon; i++) {
      const t = TCHAR[s.charCodeAt(i)];
      if (t === 2) upper = true;
      else if (t !== 1) {
        bad = i;
        break;
      }
    }
    if (colon === pos || bad >= 0) throw badName(s, pos, colon, bad, rules, l);
    let vs = colon + 1, ve = cr;
    while (vs < ve && (s.charCodeAt(vs) === 0x20 || s.charCodeAt(vs) === 0x09)) vs++;
    while (ve > vs && (s.charCodeAt(ve - 1) === 0x20 || s.charCodeAt(ve - 1) === 0x09)) ve--;
    const name = s.slice(pos, colon);
    fields.push([upper ? name.toLowerCase() : name, s.slice(vs, ve)]);
  }
  return fields;
}

function badName(s: string, pos: number, colon: number, bad: number, rules: FieldRules, l: number) {
  const name = JSON.stringify(s.slice(pos, colon));
  const c = s.charCodeAt(bad);
  // RFC 9112 §5.1: whitespace between the name and the colon MUST be rejected with 400.
  const detail = colon === pos
    ? "Empty field name"
    : c === 0x20 || c === 0x09
    ? `Whitespace before colon in ${name}`
    : `Invalid char in name ${name}`;
  return new HttpCodecError(rules.bad, `${rules.section} line ${l}`, detail);
}

/**
 * Splits a comma-separated list value into lower-case trimmed elements, dropping empty ones
 * (RFC 9110 §5.6.1).
 */
export function listTokens(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(",")) {
    const t = part.trim().toLowerCase();
    if (t !== "") out.push(t);
  }
  return out;
}
