/**
 * Builders for route tests: mesh snapshots made directly (no loader), route documents, requests and
 * a seeded random source.
 */
import { HeaderMap, type RequestHead } from "../../http/types.ts";
import type { PortProtocol, Service, ServicePort, Snapshot } from "../../mesh/model.ts";
import { type CompileResult, compileRoutes, type RouteSourceDoc } from "../../routes/mod.ts";

/** Our waypoint Gateway in every test. */
export const GATEWAY = { namespace: "ns1", name: "waypoint" } as const;

/** A port as `[port, protocol, name]`. */
export type PortSpec = readonly [number, PortProtocol?, string?];

/** Options of {@link service}. */
export interface ServiceOptions {
  /** @default true */
  readonly bound?: boolean;
  /** @default "Service" */
  readonly kind?: Service["kind"];
}

/**
 * A Service with one ready endpoint per port.
 *
 * @param key `namespace/name`
 * @param ports Ports, protocol `http` unless given
 */
export function service(
  key: string,
  ports: readonly PortSpec[],
  options: ServiceOptions = {},
): Service {
  const [namespace, name] = key.split("/");
  const servicePorts: ServicePort[] = ports.map(([port, protocol = "http", portName]) => ({
    name: portName ?? `${protocol}-${port}`,
    port,
    protocol,
    endpoints: [{
      address: "10.1.0.1",
      port: port + 8000,
      identity: `spiffe://cluster.local/ns/${namespace}/sa/${name}`,
      workload: { kind: "Pod", namespace, name: `${name}-pod` },
    }],
  }));
  return {
    kind: options.kind ?? "Service",
    namespace,
    name,
    hostname: `${name}.${namespace}.svc.cluster.local`,
    addresses: [],
    ports: servicePorts,
    bound: options.bound ?? true,
    unboundReason: options.bound === false ? "not bound" : "",
  };
}

/** A snapshot holding the given services. */
export function snapshot(services: readonly Service[]): Snapshot {
  return {
    version: 1,
    self: {
      namespace: GATEWAY.namespace,
      name: GATEWAY.name,
      trustDomain: "cluster.local",
      trustDomains: ["cluster.local"],
    },
    gatewayFound: true,
    servicesByAddress: new Map(),
    servicesByName: new Map(services.map((s) => [`${s.namespace}/${s.name}`, s])),
    workloadsByAddress: new Map(),
    problems: [],
  };
}

/** The mesh most tests use: the conformance Services `echo`, `echo-v1`, `echo-v2` in `ns1`. */
export function meshServices(): Service[] {
  return [
    service("ns1/echo", [[80, "http", "http"], [8080, "http", "http-alt"], [9090, "tcp", "tcp"], [
      7070,
      "grpc",
      "grpc",
    ]]),
    service("ns1/echo-v1", [[80], [8080], [9090, "tcp"], [7070, "grpc"]]),
    service("ns1/echo-v2", [[80], [8080], [9090, "tcp"], [7070, "grpc"]]),
    service("ns1/echo-v3", [[80], [7070, "grpc"], [9090, "tcp"]]),
  ];
}

/** Options of a route document. */
export interface DocOptions {
  /** @default "ns1" */
  readonly namespace?: string;
  /** RFC 3339 creationTimestamp. */
  readonly created?: string;
  /** @default 1 */
  readonly line?: number;
  /** @default "gateway.networking.k8s.io/v1" */
  readonly apiVersion?: string;
}

/** A route (or other) document as the loader would hand it over, in `routes.yaml`. */
export function doc(
  kind: string,
  name: string,
  spec: unknown,
  options: DocOptions = {},
): RouteSourceDoc {
  return {
    file: "routes.yaml",
    line: options.line ?? 1,
    object: {
      apiVersion: options.apiVersion ?? "gateway.networking.k8s.io/v1",
      kind,
      metadata: {
        name,
        namespace: options.namespace ?? "ns1",
        ...(options.created ? { creationTimestamp: options.created } : {}),
      },
      spec,
    },
  };
}

/** A parentRef to a Service of the mesh. */
export function parent(name: string, port?: number): Record<string, unknown> {
  return { group: "", kind: "Service", name, ...(port === undefined ? {} : { port }) };
}

/** A backendRef. */
export function backend(name: string, port = 80, weight?: number): Record<string, unknown> {
  return { name, port, ...(weight === undefined ? {} : { weight }) };
}

/** An HTTPRoute attached to `ns1/echo:80` with the given rules. */
export function httpRoute(
  name: string,
  rules: unknown[],
  options: DocOptions = {},
): RouteSourceDoc {
  return doc("HTTPRoute", name, { parentRefs: [parent("echo", 80)], rules }, options);
}

/** Compiles documents against {@link meshServices} (or the given services). */
export function compile(
  docs: readonly RouteSourceDoc[],
  services: readonly Service[] = meshServices(),
): CompileResult {
  return compileRoutes(docs, snapshot(services), { gateway: GATEWAY });
}

/** A request head. */
export function request(
  method: string,
  path: string,
  headers: Record<string, string> | [string, string][] = {},
  authority = "echo",
): RequestHead {
  const fields = Array.isArray(headers) ? headers : Object.entries(headers);
  return {
    method,
    path,
    authority,
    scheme: "http",
    version: "1.1",
    headers: new HeaderMap(fields),
  };
}

/** A deterministic random source in [0, 1) (mulberry32). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The `namespace/name:port` a backend points to, or `500`. */
export function backendName(b: { kind: string; service?: Service; port?: ServicePort }): string {
  return b.kind === "service"
    ? `${b.service!.namespace}/${b.service!.name}:${b.port!.port}`
    : "500";
}
