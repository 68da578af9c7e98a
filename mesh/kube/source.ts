/**
 * Config from the Kubernetes API, with the semantics of the file watcher (`watchConfig`): the
 * first snapshot once every kind is fully listed, then a debounced rebuild after changes, through
 * the same builder; a rebuild with errors keeps the last good snapshot. Documents are named
 * `kube:<Kind> <namespace>/<name>` so that every problem names its object.
 *
 * Invariants:
 * - No snapshot is built before every informer finished its first list: a half-known mesh would
 *   refuse traffic it should carry (readiness follows the first full sync).
 * - Documents reach the builder in a stable order: by kind, then oldest first (the order Istio
 *   uses to settle conflicts), then namespace/name.
 * - After `close()` resolves, no informer, timer or rebuild is left, and the TLS client is closed.
 */
import { log as defaultLog } from "../../log/mod.ts";
import type { Problem, Snapshot } from "../model.ts";
import type { KubeObject, SourceDoc } from "../resources.ts";
import type { SnapshotHolder } from "../holder.ts";
import type { BuildOptions } from "../snapshot.ts";
import {
  applyLoad,
  type ConfigWatch,
  LoadReporter,
  ReloadScheduler,
  type SnapshotBuilder,
  toBuilder,
  type WatchHooks,
} from "../_reload.ts";
import { KubeClient, type KubeClientOptions } from "./client.ts";
import { Informer, type InformerOptions } from "./informer.ts";
import { KubeAccess } from "./kubeconfig.ts";
import { type MeshConfigMapRef, meshKinds, type ResourceKind } from "./kinds.ts";

/** Where the API is and what to watch. */
export interface KubeSourceOptions {
  /** A kubeconfig file (its current context); the pod's service account when absent. */
  readonly kubeconfig?: string;
  /** The MeshConfig ConfigMap to watch, or `false` (a `--mesh-config` file is used). @default istio-system/istio */
  readonly meshConfigMap?: MeshConfigMapRef | false;
  /** @default {@link meshKinds} */
  readonly kinds?: readonly ResourceKind[];
  /** Watch timeouts and backoff of every informer. */
  readonly informer?: Omit<InformerOptions, "onChange" | "logger">;
  /** Page size and body bounds. */
  readonly client?: KubeClientOptions;
  /** Longest wait for the first full list of every kind. @default 120_000 */
  readonly syncTimeoutMs?: number;
}

/**
 * Lists and watches the mesh's resources and keeps `holder` in step with them.
 *
 * @param options API access and what to watch
 * @param build This waypoint's identity for the mesh builder, or a builder of a larger snapshot
 *   (the CLI passes `buildConfig`, exactly as for files)
 * @param holder Receives each good snapshot
 * @param hooks Load callback, logger and debounce (default 100 ms)
 * @returns The first load and a handle to stop watching
 * @throws Error when the API cannot be reached with the credentials, or some kind is not listed
 *   within `syncTimeoutMs` (the message names the kinds and their last error)
 */
