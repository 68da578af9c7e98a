/**
 * The state of one HTTP/2 connection that the session's parts share: its role, socket, options,
 * streams, what the peer advertised, and how far the connection is in closing. The parts are
 * the session (`session.ts`: API and lifecycle), the way in (`inbound.ts`, `header_block.ts`),
 * the way out (`outbound.ts`) and keepalive (`keepalive.ts`).
 *
 * Invariants:
 * - `streams` holds exactly the streams open or half-closed; a closed stream leaves it at once.
 * - Stream ids only grow: ours by two from `nextStreamId`, the peer's above `lastPeerStreamId`.
 */
import type { Duplex } from "node:stream";
import type { H2Headers } from "./fields.ts";
import { Guard } from "./guard.ts";
import { HpackEncoder } from "./hpack.ts";
import { type H2Options, type H2Settings, initialRemoteSettings } from "./settings.ts";
import type { H2Stream } from "./stream.ts";

/** Called for each new stream on a server session. */
export type StreamHandler = (stream: H2Stream, headers: H2Headers) => void;

/** Fields of one connection; mutable by the session's parts, by nobody else. */
export class ConnState {
  readonly streams = new Map<number, H2Stream>();
  readonly remote: H2Settings = initialRemoteSettings();
  /** Encodes every header block we send, in the order they go out. */
  readonly encoder = new HpackEncoder();
  /** What the peer may make us do, and the counters. */
  readonly guard = new Guard();
  /** Ticks of the idle sweep; a stream notes it on activity (see `idle.ts`). */
  epoch = 0;
  nextStreamId = 1;
  lastPeerStreamId = 0;
  /** The last stream id our GOAWAY named, once we sent one. */
  goawaySent: number | undefined;
  /** A shutdown notice (GOAWAY naming the highest stream id) went out; streams still start. */
  noticeSent = false;
  goawayReceived: { errorCode: number; lastStreamId: number } | undefined;
  /** The socket is being ended: nothing more goes out after the flush. */
  ending = false;
  /** The session is gone. */
  finished = false;

  constructor(
    readonly role: "client" | "server",
    readonly socket: Duplex,
    readonly opts: Required<H2Options>,
  ) {}

  /** True when `id` names a stream that was never opened. */
  isIdle(id: number): boolean {
    const peerOpens = this.role === "server" ? (id & 1) === 1 : false;
    if (peerOpens) return id > this.lastPeerStreamId;
    if (this.role === "client" && (id & 1) === 1) return id >= this.nextStreamId;
    return true; // Server-initiated ids: neither side opens them here.
  }
}

/** What the way in needs from the session: its lifecycle and its events. */
export interface SessionHooks {
  /** Forgets a stream that is done both ways or reset. */
  closeStream(s: H2Stream): void;
  /** Resets one stream for a protocol error it caused. */
  streamError(id: number, code: number, message: string): void;
  /** Makes a stream the peer opened (server) with its request headers. */
  newPeerStream(id: number, headers: H2Headers): H2Stream;
  /** The peer's first SETTINGS came. */
  settled(): void;
  /** After GOAWAY either way, the socket ends with the last stream. */
  maybeEnd(): void;
  /** The server's handler, if any. */
  readonly onStream: StreamHandler | undefined;
  emit(event: string, ...args: unknown[]): boolean;
  listenerCount(event: string): number;
}

/** The peer ended its side of `s`; a stream done both ways is closed. */
export function remoteEnded(hooks: SessionHooks, s: H2Stream): void {
  s._onRemoteEnd();
  if (s._localEnded) hooks.closeStream(s);
}

/** Makes a timer not keep the process alive. */
export function unrefTimer(t: unknown): void {
  (t as { unref?: () => void })?.unref?.();
}
