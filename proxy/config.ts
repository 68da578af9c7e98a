/**
 * The whole config one request sees: the mesh snapshot plus everything compiled from the same
 * documents (routes now; policies join with the policy issue). Built in one place from one read
 * of the files, so a reload swaps all of it at once.
 */
import {
  type BuildOptions,
  buildSnapshot,
  dumpSnapshot,
  emptySnapshot,
  type Problem,
  type Snapshot,
  type SourceDoc,
} from "../mesh/mod.ts";
import { compileRoutes, EMPTY_ROUTE_TABLE, type RouteTable } from "../routes/mod.ts";

/** The frozen config of one load. */
export interface ProxyConfig {
  readonly version: number;
  readonly mesh: Snapshot;
  readonly routes: RouteTable;
}

/** What the builder needs to know about this waypoint. */
export type ConfigOptions = Omit<BuildOptions, "version">;

/** The config before the first load: nothing bound, no routes. */
export function emptyConfig(options: ConfigOptions): ProxyConfig {
  return Object.freeze({ version: 0, mesh: emptySnapshot(options), routes: EMPTY_ROUTE_TABLE });
}

/**
 * Builds the config of one load.
 *
 * @param documents Every parsed document of the load
 * @param version The version this load gets
 * @param options Our Gateway and trust domains
 * @returns The config and every problem met, mesh first
 */
export function buildConfig(
  documents: readonly SourceDoc[],
  version: number,
  options: ConfigOptions,
): { snapshot: ProxyConfig; problems: Problem[] } {
  const mesh = buildSnapshot(documents, { ...options, version });
  const routes = compileRoutes(documents, mesh.snapshot, {
    gateway: { namespace: options.namespace, name: options.name },
  });
  return {
    snapshot: Object.freeze({ version, mesh: mesh.snapshot, routes: routes.table }),
    problems: [...mesh.problems, ...routes.problems],
  };
}

/** Sorted JSON of the config for `/config_dump`. */
export function dumpConfig(config: ProxyConfig): unknown {
  return { version: config.version, mesh: dumpSnapshot(config.mesh), routes: config.routes };
}
