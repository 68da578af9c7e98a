/**
 * Where `run` gets its config: the MeshConfig it starts with, and the watch of the config
 * sources, YAML files or the Kubernetes API (whose `istio` ConfigMap may carry the MeshConfig).
 */
import { log } from "../log/mod.ts";
import {
  type ConfigWatch,
  type Problem,
  type SnapshotHolder,
  type SourceDoc,
  watchConfig,
  type WatchHooks,
} from "../mesh/mod.ts";
import { meshConfigText, watchKubernetes } from "../mesh/kube/mod.ts";
import {
  buildConfig,
  type ConfigOptions,
  DEFAULT_MESH_CONFIG,
  type MeshConfig,
  parseMeshConfig,
  type ProxyConfig,
  readMeshConfig,
} from "../proxy/mod.ts";
import type { RunOptions } from "./run_options.ts";

/**
 * The build options of every load: our Gateway, trust domains, and the MeshConfig read from
 * `--mesh-config` (else Istio's defaults) with `--trace-provider` as its tracing default.
 *
 * @param options Parsed `run` flags
 * @returns The options of {@link buildConfig}
 * @throws Error when the MeshConfig file is unreadable or invalid
 */
export async function meshOptionsOf(options: RunOptions): Promise<ConfigOptions> {
  const meshConfig = withTraceDefault(
    options.meshConfig ? await readMeshConfig(options.meshConfig) : DEFAULT_MESH_CONFIG,
    options.tracing?.provider,
  );
  for (const warning of meshConfig.warnings) log.warn("MeshConfig setting ignored", { warning });
  return {
    namespace: options.namespace,
    name: options.name,
    trustDomain: options.trustDomain,
    trustDomainAliases: [...options.trustDomainAliases, ...meshConfig.trustDomainAliases],
    meshConfig,
  };
}

/**
 * Starts watching the config: the Kubernetes API when `kubernetes` is set, else the YAML files.
 *
 * @param options Parsed `run` flags
 * @param meshOptions What {@link meshOptionsOf} returned
 * @param holder Receives each good snapshot
 * @param hooks Called after every load
 * @returns The running watch, with its first load
 */
export function watchSources(
  options: RunOptions,
  meshOptions: ConfigOptions,
  holder: SnapshotHolder<ProxyConfig>,
  hooks: WatchHooks<ProxyConfig>,
): Promise<ConfigWatch<ProxyConfig>> {
  return options.kubernetes
    ? watchKubernetes(
      {
        kubeconfig: options.kubernetes.kubeconfig,
        meshConfigMap: options.meshConfig ? false : {},
      },
      (docs, version) =>
        buildWithMeshConfigMap(docs, version, meshOptions, holder, options.tracing?.provider),
      holder,
      hooks,
    )
    : watchConfig(
      options.config,
      (docs, version) => buildConfig(docs, version, meshOptions),
      holder,
      hooks,
    );
}

/**
 * `buildConfig` with the MeshConfig of the watched `istio` ConfigMap when there is one, so that
 * editing it rebuilds the config (root namespace, path normalization, providers of every kind,
 * trust domain aliases). A ConfigMap that does not parse is an error naming it: the last good
 * config stays. `--trace-provider` stays the tracing default of every MeshConfig.
 */
function buildWithMeshConfigMap(
  docs: readonly SourceDoc[],
  version: number,
  meshOptions: ConfigOptions,
  holder: SnapshotHolder<ProxyConfig>,
  traceProvider: string | undefined,
): { snapshot: ProxyConfig; problems: Problem[] } {
  const found = meshConfigText(docs);
  if (!found) return buildConfig(docs, version, meshOptions);
  let meshConfig: MeshConfig;
  try {
    meshConfig = withTraceDefault(parseMeshConfig(found.text, found.origin), traceProvider);
  } catch (e) {
    const message = `MeshConfig (key mesh): ${(e as Error).message}`;
    return {
      snapshot: holder.current,
      problems: [{ severity: "error", where: found.origin, message }],
    };
  }
  const aliases = [...meshOptions.trustDomainAliases ?? [], ...meshConfig.trustDomainAliases];
  return buildConfig(docs, version, { ...meshOptions, meshConfig, trustDomainAliases: aliases });
}

/** MeshConfig with `--trace-provider` as its default tracing provider, when given. */
function withTraceDefault(meshConfig: MeshConfig, provider: string | undefined): MeshConfig {
  if (provider === undefined) return meshConfig;
  const defaultProviders = { ...meshConfig.defaultProviders, tracing: [provider] };
  return Object.freeze({ ...meshConfig, defaultProviders });
}
