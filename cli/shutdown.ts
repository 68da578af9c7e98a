/**
 * Graceful shutdown of `run` on SIGTERM or SIGINT, as Istio's waypoint drains (pilot-agent posts
 * Envoy's `drain_listeners?graceful`, Envoy runs with `--drain-strategy immediate`, and the agent
 * ends Envoy after `terminationDrainDuration`, or with `EXIT_ON_ZERO_ACTIVE_CONNECTIONS` once no
 * connection is left after `MINIMUM_DRAIN_DURATION`):
 *
 * 1. At once: readiness (`/healthz/ready`) answers 503, and every connection is told to go:
 *    HBONE sessions and inner h2c connections get GOAWAY and finish their streams, HTTP/1.1
 *    responses carry `connection: close` and their connection closes after them, idle keep-alive
 *    connections close.
 * 2. For the accept window the listeners still accept, as Envoy's do during a graceful drain:
 *    Kubernetes marks the endpoint terminating at the same moment it sends SIGTERM, and ztunnels
 *    learn it from istiod a little later, so a connection in that gap is served (and told to go
 *    at once) instead of refused. The window is `MINIMUM_DRAIN_DURATION` from the environment
 *    (Istio's name and format; default 5 s as Istio), at most half the drain timeout so that
 *    what arrived late still has time to finish. SIGINT (Ctrl-C, no endpoint to withdraw) skips
 *    it.
 * 3. Then the listeners close; open streams, TCP splices included, may finish until
 *    `--drain-timeout` after the signal (Istio's `terminationDrainDuration`, default 5 s), and the
 *    process exits as soon as the last one ended, or cuts the rest at the timeout.
 *
 * Invariants:
 * - The drain runs once: a second signal during it is logged and otherwise ignored, so a
 *   `kubectl delete` followed by Ctrl-C cannot cut in-flight streams short of the timeout.
 * - The exit code is 0 whether the streams finished or the timeout cut them (both are a
 *   requested shutdown), 1 only when releasing the pieces failed.
 * - Nothing outlives the drain timeout: the accept window is part of it.
 */
import { log } from "../log/mod.ts";
import { UsageError } from "./flags.ts";

/** Istio's `terminationDrainDuration` default. */
export const DEFAULT_DRAIN_MS = 5_000;
/** Istio's `MINIMUM_DRAIN_DURATION` default: how long the listeners still accept after SIGTERM. */
export const DEFAULT_ACCEPT_MS = 5_000;
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
  return parseDuration(text, "--drain-timeout");
}

function parseDuration(text: string, name: string): number {
  const m = /^(\d{1,7})(ms|s)?$/.exec(text);
  const ms = m ? Number(m[1]) * (m[2] === "ms" ? 1 : 1000) : NaN;
  if (!(ms <= MAX_DRAIN_MS)) {
    throw new UsageError(`${name} wants a duration like 5s or 500ms, at most 1h: got "${text}"`);
  }
  return ms;
}

/** How a drain runs. */
export interface DrainOptions {
  /** How long the listeners still accept (unready) before they close; within the grace. @default 0 */
  readonly acceptMs?: number;
}

/** What {@link drainOnSignals} stops. */
export interface Drainable {
  /** Readiness false, drain, accept for `acceptMs`, wait up to `graceMs`, release everything. */
  close(graceMs: number, options?: DrainOptions): Promise<void>;
}

/** A listener that stops accepting and waits for its connections. */
export interface DrainableListener {
  /** Stops accepting; resolves when its connections are gone, or after `graceMs` (then cut). */
  close(graceMs: number): Promise<void>;
}

/**
 * Step 2 and 3 of the drain: lets the listeners accept for the accept window, then closes them
 * with what is left of the grace. Resolves when the last connection ended or the grace is over.
 *
 * @param listeners The listeners, already told to drain their connections
 * @param graceMs The whole drain timeout, from now
 * @param options The accept window
 */
export async function drainListeners(
  listeners: readonly (DrainableListener | undefined)[],
  graceMs: number,
  options: DrainOptions = {},
): Promise<void> {
  const end = performance.now() + graceMs;
  const acceptMs = Math.min(options.acceptMs ?? 0, graceMs);
  if (acceptMs > 0) await new Promise((r) => setTimeout(r, acceptMs));
  const left = Math.max(0, end - performance.now());
  await Promise.all(listeners.map((l) => l?.close(left)));
}

/**
 * The accept window of a SIGTERM drain: `MINIMUM_DRAIN_DURATION` when set, else 5 s; at most half
 * of the drain timeout.
 *
 * @param drainMs The drain timeout
 * @param env The environment @default Deno.env.get
 * @throws UsageError when `MINIMUM_DRAIN_DURATION` is not a duration
 */
export function acceptWindowMs(
  drainMs: number,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): number {
  const text = env("MINIMUM_DRAIN_DURATION");
  const ms = text ? parseDuration(text, "MINIMUM_DRAIN_DURATION") : DEFAULT_ACCEPT_MS;
  return Math.min(ms, Math.floor(drainMs / 2));
}

/**
 * Installs SIGTERM and SIGINT handlers that drain `waypoint` and exit 0.
 *
 * @param waypoint The running waypoint
 * @param drainMs How long open streams may take to finish, from the signal
 * @param exit Ends the process @default Deno.exit
 * @throws UsageError when `MINIMUM_DRAIN_DURATION` is not a duration
 */
export function drainOnSignals(
  waypoint: Drainable,
  drainMs: number,
  exit: (code: number) => void = Deno.exit,
): void {
  const acceptMs = acceptWindowMs(drainMs);
  let draining = false;
  const onSignal = (signal: Deno.Signal) => async () => {
    if (draining) {
      log.info("Already draining, signal ignored", { signal });
      return;
    }
    draining = true;
    const window = signal === "SIGTERM" ? acceptMs : 0;
    log.info("Draining on signal", { signal, drainTimeoutMs: drainMs, acceptMs: window });
    let code = 0;
    try {
      await waypoint.close(drainMs, { acceptMs: window });
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
