/**
 * The resource kinds the waypoint lists and watches, at the group versions Istio prefers, and what
 * of each object is kept. Only what the config builders read is watched: finished Pods, Secrets
 * other than image pull secrets, and ConfigMaps other than the mesh config are filtered out by
 * the API server (field selectors), so they cost neither bandwidth nor memory here.
 *
 * RBAC: `list` and `watch` on every kind below, cluster-wide, except the mesh ConfigMap (its
 * namespace only). RBAC cannot narrow by field selector: watching image pull Secrets needs
 * `list`/`watch` on all Secrets.
 */
import type { KubeObject } from "../resources.ts";

/** One kind as the API serves it. */
export interface ResourceKind {
  /** API group; `""` for the core group. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  /** Lower-case plural of the URL path. */
  readonly plural: string;
  /** Watch this namespace only; all namespaces when absent (and for cluster-scoped kinds). */
  readonly namespace?: string;
  /** `fieldSelector` for list and watch. */
  readonly fieldSelector?: string;
  /** Drops fields no builder reads, to bound memory (Pods are most of a cluster's objects). */
  readonly trim?: (object: KubeObject) => KubeObject;
}

/** `group/version`, or `version` for the core group. */
export function apiVersionOf(kind: ResourceKind): string {
  return kind.group ? `${kind.group}/${kind.version}` : kind.version;
}

/** The collection URL path, e.g. `/apis/gateway.networking.k8s.io/v1/httproutes`. */
export function collectionPath(kind: ResourceKind): string {
  const root = kind.group ? `/apis/${kind.group}/${kind.version}` : `/api/${kind.version}`;
  const scope = kind.namespace ? `/namespaces/${encodeURIComponent(kind.namespace)}` : "";
  return `${root}${scope}/${kind.plural}`;
}

/** Where the mesh config lives: Istio's `istio` ConfigMap, key `mesh`, in istiod's namespace. */
export interface MeshConfigMapRef {
  /** @default "istio-system" */
  readonly namespace?: string;
  /** @default "istio" */
  readonly name?: string;
}

const GATEWAY = "gateway.networking.k8s.io";
const ISTIO_NETWORKING = "networking.istio.io";

/**
 * Every kind the proxy config is built from.
 *
 * @param meshConfigMap The ConfigMap holding the MeshConfig, or `false` when it comes from a file
 * @returns The kinds, in the order their documents reach the builder
 */
export function meshKinds(meshConfigMap: MeshConfigMapRef | false = {}): ResourceKind[] {
  const kinds: ResourceKind[] = [
    core("Namespace", "namespaces"),
    core("Service", "services"),
    {
      ...core("Pod", "pods"),
      // A finished Pod holds no IP the mesh can reach; the API server sends DELETED when one ends.
      fieldSelector: "status.phase!=Succeeded,status.phase!=Failed",
      trim: trimPod,
    },
    kind("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    kind(ISTIO_NETWORKING, "v1", "ServiceEntry", "serviceentries"),
    kind(ISTIO_NETWORKING, "v1", "WorkloadEntry", "workloadentries"),
    kind(ISTIO_NETWORKING, "v1", "DestinationRule", "destinationrules"),
    kind(GATEWAY, "v1", "GatewayClass", "gatewayclasses"),
    kind(GATEWAY, "v1", "Gateway", "gateways"),
    kind(GATEWAY, "v1", "HTTPRoute", "httproutes"),
    kind(GATEWAY, "v1", "GRPCRoute", "grpcroutes"),
    // TCPRoute is only in the experimental channel, at v1alpha2.
    kind(GATEWAY, "v1alpha2", "TCPRoute", "tcproutes"),
    kind(GATEWAY, "v1beta1", "ReferenceGrant", "referencegrants"),
    kind("security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies"),
    kind("security.istio.io", "v1", "RequestAuthentication", "requestauthentications"),
    kind("telemetry.istio.io", "v1", "Telemetry", "telemetries"),
    kind("extensions.istio.io", "v1alpha1", "WasmPlugin", "wasmplugins"),
    // WasmPlugin `imagePullSecret`s; other Secrets are none of the waypoint's business.
    { ...core("Secret", "secrets"), fieldSelector: "type=kubernetes.io/dockerconfigjson" },
  ];
  if (meshConfigMap !== false) {
    kinds.push({
      ...core("ConfigMap", "configmaps"),
      namespace: meshConfigMap.namespace ?? "istio-system",
      fieldSelector: `metadata.name=${meshConfigMap.name ?? "istio"}`,
    });
  }
  return kinds;
}

function core(kindName: string, plural: string): ResourceKind {
  return kind("", "v1", kindName, plural);
}

function kind(group: string, version: string, kindName: string, plural: string): ResourceKind {
  return { group, version, kind: kindName, plural };
}

/** The Pod fields `mesh/` reads (resources.ts `PodResource`): a Pod spec is mostly containers. */
function trimPod(object: KubeObject): KubeObject {
  // deno-lint-ignore no-explicit-any
  const { spec, status } = object as any;
  return {
    apiVersion: object.apiVersion,
    kind: object.kind,
    metadata: object.metadata,
    spec: spec && {
      serviceAccountName: spec.serviceAccountName,
      serviceAccount: spec.serviceAccount,
      hostNetwork: spec.hostNetwork,
      containers: Array.isArray(spec.containers)
        ? spec.containers.map((c: { name?: string; ports?: unknown }) => ({
          name: c.name,
          ports: c.ports,
        }))
        : undefined,
    },
    status: status && {
      phase: status.phase,
      podIP: status.podIP,
      podIPs: status.podIPs,
      conditions: status.conditions,
    },
  };
}
