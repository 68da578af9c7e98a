/**
 * Finding JWTs in a request and taking them out again, as Envoy's jwt_authn `extractor.cc` does:
 * headers first (every value of a header; with a prefix, the prefix may sit anywhere and a value
 * without it is skipped), then query parameters (first value, percent-decoded), then cookies
 * (first value, surrounding quotes dropped).
 */
import type { HeaderMap } from "../http/types.ts";
import type { JwtRule, LocationRules, TokenLocation } from "./request_authn.ts";

/** A token and the rules whose locations found it. */
export interface FoundToken {
  readonly token: string;
  readonly location: TokenLocation;
  readonly rules: readonly JwtRule[];
}

const JWT_CHARS = /[A-Za-z0-9_.-]/;

/** Every token present in the request, in extraction order. */
export function extractTokens(
  locations: readonly LocationRules[],
  headers: HeaderMap,
  path: string,
): FoundToken[] {
  const found: FoundToken[] = [];
  let params: Map<string, string> | undefined;
  let cookies: Map<string, string> | undefined;
  for (const { location, rules } of locations) {
    if (location.kind === "header") {
      for (const value of headers.getAll(location.name)) {
        const token = fromHeaderValue(value, location.prefix);
        if (token !== undefined) found.push({ token, location, rules });
      }
      continue;
    }
    const source = location.kind === "param"
      ? (params ??= queryParams(path))
      : (cookies ??= cookieValues(headers));
    const token = source.get(location.name);
    if (token !== undefined) found.push({ token, location, rules });
  }
  return found;
}

/**
 * The request path without the query parameter a token came from (Envoy removes every value of
 * that parameter; the other parameters keep their text).
 */
export function removeParam(path: string, name: string): string {
  const q = path.indexOf("?");
  if (q < 0) return path;
  const kept = path.slice(q + 1).split("&").filter((pair) => {
    const eq = pair.indexOf("=");
    return decode(eq < 0 ? pair : pair.slice(0, eq)) !== name;
  });
  return kept.length === 0 ? path.slice(0, q) : `${path.slice(0, q)}?${kept.join("&")}`;
}

/** `extractJWT`: from the first base64url-or-dot character after the prefix to the end. */
function fromHeaderValue(value: string, prefix: string): string | undefined {
  if (prefix === "") return value;
  const at = value.indexOf(prefix);
  if (at < 0) return undefined;
  for (let i = at + prefix.length; i < value.length; i++) {
    if (JWT_CHARS.test(value[i])) return value.slice(i);
  }
  return value;
}

/** First value of each query parameter, percent-decoded. */
function queryParams(path: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = path.indexOf("?");
  if (q < 0) return out;
  const hash = path.indexOf("#", q);
  for (const pair of path.slice(q + 1, hash < 0 ? undefined : hash).split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const key = decode(eq < 0 ? pair : pair.slice(0, eq));
    if (!out.has(key)) out.set(key, eq < 0 ? "" : decode(pair.slice(eq + 1)));
  }
  return out;
}

/** First value of each cookie over every `cookie` field. */
function cookieValues(headers: HeaderMap): Map<string, string> {
  const out = new Map<string, string>();
  for (const field of headers.getAll("cookie")) {
    for (const part of field.split(";")) {
      const item = part.trim();
      const eq = item.indexOf("=");
      if (eq < 0) continue;
      let value = item.slice(eq + 1);
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
        value = value.slice(1, -1);
      }
      const key = item.slice(0, eq);
      if (!out.has(key)) out.set(key, value);
    }
  }
  return out;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