export async function watchKubernetes<T extends { readonly version: number } = Snapshot>(
  options: KubeSourceOptions,
  build: Omit<BuildOptions, "version"> | SnapshotBuilder<T>,
  holder: SnapshotHolder<T>,
  hooks: WatchHooks<T> = {},
): Promise<ConfigWatch<T>> {
  const logger = hooks.logger ?? defaultLog;
  const builder = toBuilder(build);
  const access = await KubeAccess.fromEnvironment(options.kubeconfig);
  const client = new KubeClient(access, options.client);
  const load = () => {
    const result = applyLoad({ documents: documentsOf(informers), problems: [] }, builder, holder);
    return { ...result, problems: result.problems.map(withoutLine) };
  };
  const reporter = new LoadReporter(logger);
  const scheduler = new ReloadScheduler(
    // async: a builder that throws becomes a logged rejection, not an uncaught timer error.
    // deno-lint-ignore require-await
    async () => {
      const result = load();
      reporter.report(result);
      hooks.onLoad?.(result);
    },
    hooks.debounceMs ?? 100,
    logger,
  );
  // Changes of kinds already listed wait for the first snapshot, which sees them anyway.
  let live = false;
  const informers = (options.kinds ?? meshKinds(options.meshConfigMap)).map((kind) =>
    new Informer(client, kind, {
      ...options.informer,
      logger,
      onChange: () => live && scheduler.poke(),
    })
  );
  const stop = async () => {
    await Promise.all(informers.map((i) => i.close()));
    await scheduler.close();
    access.close();
  };
  logger.info("Listing Kubernetes resources", {
    server: access.server,
    kinds: informers.length,
  });
  for (const informer of informers) informer.start();
  let initial: ReturnType<typeof load>;
  try {
    await allSynced(informers, options.syncTimeoutMs ?? 120_000);
    initial = load();
    reporter.remember(initial.problems);
  } catch (error) {
    await stop();
    throw error;
  }
  live = true;
  hooks.onLoad?.(initial);
  return { initial, close: stop };
}

/** Resolves once every informer listed, or rejects naming those that did not in time. */
async function allSynced(informers: readonly Informer[], timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const outcome = await Promise.race([Promise.all(informers.map((i) => i.synced)), timeout]);
  clearTimeout(timer);
  if (outcome !== "timeout") return;
  const pending = informers.filter((i) => !i.isSynced)
    .map((i) => `${i.kind.kind} (${i.lastError ?? "no answer"})`);
  throw new Error(`Kubernetes API: not listed within ${timeoutMs} ms: ${pending.join("; ")}`);
}

/**
 * The origin of an object in problems: `kube:HTTPRoute default/echo`, `kube:Namespace mesh`.
 *
 * @param object An object from the API
 * @returns Its label
 */
export function originOf(object: KubeObject): string {
  const meta = object.metadata as { namespace?: string; name?: string } | undefined;
  const name = meta?.namespace ? `${meta.namespace}/${meta.name}` : `${meta?.name}`;
  return `kube:${object.kind} ${name}`;
}

/** Every informer's objects as documents: by kind, oldest first, then by name. */
function documentsOf(informers: readonly Informer[]): SourceDoc[] {
  const documents: SourceDoc[] = [];
  for (const informer of informers) {
    const sorted = informer.objects()
      .map((object) => ({ object, order: orderOf(object) }))
      .sort((a, b) => a.order < b.order ? -1 : a.order > b.order ? 1 : 0);
    // An object is one document without lines: line 0, dropped from problem locations below.
    for (const { object } of sorted) documents.push({ file: originOf(object), line: 0, object });
  }
  return documents;
}

function orderOf(object: KubeObject): string {
  const meta = object.metadata as
    | { creationTimestamp?: string; namespace?: string; name?: string }
    | undefined;
  // RFC 3339 timestamps in UTC sort as text.
  return `${meta?.creationTimestamp ?? ""}\u0000${meta?.namespace ?? ""}\u0000${meta?.name ?? ""}`;
}

/** `kube:Kind ns/name:0` → `kube:Kind ns/name`. */
function withoutLine(p: Problem): Problem {
  return p.where.startsWith("kube:") && p.where.endsWith(":0")
    ? { ...p, where: p.where.slice(0, -2) }
    : p;
}

/**
 * The MeshConfig text of the watched `istio` ConfigMap (key `mesh`), for the CLI's builder to
 * parse with `parseMeshConfig`, so a change of the ConfigMap rebuilds the config with it.
 *
 * @param documents The documents of one load
 * @returns The text and the ConfigMap's origin, or undefined when there is none
 */
export function meshConfigText(
  documents: readonly SourceDoc[],
): { text: string; origin: string } | undefined {
  for (const doc of documents) {
    const data = doc.object.data as { mesh?: unknown } | undefined;
    if (doc.object.kind === "ConfigMap" && typeof data?.mesh === "string") {
      return { text: data.mesh, origin: doc.file };
    }
  }
  return undefined;
}
