/**
 * Keeps our workload certificate fresh: renews at half its lifetime (with a little jitter, so
 * replicas do not call the CA together), retries failures with capped exponential backoff, and
 * hands each new certificate to the {@link IdentitySource}, which applies it to new handshakes
 * only.
 *
 * Invariants (after ztunnel `src/identity/manager.rs` and pilot-agent's
 * `SECRET_GRACE_PERIOD_RATIO` 0.5, jitter 0.01; hbone.md §5):
 * - A failed renewal never removes the current certificate: we keep serving with it, and retry,
 *   even past its expiry (logged as an error), until the CA answers.
 * - Half the lifetime is counted from when the certificate arrived, not from its notBefore: CAs
 *   backdate notBefore against clock skew, which would make a short certificate look half spent.
 * - One request at a time; `close()` stops the timer and any later replacement.
 */
import { log } from "../log/mod.ts";
import type { IdentitySource, TlsMaterial } from "./identity.ts";

/** Tunables of {@link CertificateRotation}. */
export interface RotationOptions {
  /** Share of the lifetime after which to renew. @default 0.5 */
  readonly renewFraction?: number;
  /** Random spread of the renewal time, as a share of the lifetime. @default 0.01 */
  readonly jitterFraction?: number;
  /** First retry delay after a failure. @default 1 s */
  readonly minBackoffMs?: number;
  /** Largest retry delay. @default 150 s (ztunnel's cap) */
  readonly maxBackoffMs?: number;
}

/** Counts for metrics and tests. */
export interface RotationStats {
  /** Seconds until the current certificate expires (negative once expired). */
  readonly expirySeconds: number;
  /** Certificates installed since start (the first one not counted). */
  readonly renewals: number;
  /** Failed requests since start. */
  readonly failures: number;
  /** Why the last request failed, until one succeeds. */
  readonly lastError?: string;
}

/**
 * When to renew: `renewFraction` of the remaining lifetime after `receivedAt`, moved by up to
 * ±`jitterFraction` of it.
 *
 * @param notAfter Expiry of the certificate, epoch ms
 * @param receivedAt When it arrived, epoch ms
 * @param random A number in [0, 1)
 * @param options Fractions
 * @returns Milliseconds from `receivedAt`, at least 0
 */
export function renewDelay(
  notAfter: number,
  receivedAt: number,
  random: number,
  options: RotationOptions = {},
): number {
  const lifetime = Math.max(0, notAfter - receivedAt);
  const jitter = (random * 2 - 1) * (options.jitterFraction ?? 0.01) * lifetime;
  return Math.max(0, lifetime * (options.renewFraction ?? 0.5) + jitter);
}

/**
 * The delay before retry number `attempt` (1 for the first): doubling from `minBackoffMs`, capped
 * at `maxBackoffMs`, then spread over its upper half so retries do not line up.
 */
export function backoffDelay(
  attempt: number,
  random: number,
  options: RotationOptions = {},
): number {
  const min = options.minBackoffMs ?? 1_000;
  const max = options.maxBackoffMs ?? 150_000;
  const full = Math.min(max, min * 2 ** Math.min(attempt - 1, 30));
  return full / 2 + (full / 2) * random;
}

/** Renews the certificate of an identity holder from a fetch function (the CA client's). */
export class CertificateRotation {
  readonly #fetch: () => Promise<TlsMaterial>;
  readonly #identity: IdentitySource;
  readonly #options: RotationOptions;
  readonly #ca: string;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #attempt = 0;
  #renewals = 0;
  #failures = 0;
  #lastError: string | undefined;

  /**
   * Starts the schedule for the identity's current certificate, just received.
   *
   * @param fetch Gets a new certificate (throws on failure)
   * @param identity The holder new certificates go into
   * @param options Timing, and `ca` (the CA's address) for logs
   */
  constructor(
    fetch: () => Promise<TlsMaterial>,
    identity: IdentitySource,
    options: RotationOptions & { readonly ca: string },
  ) {
    this.#fetch = fetch;
    this.#identity = identity;
    this.#options = options;
    this.#ca = options.ca;
    this.#scheduleRenewal(identity.current);
  }

  get stats(): RotationStats {
    return {
      expirySeconds: (this.#identity.current.notAfter.getTime() - Date.now()) / 1000,
      renewals: this.#renewals,
      failures: this.#failures,
      lastError: this.#lastError,
    };
  }

  /** Stops renewing. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #scheduleRenewal(m: TlsMaterial): void {
    const delay = renewDelay(m.notAfter.getTime(), Date.now(), Math.random(), this.#options);
    log.info("Certificate installed", {
      ca: this.#ca,
      identity: m.identity,
      notAfter: m.notAfter,
      renewInSeconds: Math.round(delay / 1000),
    });
    this.#arm(delay);
  }

  #arm(delay: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#renew(), delay);
  }

  async #renew(): Promise<void> {
    let next: TlsMaterial;
    try {
      next = await this.#fetch();
    } catch (e) {
      if (this.#closed) return;
      this.#failures++;
      this.#attempt++;
      this.#lastError = (e as Error).message;
      const retryMs = backoffDelay(this.#attempt, Math.random(), this.#options);
      const expiresIn = (this.#identity.current.notAfter.getTime() - Date.now()) / 1000;
      const fields = {
        ca: this.#ca,
        reason: this.#lastError,
        expiresInSeconds: Math.round(expiresIn),
        retryInMs: Math.round(retryMs),
      };
      if (expiresIn > 0) log.warn("Certificate renewal failed, keeping the current one", fields);
      else log.error("Certificate renewal failed and the current one has expired", fields);
      this.#arm(retryMs);
      return;
    }
    if (this.#closed) return;
    this.#attempt = 0;
    this.#lastError = undefined;
    this.#renewals++;
    this.#identity.replace(next);
    this.#scheduleRenewal(next);
  }
}
