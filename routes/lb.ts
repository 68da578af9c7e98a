/**
 * Endpoint choice. Istio waypoints default to Envoy's LEAST_REQUEST (hbone.md §4), which picks
 * two endpoints at random and takes the one with fewer requests in flight ("power of two
 * choices"); with one or two endpoints that means the least loaded.
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
  #random: () => number;

  /** @param random Source of randomness in [0, 1), injectable for tests @default Math.random */
  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /**
   * Chooses an endpoint and counts it as busy until `done` is called.
   *
   * @param endpoints Candidates; may be empty
   * @returns The pick, or undefined when there is no endpoint
   */
  pick<E extends Balanced>(endpoints: readonly E[]): Pick<E> | undefined {
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
