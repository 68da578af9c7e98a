/**
 * What every config source shares (files in `watch.ts`, the Kubernetes API in `kube/`): the
 * builder contract, applying a build to the holder only when it has no errors, debounced
 * reloads one at a time, and the log lines of a reload.
 *
 * Invariants:
 * - A build with any error leaves the holder untouched (DESIGN.md, "Config is a snapshot").
 * - One reload runs at a time; pokes during a reload schedule exactly one more.
 */
import type { Logger } from "../log/mod.ts";
import type { Problem, Snapshot } from "./model.ts";
import type { SourceDoc } from "./resources.ts";
import type { SnapshotHolder } from "./holder.ts";
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

/** Hooks and knobs of a config source. */
export interface WatchHooks<T = Snapshot> {
  /** Called after every load, the first included. */
  onLoad?(result: WatchLoad<T>): void;
  /** Where reload outcomes are logged. @default the process logger */
  logger?: Logger;
  /** Quiet time after the last change before reloading, in ms. @default 200 for files */
  debounceMs?: number;
}

/** A running watch. */
export interface ConfigWatch<T = Snapshot> {
  /** The first load, for the CLI to print (and to exit non-zero on errors). */
  readonly initial: WatchLoad<T>;
  /** Stops watching; resolves once any reload in flight has finished. */
  close(): Promise<void>;
}

/** The builder of `build`: a function as is, or this waypoint's identity for {@link buildSnapshot}. */
export function toBuilder<T>(
  build: Omit<BuildOptions, "version"> | SnapshotBuilder<T>,
): SnapshotBuilder<T> {
  return typeof build === "function"
    ? build
    : (documents, version) =>
      buildSnapshot(documents, { ...build, version }) as unknown as ReturnType<SnapshotBuilder<T>>;
}

/**
 * Builds the next version from `documents` and swaps it in when neither reading nor building
 * found an error.
 *
 * @param read The documents and the problems met reading them
 * @param builder Makes the snapshot
 * @param holder Receives a good snapshot
 * @returns The load's outcome
 */
export function applyLoad<T extends { readonly version: number }>(
  read: { readonly documents: readonly SourceDoc[]; readonly problems: readonly Problem[] },
  builder: SnapshotBuilder<T>,
  holder: SnapshotHolder<T>,
): WatchLoad<T> {
  const built = builder(read.documents, holder.current.version + 1);
  const problems = [...read.problems, ...built.problems];
  const applied = !problems.some((p) => p.severity === "error");
  if (applied) holder.replace(built.snapshot);
  return { snapshot: holder.current, problems, applied };
}

/** Debounces pokes into reloads, one at a time. */
export class ReloadScheduler {
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

  /** Something changed: reload after the quiet time, or after the load in flight. */
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

/**
 * Logs each load's outcome. A problem is logged when it first appears; later loads that still
 * have it only count it, so a cluster whose Pods churn does not repeat the same warnings on every
 * rebuild.
 */
export class LoadReporter {
  readonly #logger: Logger;
  #seen = new Set<string>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Takes problems shown elsewhere (the first load's, which the CLI prints) as reported. */
  remember(problems: readonly Problem[]): void {
    this.#seen = new Set(problems.map(problemKey));
  }

  /** Logs new problems, the count of repeated ones, and whether the load was applied. */
  report<T extends { readonly version: number }>(result: WatchLoad<T>): void {
    const seen = new Set<string>();
    let repeated = 0;
    for (const p of result.problems) {
      const key = problemKey(p);
      seen.add(key);
      if (this.#seen.has(key)) {
        repeated++;
        continue;
      }
      this.#logger.warn("Config problem", {
        severity: p.severity,
        where: p.where,
        resource: p.resource,
        message: p.message,
      });
    }
    this.#seen = seen;
    if (repeated > 0) this.#logger.info("Config problems reported before", { count: repeated });
    if (result.applied) {
      this.#logger.info("Config reloaded", { version: result.snapshot.version });
    } else {
      const errors = result.problems.filter((p) => p.severity === "error").length;
      this.#logger.warn("Config reload rejected, keeping the last good snapshot", {
        version: result.snapshot.version,
        errors,
      });
    }
  }
}

function problemKey(p: Problem): string {
  return `${p.severity}|${p.where}|${p.resource}|${p.message}`;
}
