/**
 * The resources as users write them: minimal subsets of the Kubernetes, Istio and Gateway API
 * schemas that `mesh/` reads, plus which apiVersion/kind pairs it reads, keeps for later
 * compilers, or does not know.
 *
 * These types describe objects that passed `_check.ts`; before that a document is a
 * {@link KubeObject} of unknown shape. Fields Kubernetes defaults are optional here.
 */

/** A parsed YAML document (or `List` item) of unknown shape beyond apiVersion and kind. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly [field: string]: unknown;
}

/** One resource and where it was written. */
export interface SourceDoc {
  /** File path as given to the loader, or a label such as `<inline>`. */
  readonly file: string;
  /** 1-based line where the document (or `List` item) starts. */
  readonly line: number;
  readonly object: KubeObject;
}

/** `metadata` as far as we read it. */
export interface ObjectMeta {
  readonly name: string;
  /** Absent means `default` for namespaced kinds. */
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Kubernetes `metav1.LabelSelector`. */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

/** One `matchExpressions` entry. */
export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  readonly values?: readonly string[];
}

/** `v1` Namespace. */
export interface NamespaceResource extends KubeObject {
  readonly kind: "Namespace";
  readonly metadata: ObjectMeta;
}

/** One entry of a Service's `spec.ports`. */
export interface ServicePortSpec {
  readonly name?: string;
  readonly port: number;
  /** Number, or the name of a container port. Absent means `port`. */
  readonly targetPort?: number | string;
  readonly appProtocol?: string;
  /** L4 protocol. @default "TCP" */
  readonly protocol?: "TCP" | "UDP" | "SCTP";
}

/** `v1` Service. */
export interface ServiceResource extends KubeObject {
  readonly kind: "Service";
  readonly metadata: ObjectMeta;
  readonly spec?: {
    readonly type?: string;
    /** An IP or `None` (headless). */
    readonly clusterIP?: string;
    readonly clusterIPs?: readonly string[];
    readonly ports?: readonly ServicePortSpec[];
    readonly selector?: Readonly<Record<string, string>>;
  };
}

/** `v1` Pod. */
export interface PodResource extends KubeObject {
  readonly kind: "Pod";
  readonly metadata: ObjectMeta;
  readonly spec?: {
    readonly serviceAccountName?: string;
    /** Deprecated alias of serviceAccountName. */
    readonly serviceAccount?: string;
    readonly hostNetwork?: boolean;
    readonly containers?: readonly {
      readonly name?: string;
      readonly ports?: readonly { readonly name?: string; readonly containerPort: number }[];
    }[];
  };
  readonly status?: {
    readonly phase?: string;
    readonly podIP?: string;
    readonly podIPs?: readonly { readonly ip: string }[];
    readonly conditions?: readonly { readonly type: string; readonly status: string }[];
  };
}

/** `discovery.k8s.io/v1` EndpointSlice. */
export interface EndpointSliceResource extends KubeObject {
  readonly kind: "EndpointSlice";
  readonly metadata: ObjectMeta;
  readonly addressType: "IPv4" | "IPv6" | "FQDN";
  readonly endpoints?: readonly {
    readonly addresses: readonly string[];
    readonly conditions?: { readonly ready?: boolean };
    readonly targetRef?: {
      readonly kind?: string;
      readonly name?: string;
      readonly namespace?: string;
    };
  }[];
  readonly ports?: readonly { readonly name?: string; readonly port?: number }[];
}

/** One entry of a ServiceEntry's `spec.ports`. */
export interface ServiceEntryPortSpec {
  readonly number: number;
  readonly name?: string;
  /** HTTP, HTTP2, GRPC, TCP, TLS, HTTPS, MONGO… */
  readonly protocol?: string;
  readonly targetPort?: number;
}

/** A WorkloadEntry spec, also the shape of a ServiceEntry inline endpoint. */
export interface WorkloadEntrySpec {
  readonly address?: string;
  /** Service port name → port on this endpoint. */
  readonly ports?: Readonly<Record<string, number>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly serviceAccount?: string;
}

/** `networking.istio.io` ServiceEntry (v1, v1beta1, v1alpha3). */
export interface ServiceEntryResource extends KubeObject {
  readonly kind: "ServiceEntry";
  readonly metadata: ObjectMeta;
  readonly spec: {
    readonly hosts: readonly string[];
    readonly addresses?: readonly string[];
    readonly ports?: readonly ServiceEntryPortSpec[];
    readonly resolution?: string;
    readonly workloadSelector?: { readonly labels?: Readonly<Record<string, string>> };
    readonly endpoints?: readonly WorkloadEntrySpec[];
  };
}

