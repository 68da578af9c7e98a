/**
 * The predicate of one AuthorizationPolicy field or `when` key over a request, built the way
 * istiod's `generator.go` builds the Envoy matcher for it, plus the per-value errors istiod's
 * generators return (`_authz_rule.ts` decides what an error drops). A field's values are ORed
 * into one predicate.
 */
import { type Cidr, cidrContains, parseCidr } from "./_cidr.ts";
import {
  claimMatches,
  escapeRegex,
  headerSetTest,
  stringSetTest,
  type StringTest,
} from "./_match.ts";
import type { RequestView } from "./_request_view.ts";
import { type Action, type Condition, HTTP_ONLY } from "./_authz_read.ts";
import { claimPath, nameInBrackets, parsePort } from "./_values.ts";
import { compilePathTemplate, isPathTemplate, pathTemplateError } from "./path.ts";

/** A compiled test on a request. */
export type Pred = (view: RequestView) => boolean;

/** What compiling a rule depends on. */
export interface RuleOptions {
  readonly action: Action;
  /** Compile for a TCP chain, where HTTP-only fields cannot apply. */
  readonly forTcp: boolean;
  /** The policy's namespace, the default for `serviceAccounts` without one. */
  readonly namespace: string;
  /** Our trust domain first, then its aliases (istiod's trust-domain bundle). */
  readonly trustDomains: readonly string[];
}

const SPIFFE = "spiffe://";
const NEVER: Pred = () => false;

/** Why istiod cannot build one value of a per-value attribute, or undefined. */
export function valueError(c: Condition, value: string, options: RuleOptions): string | undefined {
  if (options.forTcp && HTTP_ONLY.has(c.attr)) return `"${c.key}" is HTTP only`;
  switch (c.attr) {
    case "sourceIp":
    case "remoteIp":
    case "destinationIp":
      return parseCidr(value) ? undefined : `invalid CIDR ${value}`;
    case "header":
      return headerName(c) === undefined
        ? `expecting format [<NAME>], but found ${c.key}`
        : undefined;
    case "path": {
      const error = isPathTemplate(value) ? pathTemplateError(value) : undefined;
      return error && `invalid path template ${value}: ${error}`;
    }
    case "port":
      return parsePort(value) === undefined ? `invalid port ${value}` : undefined;
    default:
      return undefined;
  }
}

/** The OR of a field's (valid) values as one predicate. */
export function field(c: Condition, values: readonly string[], options: RuleOptions): Pred {
  switch (c.attr) {
    case "principal": {
      const test = stringSetTest(values, SPIFFE);
      return (v) => v.principal !== undefined && test(v.principal);
    }
    case "namespace":
      return principalPatterns(
        values.map((value) =>
          value.includes("*")
            ? new RegExp(`^.*/ns/${value.split("*").map(escapeRegex).join(".*")}/.*$`)
            : { includes: `/ns/${value}/` }
        ),
      );
    case "serviceAccount":
      return principalPatterns(values.map((value) => {
        const slash = value.indexOf("/");
        const [ns, sa] = slash < 0
          ? [options.namespace, value]
          : [value.slice(0, slash), value.slice(slash + 1)];
        return new RegExp(`^spiffe://.+/ns/${escapeRegex(ns)}/(.+/|)sa/${escapeRegex(sa)}(/.+)?$`);
      }));
    case "trustDomain":
      return principalPatterns(values.map(trustDomainPattern));
    case "sourceIp":
    case "remoteIp":
    case "destinationIp":
      return ipRanges(c.attr, values.map((value) => parseCidr(value)!));
    case "header": {
      const name = headerName(c)!.toLowerCase();
      const test = headerSetTest(values);
      return (v) => test(v.header(name));
    }
    case "host": {
      const test = headerSetTest(values.map((value) => value.toLowerCase()));
      return (v) => test(v.host);
    }
    case "method": {
      const test = headerSetTest(values);
      return (v) => test(v.request.method);
    }
    case "path":
      return paths(values);
    case "port": {
      const ports = new Set(values.map((value) => parsePort(value)!));
      return (v) => ports.has(v.request.destinationPort);
    }
    default: {
      const test = stringSetTest(values);
      return (v) => test(v.request.sni ?? "");
    }
  }
}

