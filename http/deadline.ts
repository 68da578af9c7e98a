/**
 * A deadline that is set and cancelled per request without touching the timer queue each time.
 *
 * A keep-alive connection arms its idle timer after every response and cancels it when the next
 * head arrives; a pooled connection does the same between requests. Under Deno every
 * `setTimeout`/`clearTimeout` pair costs a timer object and two runtime calls, a few percent of
 * a proxied request's CPU. Here one timer stays scheduled: cancelling only forgets the deadline,
 * and when the timer fires early (the deadline moved later) it is scheduled again for the rest.
 *
 * Invariants:
 * - `onExpire` runs at most once per {@link Deadline.set}, never after {@link Deadline.cancel}
 *   or {@link Deadline.stop}, and never before the deadline.
 * - At most one timer is scheduled; {@link Deadline.stop} clears it (call it when the owner
 *   closes, so no timer keeps the process alive).
 */
import { clearTimeout, setTimeout } from "node:timers";

/** One resettable deadline; see the module doc. */
export class Deadline {
  #onExpire: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the scheduled timer fires (`performance.now()` time). */
  #firesAt = 0;
  /** The deadline, or undefined when cancelled. */
  #at: number | undefined;
  #fire = () => {
    this.#timer = undefined;
    const at = this.#at;
    if (at === undefined) return;
    const left = at - performance.now();
    if (left > 0) return this.#schedule(left);
    this.#at = undefined;
    this.#onExpire();
  };

  /** @param onExpire Runs when a deadline passes */
  constructor(onExpire: () => void) {
    this.#onExpire = onExpire;
  }

  /** Whether a deadline is set. */
  get armed(): boolean {
    return this.#at !== undefined;
  }

  /**
   * Sets the deadline `ms` from now, replacing any other.
   *
   * @param ms Milliseconds from now
   */
  set(ms: number): void {
    const at = performance.now() + ms;
    this.#at = at;
    if (this.#timer !== undefined && this.#firesAt <= at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#schedule(ms);
  }

  /** Forgets the deadline; the timer, if scheduled, stays and fires to no effect. */
  cancel(): void {
    this.#at = undefined;
  }

  /** Forgets the deadline and clears the timer. */
  stop(): void {
    this.#at = undefined;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    this.#firesAt = performance.now() + ms;
    this.#timer = setTimeout(this.#fire, Math.max(1, Math.ceil(ms)));
  }
}
