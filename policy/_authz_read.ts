/**
 * Reads an AuthorizationPolicy spec into plain conditions and checks it the way Istio's admission
 * webhook does (`ValidateAuthorizationPolicy`, `security.ValidateAttribute`). Admission errors do
 * not stop compilation: the rules are then built as istiod builds whatever reaches it (see
 * `_authz_rule.ts`), and the errors are reported so a user sees what `kubectl apply` would refuse.
 */
import type { PolicyHead } from "./_resource.ts";
import { type Fields, type Schema, show } from "./_schema.ts";
import { checkField, checkPolicy, checkServiceAccountMix, checkWhen } from "./_authz_check.ts";

/** `spec.action`. */
export type Action = "ALLOW" | "DENY" | "AUDIT" | "CUSTOM";

/** The request attribute a condition tests. */
export type Attr =
  | "principal"
  | "namespace"
  | "serviceAccount"
  | "trustDomain"
  | "sourceIp"
  | "remoteIp"
  | "requestPrincipal"
  | "audiences"
  | "presenter"
  | "claims"
  | "header"
  | "host"
  | "method"
  | "path"
  | "port"
  | "destinationIp"
  | "sni"
  | "envoyFilter";

/** One field (`principals` + `notPrincipals`) or one `when` entry. */
export interface Condition {
  readonly attr: Attr;
  /** The `when` key (`request.headers[x-a]`), or the field name for source and operation fields. */
  readonly key: string;
  readonly values: readonly string[];
  readonly notValues: readonly string[];
  /** Where it is written, for messages. */
  readonly path: string;
}

/** A rule as written; `from`/`to` are undefined when absent (any). */
export interface ReadRule {
  readonly index: number;
  readonly from: readonly (readonly Condition[])[] | undefined;
  readonly to: readonly (readonly Condition[])[] | undefined;
  readonly when: readonly Condition[];
  /** `when` keys Istio does not know: istiod skips the whole rule. */
  readonly unknownKeys: readonly string[];
}

/** A policy as written. */
export interface ReadPolicy {
  readonly head: PolicyHead;
  readonly action: Action;
  readonly provider: string | undefined;
  /** `undefined` when `rules` is absent; a `null` entry is a nil rule. */
  readonly rules: readonly (ReadRule | null)[] | undefined;
  /** Annotation `istio.io/dry-run: "true"`. */
  readonly dryRun: boolean;
}

const ACTIONS: readonly Action[] = ["ALLOW", "DENY", "AUDIT", "CUSTOM"];
const SOURCE_FIELDS = [
  ["principals", "notPrincipals", "principal"],
  ["requestPrincipals", "notRequestPrincipals", "requestPrincipal"],
  ["namespaces", "notNamespaces", "namespace"],
  ["serviceAccounts", "notServiceAccounts", "serviceAccount"],
  ["trustDomains", "notTrustDomains", "trustDomain"],
  ["ipBlocks", "notIpBlocks", "sourceIp"],
  ["remoteIpBlocks", "notRemoteIpBlocks", "remoteIp"],
] as const;
const OPERATION_FIELDS = [
  ["hosts", "notHosts", "host"],
  ["ports", "notPorts", "port"],
  ["methods", "notMethods", "method"],
  ["paths", "notPaths", "path"],
] as const;
/** A `from` or `to` entry: its inner key and fields. */
interface ClauseKind {
  readonly inner: "source" | "operation";
  readonly fields: readonly (readonly [string, string, Attr])[];
}
const SOURCE: ClauseKind = { inner: "source", fields: SOURCE_FIELDS };
const OPERATION: ClauseKind = { inner: "operation", fields: OPERATION_FIELDS };
const WHEN_KEYS: Readonly<Record<string, Attr>> = {
  "source.ip": "sourceIp",
  "remote.ip": "remoteIp",
  "source.namespace": "namespace",
  "source.serviceAccount": "serviceAccount",
  "source.trustDomain": "trustDomain",
  "source.principal": "principal",
  "request.auth.principal": "requestPrincipal",
  "request.auth.audiences": "audiences",
  "request.auth.presenter": "presenter",
  "destination.ip": "destinationIp",
  "destination.port": "port",
  "connection.sni": "sni",
};
const WHEN_PREFIXES: readonly [string, Attr][] = [
  ["request.headers", "header"],
  ["request.auth.claims", "claims"],
  ["experimental.envoy.filters.", "envoyFilter"],
];
/** Fields that only exist for HTTP (`model.go`: "is HTTP only"). */
export const HTTP_ONLY: ReadonlySet<Attr> = new Set<Attr>([
  "header",
  "host",
  "method",
  "path",
  "requestPrincipal",
  "audiences",
  "presenter",
  "claims",
]);
/**
 * Reads and checks a policy spec. Type faults land in `head.schema.faults` (the caller skips the
 * policy); admission errors in `head.errors`; advice in `warnings`.
 */