/** `networking.istio.io` WorkloadEntry (v1, v1beta1, v1alpha3). */
export interface WorkloadEntryResource extends KubeObject {
  readonly kind: "WorkloadEntry";
  readonly metadata: ObjectMeta;
  readonly spec?: WorkloadEntrySpec;
}

/** One Gateway listener. */
export interface ListenerSpec {
  readonly name: string;
  readonly port: number;
  readonly protocol: string;
  readonly allowedRoutes?: {
    readonly namespaces?: {
      /** @default "Same" */
      readonly from?: "Same" | "All" | "Selector";
      readonly selector?: LabelSelector;
    };
  };
}

/** `gateway.networking.k8s.io` Gateway (v1, v1beta1). */
export interface GatewayResource extends KubeObject {
  readonly kind: "Gateway";
  readonly metadata: ObjectMeta;
  readonly spec: {
    readonly gatewayClassName: string;
    readonly listeners: readonly ListenerSpec[];
  };
  readonly status?: { readonly addresses?: readonly { type?: string; value: string }[] };
}

/** `gateway.networking.k8s.io` GatewayClass (v1, v1beta1); cluster-scoped. */
export interface GatewayClassResource extends KubeObject {
  readonly kind: "GatewayClass";
  readonly metadata: ObjectMeta;
  readonly spec?: { readonly controllerName?: string };
}

/** Kinds this folder reads into the snapshot. */
export type ReadKind =
  | "Namespace"
  | "Service"
  | "Pod"
  | "EndpointSlice"
  | "ServiceEntry"
  | "WorkloadEntry"
  | "Gateway"
  | "GatewayClass";

/** What the loader does with an apiVersion/kind pair. */
export type KindUse =
  | { readonly use: "read"; readonly kind: ReadKind }
  | { readonly use: "later" }
  | { readonly use: "unknown" };

const ISTIO_NETWORKING = ["v1", "v1beta1", "v1alpha3"];
const GATEWAY_API = ["v1", "v1beta1"];

/** Group → kind → versions we read. */
const READ: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> = {
  "": { Namespace: ["v1"], Service: ["v1"], Pod: ["v1"] },
  "discovery.k8s.io": { EndpointSlice: ["v1", "v1beta1"] },
  "networking.istio.io": { ServiceEntry: ISTIO_NETWORKING, WorkloadEntry: ISTIO_NETWORKING },
  "gateway.networking.k8s.io": { Gateway: GATEWAY_API, GatewayClass: GATEWAY_API },
};

/** Group → kinds other folders compile (policies, routes, telemetry, Wasm) or that are harmless. */
const LATER: Readonly<Record<string, readonly string[]>> = {
  "": ["ConfigMap", "Secret", "ServiceAccount", "Endpoints"],
  "apps": ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"],
  "security.istio.io": ["AuthorizationPolicy", "RequestAuthentication", "PeerAuthentication"],
  "networking.istio.io": [
    "VirtualService",
    "DestinationRule",
    "Gateway",
    "Sidecar",
    "EnvoyFilter",
    "ProxyConfig",
    "WorkloadGroup",
  ],
  "telemetry.istio.io": ["Telemetry"],
  "extensions.istio.io": ["WasmPlugin"],
  "gateway.networking.k8s.io": [
    "HTTPRoute",
    "GRPCRoute",
    "TCPRoute",
    "TLSRoute",
    "UDPRoute",
    "ReferenceGrant",
    "BackendTLSPolicy",
  ],
};

/**
 * Says whether `mesh/` reads an apiVersion/kind pair, keeps it for a later compiler, or does not
 * know it (the loader warns about the last).
 *
 * @param apiVersion `group/version`, or `version` for the core group
 * @param kind The resource kind
 * @returns What to do with the document
 */
export function kindUse(apiVersion: string, kind: string): KindUse {
  const slash = apiVersion.lastIndexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = apiVersion.slice(slash + 1);
  const kinds = ownValue(READ, group);
  const versions = kinds && ownValue(kinds, kind);
  if (versions?.includes(version)) return { use: "read", kind: kind as ReadKind };
  if (versions === undefined && ownValue(LATER, group)?.includes(kind)) return { use: "later" };
  return { use: "unknown" };
}

// `kind: constructor` must not find Object.prototype members.
function ownValue<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Whether a kind is cluster-scoped (its namespace is ignored). */
export function isClusterScoped(kind: ReadKind): boolean {
  return kind === "Namespace" || kind === "GatewayClass";
}
