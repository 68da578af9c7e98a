/**
 * Load-balancing policies from Istio DestinationRules (`networking.istio.io` v1, v1beta1 and
 * v1alpha3), compiled at load into a frozen lookup by service hostname and port. Only
 * `trafficPolicy.loadBalancer.simple` and its `portLevelSettings` overrides are read. Connection
 * pools, outlier detection, TLS and subsets are left to others and ignored here.
 *
 * Istio semantics followed:
 * - `spec.host` without a dot is a short name in the rule's namespace: `reviews` in `ns1` means
 *   `reviews.ns1.svc.cluster.local` (`ResolveShortnameToFQDN`). A host of `*` or `*.suffix` is a
 *   wildcard. An exact host beats a wildcard, and a longer wildcard beats a shorter one
 *   (`MostSpecificHostMatch`).
 * - `simple`: `LEAST_REQUEST` (the default, also for `UNSPECIFIED`, an unset `loadBalancer`, and
 *   the deprecated `LEAST_CONN`), `ROUND_ROBIN`, `RANDOM`. `PASSTHROUGH` (an original-destination
 *   cluster) and `consistentHash` are not carried out; they are reported and the default is used.
 * - A `portLevelSettings` entry whose `port.number` is the service port replaces the rule's policy
 *   as a whole. Its own `loadBalancer` or, when it has none, the default applies, and the
 *   rule-level value is not inherited (`MergeTrafficPolicy`: "default values will be applied to
 *   fields omitted in port-level traffic policies"). When two entries name one port, the first
 *   is used.
 * - Several rules for one host are merged the way Istio merges them (`mergeDestinationRule`).
 *   They are taken oldest first (creationTimestamp; a rule without one counts as newest), then by
 *   `namespace/name`, and the first rule that has a `trafficPolicy` sets it. Istio merges only
 *   within a namespace and then prefers the proxy's namespace, the service's, then the root
 *   namespace. We merge across namespaces by age, and a shadowed rule gets a `Conflicted`
 *   warning.
 *
 * A rule with an invalid value gets an `error` and is not applied. A rule with a
 * `workloadSelector` gets a warning and is not applied, because it targets client sidecars and not
 * a waypoint. `exportTo` is not read.
 */
import type { Problem } from "../mesh/model.ts";
import type { LbPolicy } from "./lb.ts";
import type { RouteSourceDoc } from "./resources.ts";
import {
  invalid,
  ProblemList,
  type ProblemSite,
  RouteConfigError,
  type RouteReason,
} from "./_problems.ts";
import { type Fields, integer, oneOf, record, records, requiredText, show, text } from "./_read.ts";

/** apiVersions accepted for DestinationRule. */
export const DESTINATION_RULE_API_VERSIONS: readonly string[] = [
  "networking.istio.io/v1",
  "networking.istio.io/v1beta1",
  "networking.istio.io/v1alpha3",
];

/** The compiled lookup of load-balancing policies. */
export interface LbPolicies {
  /**
   * The policy for traffic to one port of a service.
   *
   * @param serviceHost The service's FQDN in lower case (`reviews.ns1.svc.cluster.local`)
   * @param port The service port
   * @returns The policy, `LEAST_REQUEST` when no DestinationRule says otherwise
   */
  lbPolicyFor(serviceHost: string, port: number): LbPolicy;
  /** A sorted, JSON-ready summary for the admin dump. */
  toJSON(): unknown;
}

/** The lookup and the problems found. */
export interface LbCompileResult {
  readonly lb: LbPolicies;
  readonly problems: Problem[];
}

const DEFAULT_POLICY: LbPolicy = "LEAST_REQUEST";
const SIMPLE_VALUES = [
  "UNSPECIFIED",
  "LEAST_CONN",
  "ROUND_ROBIN",
  "RANDOM",
  "PASSTHROUGH",
  "LEAST_REQUEST",
] as const;
/** A hostname, a `*.` wildcard of one, or `*` (lower case). */
const HOST = /^(\*|(\*\.)?[a-z0-9_]([-a-z0-9_]*[a-z0-9_])?(\.[a-z0-9_]([-a-z0-9_]*[a-z0-9_])?)*)$/;

/** The policy of one host, from the rule that set it. */
interface HostPolicy {
  readonly host: string;
  /** `DestinationRule ns/name`. */
  readonly from: string;
  readonly policy: LbPolicy;
  readonly ports: ReadonlyMap<number, LbPolicy>;
}

