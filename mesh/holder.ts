/**
 * The one place the current snapshot lives. Readers take `current` once per request and keep
 * it; the loader swaps in a whole new snapshot and subscribers (long-lived tunnels re-checking
 * authz) hear about it.
 *
 * Invariants:
 * - `current` is always a complete, frozen snapshot; there is no moment without one.
 * - Subscribers run synchronously after the swap, in subscription order; one that throws is
 *   logged and does not stop the others.
 */
import { log, type Logger } from "../log/mod.ts";
import type { Snapshot } from "./model.ts";

/** Called with the new snapshot and the one it replaced. */
export type SnapshotListener<T = Snapshot> = (next: T, previous: T) => void;

/**
 * Holds the current snapshot and notifies on replacement. `T` is the mesh {@link Snapshot} or a
 * larger config that carries one (the proxy adds compiled routes and policies).
 */
export class SnapshotHolder<T extends { readonly version: number } = Snapshot> {
  #current: T;
  readonly #listeners = new Set<SnapshotListener<T>>();
  readonly #logger: Logger;

  /**
   * @param initial The snapshot to serve until the first load, e.g. `emptySnapshot(options)`
   * @param options `logger` receives subscriber failures (default: the process logger)
   */
  constructor(initial: T, options: { logger?: Logger } = {}) {
    this.#current = initial;
    this.#logger = options.logger ?? log;
  }

  /** The snapshot in force. Read it once per request and keep it. */
  get current(): T {
    return this.#current;
  }

  /**
   * Swaps in a new snapshot, then tells every subscriber.
   *
   * @param next The new snapshot
   */
  replace(next: T): void {
    const previous = this.#current;
    this.#current = next;
    for (const listener of [...this.#listeners]) {
      try {
        listener(next, previous);
      } catch (error) {
        this.#logger.error("Snapshot subscriber failed", { version: next.version, error });
      }
    }
  }

  /**
   * Registers a listener for replacements.
   *
   * @param listener Called after each `replace`
   * @returns A function that unsubscribes it
   */
  subscribe(listener: SnapshotListener<T>): () => void {
    // Wrap so that subscribing the same function twice gives two independent subscriptions.
    const entry: SnapshotListener<T> = (next, previous) => listener(next, previous);
    this.#listeners.add(entry);
    return () => this.#listeners.delete(entry);
  }
}
