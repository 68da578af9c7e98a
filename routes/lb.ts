/**
 * Endpoint choice by Istio's `DestinationRule` `loadBalancer.simple` policies, as Envoy carries
 * them out (`applyLoadBalancer` in istio `cluster_traffic_policy.go`):
 *
 * - `LEAST_REQUEST`, Istio's default: Envoy's power of two choices. Two endpoints are drawn at
 *   random and the one with fewer requests in flight wins; with two endpoints that means the less
 *   loaded one.
 * - `ROUND_ROBIN`: each endpoint in turn. The cursor belongs to the candidate list itself (a
 *   `WeakMap` keyed by the array's identity). The snapshot hands out one frozen endpoint array
 *   per Service port, so each port keeps its own turn order for as long as the snapshot lives. A
 *   new snapshot brings new arrays, and their cursors start afresh. A fresh cursor starts at a
 *   random place, as Envoy's does, so that many waypoints do not all begin with the same pod.
 * - `RANDOM`: uniform over the usable endpoints.
 *
 * All three pass over the same endpoints. An endpoint that just failed to connect is ejected until
 * its time is up, and an endpoint already tried by this request (`avoid`, Envoy's
 * `previous_hosts`) is skipped. When that leaves no endpoint, the ones not yet tried are used, and
 * when even that leaves none, all are used (like Envoy's panic threshold).
 *
 * Invariants:
 * - In-flight counts and ejections are per endpoint `ip:port` and shared by every caller of one
 *   balancer, whatever the policy.
 * - Every `pick` that returns an endpoint must be matched by one call of the returned `done`.
 * - `pick` allocates only the returned pick. It filters by scanning, not by building new arrays.
 */

/** A `loadBalancer.simple` policy the balancer carries out. */
export type LbPolicy = "LEAST_REQUEST" | "ROUND_ROBIN" | "RANDOM";

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

/**
 * Which candidates a pick may use, from strictest to loosest: neither ejected nor avoided, not
 * avoided, any.
 */
type Level = 0 | 1 | 2;
const HEALTHY = 0;
const UNTRIED = 1;
const ANY = 2;
const STRICT_LEVELS: readonly Level[] = [HEALTHY, UNTRIED];

/** Balancing over endpoint lists, keeping in-flight counts, ejections and cursors across calls. */
export class Balancer {
  #active = new Map<string, number>();
  #ejected = new Map<string, number>();
  #cursors = new WeakMap<readonly Balanced[], number>();
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
   * Chooses an endpoint by a policy and counts it as busy until `done` is called.
   *
   * @example
   * ```ts
   * const balancer = new Balancer();
   * const pick = balancer.pick(port.endpoints, undefined, "ROUND_ROBIN");
   * try { await send(pick!.endpoint); } finally { pick?.done(); }
   * ```
   * @param candidates Endpoints to choose from; may be empty. For `ROUND_ROBIN`, pass the same
   *   array each time (the snapshot's), since the turn order belongs to the array
   * @param avoid Endpoints already tried for this request (Envoy's `previous_hosts`)
   * @param policy How to choose @default "LEAST_REQUEST"
   * @returns The pick, or undefined when there is no endpoint
   */
  pick<E extends Balanced>(
    candidates: readonly E[],
    avoid?: ReadonlySet<E>,
    policy: LbPolicy = "LEAST_REQUEST",
  ): Pick<E> | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    if (n === 1) return this.#take(candidates[0]);
    const level = this.#level(candidates, avoid);
    const usable = level === ANY ? n : this.#count(candidates, avoid, level);
    switch (policy) {
      case "ROUND_ROBIN":
        return this.#take(this.#roundRobin(candidates, avoid, level));
      case "RANDOM":
        return this.#take(this.#nth(candidates, avoid, level, this.#draw(usable)));
      default:
        return this.#take(this.#leastRequest(candidates, avoid, level, usable));
    }
  }

  /** Requests in flight to an endpoint. */
  active(endpoint: Balanced): number {
    return this.#load(endpoint);
  }

  /** Two distinct random candidates, the less loaded wins; ties go to the first drawn. */
  #leastRequest<E extends Balanced>(
    candidates: readonly E[],
    avoid: ReadonlySet<E> | undefined,
    level: Level,
    usable: number,
  ): E {
    if (usable === 1) return this.#nth(candidates, avoid, level, 0);
    // With two usable endpoints that is both, in random order, so ties are broken at random.
    const i = this.#draw(usable);
    let j = this.#draw(usable - 1);
    if (j >= i) j++;
    const a = this.#nth(candidates, avoid, level, i);
    const b = this.#nth(candidates, avoid, level, j);
    return this.#load(b) < this.#load(a) ? b : a;
  }

  /** The first usable candidate at or after the list's cursor; the cursor moves past it. */
  #roundRobin<E extends Balanced>(
    candidates: readonly E[],
    avoid: ReadonlySet<E> | undefined,
    level: Level,
  ): E {
    const n = candidates.length;
    const start = (this.#cursors.get(candidates) ?? this.#draw(n)) % n;
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (this.#fits(candidates[i], avoid, level)) {
        this.#cursors.set(candidates, (i + 1) % n);
        return candidates[i];
      }
    }
    return candidates[start]; // unreachable: the level guarantees a usable candidate
  }

  /** The loosest level that still leaves a candidate, checking the strictest first. */
  #level<E extends Balanced>(candidates: readonly E[], avoid?: ReadonlySet<E>): Level {
    if (this.#ejected.size === 0 && !avoid?.size) return ANY;
    for (const level of STRICT_LEVELS) {
      for (const e of candidates) if (this.#fits(e, avoid, level)) return level;
    }
    return ANY;
  }

  #fits<E extends Balanced>(e: E, avoid: ReadonlySet<E> | undefined, level: Level): boolean {
    if (level === ANY) return true;
    if (avoid?.has(e)) return false;
    return level === UNTRIED || !this.#isEjected(e);
  }

  #count<E extends Balanced>(
    candidates: readonly E[],
    avoid: ReadonlySet<E> | undefined,
    level: Level,
  ): number {
    let count = 0;
    for (const e of candidates) if (this.#fits(e, avoid, level)) count++;
    return count;
  }

  /** The `index`-th candidate (0-based) that fits the level. */
  #nth<E extends Balanced>(
    candidates: readonly E[],
    avoid: ReadonlySet<E> | undefined,
    level: Level,
    index: number,
  ): E {
    if (level === ANY) return candidates[index];
    let left = index;
    for (const e of candidates) {
      if (this.#fits(e, avoid, level) && left-- === 0) return e;
    }
    return candidates[0]; // unreachable: index < the count of fitting candidates
  }

  /** Whether an endpoint is ejected now; an ejection whose time is up is forgotten. */
  #isEjected(e: Balanced): boolean {
    if (this.#ejected.size === 0) return false;
    const key = keyOf(e);
    const until = this.#ejected.get(key);
    if (until === undefined) return false;
    if (until > this.#now()) return true;
    this.#ejected.delete(key);
    return false;
  }

  /** A random integer in [0, n). */
  #draw(n: number): number {
    return Math.min(n - 1, Math.floor(this.#random() * n));
  }

  /** Counts the endpoint as busy and returns the pick. */
  #take<E extends Balanced>(chosen: E): Pick<E> {
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

  #load(e: Balanced): number {
    return this.#active.get(keyOf(e)) ?? 0;
  }
}

function keyOf(e: Balanced): string {
  return `${e.address}:${e.port}`;
}
