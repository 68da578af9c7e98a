/**
 * The AuthorizationPolicy decision for one request: pure, synchronous, and allocation-light (it
 * runs on every request). Evaluation order is Istio's waypoint filter order:
 *
 * 1. CUSTOM: a matching rule asks its ext_authz provider (the proxy makes that call); a provider
 *    Istio cannot use turns its rules into DENY rules (`-deny-due-to-bad-CUSTOM-action`);
 * 2. AUDIT: a match only marks the request for audit logging;
 * 3. DENY: any match denies;
 * 4. ALLOW: with no ALLOW policy everything is allowed, else a match is needed.
 *
 * Inside one action the first matching rule in Envoy's order (policy names sorted as text) is the
 * one reported. Dry-run policies (`istio.io/dry-run`) never decide; their would-be result is
 * reported beside the decision.
 */
import type { HeaderMap } from "../http/types.ts";
import type { PolicyTarget } from "./_attach.ts";
import type { CompiledPolicies, CompiledRule, RuleSet } from "./authz_compile.ts";
import { RequestView } from "./_request_view.ts";
import { normalizePath } from "./path.ts";

export type { PolicyTarget } from "./_attach.ts";

/** What a verified JWT contributes to authorization (`request.auth.*`). */
export interface RequestAuth {
  /** `<iss>/<sub>` */
  readonly principal: string;
  /** `aud`, as a list. */
  readonly audiences: readonly string[];
  /** `azp` */
  readonly presenter?: string;
  /** The payload, with space-delimited claims (`scope`, `permission`, ...) split into lists. */
  readonly claims: Readonly<Record<string, unknown>>;
}

/** The attributes of one request (or one TCP connection) that policies may test. */
export interface AuthzRequest {
  /** The service the request is addressed to, or a workload. */
  readonly target: PolicyTarget;
  /** `tcp` for connections on TCP ports: HTTP-only fields cannot apply there. */
  readonly protocol: "http" | "tcp";
  /** CONNECT target address (service VIP or pod IP). */
  readonly destinationIp: string;
  /** CONNECT target port: the service port when service-addressed. */
  readonly destinationPort: number;
  /** Peer identity from the HBONE client certificate, `spiffe://td/ns/x/sa/y` (prefix optional). */
  readonly sourcePrincipal?: string;
  /** The original client address carried by the tunnel (Envoy `direct_remote_ip`). */
  readonly sourceIp?: string;
  /** Envoy `remote_ip`; defaults to `sourceIp`. */
  readonly remoteIp?: string;
  /** TLS server name, if the connection had one. */
  readonly sni?: string;
  readonly method?: string;
  /** `:authority` / Host, port included if sent. */
  readonly host?: string;
  /** The raw request target (path and query); normalized here before matching. */
  readonly path?: string;
  readonly headers?: HeaderMap;
  /** Set when a JWT was verified (see `authenticate`). */
  readonly auth?: RequestAuth;
}

/** A CUSTOM rule matched: the proxy must ask this ext_authz provider. */
export interface CustomCheck {
  readonly provider: string;
  /** `ns[<ns>]-policy[<name>]-rule[<i>]` */
  readonly policy: string;
}

/** What dry-run policies would have done. */
export interface DryRunResult {
  readonly result: "allowed" | "denied";
  /** The matching dry-run rule, if one matched. */
  readonly policy?: string;
}

/** Facts reported beside any decision. */
interface DecisionNotes {
  /** The first AUDIT rule that matched: log this request for audit. */
  readonly audit?: string;
  /** Dry-run results of DENY and ALLOW policies, when there are any. */
  readonly dryRun?: { readonly deny?: DryRunResult; readonly allow?: DryRunResult };
}

/** The request may go on. */
export interface AuthzAllow extends DecisionNotes {
  readonly allow: true;
  /** The ALLOW rule that matched; absent when no ALLOW policy applies. */
  readonly policy?: string;
  /** CUSTOM providers to ask, in provider order; absent when none matched. */
  readonly custom?: readonly CustomCheck[];
}

/** The request is refused with this response. */
export interface AuthzDeny extends DecisionNotes {
  readonly allow: false;
  /** 403 for RBAC, 400 for a path Envoy refuses to normalize. */
  readonly status: 403 | 400;
  readonly body: string;
  /** gRPC status for gRPC callers: 7 (PERMISSION_DENIED), or 13 for a 400. */
  readonly grpcStatus: 7 | 13;
  readonly grpcMessage: string;
  /** The DENY rule that matched; absent when no ALLOW rule matched. */
  readonly policy?: string;
  /** Envoy response code details, such as `rbac_access_denied_matched_policy[none]`. */
  readonly details: string;
}

/** The outcome of {@link authorize}. */
export type AuthzDecision = AuthzAllow | AuthzDeny;

const ALLOWED: AuthzAllow = Object.freeze({ allow: true as const });
const NO_MATCH: AuthzDeny = denial(undefined);
const BAD_PATH: AuthzDeny = Object.freeze({
  allow: false as const,
  status: 400 as const,
  body: "",
  grpcStatus: 13 as const,
  grpcMessage: "INTERNAL",
  details: "path_normalization_failed",
});

