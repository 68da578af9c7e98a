/**
 * Trust-domain aliases in policies (istiod `trustdomain/bundle.go`, `model.go`
 * `MigrateTrustDomain`): a principal in our trust domain, one of its aliases or the literal
 * `cluster.local` stands for the same identity in every one of them; a `source.trustDomain` value
 * naming one of them names all of them. Other trust domains are kept as written.
 */
import type { Condition } from "./_authz_read.ts";

/** istiod's `MigrateTrustDomain`: principals and trust domains widened to the aliases. */
export function migrateTrustDomains(
  conditions: readonly Condition[],
  bundle: readonly string[],
): readonly Condition[] {
  if (!conditions.some((c) => c.attr === "principal" || c.attr === "trustDomain")) {
    return conditions;
  }
  return conditions.map((c) => {
    if (c.attr === "principal") {
      return {
        ...c,
        values: replaceAliases(c.values, bundle),
        notValues: replaceAliases(c.notValues, bundle),
      };
    }
    if (c.attr === "trustDomain") {
      return {
        ...c,
        values: expandAliases(c.values, bundle),
        notValues: expandAliases(c.notValues, bundle),
      };
    }
    return c;
  });
}

/** `ReplaceTrustDomainAliases`: `td/ns/x/sa/y` for our trust domains (or `cluster.local`) expands. */
function replaceAliases(principals: readonly string[], bundle: readonly string[]): string[] {
  const out: string[] = [];
  for (const principal of principals) {
    const parts = principal.split("/");
    const td = parts[0];
    if (
      parts.length !== 5 || td === "*" ||
      !(td === "cluster.local" || bundle.some((b) => domainMatch(td, b)))
    ) {
      out.push(principal);
      continue;
    }
    const expanded: string[] = [];
    for (const b of bundle) {
      const next = td.startsWith("*") && b.endsWith(td.slice(1))
        ? principal
        : [b, ...parts.slice(1)].join("/");
      if (!expanded.includes(next)) expanded.push(next);
    }
    out.push(...expanded);
  }
  return out;
}

/** `ExpandTrustDomainAliases`: a value naming one of our trust domains names all of them. */
function expandAliases(values: readonly string[], bundle: readonly string[]): string[] {
  const out = new Set<string>();
  for (const value of values) {
    for (const v of bundle.includes(value) ? bundle : [value]) out.add(v);
  }
  return [...out];
}

/** istiod's trust-domain `stringMatch` for one list entry: wildcards on either side. */
function domainMatch(a: string, s: string): boolean {
  const prefix = (x: string, p: string) => p.endsWith("*") && x.startsWith(p.slice(0, -1));
  const suffix = (x: string, p: string) => p.startsWith("*") && x.endsWith(p.slice(1));
  return a === s || s === "*" || prefix(a, s) || prefix(s, a) || suffix(a, s) || suffix(s, a);
}
