/**
 * Periodic reports of long-lived connections and streams, as Istio's stats filter makes them
 * (istio/proxy `istio_stats.cc`: a report every `tcp_reporting_duration`, 5 s by default, for
 * TCP connections and gRPC streams), so that byte and message counters grow while a connection
 * is open and not only at its close.
 *
 * Invariants:
 * - One interval timer for all open reports, not one per connection; it is unref'd (it never
 *   keeps the process alive), started by the first report added and stopped as soon as none is
 *   left, so an idle proxy and a finished test hold no timer.
 * - A report that throws is counted and the others still run.
 */

/** Runs every added report once per interval. */
export class PeriodicReports {
  /** Reports that threw (bugs; the connection went on). */
  failures = 0;
  readonly intervalMs: number;
  readonly #reports = new Set<() => void>();
  #timer?: ReturnType<typeof setInterval>;

  /**
   * @param intervalMs Time between reports
   * @throws RangeError when the interval is not a positive number
   */
  constructor(intervalMs: number) {
    if (!(intervalMs > 0)) {
      throw new RangeError(`Metrics reporting interval must be positive: got ${intervalMs}`);
    }
    this.intervalMs = intervalMs;
  }

  /** Reports currently registered. */
  get size(): number {
    return this.#reports.size;
  }

  /**
   * Registers a report until the returned function is called.
   *
   * @param report Adds what happened since its last call; must be cheap
   * @returns Unregisters it (idempotent)
   */
  add(report: () => void): () => void {
    this.#reports.add(report);
    if (this.#timer === undefined) {
      const timer = this.#timer = setInterval(() => this.#tick(), this.intervalMs);
      Deno.unrefTimer(timer);
    }
    return () => {
      if (!this.#reports.delete(report) || this.#reports.size > 0) return;
      clearInterval(this.#timer);
      this.#timer = undefined;
    };
  }

  #tick(): void {
    for (const report of this.#reports) {
      try {
        report();
      } catch {
        this.failures++;
      }
    }
  }
}
