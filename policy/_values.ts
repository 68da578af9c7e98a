/** Parsing of the typed values in AuthorizationPolicy fields, shared by validation and compile. */
import { parseCidr } from "./_cidr.ts";

/** A port value (`ports`, `destination.port`): decimal 0..65535, as Go's `ParseUint` reads it. */
export function parsePort(value: string): number | undefined {
  if (!/^[0-9]+$/.test(value)) return undefined;
  const port = Number(value);
  return port <= 65535 ? port : undefined;
}

/** Why a port value is invalid, or undefined. */
export function portError(value: string): string | undefined {
  return parsePort(value) === undefined ? `bad port (${value})` : undefined;
}

/** Why an address or CIDR value is invalid, or undefined. */
export function cidrError(value: string): string | undefined {
  if (parseCidr(value)) return undefined;
  return value.includes("/") ? `bad CIDR range (${value})` : `bad IP address (${value})`;
}

/** The name inside `a[name]`, as istiod's `extractNameInBrackets` reads a `when` key suffix. */
export function nameInBrackets(suffix: string): string | undefined {
  return suffix.startsWith("[") && suffix.endsWith("]") && suffix.length >= 2
    ? suffix.slice(1, -1)
    : undefined;
}

/** The claim path of `request.auth.claims[a][b]` (istiod's `extractNameInNestedBrackets`). */
export function claimPath(suffix: string): string[] | undefined {
  const names: string[] = [];
  let at = 0;
  while (at < suffix.length) {
    const end = closingBracket(suffix, at);
    if (end < 0) {
      const whole = nameInBrackets(suffix);
      return whole === undefined ? undefined : [whole];
    }
    names.push(suffix.slice(at + 1, end));
    at = end + 1;
  }
  return names.length > 0 ? names : undefined;
}

function closingBracket(s: string, begin: number): number {
  if (s[begin] !== "[") return -1;
  for (let i = begin + 1; i < s.length; i++) {
    if (s[i] === "[") return -1;
    if (s[i] === "]") return i;
  }
  return -1;
}
