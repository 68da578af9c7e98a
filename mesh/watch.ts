/**
 * Keeps the snapshot in step with config files: one load now, then a reload after each burst of
 * file changes. A reload with any error keeps the last good snapshot (DESIGN.md, "Config is a
 * snapshot"); a clean one replaces it with the next version.
 *
 * Invariants:
 * - One load runs at a time; changes during a load schedule exactly one more.
 * - After `close()` resolves, no watcher, timer or load is left running.
 */
import { dirname, resolve } from "node:path";
import { log as defaultLog, type Logger } from "../log/mod.ts";
import type { Problem, Snapshot } from "./model.ts";
import type { SourceDoc } from "./resources.ts";
import type { SnapshotHolder } from "./holder.ts";
import { readConfig } from "./load.ts";
import { type BuildOptions, buildSnapshot } from "./snapshot.ts";

/** Builds the snapshot of one load from its documents; the mesh's own is {@link buildSnapshot}. */
export type SnapshotBuilder<T> = (
  documents: readonly SourceDoc[],
  version: number,
) => { readonly snapshot: T; readonly problems: readonly Problem[] };

/** The outcome of one load. */
export interface WatchLoad<T = Snapshot> {
  /** The snapshot in force after this load: the new one if applied, else the previous one. */
  readonly snapshot: T;
  /** Load and build problems, errors first located by `file:line`. */
  readonly problems: readonly Problem[];
  /** Whether the load had no errors and replaced the snapshot. */
  readonly applied: boolean;
}

/** Hooks and knobs of {@link watchConfig}. */
export interface WatchHooks<T = Snapshot> {
  /** Called after every load, the first included. */
  onLoad?(result: WatchLoad<T>): void;
  /** Where reload outcomes are logged. @default the process logger */
  logger?: Logger;
  /** Quiet time after the last file event before reloading, in ms. @default 200 */
  debounceMs?: number;
}

/** A running watch. */
export interface ConfigWatch<T = Snapshot> {
  /** The first load, for the CLI to print (and to exit non-zero on errors). */
  readonly initial: WatchLoad<T>;
  /** Stops watching; resolves once any reload in flight has finished. */
  close(): Promise<void>;
}

/**
 * Loads config into `holder` now and again whenever the files change.
 *
 * @param paths Files or folders, as for `readConfig`; they must exist when called
 * @param build This waypoint's identity for {@link buildSnapshot}, or a builder of a larger
 *   snapshot; versions count up from `holder.current.version`
 * @param holder Receives each good snapshot
 * @param hooks Load callback, logger and debounce
 * @returns The first load and a handle to stop watching
 * @throws {Deno.errors.NotFound} When a path does not exist, so nothing can be watched
 */
export async function watchConfig<T extends { readonly version: number } = Snapshot>(
  paths: readonly string[],
  build: Omit<BuildOptions, "version"> | SnapshotBuilder<T>,
  holder: SnapshotHolder<T>,
  hooks: WatchHooks<T> = {},
): Promise<ConfigWatch<T>> {
  const logger = hooks.logger ?? defaultLog;
  const builder: SnapshotBuilder<T> = typeof build === "function"
    ? build
    : (documents, version) =>
      buildSnapshot(documents, { ...build, version }) as unknown as ReturnType<SnapshotBuilder<T>>;
  const load = async (): Promise<WatchLoad<T>> => {
    const read = await readConfig(paths);
    const built = builder(read.documents, holder.current.version + 1);
    const problems = [...read.problems, ...built.problems];
    const applied = !problems.some((p) => p.severity === "error");
    if (applied) holder.replace(built.snapshot);
    return { snapshot: holder.current, problems, applied };
  };
  const initial = await load();
  hooks.onLoad?.(initial);
  const reload = async () => {
    const result = await load();
    report(result, logger);
    hooks.onLoad?.(result);
  };
  const watchers = await openWatchers(paths);
  const scheduler = new ReloadScheduler(reload, hooks.debounceMs ?? 200, logger);
  const loops = watchers.map(async ({ watcher, accepts }) => {
    try {
      for await (const event of watcher) {
        if (event.kind !== "access" && event.paths.some(accepts)) scheduler.poke();
      }
    } catch (error) {
      // A watcher that dies (its folder removed) must not take the process down.
      logger.error("Config watch stopped", { error });
    }
  });
  return {
    initial,
    async close() {
      for (const { watcher } of watchers) watcher.close();
      await Promise.all(loops);
      await scheduler.close();
    },
  };
}

/** Debounces pokes into reloads, one at a time. */
class ReloadScheduler {
  readonly #reload: () => Promise<void>;
  readonly #delayMs: number;
  readonly #logger: Logger;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(reload: () => Promise<void>, delayMs: number, logger: Logger) {
    this.#reload = reload;
    this.#delayMs = delayMs;
    this.#logger = logger;
  }

  /** A file changed: reload after the quiet time, or after the load in flight. */
  poke(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#run(), this.#delayMs);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #run(): void {
    this.#timer = undefined;
    this.#running = this.#reload()
      .catch((error) => this.#logger.error("Config reload failed", { error }))
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.poke();
        }
      });
  }
}

/** Logs a reload: every problem as a warning line, then the outcome. */
function report<T extends { readonly version: number }>(
  result: WatchLoad<T>,
  logger: Logger,
): void {
  for (const p of result.problems) {
    logger.warn("Config problem", {
      severity: p.severity,
      where: p.where,
      resource: p.resource,
      message: p.message,
    });
  }
  if (result.applied) {
    logger.info("Config reloaded", { version: result.snapshot.version });
  } else {
    const errors = result.problems.filter((p) => p.severity === "error").length;
    logger.warn("Config reload rejected, keeping the last good snapshot", {
      version: result.snapshot.version,
      errors,
    });
  }
}

interface PathWatcher {
  readonly watcher: Deno.FsWatcher;
  readonly accepts: (path: string) => boolean;
}

/**
 * Folders are watched recursively for YAML files and sub-folders; a file is watched through its
 * folder, because editors and ConfigMap updates replace files rather than write them in place.
 */
async function openWatchers(paths: readonly string[]): Promise<PathWatcher[]> {
  const folders: string[] = [];
  const files: string[] = [];
  for (const path of paths.map((p) => resolve(p))) {
    ((await Deno.stat(path)).isDirectory ? folders : files).push(path);
  }
  const out: PathWatcher[] = [];
  if (folders.length > 0) {
    const isYamlOrFolder = (p: string) => /\.ya?ml$/.test(p) || !/\.[^/]*$/.test(p);
    out.push({ watcher: Deno.watchFs(folders, { recursive: true }), accepts: isYamlOrFolder });
  }
  if (files.length > 0) {
    const parents = [...new Set(files.map((f) => dirname(f)))];
    const isWatchedFile = (p: string) => files.includes(resolve(p));
    out.push({ watcher: Deno.watchFs(parents, { recursive: false }), accepts: isWatchedFile });
  }
  return out;
}
