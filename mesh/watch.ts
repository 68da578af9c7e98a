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
import { log as defaultLog } from "../log/mod.ts";
import type { Snapshot } from "./model.ts";
import type { SnapshotHolder } from "./holder.ts";
import { readConfig } from "./load.ts";
import type { BuildOptions } from "./snapshot.ts";
import {
  applyLoad,
  type ConfigWatch,
  LoadReporter,
  ReloadScheduler,
  type SnapshotBuilder,
  toBuilder,
  type WatchHooks,
  type WatchLoad,
} from "./_reload.ts";

export type { ConfigWatch, SnapshotBuilder, WatchHooks, WatchLoad };

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
  const builder = toBuilder(build);
  const load = async () => applyLoad(await readConfig(paths), builder, holder);
  const initial = await load();
  hooks.onLoad?.(initial);
  const reporter = new LoadReporter(logger);
  reporter.remember(initial.problems);
  const reload = async () => {
    const result = await load();
    reporter.report(result);
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
