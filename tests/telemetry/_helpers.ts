/**
 * Fixtures for the telemetry tests: a small bookinfo-like mesh, request states shaped like the
 * proxy's, and a runner that sends one scripted exchange through the metrics filter the way the
 * proxy does (chain, then the codec reading the response body).
 */
import {
  type Body,
  bytesBody,
  compose,
  EMPTY_BODY,
  type Filter,
  HeaderMap,
  HttpContext,
  readAll,
  type RequestHead,
  runChain,
} from "../../http/mod.ts";
import type { Destination, Endpoint, Snapshot } from "../../mesh/mod.ts";
import type { CompiledTelemetry } from "../../telemetry/mod.ts";
import {
  IstioMetrics,
  metricsFilter,
  type MetricsFilterOptions,
  type MetricsState,
} from "../../telemetry/mod.ts";
import * as k8s from "../fixtures/mesh/builders.ts";

const USE = { "istio.io/use-waypoint": "waypoint" };
const port = (name: string, number: number) => ({ name, port: number, targetPort: number });

/** Deployment-style pod names, so the owner name is derived from `pod-template-hash`. */
const YAML = k8s.yamlDocs(
  k8s.gateway(),
  k8s.namespace("mesh", USE),
  k8s.service("mesh", "reviews", "10.0.0.5", { ports: [port("http", 9080)] }),
  k8s.service("mesh", "echo", "10.0.0.6", { ports: [port("grpc", 9090)] }),
  k8s.service("mesh", "db", "10.0.0.7", { ports: [port("tcp-db", 5432)] }),
  k8s.pod("mesh", "reviews-v1-5d8f9c7b4-x2x9q", "10.1.0.1", {
    serviceAccount: "bookinfo-reviews",
    labels: { app: "reviews", version: "v1", "pod-template-hash": "5d8f9c7b4" },
  }),
  k8s.pod("mesh", "echo-0", "10.1.0.2", {
    serviceAccount: "echo",
    labels: {
      app: "echo",
      "service.istio.io/canonical-revision": "2024-1",
      "statefulset.kubernetes.io/pod-name": "echo-0",
    },
  }),
  k8s.pod("mesh", "db-7c9d8f6b5-abcde", "10.1.0.3", {
    serviceAccount: "db",
    labels: { app: "db", "pod-template-hash": "7c9d8f6b5" },
  }),
  k8s.pod("mesh", "productpage-v1-6b746f74dc-9stvs", "10.2.0.1", {
    serviceAccount: "bookinfo-productpage",
    labels: { app: "productpage", version: "v1", "pod-template-hash": "6b746f74dc" },
  }),
);

/** The snapshot every telemetry test uses. */
export const MESH: Snapshot = (() => {
  const built = k8s.snapshotFromYaml(YAML);
  const errors = built.problems.filter((p) => p.severity === "error");
  if (errors.length > 0) throw new Error(`Bad fixture: ${JSON.stringify(errors)}`);
  return built.snapshot;
})();

export const PRODUCTPAGE_ID = "spiffe://cluster.local/ns/mesh/sa/bookinfo-productpage";
export const PRODUCTPAGE_CLIENT = "10.2.0.1:41000";

/** The CONNECT destination of a service's first port. */
export function serviceDestination(name: string): Destination {
  const service = MESH.servicesByName.get(`mesh/${name}`);
  if (!service) throw new Error(`No service mesh/${name}`);
  return { kind: "service", service, port: service.ports[0] };
}

/** The first endpoint of a service. */
export function endpointOf(name: string): Endpoint {
  const ep = serviceDestination(name);
  if (ep.kind !== "service" || !ep.port.endpoints[0]) throw new Error(`No endpoint: ${name}`);
  return ep.port.endpoints[0];
}

/** Request state as the proxy builds it (the part the filter reads, plus mutable slots). */
export interface TestState extends MetricsState {
  endpoint?: Endpoint;
  policy?: string;
}

/** A connection: peer object shared by its requests. */
export function connection(options: {
  service: string;
  identity?: string;
  client?: string;
  baggage?: string;
  /** Compiled Telemetry resources of the request's config. */
  telemetry?: CompiledTelemetry;
}): () => TestState {
  const peer = { identity: options.identity ?? PRODUCTPAGE_ID, address: "10.9.9.9", port: 15008 };
  const destination = serviceDestination(options.service);
  return () => ({
    config: { mesh: MESH, telemetry: options.telemetry },
    destination,
    target: targetOf(destination),
    requestId: "4b0b1d9e-7c4a-4f6e-9a51-0d3f1b2c3d4e",
    peer,
    client: options.client ?? PRODUCTPAGE_CLIENT,
    baggage: options.baggage,
  });
}

/** The CONNECT target of a service destination: its VIP and port. */
function targetOf(d: Destination): { address: string; port: number } {
  if (d.kind !== "service") throw new Error("Service destinations only");
  return { address: d.service.addresses[0], port: d.port.port };
}

/** A request head. */
export function request(
  method: string,
  path: string,
  fields: [string, string][] = [],
): RequestHead {
  return {
    method,
    path,
    authority: "reviews.mesh.svc.cluster.local:9080",
    scheme: "http",
    version: "1.1",
    headers: new HeaderMap([["host", "reviews.mesh.svc.cluster.local:9080"], ...fields]),
  };
}

/** A controllable clock: `at` is what the next `now()` returns. */
export class TestClock {
  at = 0;
  readonly now = (): number => this.at;
}

/** Runs requests through `metricsFilter` and a scripted inner filter. */
export class Harness {
  readonly metrics: IstioMetrics;
  readonly clock = new TestClock();
  readonly #filter: Filter<TestState>;

  constructor(
    metrics = new IstioMetrics({ cluster: "Kubernetes" }),
    options: Omit<MetricsFilterOptions, "now"> = {},
  ) {
    this.metrics = metrics;
    this.#filter = metricsFilter<TestState>(metrics, { ...options, now: this.clock.now });
  }

  /**
   * One exchange: the chain runs at time 0, the response body is read to its end at
   * `durationMs` (unless `consume` is false), like a codec sending it.
   */
  async send(
    state: TestState,
    head: RequestHead,
    inner: Filter<TestState>,
    options: { durationMs?: number; body?: Uint8Array | Body; consume?: boolean } = {},
  ): Promise<HttpContext<TestState>> {
    this.clock.at = options.durationMs ?? 1;
    const body = options.body instanceof Uint8Array
      ? bytesBody(options.body)
      : options.body ?? EMPTY_BODY;
    const ctx = new HttpContext<TestState>({ head, body }, state, 0);
    await runChain(compose([this.#filter, inner]), ctx);
    if (options.consume !== false) await readAll(ctx.response!.body, 1 << 20);
    return ctx;
  }
}

/** gRPC length-prefixed messages of the given payload sizes. */
export function grpcFrames(...sizes: number[]): Uint8Array {
  const out = new Uint8Array(sizes.reduce((n, s) => n + 5 + s, 0));
  let at = 0;
  for (const s of sizes) {
    new DataView(out.buffer).setUint32(at + 1, s);
    at += 5 + s;
  }
  return out;
}
