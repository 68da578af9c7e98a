/**
 * Regexes of RegularExpression matches. Istio hands them to Envoy's `safe_regex`, which is Google
 * RE2 with a **full** match, so we compile them as JS `RegExp` anchored `^(?:…)$`.
 *
 * RE2 and JS agree on the common syntax (classes, `\d \w \s \b`, `{m,n}`, lazy quantifiers,
 * `(?:…)`, `(?<name>…)`, `(?i:…)`). What does not carry over is refused, so a pattern never means
 * something else here than in Envoy:
 * - JS-only syntax, which RE2 rejects: lookahead and lookbehind (`(?=` `(?!` `(?<=` `(?<!`),
 *   backreferences (`\1`…`\9`, `\k<name>`).
 * - RE2-only syntax, which JS would read differently or reject: `(?P<name>…)` and `(?P=name)`,
 *   flag groups such as `(?s)` (a leading `(?i)` alone is accepted and becomes the `i` flag),
 *   `\A`, `\z`, `\Q…\E`, `\C`, `\x{…}`, Unicode classes `\pL` / `\p{…}` / `\P…`, and POSIX
 *   classes `[[:alpha:]]`.
 */

/** A compiled regex, or the reason it is refused. */
export type RegexResult = { readonly ok: true; readonly regex: RegExp } | {
  readonly ok: false;
  readonly reason: string;
};

const REFUSED_ESCAPES: Readonly<Record<string, string>> = {
  A: "\\A (RE2 only; use ^)",
  z: "\\z (RE2 only; use $)",
  Q: "\\Q…\\E (RE2 only)",
  E: "\\Q…\\E (RE2 only)",
  C: "\\C (RE2 only)",
  p: "Unicode classes \\p (not supported here)",
  P: "Unicode classes \\P (not supported here)",
  k: "named backreferences (not supported by RE2)",
};

/**
 * Compiles a Gateway API regex for a full match.
 *
 * @param pattern The regex as written
 * @returns The anchored `RegExp`, or the reason it is refused
 */
export function compileRegex(pattern: string): RegexResult {
  let body = pattern;
  let flags = "";
  if (body.startsWith("(?i)")) {
    body = body.slice(4);
    flags = "i";
  }
  const refused = refusedSyntax(body);
  if (refused) return { ok: false, reason: `${show(pattern)} uses ${refused}` };
  try {
    return { ok: true, regex: new RegExp(`^(?:${body})$`, flags) };
  } catch (e) {
    return { ok: false, reason: `${show(pattern)} is not a valid regex (${(e as Error).message})` };
  }
}

/** The first construct that RE2 and JS do not share, or undefined. */
function refusedSyntax(body: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === "\\") {
      const next = body[i + 1] ?? "";
      const refused = escapeRefused(next, body[i + 2] ?? "", inClass);
      if (refused) return refused;
      i++;
    } else if (inClass) {
      if (c === "[" && body[i + 1] === ":") return "POSIX classes [[:name:]] (RE2 only)";
      if (c === "]") inClass = false;
    } else if (c === "[") {
      inClass = true;
      if (body[i + 1] === "^") i++;
      if (body[i + 1] === "]") i++;
    } else if (c === "(" && body[i + 1] === "?") {
      const refused = groupRefused(body.slice(i + 2));
      if (refused) return refused;
    }
  }
  return undefined;
}

function escapeRefused(next: string, after: string, inClass: boolean): string | undefined {
  if (next >= "1" && next <= "9" && !inClass) return "backreferences (not supported by RE2)";
  if (next === "x" && after === "{") return "\\x{…} (RE2 only)";
  return Object.hasOwn(REFUSED_ESCAPES, next) ? REFUSED_ESCAPES[next] : undefined;
}

function groupRefused(rest: string): string | undefined {
  if (rest.startsWith("=") || rest.startsWith("!")) return "lookahead (not supported by RE2)";
  if (rest.startsWith("<=") || rest.startsWith("<!")) return "lookbehind (not supported by RE2)";
  if (rest.startsWith("P")) return "(?P…) groups (RE2 only; use (?<name>…))";
  // `(?i:…)` modifier groups exist in both; `(?i)` flag groups only in RE2.
  const flags = /^[A-Za-z-]+/.exec(rest)?.[0] ?? "";
  if (flags && rest[flags.length] === ")") return "flag groups such as (?s) (RE2 only; use (?s:…))";
  return undefined;
}

function show(pattern: string): string {
  return JSON.stringify(pattern.length > 60 ? `${pattern.slice(0, 57)}...` : pattern);
}
