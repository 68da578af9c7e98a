/**
 * The whole config one request sees: the mesh snapshot plus everything compiled from the same
 * documents (routes, load-balancing policies, AuthorizationPolicies, RequestAuthentications).
 * Built in one place from one read of the files, so a reload swaps all of it at once.
 */
import {
  type BuildOptions,
  buildSnapshot,
  dumpSnapshot,
  type Problem,
  type Snapshot,
  type SourceDoc,
} from "../mesh/mod.ts";
import {
  compileAuthorizationPolicies,
  type CompiledAuthn,
  type CompiledPolicies,
  compileRequestAuthentications,
} from "../policy/mod.ts";
import {
  compileDestinationRules,
  compileRoutes,
  type LbPolicies,
  type RouteTable,
} from "../routes/mod.ts";
import { DEFAULT_MESH_CONFIG, type MeshConfig, telemetryProviders } from "./mesh_config.ts";
import { type CompiledTelemetry, compileTelemetry } from "../telemetry/mod.ts";
import { compileWasmPlugins, type WasmPlugins } from "../wasm/mod.ts";

/** The frozen config of one load. */
export interface ProxyConfig {
  readonly version: number;
  readonly mesh: Snapshot;
  readonly routes: RouteTable;
  /** Load-balancing policy per service host and port, from DestinationRules. */
  readonly lb: LbPolicies;
  readonly authz: CompiledPolicies;
  readonly authn: CompiledAuthn;
  /** Telemetry resources: metrics overrides, access logs, tracing, per destination. */
  readonly telemetry: CompiledTelemetry;
  /** WasmPlugins by target and phase, in Istio's order. */
  readonly wasm: WasmPlugins;
  /**
   * The MeshConfig of this load: the extension providers a request uses (ext_authz, tracing,
   * access logs) follow its reloads with the rest of the config.
   */
  readonly meshConfig: MeshConfig;
}

/** What the builder needs to know about this waypoint. */
export interface ConfigOptions extends Omit<BuildOptions, "version"> {
  /** MeshConfig: root namespace, path normalization, extension providers. @default Istio's */
  readonly meshConfig?: MeshConfig;
}

/** The config before the first load: nothing bound, no routes, no policies. */
export function emptyConfig(options: ConfigOptions): ProxyConfig {
  return buildConfig([], 0, options).snapshot;
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
  const meshConfig = options.meshConfig ?? DEFAULT_MESH_CONFIG;
  const built = buildSnapshot(documents, { ...options, version });
  const mesh = built.snapshot;
  const routes = compileRoutes(documents, mesh, {
    gateway: { namespace: options.namespace, name: options.name },
  });
  const lb = compileDestinationRules(documents);
  const context = { self: mesh.self, rootNamespace: meshConfig.rootNamespace, mesh };
  const authz = compileAuthorizationPolicies(documents, {
    ...context,
    pathNormalization: meshConfig.pathNormalization,
    extensionProviders: meshConfig.providerNames,
  });
  const authn = compileRequestAuthentications(documents, context);
  const telemetry = compileTelemetry(documents, {
    self: mesh.self,
    rootNamespace: meshConfig.rootNamespace,
    providers: telemetryProviders(meshConfig),
  });
  const wasm = compileWasmPlugins(documents, context);
  return {
    snapshot: Object.freeze({
      version,
      mesh,
      routes: routes.table,
      lb: lb.lb,
      authz: authz.policies,
      authn: authn.authn,
      telemetry: telemetry.telemetry,
      wasm: wasm.plugins,
      meshConfig,
    }),
    problems: [
      ...built.problems,
      ...routes.problems,
      ...lb.problems,
      ...authz.problems,
      ...authn.problems,
      ...telemetry.problems,
      ...wasm.problems,
    ],
  };
}

/** Sorted JSON of the config for `/config_dump`. */
export function dumpConfig(config: ProxyConfig): unknown {
  return {
    version: config.version,
    mesh: dumpSnapshot(config.mesh),
    routes: config.routes,
    lb: config.lb,
  };
}
