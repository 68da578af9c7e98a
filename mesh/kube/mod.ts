/**
 * @module
 * Config from the Kubernetes API: where the API is and who we are (in-cluster or kubeconfig), a
 * small list+watch client on Deno's `fetch`, one informer per kind, and the source that turns
 * them into snapshots with the file watcher's semantics; and the Gateway status the waypoint
 * writes (leader-elected with a Lease) so that ztunnel finds it.
 *
 * Why our own client and not `@kubernetes/client-node`: that package is 83 MB and under Deno its
 * watches hang after a lost connection (an abort never ends the body; shared/reference/
 * libraries.md). Deno's `fetch` aborts cleanly, which a watch with an inactivity bound needs.
 *
 * Must not: run on the request path, or hand the builder anything but plain objects.
 */
export {
  inClusterTarget,
  KubeAccess,
  type KubeTarget,
  parseKubeconfig,
  type PemSource,
} from "./kubeconfig.ts";
export { KubeApiError, KubeClient, type KubeClientOptions, type WatchEvent } from "./client.ts";
export { Informer, type InformerOptions, nextStep } from "./informer.ts";
export { type MeshConfigMapRef, meshKinds, type ResourceKind } from "./kinds.ts";
export {
  type Condition,
  type GatewayAddress,
  type GatewayObject,
  type GatewayStatusOptions,
  type GatewayStatusWriter,
  startGatewayStatus,
  statusPatch,
  syncGatewayStatus,
} from "./gateway_status.ts";
export { decideLease, LeaderElector, type LeaseAction, type LeaseOptions } from "./lease.ts";
export { type KubeSourceOptions, meshConfigText, originOf, watchKubernetes } from "./source.ts";
