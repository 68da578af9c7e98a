/**
 * Keeps a local copy of every object of one kind: LIST, then WATCH from the list's
 * resourceVersion, again and again, as client-go's reflector does.
 *
 * Invariants:
 * - `synced` resolves after the first complete LIST (or the first 404: a CRD not installed counts
 *   as an empty list), and the store is never partially replaced: a relist swaps it whole.
 * - A watch that ends normally (its `timeoutSeconds`) is reopened at once from the last
 *   resourceVersion seen (events and bookmarks); a 410 Gone, as HTTP status or ERROR event,
 *   relists. Every other fault waits an exponential, jittered, capped backoff first
 *   ({@link nextStep} decides).
 * - A watch that sends no byte for `timeoutSeconds` plus a slack is aborted and reopened: a
 *   half-open connection cannot leave the store stale forever.
 * - After `close()` resolves no request, timer or callback of this informer is left.
 */
import { log as defaultLog, type Logger } from "../../log/mod.ts";
import type { KubeObject } from "../resources.ts";
import { Backoff, sleep } from "./_backoff.ts";
import { KubeApiError, type KubeClient } from "./client.ts";
import { apiVersionOf, type ResourceKind } from "./kinds.ts";

/** Knobs of {@link Informer}. */
export interface InformerOptions {
  /** Called after each change of the store (not on the first list: await `synced`). */
  readonly onChange?: () => void;
  /** @default the process logger */
  readonly logger?: Logger;
  /** A watch lasts between this and twice this, then the server ends it. @default 300 */
  readonly timeoutSeconds?: number;
  /** Silence allowed beyond the watch's timeout before it is deemed dead. @default 30_000 */
  readonly inactivitySlackMs?: number;
  /** First and largest backoff delay. @default 500 and 30_000 */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** How often a kind the server does not serve (404) is asked for again. @default 60_000 */
  readonly missingRetryMs?: number;
  /** @default Math.random */
  readonly random?: () => number;
}

/** Where a fault happened. */
export type Phase = "list" | "watch" | "event";

/** What to do after a fault. */
export interface Step {
  /** LIST again (the watch position is lost or the store may miss events). */
  readonly relist: boolean;
  /** `now`, after a `backoff` delay, or `missing`: the kind is not served, retry much later. */
  readonly wait: "now" | "backoff" | "missing";
}

/**
 * Decides how an informer recovers from a fault.
 *
 * @param error The fault: an HTTP status or ERROR event code, or 0 for transport faults
 * @param phase Where it happened
 * @returns Whether to relist and how long to wait
 */
export function nextStep(error: KubeApiError, phase: Phase): Step {
  // 410: the resourceVersion is older than the server keeps; relist at once. On a list (an
  // expired `continue` token) wait first, so a server that keeps answering 410 is not hammered.
  if (error.status === 410) return { relist: true, wait: phase === "list" ? "backoff" : "now" };
  if (error.status === 404) {
    return phase === "list" ? { relist: true, wait: "missing" } : { relist: true, wait: "backoff" };
  }
  // An event we could not read is lost: only a list brings the store back in step.
  if (phase === "event" || error.reason === "TooLarge" || error.reason === "BadEvent") {
    return { relist: true, wait: "backoff" };
  }
  return { relist: phase === "list", wait: "backoff" };
}

/** One kind's list+watch loop and its store. */
export class Informer {
  readonly kind: ResourceKind;
  readonly #client: KubeClient;
  readonly #onChange: () => void;
  readonly #logger: Logger;
  readonly #timeoutSeconds: number;
  readonly #slackMs: number;
  readonly #missingRetryMs: number;
  readonly #random: () => number;
  readonly #backoff: Backoff;
  readonly #abort = new AbortController();
  #store = new Map<string, KubeObject>();
  #resourceVersion = "";
  #missing = false;
  #lastError: string | undefined;
  #markSynced!: () => void;
  #isSynced = false;
  #loop: Promise<void> | undefined;
  /** Resolves after the first complete list. */
  readonly synced: Promise<void>;

