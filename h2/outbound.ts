/**
 * The session's way out and its flow control (RFC 9113 §5.2, §6.9): one queue of frames flushed
 * to the socket once per tick, DATA sent only within the peer's windows and while the socket
 * keeps up, and our receive windows given back as consumers drain.
 *
 * Invariants:
 * - Frames produced within one tick go to the socket in one write (a microtask flush); small
 *   parts are copied together, large DATA payloads are written as they are.
 * - The queue stops taking DATA while the socket is congested (more than `SOCKET_HIGH_WATER`
 *   bytes unwritten); a stream with more to send waits in `blocked` for `drain`, a window or
 *   SETTINGS. A peer that makes us queue more than `maxQueuedControlFrames` replies (PING and
 *   SETTINGS acks, resets) while we cannot write is cut off with ENHANCE_YOUR_CALM.
 * - A receive window is refilled (WINDOW_UPDATE) only for bytes a consumer took, in steps of a
 *   quarter window, so a stream's readable buffer never holds more than its window.
 */
import { Buffer } from "node:buffer";
import { dataHeader, DEFAULT_WINDOW, windowUpdateFrame } from "./frame.ts";
import { H2CalmError } from "./guard.ts";
import type { ConnState } from "./state.ts";
import type { H2Stream } from "./stream.ts";

/** Output above this many queued bytes counts as congestion: DATA waits for `drain`. */
const SOCKET_HIGH_WATER = 1 << 20;
/** Parts smaller than this are copied together into one buffer at flush time. */
const COALESCE_LIMIT = 16 << 10;

/** The output queue and both directions' windows of one connection. */
export class Outbound {
  /** Bytes we may still send on the connection (the peer's window). */
  connSendWindow = DEFAULT_WINDOW;
  /** Bytes the peer may still send on the connection. */
  connRecvWindow: number;
  readonly #state: ConnState;
  readonly #blocked = new Set<H2Stream>();
  #connUncredited = 0;
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #congested = false;
  #controlWhileCongested = 0;
  readonly #flushBound = () => this.flush();

  constructor(state: ConnState) {
    this.#state = state;
    this.connRecvWindow = Math.max(state.opts.connectionWindowSize, DEFAULT_WINDOW);
  }

  /** Queues a frame for the next flush. */
  queue(frame: Buffer): void {
    this.#out.push(frame);
    this.#outBytes += frame.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flushBound);
    }
  }

  /**
   * Queues a reply the peer provoked; counted against the flood limit while we are congested.
   *
   * @throws H2CalmError `queued_control_frames` beyond `maxQueuedControlFrames`
   */
  queueReply(frame: Buffer): void {
    if (
      this.#congested && ++this.#controlWhileCongested > this.#state.opts.maxQueuedControlFrames
    ) {
      throw new H2CalmError("queued_control_frames", "too many replies queued while congested");
    }
    this.queue(frame);
  }

  /** Writes everything queued to the socket now. */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#out.length === 0) return;
    const parts = this.#out;
    const total = this.#outBytes;
    this.#out = [];
    this.#outBytes = 0;
    const socket = this.#state.socket;
    if (socket.destroyed || !socket.writable) return;
    if (parts.length === 1) {
      socket.write(parts[0]);
    } else if (total <= COALESCE_LIMIT * 4) {
      socket.write(Buffer.concat(parts, total));
    } else {
      socket.cork();
      let group: Buffer[] = [];
      let groupBytes = 0;
      for (const p of parts) {
        if (p.length >= COALESCE_LIMIT) {
          if (groupBytes > 0) socket.write(Buffer.concat(group, groupBytes));
          group = [];
          groupBytes = 0;
          socket.write(p);
        } else {
          group.push(p);
          groupBytes += p.length;
        }
      }
      if (groupBytes > 0) socket.write(Buffer.concat(group, groupBytes));
      socket.uncork();
    }
    if (socket.writableLength >= Math.max(SOCKET_HIGH_WATER, socket.writableHighWaterMark)) {
      this.#congested = true;
    } else if (this.#blocked.size > 0) {
      this.resumeBlocked();
    }
  }

  /** The socket drained: blocked streams go on. */
  onDrain(): void {
    this.#congested = false;
    this.#controlWhileCongested = 0;
    this.resumeBlocked();
  }

  /** Retries every stream waiting for room. */
  resumeBlocked(): void {
    if (this.#blocked.size === 0) return;
    const streams = [...this.#blocked];
    this.#blocked.clear();
    for (const s of streams) this.trySend(s);
  }

  /** The stream is gone: it waits for nothing any more. */
  forget(s: H2Stream): void {
    this.#blocked.delete(s);
  }

  /** The session is gone: nothing waits any more. */
  clear(): void {
    this.#blocked.clear();
  }

  /** Sends what windows allow of the stream's pending write; completes it when all is sent. */
  trySend(s: H2Stream): void {
    while (s._pending) {
      if (this.#state.finished || s._closed) return;
      if (this.#congested || this.#outBytes >= SOCKET_HIGH_WATER || !s.headersSent) {
        this.#blocked.add(s);
        return;
      }
      const data = s._pending;
      const at = s._pendingAt;
      const n = Math.min(
        data.length - at,
        s._sendWindow,
        this.connSendWindow,
        this.#state.remote.maxFrameSize,
      );
      if (n <= 0) {
        this.#blocked.add(s);
        return;
      }
      s._idleEpoch = this.#state.epoch;
      this.queue(dataHeader(s.id, n, false));
      this.queue(at === 0 && n === data.length ? data : data.subarray(at, at + n));
      s._sendWindow -= n;
      this.connSendWindow -= n;
      if (at + n < data.length) {
        s._pendingAt = at + n;
        continue;
      }
      const cb = s._pendingCb;
      s._pending = s._pendingCb = undefined;
      cb?.();
    }
  }

  /** Gives back connection window for `bytes` the peer sent and we no longer hold. */
  creditConnection(bytes: number): void {
    this.#connUncredited += bytes;
    if (this.#connUncredited >= this.#state.opts.connectionWindowSize / 4) {
      this.queue(windowUpdateFrame(0, this.#connUncredited));
      this.connRecvWindow += this.#connUncredited;
      this.#connUncredited = 0;
    }
  }

  /**
   * The consumer of `s` took `bytes` (or they were discarded): the connection window refills,
   * and the stream's too when `streamToo` and the peer may still send on it.
   */
  consumed(s: H2Stream, bytes: number, streamToo: boolean): void {
    this.creditConnection(bytes);
    if (!streamToo || s._closed || s._remoteEnded) return;
    s._uncredited += bytes;
    if (s._uncredited >= this.#state.opts.initialWindowSize / 4) {
      this.queue(windowUpdateFrame(s.id, s._uncredited));
      s._recvWindow += s._uncredited;
      s._uncredited = 0;
    }
  }
}
