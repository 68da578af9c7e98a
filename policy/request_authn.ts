/**
 * Compiles RequestAuthentication documents into JWT rules per request target, once per snapshot,
 * as istiod's `convertToEnvoyJwtConfig` does: every applicable policy's `jwtRules` concatenated and
 * sorted by issuer (duplicate issuers kept), inline `jwks` parsed, remote ones described for a
 * {@link JwksSource}. Attachment is the AuthorizationPolicy one (`_attach.ts`).
 */
import type { Problem } from "../mesh/mod.ts";
import { type AttachContext, type Attachment, attachmentOf, TargetIndex } from "./_attach.ts";
import { type KeySet, parseKeySet } from "./_jwks_keys.ts";
import { type JwtStatusText, sanitizeAudience } from "./_jwt.ts";
import { type PolicyHead, type PolicySource, readHeads, reportHead } from "./_resource.ts";
import type { Schema } from "./_schema.ts";
import type { JwksRef } from "./jwks.ts";

/** Where a rule looks for tokens. */
export type TokenLocation =
  | { readonly kind: "header"; readonly name: string; readonly prefix: string }
  | { readonly kind: "param"; readonly name: string }
  | { readonly kind: "cookie"; readonly name: string };

/** One compiled `jwtRules` entry. */
export interface JwtRule {
  /** `RequestAuthentication ns/name` */
  readonly policy: string;
  /** Empty accepts any issuer (Envoy's rule without issuer). */
  readonly issuer: string;
  /** Sanitized audiences; empty means no audience check. */
  readonly audiences: ReadonlySet<string>;
  /** The inline `jwks`, parsed (or the reason it has no usable key). */
  readonly inlineKeys?: KeySet | JwtStatusText;
  /** The remote key set when there is no inline one. */
  readonly remote?: JwksRef;
  readonly locations: readonly TokenLocation[];
  readonly forwardOriginalToken: boolean;
  readonly outputPayloadToHeader?: string;
  readonly claimToHeaders: readonly { readonly header: string; readonly claim: string }[];
  /** Top-level claims whose string value is split on spaces; always has `scope` and `permission`. */
  readonly spaceDelimitedClaims: readonly string[];
}

/** One place tokens are looked for, and the rules (by issuer) that look there. */
export interface LocationRules {
  readonly location: TokenLocation;
  readonly rules: readonly JwtRule[];
}

/** The rules that apply to one target. */
export interface AuthnRules {
  /** Sorted by issuer. */
  readonly rules: readonly JwtRule[];
  /** Distinct token locations in Envoy's extraction order: headers, params, cookies, each by name. */
  readonly locations: readonly LocationRules[];
  /** Header names removed from every request before verification (output headers). */
  readonly sanitize: readonly string[];
}

/** Compiled RequestAuthentications of one snapshot. */
export interface CompiledAuthn {
  readonly index: TargetIndex<AuthnRules>;
  /** Every remote key set in use, for `RemoteJwks.prefetch`. */
  readonly remotes: readonly JwksRef[];
  /** How many policies apply to this waypoint. */
  readonly count: number;
}

const RULE_FIELDS = [
  "issuer",
  "audiences",
  "jwksUri",
  "jwks",
  "fromHeaders",
  "fromParams",
  "fromCookies",
  "outputPayloadToHeader",
  "forwardOriginalToken",
  "outputClaimToHeaders",
  "timeout",
  "spaceDelimitedClaims",
];
const DEFAULT_LOCATIONS: readonly TokenLocation[] = [
  { kind: "header", name: "authorization", prefix: "Bearer " },
  { kind: "param", name: "access_token" },
];
const HEADER_NAME = /^[-_A-Za-z0-9]+$/;
const DURATION_PART = /([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)/gy;
const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1e3,
  m: 6e4,
  h: 3.6e6,
};

/**
 * Compiles the RequestAuthentications of a load for this waypoint.
 *
 * @example
 * ```ts
 * const { authn, problems } = compileRequestAuthentications(documents, { self, rootNamespace: "istio-system", mesh });
 * ```
 * @param docs Parsed documents (`{ file, line, object }`); other kinds are ignored
 * @param context This waypoint, the root namespace and the mesh snapshot
 * @returns The compiled rules and every problem, located by `file:line`
 */
