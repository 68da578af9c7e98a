/**
 * The session's way in (RFC 9113 §3.4, §4, §6): the client preface, frames cut from the socket's
 * bytes, and each frame dispatched to what it means: DATA into its stream, header blocks (see
 * `header_block.ts`), resets, SETTINGS, PING, GOAWAY and WINDOW_UPDATE.
 *
 * Invariants:
 * - The reader holds at most one frame of our maximum frame size.
 * - A connection error is thrown (H2ProtocolError, HpackError) for the session to answer with
 *   GOAWAY; a stream error resets only that stream, here.
 * - DATA counts against both receive windows before anything else; bytes we drop (a closed
 *   stream, padding, a stream error) are credited back at once.
 * - Frames that cost us work without carrying any (SETTINGS, PING, PRIORITY, empty DATA without
 *   END_STREAM, unknown types), resets of open streams and the stream errors a peer provokes
 *   count against the budgets of `guard.ts`, which end the session when spent. Late frames for
 *   streams already closed cost a map lookup and are not counted.
 */
import type { Buffer } from "node:buffer";
import {
  CLIENT_PREFACE,
  ErrorCode,
  Flag,
  type Frame,
  FrameReader,
  FrameType,
  H2ProtocolError,
  MAX_WINDOW,
  parseGoaway,
  parseSettings,
  parseU32,
  pingFrame,
  settingsAckFrame,
  unpad,
} from "./frame.ts";
import { HeaderBlocks, lengthHolds } from "./header_block.ts";
import type { Keepalive } from "./keepalive.ts";
import type { Outbound } from "./outbound.ts";
import { applySettings } from "./settings.ts";
import { type ConnState, remoteEnded, type SessionHooks } from "./state.ts";

/** Reads and applies what the peer sends. */
export class Inbound {
  readonly #state: ConnState;
  readonly #out: Outbound;
  readonly #hooks: SessionHooks;
  readonly #keepalive: Keepalive;
  readonly #reader: FrameReader;
  readonly #blocks: HeaderBlocks;
  #prefaceLeft: number;
  #gotSettings = false;

  constructor(state: ConnState, out: Outbound, hooks: SessionHooks, keepalive: Keepalive) {
    this.#state = state;
    this.#out = out;
    this.#hooks = hooks;
    this.#keepalive = keepalive;
    this.#blocks = new HeaderBlocks(state, out, hooks);
    this.#prefaceLeft = state.role === "server" ? CLIENT_PREFACE.length : 0;
    this.#reader = new FrameReader(state.opts.maxFrameSize, (f) => this.#onFrame(f));
  }

  /**
   * Bytes from the socket: the rest of the preface, then frames.
   *
   * @throws H2ProtocolError or HpackError for a connection error
   */
  push(chunk: Buffer): void {
    if (this.#prefaceLeft > 0) {
      const n = Math.min(this.#prefaceLeft, chunk.length);
      const from = CLIENT_PREFACE.length - this.#prefaceLeft;
      if (CLIENT_PREFACE.compare(chunk, 0, n, from, from + n) !== 0) {
        throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "bad client preface");
      }
      this.#prefaceLeft -= n;
      if (n === chunk.length) return;
      chunk = chunk.subarray(n);
    }
    this.#reader.push(chunk);
  }

  /** Reads nothing more. */
  stop(): void {
    this.#reader.stop();
  }

  #onFrame(f: Frame): void {
    if (this.#state.finished) return;
    if (this.#blocks.open && f.type !== FrameType.CONTINUATION) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "expected CONTINUATION");
    }
    if (!this.#gotSettings && (f.type !== FrameType.SETTINGS || f.flags & Flag.ACK)) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "first frame is not SETTINGS");
    }
    try {
      this.#dispatch(f);
    } catch (e) {
      if (e instanceof H2ProtocolError && e.streamId !== undefined) {
        this.#hooks.streamError(e.streamId, e.code, e.message);
        this.#state.guard.provokedReset();
        return;
      }
      throw e;
    }
  }

