/**
 * PING round trips and keepalive (RFC 9113 §6.7; ztunnel's 10 s interval and 20 s timeout,
 * hbone.md §1.7): our PINGs carry a counter, their ACKs resolve the matching wait, and a
 * keepalive PING unanswered in time ends the session.
 *
 * Invariants:
 * - At most one keepalive PING is outstanding; its timers never keep the process alive.
 * - Every pending `ping()` settles: by its ACK, or by rejection when the session ends.
 */
import { Buffer } from "node:buffer";
import { clearInterval, clearTimeout, setInterval, setTimeout } from "node:timers";
import { pingFrame } from "./frame.ts";
import { unrefTimer } from "./state.ts";
import { H2StreamError } from "./stream.ts";

interface PendingPing {
  readonly started: number;
  readonly resolve: (ms: number) => void;
  readonly reject: (e: Error) => void;
}

/** What {@link Keepalive} is told and may do. */
export interface KeepaliveOptions {
  /** Keepalive PING interval; 0 for none. */
  intervalMs: number;
  /** How long a keepalive PING may go unanswered. */
  timeoutMs: number;
  /** Queues a frame. */
  send: (frame: Buffer) => void;
  /** False once the session can send nothing more. */
  isOpen: () => boolean;
  /** Called when a keepalive PING went unanswered. */
  onTimeout: () => void;
}

/** The PINGs we sent and the keepalive timer of one session. */
export class Keepalive {
  readonly #pings = new Map<string, PendingPing>();
  readonly #o: KeepaliveOptions;
  #counter = 0n;
  #interval: ReturnType<typeof setInterval> | undefined;
  #deadline: ReturnType<typeof setTimeout> | undefined;

  constructor(options: KeepaliveOptions) {
    this.#o = options;
    if (options.intervalMs > 0) {
      this.#interval = setInterval(() => this.#tick(), options.intervalMs);
      unrefTimer(this.#interval);
    }
  }

  /**
   * Sends a PING and resolves with the round trip in milliseconds.
   *
   * @throws (rejects) when the session is closed or ends before the answer
   */
  ping(): Promise<number> {
    if (!this.#o.isOpen()) {
      return Promise.reject(new H2StreamError("ERR_H2_SESSION_CLOSED", "session closed", 0));
    }
    const data = Buffer.alloc(8);
    data.writeBigUInt64BE(++this.#counter);
    return new Promise<number>((resolve, reject) => {
      this.#pings.set(data.toString("hex"), { started: performance.now(), resolve, reject });
      this.#o.send(pingFrame(data, false));
    });
  }

  /** A PING ACK came with `payload`; one of ours is answered (others are ignored). */
  onAck(payload: Buffer): void {
    const key = payload.toString("hex");
    const p = this.#pings.get(key);
    if (!p) return;
    this.#pings.delete(key);
    p.resolve(performance.now() - p.started);
  }

  /** The session ended: timers stop and pending pings reject with `error`. */
  stop(error: Error): void {
    clearInterval(this.#interval);
    clearTimeout(this.#deadline);
    for (const p of this.#pings.values()) p.reject(error);
    this.#pings.clear();
  }

  #tick(): void {
    if (this.#deadline !== undefined) return;
    this.#deadline = setTimeout(this.#o.onTimeout, this.#o.timeoutMs);
    unrefTimer(this.#deadline);
    this.ping().then(
      () => {
        clearTimeout(this.#deadline);
        this.#deadline = undefined;
      },
      () => clearTimeout(this.#deadline),
    );
  }
}
