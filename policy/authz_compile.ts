/**
 * Compiles AuthorizationPolicy documents into rule sets indexed by request target, once per
 * snapshot. Each rule is compiled twice, for HTTP and for TCP chains, because HTTP-only fields
 * change what a rule means on TCP (see `_authz_rule.ts`).
 *
 * Invariants:
 * - The result is immutable by contract (readonly types; only its outer objects are frozen, since
 *   frozen arrays slow the request path down) and holds no I/O; `authorize` only reads it.
 * - Rule lists are sorted by rule name, which is the order Envoy's RBAC engine walks its policy
 *   map in, so the policy reported for a decision is the one Envoy would report.
 * - A policy whose shape the CRD schema refuses is skipped and reported as an error. A policy that
 *   only Istio's admission webhook refuses is still compiled as istiod would build it, and the
 *   webhook's message is reported as an error.
 */
import type { Problem, Snapshot } from "../mesh/mod.ts";
import { type AttachContext, type Attachment, attachmentOf, TargetIndex } from "./_attach.ts";
import { readAuthorizationPolicy, type ReadPolicy } from "./_authz_read.ts";
import { compileRule, type Pred } from "./_authz_rule.ts";
import { located, type PolicySource, readHeads, reportHead } from "./_resource.ts";
import { allowance, type AuthzDecision, denial } from "./authz.ts";
import type { PathNormalization } from "./path.ts";

/** Where and how policies are compiled. */
export interface PolicyContext extends AttachContext {
  /** MeshConfig `pathNormalization.normalization`. @default "BASE" */
  readonly pathNormalization?: PathNormalization;
  /** MeshConfig `extensionProviders` names; CUSTOM naming another provider denies. @default any name */
  readonly extensionProviders?: readonly string[];
  /** `PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS`. @default false */
  readonly multipleCustomProviders?: boolean;
}

/** One compiled rule and the decision it makes when it matches. */
export interface CompiledRule {
  /** `ns[<ns>]-policy[<name>]-rule[<i>]` */
  readonly name: string;
  readonly match: Pred;
  readonly decision: AuthzDecision;
}

/** The CUSTOM rules of one ext_authz provider. */
export interface CustomGroup {
  readonly provider: string;
  readonly rules: readonly CompiledRule[];
}

/** Every rule that applies to one target on one kind of chain. */
export interface RuleSet {
  /** No policy at all: allow without looking at the request. */
  readonly empty: boolean;
  readonly badCustom: readonly CompiledRule[];
  readonly custom: readonly CustomGroup[];
  readonly audit: readonly CompiledRule[];
  readonly deny: readonly CompiledRule[];
  readonly allow: readonly CompiledRule[];
  /** An enforced ALLOW policy applies (even one whose rules were all skipped). */
  readonly enforceAllow: boolean;
  readonly hasDryRun: boolean;
  readonly shadowDeny?: readonly CompiledRule[];
  readonly shadowAllow?: readonly CompiledRule[];
}

/** The rule sets of a target for HTTP and TCP chains. */
export interface TargetRules {
  readonly http: RuleSet;
  readonly tcp: RuleSet;
}

/** Compiled AuthorizationPolicies of one snapshot. */
export interface CompiledPolicies {
  readonly index: TargetIndex<TargetRules>;
  readonly pathNormalization: PathNormalization;
  /** How many policies apply to this waypoint. */
  readonly count: number;
}

/** A rule's name and predicate, before its action gives it a decision. */
interface NamedPred {
  readonly name: string;
  readonly match: Pred;
}

/** A policy compiled for both chain kinds. */
interface PolicyRules {
  readonly policy: ReadPolicy;
  readonly http: readonly NamedPred[];
  readonly tcp: readonly NamedPred[];
}

const TCP_PROTOCOLS = ["tcp", "tls", "unknown"];

/**
 * Compiles the AuthorizationPolicies of a load for this waypoint.
 *
 * @example
 * ```ts
 * const { documents } = parseConfigText(yamlText, "policies.yaml");
 * const { policies, problems } = compileAuthorizationPolicies(documents, {
 *   self: snapshot.self, rootNamespace: "istio-system", mesh: snapshot,
 * });
 * ```
 * @param docs Parsed documents (`{ file, line, object }`); other kinds are ignored
 * @param context This waypoint, the root namespace and the mesh snapshot
 * @returns The compiled policies and every problem, located by `file:line`
 */
export function compileAuthorizationPolicies(
  docs: readonly PolicySource[],
  context: PolicyContext,
): { policies: CompiledPolicies; problems: Problem[] } {
  const problems: Problem[] = [];
  const bundle = [
    context.self.trustDomain,
    ...context.self.trustDomains.filter((t) => t !== context.self.trustDomain),
  ];
  const entries: { attachment: Attachment; item: PolicyRules }[] = [];
  for (const head of readHeads(docs, "AuthorizationPolicy", problems)) {
    const warnings: string[] = [];
    const policy = readAuthorizationPolicy(head, warnings);
    const valid = reportHead(head, problems);
    for (const warning of warnings) problems.push(located("warning", head, warning));
    if (!valid || head.targetRefs.length === 0) continue;
    const attachment = attachmentOf(head, context, problems);
    if (!attachment.wide && attachment.services.length === 0) continue;
    const tcpMatters = hasTcpPorts(attachment, context.mesh);
    entries.push({ attachment, item: compilePolicy(policy, bundle, tcpMatters, problems) });
  }
  const index = TargetIndex.build(entries, (items) => ({
    http: mergeRules(items, "http", context),
    tcp: mergeRules(items, "tcp", context),
  }));
  const pathNormalization = context.pathNormalization ?? "BASE";
  return { policies: Object.freeze({ index, pathNormalization, count: entries.length }), problems };
}

