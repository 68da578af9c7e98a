/**
 * Remote JWKS retrieval for RequestAuthentication `jwksUri` (or OpenID discovery from the issuer
 * when neither `jwksUri` nor `jwks` is set), behind {@link JwksSource} so that `authenticate` stays
 * pure apart from key lookup and tests can serve keys from a local server.
 *
 * Invariants (after istiod's `JwksResolver`, which a standalone waypoint replaces):
 * - Each URI is fetched with its rule's timeout (default 5 s) and cached.
 * - A cached set is refreshed every 20 minutes in the background; the request path never waits
 *   for a refresh that the cached set can serve.
 * - A token whose `kid` the cached set lacks triggers one refresh (at most one per URI per
 *   `minRefreshIntervalMs`), and that request waits for it: the old set cannot serve it anyway.
 * - A URI that never answered fails closed: its issuer's tokens are rejected. Each failure is
 *   logged; the last good set, if any, stays in use.
 */
import { log } from "../log/mod.ts";
import { type KeySet, parseKeySet } from "./_jwks_keys.ts";
import { PolicyError } from "./errors.ts";

export type { KeySet } from "./_jwks_keys.ts";

/** Which remote key set a rule uses. */
export interface JwksRef {
  /** `jwksUri`; undefined means OpenID discovery at `<issuer>/.well-known/openid-configuration`. */
  readonly uri?: string;
  readonly issuer: string;
  /** The rule's `timeout`. @default 5000 */
  readonly timeoutMs: number;
}

/** Where `authenticate` gets remote keys. */
export interface JwksSource {
  /**
   * The key set for a rule.
   *
   * @param ref The rule's JWKS location and timeout
   * @param kid The token's key id; a set without it may be refreshed first
   * @returns The freshest usable set, or undefined when none could ever be fetched
   */
  keys(ref: JwksRef, kid: string | undefined): Promise<KeySet | undefined>;
}

/** Options of {@link RemoteJwks}. */
export interface RemoteJwksOptions {
  /** Background refresh period. @default 1_200_000 (20 minutes) */
  readonly refreshIntervalMs?: number;
  /** Least time between two fetches of one URI for an unknown `kid` or after a failure. @default 60_000 */
  readonly minRefreshIntervalMs?: number;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** Milliseconds clock. @default Date.now */
  readonly clock?: () => number;
  /** Receives fetch failures. @default the process logger */
  readonly logger?: { warn(msg: string, fields?: Record<string, unknown>): void };
}

interface Entry {
  set?: KeySet;
  fetchedAt: number;
  lastAttempt: number;
  inflight?: Promise<KeySet | undefined>;
  timer?: ReturnType<typeof setTimeout>;
}

/** A {@link JwksSource} that fetches over HTTP(S) and caches per URI. Call `close()` when done. */
export class RemoteJwks implements JwksSource {
  readonly #entries = new Map<string, Entry>();
  readonly #aborts = new Set<AbortController>();
  readonly #refreshMs: number;
  readonly #minRefreshMs: number;
  readonly #fetch: typeof fetch;
  readonly #clock: () => number;
  readonly #logger: NonNullable<RemoteJwksOptions["logger"]>;
  #closed = false;

  /** @param options Refresh periods, and the fetch, clock and logger to use (tests replace them) */
  constructor(options: RemoteJwksOptions = {}) {
    this.#refreshMs = options.refreshIntervalMs ?? 20 * 60_000;
    this.#minRefreshMs = options.minRefreshIntervalMs ?? 60_000;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#clock = options.clock ?? Date.now;
    this.#logger = options.logger ?? log;
  }

