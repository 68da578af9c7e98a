/**
 * String matching of AuthorizationPolicy values, as Istio compiles them to Envoy matchers
 * (`matcher/string.go` `StringMatcherWithPrefix`, `matcher/header.go`): `abc` exact, `abc*` prefix,
 * `*abc` suffix, and `*` alone "present and non-empty" (regex `.+`). Only a leading or trailing
 * `*` is special. A header or host `*` is Envoy `present_match`: present, even if empty.
 *
 * A field's values are ORed, so a whole value list compiles into one test (a set for exact
 * values, plain loops for prefixes and suffixes): one call per field on the request path.
 */

/** A test on one string value. */
export type StringTest = (value: string) => boolean;

/**
 * The OR of Envoy `StringMatcher`s Istio builds for values (`StringMatcherWithPrefix`).
 *
 * @param values The policy values
 * @param prefix Prepended to exact and prefix patterns (`spiffe://` for principals); a suffix
 *   pattern becomes regex `<prefix>.*<suffix>`, so it may not overlap the prefix
 */
export function stringSetTest(values: readonly string[], prefix = ""): StringTest {
  let nonEmpty = false;
  const exact = new Set<string>();
  const starts: string[] = [];
  const ends: string[] = [];
  for (const value of values) {
    if (value === "*") nonEmpty = true;
    else if (value.startsWith("*")) ends.push(value.slice(1));
    else if (value.endsWith("*")) starts.push(prefix + value.slice(0, -1));
    else exact.add(prefix + value);
  }
  if (nonEmpty) return nonEmptyString;
  if (starts.length === 0 && ends.length === 0) {
    if (exact.size === 1) {
      const only = [...exact][0];
      return (s) => s === only;
    }
    return (s) => exact.has(s);
  }
  const min = prefix.length;
  return (s) => {
    if (exact.has(s)) return true;
    for (let i = 0; i < starts.length; i++) if (s.startsWith(starts[i])) return true;
    if (ends.length === 0 || (min > 0 && !s.startsWith(prefix))) return false;
    for (let i = 0; i < ends.length; i++) {
      if (s.length >= min + ends[i].length && s.endsWith(ends[i])) return true;
    }
    return false;
  };
}

/**
 * The OR of Envoy `HeaderMatcher`s Istio builds for `request.headers[...]`, `methods` and `hosts`
 * (hosts pass lower-cased values and text, which is Envoy's `ignore_case`): `*` is present-match.
 *
 * @returns A test on the header value, undefined when the header is absent
 */
export function headerSetTest(values: readonly string[]): (v: string | undefined) => boolean {
  if (values.includes("*")) return isPresent;
  const test = stringSetTest(values);
  return (v) => v !== undefined && test(v);
}

/**
 * Envoy's list-or-scalar metadata match Istio uses for JWT claims, audiences and presenter: a
 * string claim matches if the test accepts it, a list claim if the test accepts a string element.
 */
export function claimMatches(claim: unknown, test: StringTest): boolean {
  if (typeof claim === "string") return test(claim);
  if (!Array.isArray(claim)) return false;
  for (const item of claim) {
    if (typeof item === "string" && test(item)) return true;
  }
  return false;
}

/** Regex-escapes literal text. */
export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function nonEmptyString(s: string): boolean {
  return s.length > 0;
}

function isPresent(v: string | undefined): boolean {
  return v !== undefined;
}