export function compileRequestAuthentications(
  docs: readonly PolicySource[],
  context: AttachContext,
): { authn: CompiledAuthn; problems: Problem[] } {
  const problems: Problem[] = [];
  const entries: { attachment: Attachment; item: JwtRule[] }[] = [];
  for (const head of readHeads(docs, "RequestAuthentication", problems)) {
    const rules = readRules(head);
    if (!reportHead(head, problems) || head.targetRefs.length === 0) continue;
    const attachment = attachmentOf(head, context, problems);
    if (attachment.wide || attachment.services.length > 0) {
      entries.push({ attachment, item: rules });
    }
  }
  const index = TargetIndex.build(entries, (lists) => {
    const rules = lists.flat().sort((a, b) =>
      a.issuer < b.issuer ? -1 : a.issuer > b.issuer ? 1 : 0
    );
    const sanitize = [
      ...new Set(rules.flatMap((r) => [
        ...(r.outputPayloadToHeader ? [r.outputPayloadToHeader] : []),
        ...r.claimToHeaders.map((c) => c.header),
      ])),
    ];
    return Object.freeze({ rules, locations: locationsOf(rules), sanitize });
  });
  const remotes = new Map<string, JwksRef>();
  for (const { item } of entries) {
    for (const rule of item) {
      if (rule.remote) remotes.set(`${rule.remote.uri ?? rule.issuer}`, rule.remote);
    }
  }
  return {
    authn: Object.freeze({ index, remotes: [...remotes.values()], count: entries.length }),
    problems,
  };
}

/** Groups the rules by token location, in the order Envoy's extractor walks them. */
function locationsOf(rules: readonly JwtRule[]): LocationRules[] {
  const byKey = new Map<string, { location: TokenLocation; rules: JwtRule[] }>();
  for (const rule of rules) {
    for (const location of rule.locations) {
      const key = location.kind === "header"
        ? `0${location.name}${location.prefix}`
        : `${location.kind === "param" ? 1 : 2}${location.name}`;
      const entry = byKey.get(key) ?? { location, rules: [] };
      if (!entry.rules.includes(rule)) entry.rules.push(rule);
      byKey.set(key, entry);
    }
  }
  return [...byKey.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([, v]) => v);
}

function readRules(head: PolicyHead): JwtRule[] {
  const { schema, spec } = head;
  schema.known(spec, "spec", ["selector", "targetRef", "targetRefs", "jwtRules"]);
  const out: JwtRule[] = [];
  (schema.list(spec.jwtRules, "spec.jwtRules") ?? []).forEach((item, i) => {
    const path = `spec.jwtRules[${i}]`;
    const rule = schema.mapping(item, path);
    if (!rule) return;
    schema.known(rule, path, RULE_FIELDS);
    out.push(readRule(head, schema, rule, path));
  });
  return out;
}

function readRule(
  head: PolicyHead,
  schema: Schema,
  rule: Record<string, unknown>,
  path: string,
): JwtRule {
  const errors = head.errors;
  const issuer = schema.text(rule.issuer, `${path}.issuer`) ?? "";
  const audiences = schema.texts(rule.audiences, `${path}.audiences`) ?? [];
  if (audiences.some((a) => a === "")) {
    errors.push(`${path}.audiences: audience must be non-empty string`);
  }
  const spaceDelimited = schema.texts(rule.spaceDelimitedClaims, `${path}.spaceDelimitedClaims`);
  return Object.freeze({
    policy: head.ref,
    issuer,
    audiences: new Set(audiences.map(sanitizeAudience)),
    ...readKeys(schema, rule, path, issuer, errors),
    locations: readLocations(schema, rule, path, errors),
    ...readOutputs(schema, rule, path, errors),
    spaceDelimitedClaims: [...new Set([...spaceDelimited ?? [], "permission", "scope"])].sort(),
  });
}

/** `jwks`, or else `jwksUri` (or discovery) with the fetch `timeout`. */
function readKeys(
  schema: Schema,
  rule: Record<string, unknown>,
  path: string,
  issuer: string,
  errors: string[],
): Pick<JwtRule, "inlineKeys" | "remote"> {
  const jwksUri = schema.text(rule.jwksUri, `${path}.jwksUri`) ?? "";
  const jwks = schema.text(rule.jwks, `${path}.jwks`) ?? "";
  const timeoutMs = readTimeout(
    schema.text(rule.timeout, `${path}.timeout`),
    `${path}.timeout`,
    errors,
  );
  if (issuer === "" && jwksUri === "") {
    errors.push(`${path}: issuer or jwksUri must be non-empty string`);
  }
  if (jwksUri !== "" && !/^https?:\/\/[^/]/.test(jwksUri)) {
    errors.push(`${path}.jwksUri: URI scheme must be http or https`);
  }
  if (jwksUri !== "" && jwks !== "") errors.push(`${path}: only one of jwksUri or jwks can be set`);
  if (jwks === "") return { remote: { ...(jwksUri ? { uri: jwksUri } : {}), issuer, timeoutMs } };
  const inlineKeys = parseKeySet(jwks);
  if (typeof inlineKeys === "string") {
    errors.push(`${path}.jwks: jwks parse error: ${inlineKeys}; tokens of ${issuer} are rejected`);
  }
  return { inlineKeys };
}

