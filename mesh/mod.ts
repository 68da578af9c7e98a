/**
 * @module
 * The mesh as this waypoint sees it: Kubernetes and Istio resource types, loading them from YAML
 * (with `file:line` for every problem), validation, the immutable {@link Snapshot} with binding to
 * this waypoint decided at load, the per-request binding and port-protocol lookup, the snapshot
 * holder and the file watcher that swaps snapshots.
 *
 * Must not: do I/O on the request path (`bind`, `parseAuthority` and `portProtocol` are pure), or
 * hand out anything mutable (snapshots are deeply frozen).
 */
export type {
  Binding,
  Destination,
  Endpoint,
  PortProtocol,
  Problem,
  Service,
  ServicePort,
  Snapshot,
  WaypointSelf,
  Workload,
  WorkloadRef,
} from "./model.ts";
export type { KubeObject, SourceDoc } from "./resources.ts";
export { type LoadResult, parseConfigText, readConfig } from "./load.ts";
export { type BuildOptions, type BuildResult, buildSnapshot, emptySnapshot } from "./snapshot.ts";
export { bind } from "./bind.ts";

export { portProtocol, type ProtocolPort, serviceEntryProtocol } from "./protocol.ts";
export { SnapshotHolder, type SnapshotListener } from "./holder.ts";
export {
  type ConfigWatch,
  type SnapshotBuilder,
  watchConfig,
  type WatchHooks,
  type WatchLoad,
} from "./watch.ts";
export { dumpSnapshot } from "./dump.ts";
