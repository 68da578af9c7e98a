/**
 * Gateway API precedence across all rules of all routes of one kind attached to one Service port.
 * Precedence is per match (a rule with two matches sits at two places), as in Istio, which splits
 * each rule into one route per match before sorting (`route_collections.go`, `sortHTTPRoutes`).
 *
 * HTTPRoute (`HTTPRouteRule.matches` doc), continuing on ties:
 * 1. path type: Exact, then PathPrefix, then RegularExpression. The API leaves regex precedence to
 *    the implementation; like Istio's `getURIRank` we put it after every prefix match;
 * 2. longer path value (PathPrefix counted without its trailing `/`; regexes by pattern length);
 * 3. a method match; 4. more header matches; 5. more query parameter matches.
 *
 * GRPCRoute (`GRPCRouteRule.matches` doc): more characters in the service, then in the method,
 * then more header matches.
 *
 * Then, for both: the oldest route (creationTimestamp; a route without one counts as newest),
 * `namespace/name` alphabetically, the rule's position, the match's position.
 */
import type { GrpcMatch, HttpMatch, HttpRule } from "./model.ts";

/** A (rule, match) pair with what the tie-breakers need. */
export interface RankedEntry {
  readonly rule: HttpRule;
  readonly match: HttpMatch | GrpcMatch;
  /** Position of the match within its rule. */
  readonly matchIndex: number;
  /** creationTimestamp in ms since the epoch; undefined when not written. */
  readonly created: number | undefined;
}

const PATH_RANK = { Exact: 3, PathPrefix: 2, RegularExpression: 1 } as const;

/**
 * Sorts entries by precedence, highest first.
 *
 * @param entries Pairs of every attached route of one kind
 * @returns A new sorted array
 */
export function byPrecedence<E extends RankedEntry>(entries: readonly E[]): E[] {
  return [...entries].sort((a, b) => compareMatch(a.match, b.match) || compareTies(a, b));
}

function compareMatch(a: HttpMatch | GrpcMatch, b: HttpMatch | GrpcMatch): number {
  if (a.kind === "http" && b.kind === "http") return compareHttp(a, b);
  if (a.kind === "grpc" && b.kind === "grpc") return compareGrpc(a, b);
  return 0;
}

function compareHttp(a: HttpMatch, b: HttpMatch): number {
  return PATH_RANK[b.path.type] - PATH_RANK[a.path.type] ||
    b.path.value.length - a.path.value.length ||
    Number(b.method !== undefined) - Number(a.method !== undefined) ||
    b.headers.length - a.headers.length ||
    b.queryParams.length - a.queryParams.length;
}

function compareGrpc(a: GrpcMatch, b: GrpcMatch): number {
  return (b.service?.value.length ?? 0) - (a.service?.value.length ?? 0) ||
    (b.method?.value.length ?? 0) - (a.method?.value.length ?? 0) ||
    b.headers.length - a.headers.length;
}

function compareTies(a: RankedEntry, b: RankedEntry): number {
  const ageA = a.created ?? Infinity;
  const ageB = b.created ?? Infinity;
  if (ageA !== ageB) return ageA < ageB ? -1 : 1;
  const nameA = `${a.rule.route.namespace}/${a.rule.route.name}`;
  const nameB = `${b.rule.route.namespace}/${b.rule.route.name}`;
  if (nameA !== nameB) return nameA < nameB ? -1 : 1;
  return a.rule.index - b.rule.index || a.matchIndex - b.matchIndex;
}