  #dispatch(f: Frame): void {
    switch (f.type) {
      case FrameType.DATA:
        return this.#onData(f);
      case FrameType.HEADERS:
        return this.#blocks.onHeaders(f);
      case FrameType.CONTINUATION:
        return this.#blocks.onContinuation(f);
      case FrameType.PRIORITY:
        if (f.streamId === 0) throw connError("PRIORITY on stream 0");
        if (f.payload.length !== 5) {
          throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "PRIORITY size", f.streamId);
        }
        return this.#state.guard.control();
      case FrameType.RST_STREAM:
        return this.#onRstStream(f);
      case FrameType.SETTINGS:
        return this.#onSettings(f);
      case FrameType.PUSH_PROMISE:
        throw connError("PUSH_PROMISE while push is disabled");
      case FrameType.PING:
        return this.#onPing(f);
      case FrameType.GOAWAY:
        return this.#onGoaway(f);
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(f);
      default:
        return this.#state.guard.control(); // Unknown types are ignored (RFC 9113 §4.1).
    }
  }

  #onData(f: Frame): void {
    const id = f.streamId;
    if (id === 0) throw connError("DATA on stream 0");
    const out = this.#out;
    const length = f.payload.length;
    if (length > out.connRecvWindow) {
      throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "connection window exceeded");
    }
    out.connRecvWindow -= length;
    const s = this.#state.streams.get(id);
    if (!s) {
      if (this.#state.isIdle(id)) throw connError("DATA on an idle stream");
      out.creditConnection(length); // A stream we closed: drop the bytes, keep the window.
      return;
    }
    if (s._remoteEnded) {
      out.creditConnection(length);
      throw new H2ProtocolError(ErrorCode.STREAM_CLOSED, "DATA after END_STREAM", id);
    }
    if (this.#state.role === "client" && !s._responded) {
      out.creditConnection(length);
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "DATA before the response", id);
    }
    if (length > s._recvWindow) {
      out.creditConnection(length);
      throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "stream window exceeded", id);
    }
    s._recvWindow -= length;
    const data = unpad(f);
    if (data.length < length) out.consumed(s, length - data.length, true);
    if (!lengthHolds(s, data.length, (f.flags & Flag.END_STREAM) !== 0)) {
      out.creditConnection(data.length);
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "DATA differs from content-length", id);
    }
    s._idleEpoch = this.#state.epoch;
    if (data.length > 0) s._onData(data);
    if (f.flags & Flag.END_STREAM) remoteEnded(this.#hooks, s);
    else if (data.length === 0) this.#state.guard.control();
  }

  #onRstStream(f: Frame): void {
    const id = f.streamId;
    if (id === 0) throw connError("RST_STREAM on stream 0");
    const code = parseU32(f.payload, false);
    const state = this.#state;
    const s = state.streams.get(id);
    if (!s) {
      if (state.isIdle(id)) throw connError("RST_STREAM on an idle stream");
      return;
    }
    this.#hooks.closeStream(s);
    s._onReset(code, true);
    // Rapid reset: a stream opened and dropped before we answered it cost us its handler.
    if (state.role === "server" && !s._localEnded) state.guard.peerReset();
  }

  #onSettings(f: Frame): void {
    if (f.streamId !== 0) throw connError("SETTINGS on a stream");
    if (this.#gotSettings) this.#state.guard.control();
    if (f.flags & Flag.ACK) {
      if (f.payload.length !== 0) {
        throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with payload");
      }
      return;
    }
    const state = this.#state;
    const change = applySettings(state.remote, parseSettings(f.payload), state.role);
    if (change.tableSize) state.encoder.tableSizeChanged();
    if (change.windowDelta !== 0) {
      for (const s of state.streams.values()) {
        s._sendWindow += change.windowDelta;
        if (s._sendWindow > MAX_WINDOW) {
          throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "stream window overflow");
        }
      }
    }
    this.#out.queueReply(settingsAckFrame());
    if (!this.#gotSettings) {
      this.#gotSettings = true;
      this.#hooks.settled();
    }
    this.#hooks.emit("remoteSettings", { ...state.remote });
    this.#out.resumeBlocked();
  }

  #onPing(f: Frame): void {
    if (f.streamId !== 0) throw connError("PING on a stream");
    if (f.payload.length !== 8) throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "PING size");
    this.#state.guard.control();
    if (f.flags & Flag.ACK) this.#keepalive.onAck(f.payload);
    else this.#out.queueReply(pingFrame(f.payload, true));
  }

  #onGoaway(f: Frame): void {
    if (f.streamId !== 0) throw connError("GOAWAY on a stream");
    const state = this.#state;
    const g = parseGoaway(f.payload);
    const last = Math.min(g.lastStreamId, state.goawayReceived?.lastStreamId ?? MAX_WINDOW);
    state.goawayReceived = { errorCode: g.errorCode, lastStreamId: last };
    if (state.role === "client") {
      for (const s of [...state.streams.values()]) {
        if (s.id <= last) continue;
        this.#hooks.closeStream(s);
        s._onReset(ErrorCode.REFUSED_STREAM, false, "refused by the peer's GOAWAY");
      }
    }
    this.#hooks.emit("goaway", g.errorCode, last, g.debug);
    this.#hooks.maybeEnd();
  }

  #onWindowUpdate(f: Frame): void {
    const increment = parseU32(f.payload, true);
    const id = f.streamId;
    const out = this.#out;
    if (id === 0) {
      if (increment === 0) throw connError("WINDOW_UPDATE of 0 on the connection");
      out.connSendWindow += increment;
      if (out.connSendWindow > MAX_WINDOW) {
        throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "connection window overflow");
      }
      out.resumeBlocked();
      return;
    }
    const s = this.#state.streams.get(id);
    if (!s) {
      if (this.#state.isIdle(id)) throw connError("WINDOW_UPDATE on an idle stream");
      return;
    }
    if (increment === 0) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0", id);
    }
    s._sendWindow += increment;
    if (s._sendWindow > MAX_WINDOW) {
      throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "stream window overflow", id);
    }
    if (s._pending) out.trySend(s);
  }
}

function connError(message: string): H2ProtocolError {
  return new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, message);
}
