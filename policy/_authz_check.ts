/**
 * The checks of Istio's admission webhook for AuthorizationPolicy (`ValidateAuthorizationPolicy`,
 * `security.ValidateAttribute`, `CheckServiceAccount`, `CheckValidPathTemplate`), with its
 * messages. They report; they never change what is compiled.
 */
import type { Attr, Condition, ReadPolicy, ReadRule } from "./_authz_read.ts";
import { show } from "./_schema.ts";
import { cidrError, portError } from "./_values.ts";
import { pathTemplateError } from "./path.ts";

/** Source fields that work on TCP (the webhook's `tcpRulesInFrom`). */
const TCP_SOURCE: ReadonlySet<Attr> = new Set<Attr>([
  "principal",
  "namespace",
  "serviceAccount",
  "sourceIp",
  "remoteIp",
]);
/** What CUSTOM does not support (`ValidateAuthorizationPolicy`). */
const NOT_WITH_CUSTOM: ReadonlySet<Attr> = new Set<Attr>([
  "principal",
  "namespace",
  "serviceAccount",
  "trustDomain",
  "requestPrincipal",
]);

export function checkPolicy(
  policy: ReadPolicy,
  hasProvider: boolean,
  errors: string[],
  warnings: string[],
): void {
  const { action, rules, provider } = policy;
  if (action === "CUSTOM") {
    if (rules === undefined) {
      errors.push(
        "CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request",
      );
    } else if (!provider) {
      errors.push("`provider.name` must not be empty");
    }
    for (const rule of rules ?? []) {
      for (const c of [...(rule?.from ?? []).flat(), ...(rule?.when ?? [])]) {
        if (NOT_WITH_CUSTOM.has(c.attr) || c.key.startsWith("request.auth.")) {
          errors.push(`${c.path} is currently not supported with CUSTOM action`);
        }
      }
    }
  }
  if (hasProvider && action !== "CUSTOM") {
    errors.push(`\`provider\` must not be with non CUSTOM action, found ${action}`);
  }
  if (action === "DENY" && rules === undefined) {
    errors.push(
      "DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request",
    );
  }
  if (action === "DENY" && rules?.some(denyOnlyHttp)) {
    warnings.push(
      "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port",
    );
  }
}

/** The webhook's test for a DENY rule that would deny all TCP traffic. */
function denyOnlyHttp(rule: ReadRule | null): boolean {
  if (!rule) return false;
  const fromExists = (rule.from ?? []).length > 0;
  const toExists = (rule.to ?? []).length > 0;
  const tcpInFrom = (rule.from ?? []).flat().some((c) => TCP_SOURCE.has(c.attr));
  const tcpInTo = (rule.to ?? []).flat().some((c) => c.attr === "port");
  return (fromExists && !toExists && !tcpInFrom) || (toExists && !tcpInTo);
}

export function checkServiceAccountMix(
  conditions: readonly Condition[],
  errors: string[],
  index: number,
): void {
  const has = (attr: Attr) => conditions.some((c) => c.attr === attr);
  if ((has("principal") || has("namespace")) && has("serviceAccount")) {
    errors.push(`cannot set serviceAccounts with namespaces or principals, found at rule ${index}`);
  }
}

/** Source and operation field checks. */
export function checkField(c: Condition, errors: string[]): void {
  for (const [list, name] of [[c.values, c.key], [c.notValues, notName(c.key)]] as const) {
    const error = valueError(c.attr, list, name);
    if (error) errors.push(`${error} (${c.path})`);
  }
}

export function checkWhen(c: Condition, errors: string[]): void {
  for (const [list, word] of [[c.values, "value"], [c.notValues, "notValue"]] as const) {
    if (list.length === 0) continue;
    const error = valueError(c.attr, list, c.key) ?? keyError(c);
    if (error) errors.push(`invalid \`${word}\` for \`key\` ${c.key}: ${error}`);
  }
}

function keyError(c: Condition): string | undefined {
  if (c.attr !== "header" && c.attr !== "claims" && c.attr !== "envoyFilter") return undefined;
  const open = c.key.indexOf("[");
  return c.key.endsWith("]") && open > 0 && open < c.key.length - 2
    ? undefined
    : `bad key (${c.key}): should have format a[b]`;
}

/** The first reason a list of values is invalid for an attribute, as `security.go` words it. */
function valueError(attr: Attr, values: readonly string[], name: string): string | undefined {
  if (attr !== "serviceAccount" && values.some((v) => v === "")) {
    return `empty value not allowed, found in ${name}`;
  }
  switch (attr) {
    case "sourceIp":
    case "remoteIp":
    case "destinationIp":
      return values.map(cidrError).find((e) => e !== undefined);
    case "port":
      return values.map(portError).find((e) => e !== undefined);
    case "serviceAccount":
      return serviceAccountError(values, name);
    case "trustDomain":
      return trustDomainError(values, name);
    case "path":
      for (const v of values) {
        const error = pathTemplateError(v);
        if (error) return `invalid or unsupported path ${v}, found in ${name}: ${error}`;
      }
      return undefined;
    default:
      return undefined;
  }
}

function serviceAccountError(values: readonly string[], name: string): string | undefined {
  if (values.length > 16) return "may not have more than 16 values";
  for (const v of values) {
    if (v === "") return `empty value not allowed, found in ${name}`;
    if (v.includes("*")) return `wildcard not allowed, found in ${name}`;
    const parts = v.split("/");
    if (parts.length > 2 || parts.some((p) => p === "")) {
      return `expected format 'serviceAccount' or 'namespace/serviceAccount', found ${
        show(v)
      } in ${name}`;
    }
    if (v.length > 320) return `value cannot exceed 320 characters, found ${show(v)} in ${name}`;
  }
  return undefined;
}

function trustDomainError(values: readonly string[], name: string): string | undefined {
  for (const v of values) {
    const stars = v.split("*").length - 1;
    if (stars > 1) return `at most one wildcard is allowed, found in ${name}: ${show(v)}`;
    if (stars === 1 && v !== "*" && !v.startsWith("*") && !v.endsWith("*")) {
      return `wildcard is only allowed at the start or end, found in ${name}: ${show(v)}`;
    }
    if (v.includes("/")) return `trust domain must not contain '/', found in ${name}: ${show(v)}`;
  }
  return undefined;
}

function notName(field: string): string {
  return `not${field[0].toUpperCase()}${field.slice(1)}`;
}
