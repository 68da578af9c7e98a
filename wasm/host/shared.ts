/**
 * Shared key/value data with compare-and-swap, and shared queues (l7.md §5.5). Istio sets no
 * `vm_id`, so in Envoy every plugin shares the one empty vm id: here one store per runtime is
 * shared by all its VMs, and survives a VM reload.
 *
 * Invariants:
 * - At most {@link SHARED_LIMITS}.keys keys and values of at most `.valueBytes` each; queues hold
 *   at most `.queueItems` items (enqueue answers `INTERNAL_FAILURE` past that).
 * - `proxy_on_queue_ready` is delivered after the enqueuing callback returns, never inside it.
 */
import { Status } from "./abi.ts";

/** Bounds of the shared store. */
export const SHARED_LIMITS = {
  keys: 10_000,
  valueBytes: 1 << 20,
  queues: 1_000,
  queueItems: 10_000,
};

interface Queue {
  readonly name: string;
  readonly items: Uint8Array[];
  /** Notifies the VM that registered the queue. */
  ready: (id: number) => void;
}

/** The shared data and queues of one runtime. */
export class SharedStore {
  #data = new Map<string, { value: Uint8Array; cas: number }>();
  #cas = 0;
  #queues: Queue[] = [];
  #queueIds = new Map<string, number>();

  /** `proxy_get_shared_data`. */
  get(key: string): { value: Uint8Array; cas: number } | undefined {
    return this.#data.get(key);
  }

  /** `proxy_set_shared_data`: `cas` 0 sets unconditionally. */
  set(key: string, value: Uint8Array, cas: number): number {
    const entry = this.#data.get(key);
    if (cas !== 0 && entry && entry.cas !== cas) return Status.CAS_MISMATCH;
    if (value.length > SHARED_LIMITS.valueBytes) return Status.BAD_ARGUMENT;
    if (!entry && this.#data.size >= SHARED_LIMITS.keys) return Status.INTERNAL_FAILURE;
    this.#cas = this.#cas >= 0x7fffffff ? 1 : this.#cas + 1;
    this.#data.set(key, { value, cas: this.#cas });
    return Status.OK;
  }

  /** `proxy_register_shared_queue`: creates the queue or takes it over. */
  register(name: string, ready: (id: number) => void): number | undefined {
    const found = this.#queueIds.get(name);
    if (found !== undefined) {
      this.#queues[found].ready = ready;
      return found;
    }
    if (this.#queues.length >= SHARED_LIMITS.queues) return undefined;
    this.#queues.push({ name, items: [], ready });
    this.#queueIds.set(name, this.#queues.length - 1);
    return this.#queues.length - 1;
  }

  /** `proxy_resolve_shared_queue`. */
  resolve(name: string): number | undefined {
    return this.#queueIds.get(name);
  }

  /** `proxy_enqueue_shared_queue`. */
  enqueue(id: number, value: Uint8Array): number {
    const q = this.#queues[id];
    if (!q) return Status.NOT_FOUND;
    if (q.items.length >= SHARED_LIMITS.queueItems) return Status.INTERNAL_FAILURE;
    q.items.push(value);
    queueMicrotask(() => q.ready(id));
    return Status.OK;
  }

  /** `proxy_dequeue_shared_queue`: the oldest item, or a status (`EMPTY`, `NOT_FOUND`). */
  dequeue(id: number): Uint8Array | number {
    const q = this.#queues[id];
    if (!q) return Status.NOT_FOUND;
    return q.items.shift() ?? Status.EMPTY;
  }
}
