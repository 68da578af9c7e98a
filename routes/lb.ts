/**
 * Endpoint choice. Istio waypoints default to Envoy's LEAST_REQUEST (hbone.md §4), which picks
 * two endpoints at random and takes the one with fewer requests in flight ("power of two
 * choices"); with one or two endpoints that means the least loaded.
 *
 * Endpoints that just failed to connect are passed over until their ejection ends, unless every
 * candidate is ejected (then all are tried, as Envoy's panic threshold does).
 *
 * Invariants:
 * - In-flight counts are per endpoint `ip:port` and shared by every caller of one balancer.
 * - Every `pick` that returns an endpoint must be matched by one call of the returned `done`.
 */

/** The least an endpoint needs to be balanced. */
export interface Balanced {
  readonly address: string;
  readonly port: number;
}

/** A chosen endpoint and the function that ends its in-flight count. */
export interface Pick<E> {
  readonly endpoint: E;
  readonly done: () => void;
}

/** Least-request balancing over endpoint lists, keeping in-flight counts across calls. */
export class LeastRequestBalancer {
  #active = new Map<string, number>();
  #ejected = new Map<string, number>();
  #random: () => number;
  #now: () => number;

  /**
   * @param random Source of randomness in [0, 1), injectable for tests @default Math.random
   * @param now Clock in ms, injectable for tests @default performance.now
   */
  constructor(random: () => number = Math.random, now: () => number = () => performance.now()) {
    this.#random = random;
    this.#now = now;
  }

  /**
   * Passes over an endpoint for a while, after a connect failure.
   *
   * @param endpoint The endpoint that failed
   * @param forMs How long to avoid it
   */
  eject(endpoint: Balanced, forMs: number): void {
    this.#ejected.set(keyOf(endpoint), this.#now() + forMs);
  }

  /**
   * Chooses an endpoint and counts it as busy until `done` is called.
   *
   * @param candidates Endpoints to choose from; may be empty
   * @param avoid Endpoints already tried for this request (Envoy's `previous_hosts`)
   * @returns The pick, or undefined when there is no endpoint
   */
  pick<E extends Balanced>(
    candidates: readonly E[],
    avoid?: ReadonlySet<E>,
  ): Pick<E> | undefined {
    const endpoints = this.#usable(candidates, avoid);
    const n = endpoints.length;
    if (n === 0) return undefined;
    let chosen = endpoints[0];
    if (n > 1) {
      // Two distinct random candidates; with two endpoints that is both, in random order, so
      // ties are broken at random.
      const i = Math.floor(this.#random() * n);
      let j = Math.floor(this.#random() * (n - 1));
      if (j >= i) j++;
      chosen = this.#load(endpoints[j]) < this.#load(endpoints[i]) ? endpoints[j] : endpoints[i];
    }
    const key = keyOf(chosen);
    this.#active.set(key, (this.#active.get(key) ?? 0) + 1);
    let finished = false;
    return {
      endpoint: chosen,
      done: () => {
        if (finished) return;
        finished = true;
        const left = (this.#active.get(key) ?? 1) - 1;
        if (left <= 0) this.#active.delete(key);
        else this.#active.set(key, left);
      },
    };
  }

  /**
   * Candidates neither ejected nor avoided; when that leaves none, the ones not yet tried; when
   * that leaves none, all of them.
   */
  #usable<E extends Balanced>(candidates: readonly E[], avoid?: ReadonlySet<E>): readonly E[] {
    if (this.#ejected.size === 0 && !avoid?.size) return candidates;
    const now = this.#now();
    const ok = candidates.filter((e) => {
      const until = this.#ejected.get(keyOf(e));
      if (until !== undefined && until <= now) this.#ejected.delete(keyOf(e));
      return !(until !== undefined && until > now) && !avoid?.has(e);
    });
    if (ok.length > 0) return ok;
    const fresh = avoid?.size ? candidates.filter((e) => !avoid.has(e)) : [];
    return fresh.length > 0 ? fresh : candidates;
  }

  /** Requests in flight to an endpoint. */
  active(endpoint: Balanced): number {
    return this.#load(endpoint);
  }

  #load(e: Balanced): number {
    return this.#active.get(keyOf(e)) ?? 0;
  }
}

function keyOf(e: Balanced): string {
  return `${e.address}:${e.port}`;
}