  /**
   * The cached set, fetched on first use. Waits only for a first fetch, or for a refresh when
   * the cached set lacks `kid` (rate limited); otherwise answers at once and refreshes a set
   * older than the refresh period in the background.
   *
   * @param ref The rule's JWKS location and timeout
   * @param kid The token's key id, if it has one
   * @returns The set, or undefined when none could ever be fetched (the issuer fails closed)
   */
  keys(ref: JwksRef, kid: string | undefined): Promise<KeySet | undefined> {
    const key = keyOf(ref);
    const now = this.#clock();
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { fetchedAt: -Infinity, lastAttempt: -Infinity };
      this.#entries.set(key, entry);
    }
    const set = entry.set;
    if (set === undefined) {
      if (entry.inflight) return entry.inflight;
      return now - entry.lastAttempt >= this.#minRefreshMs
        ? this.#refresh(key, entry, ref)
        : Promise.resolve(undefined);
    }
    if (kid !== undefined && kid !== "" && !set.hasKid(kid)) {
      if (entry.inflight) return entry.inflight.then((fresh) => fresh ?? set);
      if (now - entry.lastAttempt >= this.#minRefreshMs) {
        return this.#refresh(key, entry, ref).then((fresh) => fresh ?? set);
      }
      return Promise.resolve(set);
    }
    if (
      now - entry.fetchedAt >= this.#refreshMs && !entry.inflight &&
      now - entry.lastAttempt >= this.#minRefreshMs
    ) {
      void this.#refresh(key, entry, ref);
    }
    return Promise.resolve(set);
  }

  /**
   * Fetches sets ahead of the first request (for example after a config load).
   *
   * @returns When every fetch settled; failures are logged, never thrown
   */
  async prefetch(refs: readonly JwksRef[]): Promise<void> {
    await Promise.all(refs.map((ref) => this.keys(ref, undefined)));
  }

  /** Stops background refreshes and aborts fetches in flight. */
  close(): void {
    this.#closed = true;
    for (const entry of this.#entries.values()) clearTimeout(entry.timer);
    for (const abort of this.#aborts) abort.abort();
  }

  #refresh(key: string, entry: Entry, ref: JwksRef): Promise<KeySet | undefined> {
    entry.lastAttempt = this.#clock();
    const run = this.#load(ref).then(
      (set) => {
        entry.set = set;
        entry.fetchedAt = this.#clock();
        this.#schedule(key, entry, ref);
        return set;
      },
      (error: unknown) => {
        this.#logger.warn(
          "JWKS fetch failed; tokens of this issuer are rejected until it succeeds",
          {
            issuer: ref.issuer,
            uri: ref.uri ?? `${ref.issuer} (OpenID discovery)`,
            error: (error as Error).message,
            keptOldKeys: entry.set !== undefined,
          },
        );
        return undefined;
      },
    ).finally(() => {
      entry.inflight = undefined;
    });
    entry.inflight = run;
    return run;
  }

  #schedule(key: string, entry: Entry, ref: JwksRef): void {
    clearTimeout(entry.timer);
    if (this.#closed) return;
    const timer = setTimeout(() => {
      if (this.#entries.get(key) === entry && !entry.inflight) void this.#refresh(key, entry, ref);
    }, this.#refreshMs);
    Deno.unrefTimer(timer);
    entry.timer = timer;
  }

  async #load(ref: JwksRef): Promise<KeySet> {
    const uri = ref.uri ?? await this.#discover(ref);
    const text = await this.#get(uri, ref.timeoutMs);
    const set = parseKeySet(text);
    if (typeof set === "string") throw new PolicyError("jwks-parse", uri, set);
    return set;
  }

  async #discover(ref: JwksRef): Promise<string> {
    const url = `${ref.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
    const text = await this.#get(url, ref.timeoutMs);
    let uri: unknown;
    try {
      uri = JSON.parse(text).jwks_uri;
    } catch {
      // Reported below.
    }
    if (typeof uri !== "string" || uri === "") {
      throw new PolicyError("jwks-parse", url, "no jwks_uri in the OpenID configuration");
    }
    return uri;
  }

  async #get(url: string, timeoutMs: number): Promise<string> {
    if (this.#closed) throw new PolicyError("jwks-fetch", url, "the JWKS source is closed");
    const abort = new AbortController();
    this.#aborts.add(abort);
    const timer = setTimeout(
      () => abort.abort(new PolicyError("jwks-timeout", url, `no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      const response = await this.#fetch(url, {
        signal: abort.signal,
        headers: { accept: "application/json" },
      });
      if (!response.ok) {
        await response.body?.cancel();
        throw new PolicyError("jwks-fetch", url, `HTTP status ${response.status}`);
      }
      return await response.text();
    } catch (error) {
      if (error instanceof PolicyError) throw error;
      if (abort.signal.reason instanceof PolicyError) throw abort.signal.reason;
      throw new PolicyError("jwks-fetch", url, (error as Error).message);
    } finally {
      clearTimeout(timer);
      this.#aborts.delete(abort);
    }
  }
}

function keyOf(ref: JwksRef): string {
  return ref.uri ?? `openid:${ref.issuer}`;
}