export function readAuthorizationPolicy(head: PolicyHead, warnings: string[]): ReadPolicy {
  const { schema, spec, errors } = head;
  schema.known(spec, "spec", [
    "selector",
    "targetRef",
    "targetRefs",
    "action",
    "provider",
    "rules",
  ]);
  const actionText = schema.text(spec.action, "spec.action") ?? "ALLOW";
  const action = ACTIONS.includes(actionText as Action) ? actionText as Action : undefined;
  if (!action) {
    schema.faults.push(
      `Invalid value: spec.action is ${show(actionText)} (want ${ACTIONS.join(", ")})`,
    );
  }
  const providerSpec = schema.mapping(spec.provider, "spec.provider");
  const provider = schema.text(providerSpec?.name, "spec.provider.name");
  const ruleItems = schema.list(spec.rules, "spec.rules");
  const rules = ruleItems?.map((item, i) => readRule(schema, item, i, errors));
  const dryRun = head.annotations["istio.io/dry-run"];
  if (
    dryRun !== undefined &&
    !["true", "false", "1", "0", "True", "False", "TRUE", "FALSE", "t", "f", "T", "F"].includes(
      dryRun,
    )
  ) {
    warnings.push(
      `Invalid annotation: istio.io/dry-run is ${show(dryRun)}; the policy is enforced`,
    );
  }
  const policy: ReadPolicy = {
    head,
    action: action ?? "ALLOW",
    provider,
    rules,
    dryRun: dryRun !== undefined && ["true", "1", "True", "TRUE", "t", "T"].includes(dryRun),
  };
  checkPolicy(policy, providerSpec !== undefined, errors, warnings);
  return policy;
}

function readRule(schema: Schema, item: unknown, index: number, errors: string[]): ReadRule | null {
  const path = `spec.rules[${index}]`;
  const rule = schema.mapping(item, path);
  if (!rule) {
    errors.push(`\`rule\` must not be nil, found at rule ${index}`);
    return null;
  }
  schema.known(rule, path, ["from", "to", "when"]);
  const from = readClauses(schema, rule.from, `${path}.from`, SOURCE, errors, index);
  const to = readClauses(schema, rule.to, `${path}.to`, OPERATION, errors, index);
  const when: Condition[] = [];
  const unknownKeys: string[] = [];
  (schema.list(rule.when, `${path}.when`) ?? []).forEach((entry, i) => {
    const at = `${path}.when[${i}]`;
    const record = schema.mapping(entry, at);
    if (!record) return;
    schema.known(record, at, ["key", "values", "notValues"]);
    const key = schema.text(record.key, `${at}.key`) ?? "";
    const values = schema.texts(record.values, `${at}.values`) ?? [];
    const notValues = schema.texts(record.notValues, `${at}.notValues`) ?? [];
    if (key === "") return void errors.push("`key` must not be empty");
    if (values.length === 0 && notValues.length === 0) {
      return void errors.push(
        `at least one of \`values\` or \`notValues\` must be set for key ${key}`,
      );
    }
    const attr = attrOfKey(key);
    if (!attr) {
      unknownKeys.push(key);
      return void errors.push(`invalid \`value\` for \`key\` ${key}: unknown attribute: ${key}`);
    }
    const condition = { attr, key, values, notValues, path: at };
    checkWhen(condition, errors);
    when.push(condition);
  });
  return { index, from, to, when, unknownKeys };
}

function readClauses(
  schema: Schema,
  value: unknown,
  path: string,
  kind: ClauseKind,
  errors: string[],
  index: number,
): Condition[][] | undefined {
  const { inner, fields } = kind;
  const items = schema.list(value, path);
  if (!items) return undefined;
  const name = inner === "source" ? "from" : "to";
  if (items.length === 0) errors.push(`\`${name}\` must not be empty, found at rule ${index}`);
  return items.map((item, i) => {
    const at = `${path}[${i}]`;
    const record = schema.mapping(item, at);
    if (record) schema.known(record, at, [inner]);
    const clause = schema.mapping(record?.[inner], `${at}.${inner}`);
    if (!clause) {
      errors.push(`\`${name}.${inner}\` must not be nil, found at rule ${index}`);
      return [];
    }
    schema.known(clause, `${at}.${inner}`, fields.flatMap(([f, n]) => [f, n]));
    const conditions = readFields(schema, clause, `${at}.${inner}`, fields);
    if (conditions.length === 0) {
      errors.push(`\`${name}.${inner}\` must not be empty, found at rule ${index}`);
    }
    for (const c of conditions) checkField(c, errors);
    if (inner === "source") checkServiceAccountMix(conditions, errors, index);
    return conditions;
  });
}

function readFields(
  schema: Schema,
  clause: Fields,
  path: string,
  fields: readonly (readonly [string, string, Attr])[],
): Condition[] {
  const out: Condition[] = [];
  for (const [field, notField, attr] of fields) {
    const values = schema.texts(clause[field], `${path}.${field}`) ?? [];
    const notValues = schema.texts(clause[notField], `${path}.${notField}`) ?? [];
    if (values.length > 0 || notValues.length > 0) {
      out.push({ attr, key: field, values, notValues, path: `${path}.${field}` });
    }
  }
  return out;
}

/** The attribute of a `when` key, or undefined for keys istiod rejects as unknown. */
function attrOfKey(key: string): Attr | undefined {
  if (Object.hasOwn(WHEN_KEYS, key)) return WHEN_KEYS[key];
  return WHEN_PREFIXES.find(([prefix]) => key.startsWith(prefix))?.[1];
}