/** A rule read far enough to merge it. */
interface RuleHead {
  readonly site: ProblemSite;
  readonly key: string;
  readonly created: number | undefined;
  readonly host: string;
  /** Absent when the rule has no `trafficPolicy`. */
  readonly policy?: Omit<HostPolicy, "host" | "from">;
}

type Warn = (reason: RouteReason, detail: string) => void;

/**
 * Compiles the DestinationRules of a config into a policy lookup.
 *
 * @example
 * ```ts
 * const { lb, problems } = compileDestinationRules(docs);
 * const policy = lb.lbPolicyFor("reviews.ns1.svc.cluster.local", 9080); // "ROUND_ROBIN"
 * ```
 * @param docs Parsed documents with their file and line (other kinds are ignored)
 * @returns The frozen lookup and every problem, located by `file:line`
 */
export function compileDestinationRules(docs: readonly RouteSourceDoc[]): LbCompileResult {
  const problems = new ProblemList();
  const heads = collect(docs, problems);
  const byHost = new Map<string, HostPolicy>();
  const sites = new Map<string, ProblemSite>();
  for (const head of [...heads].sort(oldestFirst)) {
    if (!head.policy) continue;
    const first = sites.get(head.host);
    if (first) {
      problems.warn(
        head.site,
        "Conflicted",
        `spec.trafficPolicy is not applied: ${first.resource} (${first.where}) is older and ` +
          `already sets the traffic policy of ${head.host}`,
      );
      continue;
    }
    sites.set(head.host, head.site);
    byHost.set(
      head.host,
      Object.freeze({ host: head.host, from: head.site.resource, ...head.policy }),
    );
  }
  return { lb: new FrozenLbPolicies(byHost.values()), problems: problems.list() };
}

class FrozenLbPolicies implements LbPolicies {
  readonly #exact: ReadonlyMap<string, HostPolicy>;
  /** Wildcards, most specific (longest) first; `suffix` is `.example.com`, or `""` for `*`. */
  readonly #wildcards: readonly (HostPolicy & { readonly suffix: string })[];

  constructor(policies: Iterable<HostPolicy>) {
    const all = [...policies];
    this.#exact = new Map(all.filter((p) => !p.host.startsWith("*")).map((p) => [p.host, p]));
    this.#wildcards = all.filter((p) => p.host.startsWith("*"))
      .map((p) => ({ ...p, suffix: p.host.slice(1) }))
      .sort((a, b) => b.suffix.length - a.suffix.length);
    Object.freeze(this);
  }

  lbPolicyFor(serviceHost: string, port: number): LbPolicy {
    const found = this.#exact.get(serviceHost) ?? this.#wildcard(serviceHost);
    if (!found) return DEFAULT_POLICY;
    return found.ports.get(port) ?? found.policy;
  }

  #wildcard(host: string): HostPolicy | undefined {
    for (const w of this.#wildcards) {
      if (host.endsWith(w.suffix) && host.length > w.suffix.length) return w;
    }
    return undefined;
  }

  toJSON(): unknown {
    return [...this.#exact.values(), ...this.#wildcards]
      .map((p) => ({
        host: p.host,
        from: p.from,
        policy: p.policy,
        ports: Object.fromEntries([...p.ports].sort(([a], [b]) => a - b)),
      }))
      .sort((a, b) => a.host < b.host ? -1 : a.host > b.host ? 1 : 0);
  }
}

/** A lookup with no DestinationRule: every port is balanced by least request. */
export const NO_LB_POLICIES: LbPolicies = compileDestinationRules([]).lb;

/** Reads every DestinationRule, reporting malformed and duplicate ones. */
function collect(docs: readonly RouteSourceDoc[], problems: ProblemList): RuleHead[] {
  const heads: RuleHead[] = [];
  const seen = new Map<string, string>();
  for (const doc of docs) {
    const object = doc.object as Fields | null | undefined;
    if (object?.kind !== "DestinationRule") continue;
    if (!DESTINATION_RULE_API_VERSIONS.includes(String(object.apiVersion))) continue;
    const where = `${doc.file}:${doc.line}`;
    const key = nameOf(object);
    const site = { where, resource: `DestinationRule ${key}` };
    const first = seen.get(site.resource);
    if (first !== undefined) {
      problems.error(site, `Duplicate resource: ${site.resource} is already defined at ${first}`);
      continue;
    }
    seen.set(site.resource, where);
    const warnings: [RouteReason, string][] = [];
    try {
      const head = readRule(object, key, site, (reason, detail) => warnings.push([reason, detail]));
      for (const [reason, detail] of warnings) problems.warn(site, reason, detail);
      if (head) heads.push(head);
    } catch (e) {
      if (!(e instanceof RouteConfigError)) throw e;
      problems.error(site, `${e.message}; the DestinationRule is not applied`);
    }
  }
  return heads;
}

