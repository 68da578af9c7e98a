/**
 * Compiling HTTPRoute and GRPCRoute matches (gateway-api `HTTPRouteMatch`, `GRPCRouteMatch`).
 *
 * - An omitted `matches` is one match of `PathPrefix /` (the CRD default), and an omitted `path` is
 *   `PathPrefix /` too; a GRPCRoute rule without matches matches every request.
 * - PathPrefix drops a trailing `/` (except for `/` itself), as the API says the trailing `/` is
 *   ignored and Istio trims it before Envoy's `path_separated_prefix`.
 * - Header names are compared case-insensitively and query parameter names exactly; when a name
 *   repeats, only the first entry counts ("Subsequent entries with an equivalent name MUST be
 *   ignored").
 */
import type { GrpcMatch, HttpMatch, NamedMatcher, PathMatcher, StringMatcher } from "./model.ts";
import { invalid } from "./_problems.ts";
import { type Fields, oneOf, record, records, requiredText, show, text } from "./_read.ts";
import { compileRegex } from "./_regex.ts";

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
const MATCH_TYPES = ["Exact", "RegularExpression"] as const;
// Exact gRPC names must be valid identifiers (GRPCMethodMatch CRD rules).
const GRPC_SERVICE = /^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

/** The match an omitted `matches` stands for. */
const DEFAULT_HTTP_MATCH: Fields = Object.freeze({});

/**
 * Compiles the `matches` of an HTTPRoute rule.
 *
 * @param value The list as written
 * @param path Its field path
 * @returns At least one match
 * @throws RouteConfigError on a bad path, regex, method or matcher type
 */
export function compileHttpMatches(value: unknown, path: string): readonly HttpMatch[] {
  const written = records(value, path);
  const list: [Fields, string][] = written.length > 0 ? written : [[DEFAULT_HTTP_MATCH, path]];
  return Object.freeze(list.map(([m, at]) => httpMatch(m, at)));
}

/**
 * Compiles the `matches` of a GRPCRoute rule.
 *
 * @param value The list as written
 * @param path Its field path
 * @returns At least one match (an empty one matches every request)
 * @throws RouteConfigError on a bad service, method, regex or matcher type
 */
export function compileGrpcMatches(value: unknown, path: string): readonly GrpcMatch[] {
  const written = records(value, path);
  const list: [Fields, string][] = written.length > 0 ? written : [[DEFAULT_HTTP_MATCH, path]];
  return Object.freeze(list.map(([m, at]) => grpcMatch(m, at)));
}

function httpMatch(m: Fields, path: string): HttpMatch {
  const method = text(m.method, `${path}.method`);
  if (method !== undefined && !METHODS.includes(method)) {
    invalid(
      "UnsupportedValue",
      `${path}.method is ${show(method)} (want one of ${METHODS.join(", ")})`,
    );
  }
  return Object.freeze({
    kind: "http",
    path: pathMatcher(record(m.path, `${path}.path`) ?? {}, `${path}.path`),
    method,
    headers: named(m.headers, `${path}.headers`, true),
    queryParams: named(m.queryParams, `${path}.queryParams`, false),
  });
}

function pathMatcher(p: Fields, path: string): PathMatcher {
  const type = oneOf(
    p.type,
    `${path}.type`,
    ["Exact", "PathPrefix", "RegularExpression"],
    "PathPrefix",
  );
  const value = text(p.value, `${path}.value`) ?? "/";
  if (type === "RegularExpression") {
    return Object.freeze({ type, value, regex: regex(value, `${path}.value`) });
  }
  if (!value.startsWith("/") || value.includes("//")) {
    invalid(
      "UnsupportedValue",
      `${path}.value ${show(value)} must start with / and not contain //`,
    );
  }
  const trimmed = type === "PathPrefix" && value.length > 1 && value.endsWith("/")
    ? value.slice(0, -1)
    : value;
  return Object.freeze({ type, value: trimmed });
}

function grpcMatch(m: Fields, path: string): GrpcMatch {
  const headers = named(m.headers, `${path}.headers`, true);
  const method = record(m.method, `${path}.method`);
  if (!method) return Object.freeze({ kind: "grpc", headers });
  const at = `${path}.method`;
  const type = oneOf(method.type, `${at}.type`, MATCH_TYPES, "Exact");
  const service = text(method.service, `${at}.service`) || undefined;
  const name = text(method.method, `${at}.method`) || undefined;
  if (service === undefined && name === undefined) {
    invalid("UnsupportedValue", `${at} needs a service or a method`);
  }
  if (type === "Exact" && service !== undefined && !GRPC_SERVICE.test(service)) {
    invalid("UnsupportedValue", `${at}.service ${show(service)} is not a valid gRPC service name`);
  }
  if (type === "Exact" && name !== undefined && !GRPC_METHOD.test(name)) {
    invalid("UnsupportedValue", `${at}.method ${show(name)} is not a valid gRPC method name`);
  }
  return Object.freeze({
    kind: "grpc",
    service: service === undefined ? undefined : stringMatcher(type, service, `${at}.service`),
    method: name === undefined ? undefined : stringMatcher(type, name, `${at}.method`),
    headers,
  });
}

function named(value: unknown, path: string, isHeader: boolean): readonly NamedMatcher[] {
  const out = new Map<string, NamedMatcher>();
  for (const [m, at] of records(value, path)) {
    const written = requiredText(m.name, `${at}.name`);
    const name = isHeader ? written.toLowerCase() : written;
    const type = oneOf(m.type, `${at}.type`, MATCH_TYPES, "Exact");
    const matcher = stringMatcher(type, text(m.value, `${at}.value`) ?? "", `${at}.value`);
    if (!out.has(name)) out.set(name, Object.freeze({ name, matcher }));
  }
  return Object.freeze([...out.values()]);
}

function stringMatcher(
  type: (typeof MATCH_TYPES)[number],
  value: string,
  path: string,
): StringMatcher {
  return type === "Exact"
    ? Object.freeze({ type, value })
    : Object.freeze({ type, value, regex: regex(value, path) });
}

function regex(pattern: string, path: string): RegExp {
  const compiled = compileRegex(pattern);
  if (!compiled.ok) return invalid("UnsupportedValue", `${path} ${compiled.reason}`);
  return compiled.regex;
}
