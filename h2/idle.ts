/**
 * The stream idle timeout (Envoy's `stream_idle_timeout`, 5 min by default): a request stream
 * with no byte either way for that long is reset, so a peer cannot hold stream slots and
 * handlers with HEADERS that never end their body, or with a window it never opens.
 *
 * Invariants:
 * - Activity costs one integer store: the session's parts copy `ConnState.epoch` into the
 *   stream's `_idleEpoch` on DATA either way and on header blocks; no clock is read per frame.
 * - A sweep runs every quarter of the timeout and advances the epoch; a stream whose epoch lags
 *   by five ticks has been idle for more than the timeout and less than 1.25 times it.
 * - CONNECT streams are exempt: they carry tunnels, whose idleness is the application's (Istio
 *   sets no stream idle timeout on the waypoint's `connect_terminate` listener, hbone.md §1.7).
 */
import { clearInterval, setInterval } from "node:timers";
import { type ConnState, unrefTimer } from "./state.ts";
import type { H2Stream } from "./stream.ts";

/** Sweeps per timeout. */
const TICKS = 4;

/** The idle sweep of one session. */
export class IdleSweep {
  readonly #state: ConnState;
  readonly #onIdle: (s: H2Stream) => void;
  readonly #timer: ReturnType<typeof setInterval>;

  /**
   * @param state The connection whose streams are swept
   * @param timeoutMs Idle time after which a stream goes (> 0)
   * @param onIdle Resets one idle stream
   */
  constructor(state: ConnState, timeoutMs: number, onIdle: (s: H2Stream) => void) {
    this.#state = state;
    this.#onIdle = onIdle;
    this.#timer = setInterval(() => this.#sweep(), Math.max(1, timeoutMs / TICKS));
    unrefTimer(this.#timer);
  }

  /** Stops sweeping (the session is gone). */
  stop(): void {
    clearInterval(this.#timer);
  }

  #sweep(): void {
    const state = this.#state;
    const epoch = ++state.epoch;
    if (state.streams.size === 0) return;
    let idle: H2Stream[] | undefined;
    for (const s of state.streams.values()) {
      if (!s._tunnel && epoch - s._idleEpoch > TICKS) (idle ??= []).push(s);
    }
    if (idle) { for (const s of idle) this.#onIdle(s); }
  }
}
