/**
 * Graceful shutdown of `run` on SIGTERM or SIGINT, as Istio's proxies do it for
 * `terminationDrainDuration` (default 5 s): readiness goes false, new HBONE connections are no
 * longer accepted, live sessions get GOAWAY and their open streams may finish until the drain
 * timeout; then the process exits 0. `Waypoint.close(graceMs)` carries out the steps in that
 * order.
 *
 * Invariants:
 * - The drain runs once: a second signal during it is logged and otherwise ignored, so a
 *   `kubectl delete` followed by Ctrl-C cannot cut in-flight streams short of the timeout.
 * - The exit code is 0 whether the streams finished or the timeout cut them (both are a
 *   requested shutdown), 1 only when releasing the pieces failed.
 */
import { log } from "../log/mod.ts";
import { UsageError } from "./flags.ts";

/** Istio's `terminationDrainDuration` default. */
export const DEFAULT_DRAIN_MS = 5_000;
/** Drain timeouts above this are refused, so a typo cannot keep a pod terminating for days. */
const MAX_DRAIN_MS = 3_600_000;

/**
 * Parses `--drain-timeout`: `<n>s` or `<n>ms` (Istio writes `5s`), or bare seconds.
 *
 * @param text The flag value
 * @returns Milliseconds
 * @throws UsageError for anything else, or above one hour
 */
export function parseDrainTimeout(text: string): number {
  const m = /^(\d{1,7})(ms|s)?$/.exec(text);
  const ms = m ? Number(m[1]) * (m[2] === "ms" ? 1 : 1000) : NaN;
  if (!(ms <= MAX_DRAIN_MS)) {
    throw new UsageError(
      `--drain-timeout wants a duration like 5s or 500ms, at most 1h: got "${text}"`,
    );
  }
  return ms;
}

/** What {@link drainOnSignals} stops. */
export interface Drainable {
  /** Readiness false, stop accepting, GOAWAY, wait up to `graceMs`, release everything. */
  close(graceMs: number): Promise<void>;
}

/**
 * Installs SIGTERM and SIGINT handlers that drain `waypoint` and exit 0.
 *
 * @param waypoint The running waypoint
 * @param drainMs How long open streams may take to finish
 * @param exit Ends the process @default Deno.exit
 */
export function drainOnSignals(
  waypoint: Drainable,
  drainMs: number,
  exit: (code: number) => void = Deno.exit,
): void {
  let draining = false;
  const onSignal = (signal: Deno.Signal) => async () => {
    if (draining) {
      log.info("Already draining, signal ignored", { signal });
      return;
    }
    draining = true;
    log.info("Draining on signal", { signal, drainTimeoutMs: drainMs });
    let code = 0;
    try {
      await waypoint.close(drainMs);
      log.info("Drained, exiting");
    } catch (e) {
      log.error("Shutdown failed", { reason: e });
      code = 1;
    }
    await log.drain();
    exit(code);
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, onSignal(signal));
  }
}
