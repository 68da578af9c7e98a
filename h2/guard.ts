/**
 * Limits on the work a peer can make us do without doing its share (RFC 9113 §10.5): resets
 * (rapid reset, CVE-2023-44487, and the resets a peer provokes, CVE-2025-8671), frames that carry
 * nothing but cost a reply or a wake-up (SETTINGS, PING, PRIORITY, empty DATA, unknown types),
 * and header blocks cut into endless CONTINUATION frames (CVE-2024-27316 family). Past
 * a limit the session ends with GOAWAY(ENHANCE_YOUR_CALM), as nghttp2 and Envoy do.
 *
 * Invariants:
 * - Counting costs plain number arithmetic: no allocation, and no clock read until a bucket runs
 *   dry (then one `performance.now()` to refill it).
 * - Every limit is far above what a well-behaved peer does (ztunnel pings every 10 s, sends one
 *   SETTINGS, resets only streams it gives up on) and far below a flood (10^4–10^5 frames/s).
 */
import { ErrorCode, H2ProtocolError } from "./frame.ts";

/**
 * Resets a peer may cause in a burst: streams it resets before we were done (server side) plus
 * streams we reset or refuse for its errors. nghttp2's stream reset burst (1.57+).
 */
export const RESET_BURST = 1000;
/**
 * Resets regained per second. nghttp2 refills 33/s but counts every RST_STREAM, even after a
 * complete response (nghttp2/nghttp2#1984); we count only resets of streams still open, so a
 * client cancelling a busy stream of gRPC calls keeps room, while a flood is 100× faster.
 */
export const RESETS_PER_SECOND = 100;
/** Frames without work (SETTINGS, PING, PRIORITY, empty DATA…) a peer may send in a burst. */
export const CONTROL_BURST = 1000;
/** Such frames regained per second (nghttp2's glitch rate is 33/s over 1000). */
export const CONTROL_PER_SECOND = 100;
/**
 * CONTINUATION frames one header block may use. nghttp2 allows 8; a block within our 64 KiB
 * header list in frames of the 16 KiB minimum size needs 5.
 */
export const MAX_CONTINUATIONS = 16;

/** Why we ended a session with GOAWAY and an error code. */
export type GoawayReason =
  | "rapid_reset"
  | "control_flood"
  | "continuation_flood"
  | "header_block_too_large"
  | "queued_control_frames"
  | "protocol_error"
  | "flow_control_error"
  | "frame_size_error"
  | "compression_error"
  | "stream_closed"
  | "internal_error";

/** A flood or an over-large block: the session ends with ENHANCE_YOUR_CALM and this reason. */
export class H2CalmError extends H2ProtocolError {
  /**
   * @param reason What the peer overdid
   * @param message Details for the GOAWAY debug data and the log
   */
  constructor(readonly reason: GoawayReason, message: string) {
    super(ErrorCode.ENHANCE_YOUR_CALM, message);
    this.name = "H2CalmError";
  }
}

/** Counters of one session, for metrics and logs. */
export interface H2Stats {
  /** Open streams the peer reset before we were done with them. */
  peerResets: number;
  /** Streams we reset or refused because of the peer (stream errors, REFUSED_STREAM, 431). */
  provokedResets: number;
  /** Frames that carried no work (SETTINGS, PING, PRIORITY, empty DATA, unknown types). */
  controlFrames: number;
  /** Request streams reset after `streamIdleTimeoutMs` without a byte either way. */
  idleTimeouts: number;
  /** Why we sent GOAWAY with an error code, if we did. */
  goawayReason: GoawayReason | undefined;
}

/**
 * A token bucket of plain numbers: `burst` tokens, regained at `perSecond`. It reads the clock
 * only when empty, crediting all the time since the last refill (capped at `burst`).
 */
export class TokenBucket {
  #tokens: number;
  #refilledAt: number;

  constructor(readonly burst: number, readonly perSecond: number, now = performance.now()) {
    this.#tokens = burst;
    this.#refilledAt = now;
  }

  /** Takes one token; false when none is left even after refilling. */
  take(): boolean {
    if (this.#tokens < 1) {
      const now = performance.now();
      const gained = ((now - this.#refilledAt) * this.perSecond) / 1000;
      this.#tokens = Math.min(this.burst, this.#tokens + gained);
      this.#refilledAt = now;
      if (this.#tokens < 1) return false;
    }
    this.#tokens -= 1;
    return true;
  }
}

/** The limits and counters of one session. */
export class Guard {
  readonly stats: H2Stats = {
    peerResets: 0,
    provokedResets: 0,
    controlFrames: 0,
    idleTimeouts: 0,
    goawayReason: undefined,
  };
  readonly #resets = new TokenBucket(RESET_BURST, RESETS_PER_SECOND);
  readonly #control = new TokenBucket(CONTROL_BURST, CONTROL_PER_SECOND);

  /**
   * The peer reset a stream it opened before we were done with it.
   *
   * @throws H2CalmError `rapid_reset` when the reset budget is spent
   */
  peerReset(): void {
    this.stats.peerResets++;
    if (!this.#resets.take()) throw new H2CalmError("rapid_reset", "too many stream resets");
  }

  /**
   * We reset or refuse a stream because of the peer.
   *
   * @throws H2CalmError `rapid_reset` when the reset budget is spent
   */
  provokedReset(): void {
    this.stats.provokedResets++;
    if (!this.#resets.take()) {
      throw new H2CalmError("rapid_reset", "too many streams reset for the peer's errors");
    }
  }

  /**
   * A frame that carried no work for the connection.
   *
   * @throws H2CalmError `control_flood` when the budget is spent
   */
  control(): void {
    this.stats.controlFrames++;
    if (!this.#control.take()) {
      throw new H2CalmError("control_flood", "too many frames without payload");
    }
  }
}

/** The reason to report for a connection error. */
export function reasonOf(e: H2ProtocolError): GoawayReason {
  if (e instanceof H2CalmError) return e.reason;
  switch (e.code) {
    case ErrorCode.FLOW_CONTROL_ERROR:
      return "flow_control_error";
    case ErrorCode.FRAME_SIZE_ERROR:
      return "frame_size_error";
    case ErrorCode.COMPRESSION_ERROR:
      return "compression_error";
    case ErrorCode.STREAM_CLOSED:
      return "stream_closed";
    case ErrorCode.INTERNAL_ERROR:
      return "internal_error";
    default:
      return "protocol_error";
  }
}
