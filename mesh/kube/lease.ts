/**
 * Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it, so
 * that of several waypoint replicas only one writes the Gateway's status.
 *
 * Invariants:
 * - Expiry is judged by our own clock from when we last saw the Lease change, never by comparing
 *   our clock with the holder's timestamps (replicas' clocks may differ).
 * - Every write carries the resourceVersion read just before it: of two replicas racing for an
 *   expired Lease, the API server lets exactly one win (the other gets 409).
 * - A leader that could not renew for `renewDeadlineMs` stops acting as leader before the Lease
 *   can expire for the others (`renewDeadlineMs` < `leaseDurationMs`).
 * - `close()` gives the Lease up (empty holder), so a successor need not wait for expiry.
 */
import { log as defaultLog, type Logger } from "../../log/mod.ts";
import { sleep } from "./_backoff.ts";
import { KubeApiError, type KubeClient } from "./client.ts";

/** Options of {@link LeaderElector}. */
export interface LeaseOptions {
  readonly namespace: string;
  readonly name: string;
  /** This replica, e.g. the pod name. */
  readonly identity: string;
  /** @default 15_000 */
  readonly leaseDurationMs?: number;
  /** @default 10_000 */
  readonly renewDeadlineMs?: number;
  /** Time between attempts. @default 2_000 */
  readonly retryPeriodMs?: number;
  /** Called when this replica becomes leader, and when it stops being one. */
  readonly onLeading?: (leading: boolean) => void;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default the process logger */
  readonly logger?: Logger;
}

/** The Lease as far as we read it. */
export interface LeaseObject {
  readonly metadata?: { readonly resourceVersion?: string };
  readonly spec?: {
    readonly holderIdentity?: string;
    readonly leaseDurationSeconds?: number;
    readonly renewTime?: string;
    readonly leaseTransitions?: number;
  };
}

/** What one attempt does. */
export type LeaseAction = "create" | "renew" | "take" | "follow";

/**
 * Decides one attempt.
 *
 * @param lease The Lease now, or undefined when there is none
 * @param identity This replica
 * @param unchangedForMs How long the Lease has looked the same to us
 * @param durationMs The Lease's duration
 * @returns Create it, renew ours, take an expired or released one, or follow its holder
 */
export function decideLease(
  lease: LeaseObject | undefined,
  identity: string,
  unchangedForMs: number,
  durationMs: number,
): LeaseAction {
  if (!lease) return "create";
  const holder = lease.spec?.holderIdentity ?? "";
  if (holder === identity) return "renew";
  if (holder === "" || unchangedForMs > durationMs) return "take";
  return "follow";
}

/** Holds or follows one Lease until closed. */
export class LeaderElector {
  readonly #client: KubeClient;
  readonly #options: Required<Omit<LeaseOptions, "onLeading" | "logger">>;
  readonly #onLeading: (leading: boolean) => void;
  readonly #logger: Logger;
  readonly #abort = new AbortController();
  #leading = false;
  #lastRenew = 0;
  #seen: { version: string; at: number } | undefined;
  #loop: Promise<void> | undefined;

  /**
   * @param client The API client
   * @param options The Lease, this replica's identity and the timings
   */
  constructor(client: KubeClient, options: LeaseOptions) {
    this.#client = client;
    this.#options = {
      namespace: options.namespace,
      name: options.name,
      identity: options.identity,
      leaseDurationMs: options.leaseDurationMs ?? 15_000,
      renewDeadlineMs: options.renewDeadlineMs ?? 10_000,
      retryPeriodMs: options.retryPeriodMs ?? 2_000,
      now: options.now ?? Date.now,
    };
    this.#onLeading = options.onLeading ?? (() => {});
    this.#logger = options.logger ?? defaultLog;
  }

  /** Whether this replica holds the Lease now. */
  get isLeader(): boolean {
    return this.#leading;
  }

  /** Starts trying. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops, and releases the Lease when held. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
    if (!this.#leading) return;
    this.#setLeading(false);
    try {
      const lease = await this.#get(undefined);
      if (lease?.spec?.holderIdentity === this.#options.identity) {
        await this.#write("PUT", lease, { holderIdentity: "", leaseDurationSeconds: 1 });
      }
    } catch (error) {
      this.#logger.warn("Could not release the Lease", { lease: this.#path(), error });
    }
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        await this.#attempt();
      } catch (error) {
        if (signal.aborted) return;
        this.#logger.warn("Lease attempt failed", { lease: this.#path(), error });
      }
      const now = this.#options.now();
      if (this.#leading && now - this.#lastRenew > this.#options.renewDeadlineMs) {
        this.#logger.warn("Lease not renewed in time, stepping down", { lease: this.#path() });
        this.#setLeading(false);
      }
      await sleep(this.#options.retryPeriodMs, signal);
    }
  }

  async #attempt(): Promise<void> {
    const lease = await this.#get(this.#abort.signal);
    const now = this.#options.now();
    const version = lease?.metadata?.resourceVersion ?? "";
    if (this.#seen?.version !== version) this.#seen = { version, at: now };
    const action = decideLease(
      lease,
      this.#options.identity,
      now - this.#seen.at,
      this.#options.leaseDurationMs,
    );
    if (action === "follow") {
      this.#setLeading(false);
      return;
    }
    const spec = {
      holderIdentity: this.#options.identity,
      leaseDurationSeconds: Math.ceil(this.#options.leaseDurationMs / 1000),
      renewTime: microTime(now),
      ...(action === "renew" ? {} : {
        acquireTime: microTime(now),
        leaseTransitions: (lease?.spec?.leaseTransitions ?? -1) + 1,
      }),
    };
    try {
      await this.#write(action === "create" ? "POST" : "PUT", lease, spec);
    } catch (error) {
      // Another replica won the race: follow it.
      if (error instanceof KubeApiError && error.status === 409) {
        this.#setLeading(false);
        return;
      }
      throw error;
    }
    this.#lastRenew = now;
    this.#setLeading(true);
  }

  async #get(signal: AbortSignal | undefined): Promise<LeaseObject | undefined> {
    try {
      return await this.#client.request("GET", this.#path(), { signal }) as LeaseObject;
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  async #write(
    method: "POST" | "PUT",
    lease: LeaseObject | undefined,
    spec: Record<string, unknown>,
  ): Promise<void> {
    const { namespace, name } = this.#options;
    const body = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name, namespace, resourceVersion: lease?.metadata?.resourceVersion },
      spec: { ...lease?.spec, ...spec },
    };
    const path = method === "POST" ? this.#collection() : this.#path();
    await this.#client.request(method, path, { body });
  }

  #setLeading(leading: boolean): void {
    if (leading === this.#leading) return;
    this.#leading = leading;
    this.#logger.info(leading ? "Lease acquired" : "Lease lost", { lease: this.#path() });
    this.#onLeading(leading);
  }

  #collection(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${
      encodeURIComponent(this.#options.namespace)
    }/leases`;
  }

  #path(): string {
    return `${this.#collection()}/${encodeURIComponent(this.#options.name)}`;
  }
}

/** Kubernetes MicroTime: RFC 3339 with microseconds. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace("Z", "000Z");
}
