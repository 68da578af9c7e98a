/**
 * Compiles one AuthorizationPolicy rule into a predicate over a request, following istiod's
 * `authz/model` (`New`, `Generate`, `generator.go`) and Envoy's RBAC semantics:
 *
 * - a rule matches when (any `from` source) AND (any `to` operation) AND (every `when`);
 *   `when` conditions join the source side or the operation side like istiod's principal and
 *   permission lists, which gives the same truth table;
 * - in a field, values are ORed; `notX` is NOT(OR(values)); set fields are ANDed;
 * - an absent attribute fails a positive match, so its negation holds;
 * - errors (`model.go` `checkError`): for ALLOW a bad value or an HTTP-only field on TCP drops the
 *   whole rule (fewer requests allowed); for DENY, AUDIT and CUSTOM it drops just that value, or
 *   the whole field for request-auth fields (more requests matched); an unknown `when` key drops
 *   the rule for every action.
 */
import type { Attr, Condition, ReadRule } from "./_authz_read.ts";
import { extended, field, type Pred, type RuleOptions, valueError } from "./_authz_fields.ts";
import { migrateTrustDomains } from "./_trust_domain.ts";

export type { Pred, RuleOptions } from "./_authz_fields.ts";

/** A compiled rule, or the reason istiod leaves it out. */
export type RuleResult = { readonly match: Pred } | { readonly skipped: string };

/** Attributes istiod compiles per value list, not per value. */
const EXTENDED: ReadonlySet<Attr> = new Set<Attr>([
  "requestPrincipal",
  "audiences",
  "presenter",
  "claims",
  "envoyFilter",
]);
/** Attributes on Envoy's principal side; the rest are permissions. */
const PRINCIPAL_SIDE: ReadonlySet<Attr> = new Set<Attr>([
  "principal",
  "namespace",
  "serviceAccount",
  "trustDomain",
  "sourceIp",
  "remoteIp",
  "requestPrincipal",
  "audiences",
  "presenter",
  "claims",
  "header",
]);
const ALWAYS: Pred = () => true;
/** Rough cost of testing an attribute, so a clause tries cheap tests first (AND is commutative). */
const COST: Readonly<Record<Attr, number>> = {
  port: 0,
  method: 1,
  host: 2,
  sni: 2,
  principal: 3,
  namespace: 3,
  trustDomain: 4,
  path: 5,
  sourceIp: 6,
  remoteIp: 6,
  destinationIp: 6,
  requestPrincipal: 6,
  audiences: 7,
  presenter: 7,
  claims: 8,
  header: 8,
  serviceAccount: 9,
  envoyFilter: 0,
};

/**
 * Compiles a rule.
 *
 * @param rule The rule as read
 * @param options Action, chain kind and trust domains
 * @returns The predicate, or why the rule is skipped
 */
export function compileRule(rule: ReadRule, options: RuleOptions): RuleResult {
  if (rule.unknownKeys.length > 0) return { skipped: `unknown attribute ${rule.unknownKeys[0]}` };
  const principalWhen = rule.when.filter((c) => PRINCIPAL_SIDE.has(c.attr));
  const permissionWhen = rule.when.filter((c) => !PRINCIPAL_SIDE.has(c.attr));
  const sides: (readonly Pred[])[][] = [];
  for (const [clauses, when] of [[rule.to, permissionWhen], [rule.from, principalWhen]] as const) {
    const alternatives: (readonly Pred[])[] = [];
    for (const clause of clauses && clauses.length > 0 ? clauses : [[]]) {
      const compiled = compileClause([...clause, ...when], options);
      if (typeof compiled === "string") return { skipped: compiled };
      alternatives.push(compiled);
    }
    sides.push(alternatives);
  }
  const permission = sideTest(sides[0]);
  const principal = sideTest(sides[1]);
  // As few calls per rule as the shape allows: this runs for every rule of every request.
  if (permission && principal) return { match: (v) => permission(v) && principal(v) };
  return { match: permission ?? principal ?? ALWAYS };
}

/** OR of clauses of AND-ed predicates; undefined when it always holds. */
function sideTest(clauses: readonly (readonly Pred[])[]): Pred | undefined {
  if (clauses.some((c) => c.length === 0)) return undefined;
  if (clauses.length === 1) {
    const clause = clauses[0];
    if (clause.length === 1) return clause[0];
    return (v) => {
      for (let j = 0; j < clause.length; j++) if (!clause[j](v)) return false;
      return true;
    };
  }
  return (v) => {
    for (let i = 0; i < clauses.length; i++) {
      const clause = clauses[i];
      let j = 0;
      while (j < clause.length && clause[j](v)) j++;
      if (j === clause.length) return true;
    }
    return false;
  };
}

/** AND of the conditions of one source or operation, cheapest first; a string is istiod's error. */
function compileClause(conditions: readonly Condition[], options: RuleOptions): Pred[] | string {
  const strict = options.action === "ALLOW";
  const preds: { pred: Pred; cost: number }[] = [];
  for (const c of migrateTrustDomains(conditions, options.trustDomains)) {
    for (const [values, negate] of [[c.values, false], [c.notValues, true]] as const) {
      if (values.length === 0) continue;
      let pred: Pred | string;
      if (EXTENDED.has(c.attr)) {
        pred = extended(c, values, options);
      } else {
        const good: string[] = [];
        for (const value of values) {
          const error = valueError(c, value, options);
          if (error === undefined) good.push(value);
          else if (strict) return error;
        }
        pred = good.length === 0 ? "" : field(c, good, options);
      }
      if (typeof pred === "string") {
        if (strict) return pred;
        continue;
      }
      preds.push({ pred: negate ? not(pred) : pred, cost: COST[c.attr] });
    }
  }
  return preds.sort((a, b) => a.cost - b.cost).map((p) => p.pred);
}

function not(pred: Pred): Pred {
  return (v) => !pred(v);
}