/** What a verified token adds to or keeps in the request. */
function readOutputs(
  schema: Schema,
  rule: Record<string, unknown>,
  path: string,
  errors: string[],
): Pick<JwtRule, "forwardOriginalToken" | "outputPayloadToHeader" | "claimToHeaders"> {
  const at = (field: string) => `${path}.${field}`;
  const payloadHeader = schema.text(rule.outputPayloadToHeader, at("outputPayloadToHeader"));
  return {
    forwardOriginalToken: schema.flag(rule.forwardOriginalToken, at("forwardOriginalToken")) ??
      false,
    ...(payloadHeader ? { outputPayloadToHeader: payloadHeader.toLowerCase() } : {}),
    claimToHeaders: readClaimHeaders(
      schema,
      rule.outputClaimToHeaders,
      at("outputClaimToHeaders"),
      errors,
    ),
  };
}

function readLocations(
  schema: Schema,
  rule: Record<string, unknown>,
  path: string,
  errors: string[],
): TokenLocation[] {
  const out: TokenLocation[] = [];
  (schema.list(rule.fromHeaders, `${path}.fromHeaders`) ?? []).forEach((item, i) => {
    const at = `${path}.fromHeaders[${i}]`;
    const header = schema.mapping(item, at);
    if (!header) return void errors.push(`${at}: location header name must be non-null`);
    schema.known(header, at, ["name", "prefix"]);
    const name = schema.text(header.name, `${at}.name`) ?? "";
    if (name === "") {
      return void errors.push(`${at}: location header name must be non-empty string`);
    }
    out.push({
      kind: "header",
      name: name.toLowerCase(),
      prefix: schema.text(header.prefix, `${at}.prefix`) ?? "",
    });
  });
  for (
    const [field, kind, what] of [["fromParams", "param", "location query"], [
      "fromCookies",
      "cookie",
      "cookie name",
    ]] as const
  ) {
    for (const name of schema.texts(rule[field], `${path}.${field}`) ?? []) {
      if (name === "") errors.push(`${path}.${field}: ${what} must be non-empty string`);
      else out.push({ kind, name });
    }
  }
  return out.length > 0 ? out : [...DEFAULT_LOCATIONS];
}

function readClaimHeaders(
  schema: Schema,
  value: unknown,
  path: string,
  errors: string[],
): { header: string; claim: string }[] {
  const out: { header: string; claim: string }[] = [];
  (schema.list(value, path) ?? []).forEach((item, i) => {
    const at = `${path}[${i}]`;
    const entry = schema.mapping(item, at);
    if (!entry) return void errors.push(`${at}: outputClaimToHeaders must not be null`);
    const header = schema.text(entry.header, `${at}.header`) ?? "";
    const claim = schema.text(entry.claim, `${at}.claim`) ?? "";
    if (header === "" || claim === "") {
      return void errors.push(
        `${at}: outputClaimToHeaders header and claim value must be non-empty string`,
      );
    }
    if (!HEADER_NAME.test(header)) {
      return void errors.push(`${at}.header: invalid header name ${header}`);
    }
    out.push({ header: header.toLowerCase(), claim });
  });
  return out;
}

/** A Go duration (`10ms`, `1.5s`, `1m30s`) in milliseconds; Istio wants at least 1 ms. */
function readTimeout(text: string | undefined, path: string, errors: string[]): number {
  if (text === undefined) return 5000;
  let ms = 0;
  DURATION_PART.lastIndex = 0;
  let at = 0;
  for (let m = DURATION_PART.exec(text); m; m = DURATION_PART.exec(text)) {
    ms += Number(m[1]) * UNIT_MS[m[2]];
    at = DURATION_PART.lastIndex;
  }
  if (text === "" || at !== text.length) {
    errors.push(`${path}: invalid duration ${JSON.stringify(text)}; using 5s`);
    return 5000;
  }
  if (ms < 1) errors.push(`${path}: duration must be at least 1ms`);
  return Math.max(1, ms);
}