/** The predicate for all values of a request-auth or metadata attribute, or an error. */
export function extended(
  c: Condition,
  values: readonly string[],
  options: RuleOptions,
): Pred | string {
  if (c.attr === "envoyFilter") {
    const parts = c.key.slice("experimental.".length).replace(/\]$/, "").split("[");
    // This proxy has no Envoy dynamic metadata: the value is always absent.
    return parts.length >= 2 ? NEVER : `invalid key: ${c.key}`;
  }
  if (options.forTcp) return `"${c.key}" is HTTP only`;
  const test = stringSetTest(values);
  switch (c.attr) {
    case "requestPrincipal":
      return requestPrincipals(values);
    case "audiences":
      return (v) => {
        const auth = v.request.auth;
        return auth !== undefined && claimMatches(auth.claims.aud ?? auth.audiences, test);
      };
    case "presenter":
      return (v) => {
        const auth = v.request.auth;
        return auth !== undefined && claimMatches(auth.claims.azp ?? auth.presenter, test);
      };
    default: {
      const path = claimPath(c.key.slice("request.auth.claims".length));
      if (!path) return `bad claim key ${c.key}`;
      return (v) => claimMatches(claimAt(v.request.auth?.claims, path), test);
    }
  }
}

/** `requestPrincipals`: the value split at its last `/` into `iss` and `sub` matchers. */
function requestPrincipals(values: readonly string[]): Pred {
  const pairs = values.map((value): [StringTest, StringTest] => {
    const slash = value.lastIndexOf("/");
    const found = slash >= 0;
    const iss = found ? value.slice(0, slash) : value;
    const sub = found ? value.slice(slash + 1) : "";
    const any = stringSetTest(["*"]);
    if (value === "*") return [any, any];
    if (value.startsWith("*")) {
      if (!found) return [any, stringSetTest([value])];
      return [iss === "*" ? any : stringSetTest([iss]), (s) => s === sub];
    }
    if (value.endsWith("*")) {
      if (!found) return [stringSetTest([value]), any];
      return [(s) => s === iss, stringSetTest([sub])];
    }
    return [(s) => s === iss, (s) => s === sub];
  });
  return (v) => {
    const iss = v.issuer;
    const sub = v.subject;
    if (iss === undefined || sub === undefined) return false;
    for (const [issTest, subTest] of pairs) if (issTest(iss) && subTest(sub)) return true;
    return false;
  };
}

/** `source.trustDomain`: `*` any, no wildcard a prefix, else a regex with `[^/]*`. */
function trustDomainPattern(value: string): RegExp | { startsWith: string } {
  if (value === "*") return { startsWith: SPIFFE };
  if (!value.includes("*")) return { startsWith: `${SPIFFE}${value}/` };
  const star = value.indexOf("*");
  return new RegExp(
    `^spiffe://${escapeRegex(value.slice(0, star))}[^/]*${escapeRegex(value.slice(star + 1))}/.*$`,
  );
}

type PrincipalPattern = RegExp | { readonly includes: string } | { readonly startsWith: string };

/** OR of full-match regexes and equivalent substring tests on the peer principal. */
function principalPatterns(patterns: readonly PrincipalPattern[]): Pred {
  const regexes = patterns.filter((p): p is RegExp => p instanceof RegExp);
  const needles = patterns.flatMap((p) => "includes" in p ? [p.includes] : []);
  const starts = patterns.flatMap((p) => "startsWith" in p ? [p.startsWith] : []);
  return (v) => {
    const p = v.principal;
    if (p === undefined) return false;
    for (let i = 0; i < needles.length; i++) if (p.includes(needles[i])) return true;
    for (let i = 0; i < starts.length; i++) if (p.startsWith(starts[i])) return true;
    for (let i = 0; i < regexes.length; i++) if (regexes[i].test(p)) return true;
    return false;
  };
}

/** `paths`: exact, prefix, suffix and presence in one test, templates as regexes. */
function paths(values: readonly string[]): Pred {
  const templates = values.filter(isPathTemplate).map(compilePathTemplate);
  const plain = values.filter((value) => !isPathTemplate(value));
  const test = plain.length > 0 ? stringSetTest(plain) : undefined;
  return (v) => {
    const path = v.urlPath;
    if (path === undefined) return false;
    if (test !== undefined && test(path)) return true;
    for (let i = 0; i < templates.length; i++) if (templates[i](path)) return true;
    return false;
  };
}

function headerName(c: Condition): string | undefined {
  return nameInBrackets(c.key.slice("request.headers".length));
}

function ipRanges(attr: "sourceIp" | "remoteIp" | "destinationIp", ranges: readonly Cidr[]): Pred {
  return (v) => {
    const ip = v[attr];
    if (ip === undefined) return false;
    for (let i = 0; i < ranges.length; i++) if (cidrContains(ranges[i], ip)) return true;
    return false;
  };
}

/** The claim at a path of nested objects, or undefined. */
function claimAt(
  claims: Readonly<Record<string, unknown>> | undefined,
  path: readonly string[],
): unknown {
  let value: unknown = claims;
  for (const key of path) {
    if (
      typeof value !== "object" || value === null || Array.isArray(value) ||
      !Object.hasOwn(value, key)
    ) {
      return undefined;
    }
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}
