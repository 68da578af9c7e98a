/**
 * Compiling one rule of an HTTPRoute, GRPCRoute or TCPRoute into plain data: matches, filters,
 * weighted backends, timeouts and retry. Any problem that the CRD validation or Istio would refuse
 * throws, and the caller skips the whole route (Istio drops every rule of a route whose conversion
 * fails, `route_collections.go` `computeRoute`).
 */
import type {
  Backend,
  GrpcMatch,
  HasBackends,
  HttpMatch,
  HttpRule,
  RetryPolicy,
  Timeouts,
} from "./model.ts";
import { invalid } from "./_problems.ts";
import { type Fields, integer, items, record, show, text } from "./_read.ts";
import { type RefContext, resolveBackendRefs } from "./_backends.ts";
import { BACKEND_FILTERS, compileFilters, GRPC_FILTERS, HTTP_FILTERS } from "./_filter_compile.ts";
import { compileGrpcMatches, compileHttpMatches } from "./_match_compile.ts";
import { parseDuration } from "./_duration.ts";
import { DEFAULT_BACKOFF_MS, DEFAULT_RETRY } from "./retry.ts";

/** A compiled rule with its matches, before precedence sorting. */
export interface CompiledRule {
  readonly rule: HttpRule;
  readonly matches: readonly (HttpMatch | GrpcMatch)[];
}

/**
 * Compiles one HTTPRoute rule.
 *
 * @param r The rule mapping
 * @param index Its position in `rules`
 * @param ctx Snapshot, route, grants and warnings
 * @returns The rule and its matches
 * @throws RouteConfigError when the rule is invalid
 */
export function compileHttpRule(r: Fields, index: number, ctx: RefContext): CompiledRule {
  const path = `spec.rules[${index}]`;
  const matches = compileHttpMatches(r.matches, `${path}.matches`);
  const filters = compileFilters(r.filters, `${path}.filters`, HTTP_FILTERS, ctx);
  const redirects = filters.some((f) => f.type === "RequestRedirect");
  if (redirects && items(r.backendRefs, `${path}.backendRefs`).length > 0) {
    invalid(
      "InvalidFilter",
      `${path} has a RequestRedirect filter and backendRefs, which exclude each other`,
    );
  }
  const prefixReplaced = filters.some((f) =>
    (f.type === "RequestRedirect" && f.redirect.path?.type === "ReplacePrefixMatch") ||
    (f.type === "URLRewrite" && f.rewrite.path?.type === "ReplacePrefixMatch")
  );
  if (prefixReplaced && (matches.length !== 1 || matches[0].path.type !== "PathPrefix")) {
    invalid(
      "InvalidFilter",
      `${path} uses ReplacePrefixMatch, which needs exactly one PathPrefix match`,
    );
  }
  const rule: HttpRule = Object.freeze({
    route: ctx.route,
    index,
    name: text(r.name, `${path}.name`) || undefined,
    filters,
    backends: resolveBackendRefs(r.backendRefs, `${path}.backendRefs`, ctx, backendFilters(ctx)),
    timeouts: timeouts(record(r.timeouts, `${path}.timeouts`), `${path}.timeouts`),
    retry: retry(record(r.retry, `${path}.retry`), `${path}.retry`),
  });
  return Object.freeze({ rule, matches });
}

/**
 * Compiles one GRPCRoute rule. GRPCRoute has no timeouts or retry stanza, so the rule gets none and
 * the default retry policy.
 *
 * @param r The rule mapping
 * @param index Its position in `rules`
 * @param ctx Snapshot, route, grants and warnings
 * @returns The rule and its matches
 * @throws RouteConfigError when the rule is invalid
 */
export function compileGrpcRule(r: Fields, index: number, ctx: RefContext): CompiledRule {
  const path = `spec.rules[${index}]`;
  const rule: HttpRule = Object.freeze({
    route: ctx.route,
    index,
    name: text(r.name, `${path}.name`) || undefined,
    filters: compileFilters(r.filters, `${path}.filters`, GRPC_FILTERS, ctx),
    backends: resolveBackendRefs(r.backendRefs, `${path}.backendRefs`, ctx, backendFilters(ctx)),
    timeouts: Object.freeze({}),
    retry: DEFAULT_RETRY,
  });
  return Object.freeze({ rule, matches: compileGrpcMatches(r.matches, `${path}.matches`) });
}

/**
 * Compiles the single rule of a TCPRoute.
 *
 * @param rules The `rules` list as written
 * @param ctx Snapshot, route, grants and warnings
 * @returns Its weighted backends
 * @throws RouteConfigError unless there is exactly one rule
 */
export function compileTcpRule(rules: readonly [unknown, string][], ctx: RefContext): HasBackends {
  if (rules.length !== 1) {
    invalid("UnsupportedValue", `spec.rules has ${rules.length} rules (want exactly 1)`);
  }
  const [rule, path] = rules[0];
  const r = record(rule, path, true)!;
  return Object.freeze({ backends: resolveBackendRefs(r.backendRefs, `${path}.backendRefs`, ctx) });
}

function backendFilters(ctx: RefContext) {
  return (backend: Backend, ref: Fields, path: string): Backend => {
    const filters = compileFilters(ref.filters, `${path}.filters`, BACKEND_FILTERS, ctx);
    if (backend.kind !== "service" || filters.length === 0) return backend;
    return Object.freeze({ ...backend, filters });
  };
}

function timeouts(t: Fields | undefined, path: string): Timeouts {
  if (!t) return Object.freeze({});
  const requestMs = duration(t.request, `${path}.request`);
  const backendRequestMs = duration(t.backendRequest, `${path}.backendRequest`);
  if (requestMs && backendRequestMs && backendRequestMs > requestMs) {
    invalid("UnsupportedValue", `${path}.backendRequest is longer than ${path}.request`);
  }
  // `0s` disables a timeout (GEP-1742); Istio then sets none.
  return Object.freeze({
    requestMs: requestMs || undefined,
    backendRequestMs: backendRequestMs || undefined,
  });
}

function retry(r: Fields | undefined, path: string): RetryPolicy {
  if (!r) return DEFAULT_RETRY;
  const codes = items(r.codes, `${path}.codes`).map(([c, at]) =>
    integer(c, at, 400, 599) ?? invalid("UnsupportedValue", `${at} is missing`)
  );
  return Object.freeze({
    attempts: integer(r.attempts, `${path}.attempts`, 0, 2 ** 31 - 1) ?? DEFAULT_RETRY.attempts,
    codes: Object.freeze(codes),
    backoffMs: duration(r.backoff, `${path}.backoff`) ?? DEFAULT_BACKOFF_MS,
  });
}

function duration(value: unknown, path: string): number | undefined {
  const written = text(value, path);
  if (written === undefined) return undefined;
  const ms = parseDuration(written);
  if (ms === undefined) {
    invalid(
      "UnsupportedValue",
      `${path} is ${show(written)} (want a GEP-2257 duration such as 1h30m or 500ms)`,
    );
  }
  return ms;
}