/**
 * Decides one request.
 *
 * @example
 * ```ts
 * const { policies } = compileAuthorizationPolicies(docs, { self, rootNamespace: "istio-system", mesh });
 * const decision = authorize(policies, {
 *   target: { kind: "Service", namespace: "default", name: "reviews" },
 *   protocol: "http", destinationIp: "10.0.0.5", destinationPort: 9080,
 *   sourcePrincipal: "spiffe://cluster.local/ns/default/sa/productpage",
 *   method: "GET", host: "reviews:9080", path: "/reviews/1",
 * });
 * if (!decision.allow) console.log(decision.status, decision.body, decision.policy);
 * ```
 * The path is normalized here (MeshConfig option given at compile time). The proxy normalizes it
 * too, with `normalizePath`, for routing and the backend, and answers 400 itself where that fails;
 * `authorize` only repeats the check when a policy applies.
 *
 * @param policies Compiled by `compileAuthorizationPolicies`
 * @param request The request's attributes
 * @returns Allow (with CUSTOM providers to ask, if any) or deny with the response to send
 */
export function authorize(policies: CompiledPolicies, request: AuthzRequest): AuthzDecision {
  const set = ruleSetOf(policies, request);
  if (set.empty) return ALLOWED;
  const view = viewOf(policies, request);
  if (!(view instanceof RequestView)) return view;
  const bad = firstMatch(set.badCustom, view);
  if (bad) return bad.decision as AuthzDeny;
  const custom = customMatches(set, view);
  const audit = firstMatch(set.audit, view)?.name;
  const dryRun = set.hasDryRun ? dryRunOf(set, view) : undefined;
  const denied = firstMatch(set.deny, view);
  let decision: AuthzDecision;
  if (denied) decision = denied.decision;
  else if (!set.enforceAllow) decision = ALLOWED;
  else decision = firstMatch(set.allow, view)?.decision ?? NO_MATCH;
  if (audit === undefined && dryRun === undefined && (custom === undefined || !decision.allow)) {
    return decision;
  }
  const notes: { custom?: CustomCheck[]; audit?: string; dryRun?: DecisionNotes["dryRun"] } = {};
  if (custom !== undefined && decision.allow) notes.custom = custom;
  if (audit !== undefined) notes.audit = audit;
  if (dryRun !== undefined) notes.dryRun = dryRun;
  return { ...decision, ...notes };
}

/**
 * Only the CUSTOM step, for a proxy that calls ext_authz where Envoy does: before JWT
 * authentication and the other RBAC steps.
 *
 * @param policies Compiled by `compileAuthorizationPolicies`
 * @param request The request's attributes (`auth` is not looked at: CUSTOM cannot use it)
 * @returns The providers to ask (empty when none), or a denial for a provider Istio cannot use
 */
export function customChecks(
  policies: CompiledPolicies,
  request: AuthzRequest,
): readonly CustomCheck[] | AuthzDeny {
  const set = ruleSetOf(policies, request);
  if (set.custom.length === 0 && set.badCustom.length === 0) return [];
  const view = viewOf(policies, request);
  if (!(view instanceof RequestView)) return view;
  const bad = firstMatch(set.badCustom, view);
  if (bad) return bad.decision as AuthzDeny;
  return customMatches(set, view) ?? [];
}

function ruleSetOf(policies: CompiledPolicies, request: AuthzRequest): RuleSet {
  const sets = policies.index.lookup(request.target);
  return request.protocol === "tcp" ? sets.tcp : sets.http;
}

/** The request as matchers read it, with its path normalized (400 when Envoy would refuse it). */
function viewOf(policies: CompiledPolicies, request: AuthzRequest): RequestView | AuthzDeny {
  if (request.protocol !== "http" || request.path === undefined) {
    return new RequestView(request, undefined);
  }
  const target = normalizePath(request.path, policies.pathNormalization);
  return target === undefined ? BAD_PATH : new RequestView(request, target);
}

/** The first matching rule of each CUSTOM provider; undefined when none matched. */
function customMatches(set: RuleSet, view: RequestView): CustomCheck[] | undefined {
  let out: CustomCheck[] | undefined;
  for (const group of set.custom) {
    const rule = firstMatch(group.rules, view);
    if (rule) (out ??= []).push({ provider: group.provider, policy: rule.name });
  }
  return out;
}

/**
 * The decision a rule makes, built once at compile time.
 *
 * @param policy The rule name for a DENY match; undefined for "no ALLOW rule matched"
 */
export function denial(policy: string | undefined): AuthzDeny {
  return Object.freeze({
    allow: false as const,
    status: 403 as const,
    body: "RBAC: access denied",
    grpcStatus: 7 as const,
    grpcMessage: "PERMISSION_DENIED",
    ...(policy === undefined ? {} : { policy }),
    details: `rbac_access_denied_matched_policy[${policy ?? "none"}]`,
  });
}

/** The allow decision of an ALLOW rule, built once at compile time. */
export function allowance(policy: string): AuthzAllow {
  return Object.freeze({ allow: true as const, policy });
}

function firstMatch(rules: readonly CompiledRule[], view: RequestView): CompiledRule | undefined {
  for (const rule of rules) if (rule.match(view)) return rule;
  return undefined;
}

function dryRunOf(set: RuleSet, view: RequestView): { deny?: DryRunResult; allow?: DryRunResult } {
  const out: { deny?: DryRunResult; allow?: DryRunResult } = {};
  if (set.shadowDeny) {
    const hit = firstMatch(set.shadowDeny, view);
    out.deny = hit ? { result: "denied", policy: hit.name } : { result: "allowed" };
  }
  if (set.shadowAllow) {
    const hit = firstMatch(set.shadowAllow, view);
    out.allow = hit ? { result: "allowed", policy: hit.name } : { result: "denied" };
  }
  return out;
}