  /**
   * @param client The API client
   * @param kind What to list and watch
   * @param options Change callback, timeouts, backoff
   */
  constructor(client: KubeClient, kind: ResourceKind, options: InformerOptions = {}) {
    this.kind = kind;
    this.#client = client;
    this.#onChange = options.onChange ?? (() => {});
    this.#logger = options.logger ?? defaultLog;
    this.#timeoutSeconds = options.timeoutSeconds ?? 300;
    this.#slackMs = options.inactivitySlackMs ?? 30_000;
    this.#missingRetryMs = options.missingRetryMs ?? 60_000;
    this.#random = options.random ?? Math.random;
    this.#backoff = new Backoff({ ...options.backoff, random: this.#random });
    this.synced = new Promise((resolve) => this.#markSynced = resolve);
  }

  /** Starts listing and watching. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Whether the first list completed. */
  get isSynced(): boolean {
    return this.#isSynced;
  }

  /** The last fault, for a startup that waits too long. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** The objects now known. */
  objects(): KubeObject[] {
    return [...this.#store.values()];
  }

  /** Stops the loop and aborts any request in flight. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let relist = true;
    while (!signal.aborted) {
      let phase: Phase = relist ? "list" : "watch";
      try {
        if (relist) {
          await this.#list();
          relist = false;
        }
        phase = "watch";
        const progressed = await this.#watch((p) => phase = p);
        // A server that ends every watch at once must not make us spin.
        if (progressed) this.#backoff.reset();
        else await sleep(this.#backoff.next(), signal);
      } catch (error) {
        if (signal.aborted) return;
        const fault = error instanceof KubeApiError
          ? error
          : new KubeApiError(0, "Error", String((error as Error)?.message ?? error));
        const step = nextStep(fault, phase);
        relist ||= step.relist;
        await this.#recover(fault, step);
      }
    }
  }

  async #recover(fault: KubeApiError, step: Step): Promise<void> {
    const signal = this.#abort.signal;
    const kind = this.#label();
    if (step.wait === "missing") {
      if (!this.#missing) {
        this.#logger.warn("Kubernetes kind not served, treating it as empty", {
          kind,
          retryMs: this.#missingRetryMs,
          error: fault.message,
        });
      }
      this.#missing = true;
      this.#replace(new Map());
      await sleep(this.#missingRetryMs, signal);
      return;
    }
    this.#lastError = fault.message;
    if (step.wait === "now") {
      this.#logger.info("Kubernetes watch expired, listing again", { kind });
      return;
    }
    const delayMs = this.#backoff.next();
    const level = fault.status === 401 || fault.status === 403 ? "error" : "warn";
    this.#logger[level]("Kubernetes list/watch failed", {
      kind,
      status: fault.status,
      reason: fault.reason,
      error: fault.message,
      retryMs: delayMs,
    });
    await sleep(delayMs, signal);
  }

  async #list(): Promise<void> {
    const list = await this.#client.list(this.kind, this.#abort.signal);
    if (this.#missing) this.#logger.info("Kubernetes kind now served", { kind: this.#label() });
    this.#missing = false;
    this.#lastError = undefined;
    this.#resourceVersion = list.resourceVersion;
    this.#backoff.reset();
    const next = new Map<string, KubeObject>();
    for (const object of list.items) next.set(keyOf(object), object);
    this.#replace(next);
  }

  /** Runs one watch; true when it delivered something or lasted (not an instant end). */
  async #watch(setPhase: (phase: Phase) => void): Promise<boolean> {
    const started = Date.now();
    let progressed = false;
    const timeoutSeconds = this.#timeoutSeconds + Math.floor(this.#random() * this.#timeoutSeconds);
    const events = this.#client.watch(this.kind, this.#resourceVersion, {
      timeoutSeconds,
      inactivityMs: timeoutSeconds * 1000 + this.#slackMs,
      signal: this.#abort.signal,
    });
    for await (const event of events) {
      progressed = true;
      if (event.type === "ERROR") {
        setPhase("event");
        // deno-lint-ignore no-explicit-any
        const status = event.object as any;
        throw new KubeApiError(
          Number(status.code) || 0,
          String(status.reason ?? "Error"),
          `Watch ${this.#label()}: ERROR event ${status.code} ${status.reason}: ${status.message}`,
        );
      }
      const version = (event.object.metadata as { resourceVersion?: string } | undefined)
        ?.resourceVersion;
      if (version) this.#resourceVersion = version;
      if (event.type === "BOOKMARK") continue;
      const key = keyOf(event.object);
      if (event.type === "DELETED") {
        if (this.#store.delete(key)) this.#onChange();
      } else {
        this.#store.set(key, event.object);
        this.#onChange();
      }
    }
    return progressed || Date.now() - started >= 1000;
  }

  /** Swaps the store; tells only when something differs (a relist after 410 usually does not). */
  #replace(next: Map<string, KubeObject>): void {
    const changed = next.size !== this.#store.size ||
      [...next].some(([key, o]) => versionOf(this.#store.get(key)) !== versionOf(o));
    this.#store = next;
    if (!this.#isSynced) {
      this.#isSynced = true;
      this.#markSynced();
    } else if (changed) {
      this.#onChange();
    }
  }

  #label(): string {
    return `${this.kind.kind} ${apiVersionOf(this.kind)}`;
  }
}

function keyOf(object: KubeObject): string {
  const meta = object.metadata as { namespace?: string; name?: string } | undefined;
  return `${meta?.namespace ?? ""}/${meta?.name ?? ""}`;
}

function versionOf(object: KubeObject | undefined): string | undefined {
  return (object?.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
}