function compilePolicy(
  policy: ReadPolicy,
  bundle: readonly string[],
  tcpMatters: boolean,
  problems: Problem[],
): PolicyRules {
  const { head, action } = policy;
  const http: NamedPred[] = [];
  const tcp: NamedPred[] = [];
  const skipped = (what: string, name: string, why: string) =>
    problems.push(located("warning", head, `${what}: ${name}: ${why}${consequence(action)}`));
  (policy.rules ?? []).forEach((rule, i) => {
    if (rule === null) return;
    const name = `ns[${head.namespace}]-policy[${head.name}]-rule[${i}]`;
    const options = { action, namespace: head.namespace, trustDomains: bundle };
    const forHttp = compileRule(rule, { ...options, forTcp: false });
    const forTcp = compileRule(rule, { ...options, forTcp: true });
    if ("match" in forHttp) http.push({ name, match: forHttp.match });
    else skipped("Rule skipped", name, forHttp.skipped);
    if ("match" in forTcp) tcp.push({ name, match: forTcp.match });
    else if ("match" in forHttp && tcpMatters) {
      skipped("Rule skipped on TCP ports", name, forTcp.skipped);
    }
  });
  return { policy, http, tcp };
}

function consequence(action: string): string {
  return action === "ALLOW" ? " (it allows nothing)" : " (it never matches)";
}

/** Builds the rule set of one target from the policies that apply to it, in Istio's filter order. */
function mergeRules(
  items: readonly PolicyRules[],
  chain: "http" | "tcp",
  context: PolicyContext,
): RuleSet {
  const custom = new Map<string, CompiledRule[]>();
  const lists = {
    audit: [] as CompiledRule[],
    deny: [] as CompiledRule[],
    allow: [] as CompiledRule[],
  };
  const shadow = { deny: [] as CompiledRule[], allow: [] as CompiledRule[] };
  let enforceAllow = false;
  let shadowDeny = false;
  let shadowAllow = false;
  for (const { policy, [chain]: rules } of items) {
    switch (policy.action) {
      case "CUSTOM": {
        const provider = policy.provider ?? "";
        const group = custom.get(provider) ?? [];
        for (const r of rules) group.push({ ...r, decision: denial(r.name) });
        custom.set(provider, group);
        break;
      }
      case "AUDIT":
        if (!policy.dryRun) {
          for (const r of rules) lists.audit.push({ ...r, decision: denial(r.name) });
        }
        break;
      case "DENY":
        shadowDeny ||= policy.dryRun;
        for (const r of rules) {
          (policy.dryRun ? shadow.deny : lists.deny).push({ ...r, decision: denial(r.name) });
        }
        break;
      case "ALLOW":
        if (policy.dryRun) shadowAllow = true;
        else enforceAllow = true;
        for (const r of rules) {
          (policy.dryRun ? shadow.allow : lists.allow).push({ ...r, decision: allowance(r.name) });
        }
        break;
    }
  }
  const { good, bad } = splitCustom(custom, context);
  // Shallow freeze: frozen rule arrays and objects measurably slow V8's hot loops down.
  return Object.freeze({
    empty: items.length === 0,
    badCustom: bad,
    custom: good,
    audit: byName(lists.audit),
    deny: byName(lists.deny),
    allow: byName(lists.allow),
    enforceAllow,
    hasDryRun: shadowDeny || shadowAllow,
    ...(shadowDeny ? { shadowDeny: byName(shadow.deny) } : {}),
    ...(shadowAllow ? { shadowAllow: byName(shadow.allow) } : {}),
  });
}

/**
 * CUSTOM rules by provider. A provider that is not configured, or several providers without
 * `multipleCustomProviders`, turns the rules into DENY rules, as istiod's `getBadCustomDenyRules`.
 */
function splitCustom(
  custom: Map<string, CompiledRule[]>,
  context: PolicyContext,
): { good: CustomGroup[]; bad: CompiledRule[] } {
  const providers = [...custom.keys()].sort();
  const good: CustomGroup[] = [];
  const bad: CompiledRule[] = [];
  const tooMany = providers.length > 1 && !context.multipleCustomProviders;
  for (const provider of providers) {
    const rules = custom.get(provider)!;
    const known = provider !== "" && (context.extensionProviders?.includes(provider) ?? true);
    if (known && !tooMany) {
      good.push({ provider, rules: byName(rules) });
      continue;
    }
    for (const r of rules) {
      const name = `istio-ext-authz-${provider}-${r.name}-deny-due-to-bad-CUSTOM-action`;
      bad.push({ name, match: r.match, decision: denial(name) });
    }
  }
  return { good, bad: byName(bad) };
}

/** Whether traffic under this attachment may arrive on a TCP port (for warnings only). */
function hasTcpPorts(attachment: Attachment, mesh: Snapshot): boolean {
  const services = attachment.wide
    ? [...mesh.servicesByName.values()].filter((s) => s.bound)
    : attachment.services.map((key) => mesh.servicesByName.get(key.slice(key.indexOf("/") + 1)));
  return services.some((s) => s?.ports.some((p) => TCP_PROTOCOLS.includes(p.protocol)));
}

function byName(rules: CompiledRule[]): CompiledRule[] {
  return rules.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}
