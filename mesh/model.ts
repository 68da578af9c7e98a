/**
 * The compiled mesh model the request path reads: services, workloads and endpoints indexed by
 * address, with binding to this waypoint already decided at load time.
 *
 * Invariants:
 * - Everything here is plain, frozen data built by the loader; the request path never mutates it.
 * - Addresses are canonical text (`10.0.0.1`, `fd00::1` without brackets).
 * - `bound` on a service or workload answers "does traffic to it use this waypoint", including the
 *   waypoint-for kind and cross-namespace `allowedRoutes` checks.
 */

/** How the bytes on a port are treated (hbone.md §3.5). */
export type PortProtocol = "http" | "http2" | "grpc" | "tcp" | "tls" | "unknown";

/** Who this waypoint is. */
export interface WaypointSelf {
  readonly namespace: string;
  readonly name: string;
  /** Trust domain of our own identity. */
  readonly trustDomain: string;
  /** Trust domains accepted from peers: ours plus aliases. */
  readonly trustDomains: readonly string[];
}

/**
 * Reference to the object behind an endpoint, for logs and telemetry. `ServiceEntry` stands for an
 * inline `spec.endpoints` entry, which has no object of its own.
 */
export interface WorkloadRef {
  readonly kind: "Pod" | "WorkloadEntry" | "ServiceEntry";
  readonly namespace: string;
  readonly name: string;
}

/** A workload (Pod or WorkloadEntry) known by its address. */
export interface Workload extends WorkloadRef {
  readonly kind: "Pod" | "WorkloadEntry";
  /** Primary IP; a dual-stack Pod is indexed under each of its IPs. */
  readonly address: string;
  readonly serviceAccount: string;
  /** `spiffe://<td>/ns/<ns>/sa/<sa>` */
  readonly identity: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Whether the waypoint considers traffic to this IP as its own (workload binding). */
  readonly bound: boolean;
  /** Why it is not bound, for 404 logs; empty when bound. */
  readonly unboundReason: string;
  /** Pod readiness or WorkloadEntry health; unready endpoints get no traffic. */
  readonly ready: boolean;
  /**
   * Protocol of each target port, from the first Service or ServiceEntry (by namespace/name) whose
   * endpoints include this workload at that port; a port not listed is `unknown`.
   */
  readonly portProtocols: ReadonlyMap<number, PortProtocol>;
}

/** One endpoint of a service port: where a connection actually goes. */
export interface Endpoint {
  /** Pod or WorkloadEntry IP. */
  readonly address: string;
  /** Target port on that workload. */
  readonly port: number;
  /** The SPIFFE identity the destination ztunnel must present for this workload. */
  readonly identity: string;
  readonly workload: WorkloadRef;
}

/** One port of a service with its resolved protocol and endpoints. */
export interface ServicePort {
  readonly name: string;
  readonly port: number;
  readonly protocol: PortProtocol;
  /** Ready endpoints for this port; target ports already resolved per endpoint. */
  readonly endpoints: readonly Endpoint[];
}

/** A Kubernetes Service or Istio ServiceEntry. */
export interface Service {
  readonly kind: "Service" | "ServiceEntry";
  readonly namespace: string;
  readonly name: string;
  /** FQDN, e.g. `reviews.default.svc.cluster.local`, or the ServiceEntry's first host. */
  readonly hostname: string;
  readonly addresses: readonly string[];
  readonly ports: readonly ServicePort[];
  readonly bound: boolean;
  readonly unboundReason: string;
}

/** A problem found while loading, located for the user. */
export interface Problem {
  readonly severity: "error" | "warning";
  /** `file:line` or a Kubernetes name such as `Service default/reviews`. */
  readonly where: string;
  /** `Kind namespace/name` when the problem belongs to one resource. */
  readonly resource?: string;
  readonly message: string;
}

/** The immutable view of the mesh that one request keeps from start to end. */
export interface Snapshot {
  /** Increases by one with each successful load. */
  readonly version: number;
  readonly self: WaypointSelf;
  /** Whether our Gateway was found in the config. Without it nothing is bound. */
  readonly gatewayFound: boolean;
  /** Services by every address (VIP) they have. */
  readonly servicesByAddress: ReadonlyMap<string, Service>;
  /** Services by `namespace/name` (ServiceEntries too). */
  readonly servicesByName: ReadonlyMap<string, Service>;
  /** Workloads by IP. */
  readonly workloadsByAddress: ReadonlyMap<string, Workload>;
  /** Non-fatal problems of the load that built this snapshot. */
  readonly problems: readonly Problem[];
}

/** What a CONNECT target resolved to. */
export type Destination =
  | {
    readonly kind: "service";
    readonly service: Service;
    readonly port: ServicePort;
  }
  | {
    readonly kind: "workload";
    readonly workload: Workload;
    readonly port: number;
    readonly protocol: PortProtocol;
    /** The workload itself as the single endpoint. */
    readonly endpoint: Endpoint;
  };

/** The answer to "may this waypoint carry traffic to ip:port?". */
export type Binding =
  | { readonly ok: true; readonly destination: Destination }
  | { readonly ok: false; readonly reason: string };
