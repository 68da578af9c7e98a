/**
 * Request path normalization as Istio configures Envoy (MeshConfig
 * `pathNormalization.normalization`, istio.io "Authorization Policy Normalization"), and the
 * `{*}` / `{**}` path templates of AuthorizationPolicy `paths` (Envoy `uri_template`).
 *
 * Invariants:
 * - The normalized path is what authorization, routing and the backend all see; the query string
 *   is kept for the backend but never compared by `paths`.
 * - Decoding happens once: `%252e` becomes `%2e`, never `.`.
 */
import { escapeRegex } from "./_match.ts";

/** MeshConfig `pathNormalization.normalization`; `DEFAULT` is `BASE`. */
export type PathNormalization = "NONE" | "BASE" | "MERGE_SLASHES" | "DECODE_AND_MERGE_SLASHES";

/** Path characters a template operator may match (RFC 3986 pchar, Envoy `uri_template`). */
const PCHAR = "[a-zA-Z0-9\\-._~%!$&'()+,;:@=]";
const VALID_LITERAL = /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/;
const ESCAPE = /%([0-9A-Fa-f]{2})/g;
/** Characters that need no normalization work at all under BASE. */
const NEEDS_WORK = /[%\\.#\0]/;

/**
 * Normalizes a request target's path part, keeping its query.
 *
 * @example
 * ```ts
 * normalizePath("/a/./b/../%63?x=1"); // "/a/c?x=1"
 * normalizePath("/a%00b"); // undefined: Envoy answers 400
 * ```
 * @param target Origin-form request target, such as `/a/b?q=1`
 * @param mode The mesh's normalization option
 * @default mode "BASE"
 * @returns The normalized target, or undefined when the request must be rejected with 400
 */
export function normalizePath(
  target: string,
  mode: PathNormalization = "BASE",
): string | undefined {
  const q = target.indexOf("?");
  let path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q);
  if (/%00/.test(path) || path.includes("\0")) return undefined;
  if (mode === "NONE" || !path.startsWith("/")) return target;
  const hash = path.indexOf("#");
  if (hash >= 0) path = path.slice(0, hash);
  if (mode === "DECODE_AND_MERGE_SLASHES") path = path.replace(/%2f/gi, "/").replace(/%5c/gi, "\\");
  if (NEEDS_WORK.test(path)) {
    path = removeDotSegments(decodeUnreserved(path).replaceAll("\\", "/"));
  }
  if (mode === "MERGE_SLASHES" || mode === "DECODE_AND_MERGE_SLASHES") {
    path = path.replace(/\/{2,}/g, "/");
  }
  return path + query;
}

/** The path without query string and fragment, as Envoy's `url_path` matcher compares it. */
export function urlPath(target: string): string {
  let end = target.length;
  const q = target.indexOf("?");
  if (q >= 0) end = q;
  const h = target.indexOf("#");
  if (h >= 0 && h < end) end = h;
  return end === target.length ? target : target.slice(0, end);
}

/** Whether an AuthorizationPolicy path value is a template (`{*}` or `{**}`). */
export function isPathTemplate(value: string): boolean {
  return value.includes("{*}") || value.includes("{**}");
}

/**
 * Checks a path value the way Istio's validation does (`CheckValidPathTemplate`): `{**}` must be
 * the last operator, `{` and `}` only inside operators, and with a template every other segment
 * must be valid path characters.
 *
 * @returns Why the value is invalid, or undefined when it is fine
 */
export function pathTemplateError(value: string): string | undefined {
  const template = isPathTemplate(value);
  let seenAny = false;
  for (const glob of value.replace(/^\/+|\/+$/g, "").split("/")) {
    if ((glob === "{*}" || glob === "{**}") && seenAny) return "{**} is not the last operator";
    if (glob === "{*}") continue;
    if (glob === "{**}") {
      seenAny = true;
      continue;
    }
    if (/[{}]/.test(glob)) return "it contains '{' or '}' beyond a supported path template";
    if (template && !VALID_LITERAL.test(glob)) {
      return `it contains segment "${glob}" with invalid characters`;
    }
  }
  return undefined;
}

/**
 * Compiles a path template: `{*}` is one non-empty segment, `{**}` any number of characters
 * including `/`. The whole path must match.
 *
 * @param value A template that passed {@link pathTemplateError}
 * @returns A test on the path without its query
 */
export function compilePathTemplate(value: string): (path: string) => boolean {
  const source = value.split(/(\{\*\*\}|\{\*\})/).map((part) => {
    if (part === "{**}") return `${PCHAR.slice(0, -1)}/]*`;
    if (part === "{*}") return `${PCHAR}+`;
    return escapeRegex(part);
  }).join("");
  const regex = new RegExp(`^${source}$`);
  return (path) => regex.test(path);
}

/** Decodes `%XX` once where XX is an unreserved character (RFC 3986 §2.3). */
function decodeUnreserved(path: string): string {
  if (!path.includes("%")) return path;
  return path.replace(ESCAPE, (escape, hex: string) => {
    const c = parseInt(hex, 16);
    const unreserved = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
    return unreserved ? String.fromCharCode(c) : escape;
  });
}

/** RFC 3986 §5.2.4 on an absolute path; `..` above the root stays at the root. */
function removeDotSegments(path: string): string {
  if (!path.includes(".")) return path;
  const segments = path.split("/");
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i];
    const last = i === segments.length - 1;
    if (s === ".") {
      if (last) out.push("");
    } else if (s === "..") {
      out.pop();
      if (last) out.push("");
    } else {
      out.push(s);
    }
  }
  return "/" + out.join("/");
}
