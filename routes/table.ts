/**
 * The compiled route table: lookups by Service `namespace/name` and port, built once per snapshot.
 *
 * Invariants:
 * - At most one route kind answers for a Service port: `httpRoutesFor` and `tcpRoutesFor` never
 *   both return a value for the same key (kind conflicts are settled at compile time).
 * - The table and everything reachable from it are frozen.
 */
import type {
  CompiledHttpRoutes,
  CompiledTcpRoute,
  GrpcMatch,
  HttpMatch,
  RouteTable,
  StringMatcher,
} from "./model.ts";

/** The lookup key of a Service port. */
export function portKey(serviceKey: string, port: number): string {
  return `${serviceKey}:${port}`;
}

class FrozenRouteTable implements RouteTable {
  readonly #http: ReadonlyMap<string, CompiledHttpRoutes>;
  readonly #tcp: ReadonlyMap<string, CompiledTcpRoute>;

  constructor(http: Iterable<CompiledHttpRoutes>, tcp: Iterable<CompiledTcpRoute>) {
    this.#http = new Map([...http].map((r) => [portKey(r.service, r.port), r]));
    this.#tcp = new Map([...tcp].map((r) => [portKey(r.service, r.port), r]));
    Object.freeze(this);
  }

  httpRoutesFor(serviceKey: string, port: number): CompiledHttpRoutes | undefined {
    return this.#http.get(portKey(serviceKey, port));
  }

  tcpRoutesFor(serviceKey: string, port: number): CompiledTcpRoute | undefined {
    return this.#tcp.get(portKey(serviceKey, port));
  }

  toJSON(): unknown {
    const http = [...this.#http.values()].map((r) => ({
      service: r.service,
      port: r.port,
      kind: r.kind,
      entries: r.entries.map((e) => ({
        route: `${e.rule.route.kind} ${e.rule.route.namespace}/${e.rule.route.name}`,
        rule: e.rule.index,
        match: describeMatch(e.match),
        backends: e.rule.backends.map((b) => describeBackend(b.weight, b.backend)),
      })),
    }));
    const tcp = [...this.#tcp.values()].map((r) => ({
      service: r.service,
      port: r.port,
      kind: "TCPRoute",
      route: `TCPRoute ${r.route.namespace}/${r.route.name}`,
      backends: r.backends.map((b) => describeBackend(b.weight, b.backend)),
    }));
    return [...http, ...tcp].sort((a, b) =>
      a.service < b.service ? -1 : a.service > b.service ? 1 : a.port - b.port
    );
  }
}

/**
 * Builds a frozen table.
 *
 * @param http Compiled HTTP/gRPC routes, one per Service port
 * @param tcp Compiled TCP routes, one per Service port
 * @returns The table
 */
export function makeRouteTable(
  http: Iterable<CompiledHttpRoutes>,
  tcp: Iterable<CompiledTcpRoute>,
): RouteTable {
  return new FrozenRouteTable(http, tcp);
}

/** A table with no routes: every Service port is served as plain Service traffic. */
export const EMPTY_ROUTE_TABLE: RouteTable = makeRouteTable([], []);

function describeMatch(m: HttpMatch | GrpcMatch): string {
  if (m.kind === "grpc") {
    const parts = [`service ${describe(m.service)}`, `method ${describe(m.method)}`];
    return [...parts, ...m.headers.map((h) => `header ${h.name} ${describe(h.matcher)}`)].join(
      ", ",
    );
  }
  return [
    `${m.path.type} ${m.path.value}`,
    ...(m.method ? [`method ${m.method}`] : []),
    ...m.headers.map((h) => `header ${h.name} ${describe(h.matcher)}`),
    ...m.queryParams.map((q) => `query ${q.name} ${describe(q.matcher)}`),
  ].join(", ");
}

function describe(m: StringMatcher | undefined): string {
  if (!m) return "*";
  return m.type === "Exact" ? JSON.stringify(m.value) : `~${JSON.stringify(m.value)}`;
}

function describeBackend(
  weight: number,
  b: CompiledTcpRoute["backends"][number]["backend"],
): string {
  const target = b.kind === "service"
    ? `${b.service.namespace}/${b.service.name}:${b.port.port}`
    : `500 (${b.reason})`;
  return `${weight} ${target}`;
}