function readRule(
  object: Fields,
  key: string,
  site: ProblemSite,
  warn: Warn,
): RuleHead | undefined {
  const meta = record(object.metadata, "metadata", true)!;
  requiredText(meta.name, "metadata.name");
  const stamp = Date.parse(text(meta.creationTimestamp, "metadata.creationTimestamp") ?? "");
  const spec = record(object.spec, "spec", true)!;
  if (record(spec.workloadSelector, "spec.workloadSelector")) {
    warn(
      "UnsupportedValue",
      "spec.workloadSelector selects client sidecars, not a waypoint; the DestinationRule is " +
        "not applied",
    );
    return undefined;
  }
  const namespace = key.slice(0, key.indexOf("/"));
  const host = resolveHost(requiredText(spec.host, "spec.host"), namespace);
  const trafficPolicy = record(spec.trafficPolicy, "spec.trafficPolicy");
  return {
    site,
    key,
    created: Number.isNaN(stamp) ? undefined : stamp,
    host,
    ...(trafficPolicy ? { policy: readPolicy(trafficPolicy, warn) } : {}),
  };
}

/** `spec.host` as an FQDN: a short name gets the rule's namespace and the cluster domain. */
function resolveHost(written: string, namespace: string): string {
  const host = written.toLowerCase();
  if (!HOST.test(host)) {
    return invalid(
      "UnsupportedValue",
      `spec.host is ${show(written)} (want a hostname, a short name or a "*." wildcard)`,
    );
  }
  return host === "*" || host.includes(".") ? host : `${host}.${namespace}.svc.cluster.local`;
}

function readPolicy(trafficPolicy: Fields, warn: Warn): NonNullable<RuleHead["policy"]> {
  const at = "spec.trafficPolicy";
  const policy = readLoadBalancer(trafficPolicy.loadBalancer, `${at}.loadBalancer`, warn);
  const ports = new Map<number, LbPolicy>();
  for (
    const [settings, path] of records(trafficPolicy.portLevelSettings, `${at}.portLevelSettings`)
  ) {
    const port = record(settings.port, `${path}.port`, true)!;
    const number = integer(port.number, `${path}.port.number`, 1, 65535) ??
      invalid("UnsupportedValue", `${path}.port.number is missing`);
    const chosen = readLoadBalancer(settings.loadBalancer, `${path}.loadBalancer`, warn);
    if (ports.has(number)) {
      warn("Conflicted", `${path} is not applied: an earlier entry already sets port ${number}`);
      continue;
    }
    ports.set(number, chosen);
  }
  return { policy, ports };
}

/** `loadBalancer` of a traffic policy; unset, `UNSPECIFIED` and `LEAST_CONN` mean least request. */
function readLoadBalancer(value: unknown, path: string, warn: Warn): LbPolicy {
  const lb = record(value, path);
  if (!lb) return DEFAULT_POLICY;
  const simple = oneOf(lb.simple, `${path}.simple`, SIMPLE_VALUES, "UNSPECIFIED");
  if (lb.consistentHash !== undefined && lb.consistentHash !== null) {
    warn(
      "UnsupportedValue",
      `${path}.consistentHash is not supported by the waypoint; ${DEFAULT_POLICY} is used`,
    );
  }
  switch (simple) {
    case "ROUND_ROBIN":
    case "RANDOM":
      return simple;
    case "PASSTHROUGH":
      warn(
        "UnsupportedValue",
        `${path}.simple PASSTHROUGH is not supported by the waypoint; ${DEFAULT_POLICY} is used`,
      );
      return DEFAULT_POLICY;
    default:
      return DEFAULT_POLICY;
  }
}

function oldestFirst(a: RuleHead, b: RuleHead): number {
  const ageA = a.created ?? Infinity;
  const ageB = b.created ?? Infinity;
  if (ageA !== ageB) return ageA < ageB ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function nameOf(object: Fields): string {
  const meta = (object.metadata ?? {}) as Fields;
  const name = typeof meta.name === "string" ? meta.name : "?";
  const namespace = typeof meta.namespace === "string" && meta.namespace
    ? meta.namespace
    : "default";
  return `${namespace}/${name}`;
}
