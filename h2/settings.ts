/**
 * The tunables of a session ({@link H2Options}) and the SETTINGS both ways (RFC 9113 §6.5): the
 * defaults, the frame we advertise, and applying a peer's SETTINGS to what we know of it.
 *
 * Invariants:
 * - Options are checked once, when the session is made: a bad value throws there, never later.
 * - What we advertise is what the reading side enforces (frame size, streams, header list).
 */
import type { Buffer } from "node:buffer";
import {
  DEFAULT_WINDOW,
  ErrorCode,
  H2ProtocolError,
  MAX_MAX_FRAME_SIZE,
  MAX_WINDOW,
  MIN_MAX_FRAME_SIZE,
  SettingId,
  settingsFrame,
} from "./frame.ts";

/** Tunables; defaults are ztunnel's (hbone.md §1.7). */
export interface H2Options {
  /** SETTINGS_INITIAL_WINDOW_SIZE we advertise. @default 4 MiB */
  initialWindowSize?: number;
  /** Connection receive window, raised by WINDOW_UPDATE on stream 0. @default 16 MiB */
  connectionWindowSize?: number;
  /** SETTINGS_MAX_FRAME_SIZE we advertise. @default 1 MiB */
  maxFrameSize?: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS we advertise and enforce. @default 100 */
  maxConcurrentStreams?: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce. @default 64 KiB */
  maxHeaderListSize?: number;
  /** Keepalive PING interval; 0 turns keepalive off. @default 10 s */
  pingIntervalMs?: number;
  /** A keepalive PING not answered within this destroys the session. @default 20 s */
  pingTimeoutMs?: number;
  /** Replies we may queue for a peer while our socket is congested. @default 10,000 */
  maxQueuedControlFrames?: number;
  /**
   * A stream other than CONNECT with no byte either way for this long is reset with CANCEL
   * (Envoy's `stream_idle_timeout`); 0 turns it off. @default 5 min
   */
  streamIdleTimeoutMs?: number;
}

/** SETTINGS values (RFC 9113 §6.5.2). */
export interface H2Settings {
  headerTableSize: number;
  enablePush: boolean;
  /** Infinity when the peer did not say. */
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxFrameSize: number;
  /** Infinity when the peer did not say. */
  maxHeaderListSize: number;
}

const DEFAULTS: Required<H2Options> = {
  initialWindowSize: 4 << 20,
  connectionWindowSize: 16 << 20,
  maxFrameSize: 1 << 20,
  maxConcurrentStreams: 100,
  maxHeaderListSize: 64 << 10,
  pingIntervalMs: 10_000,
  pingTimeoutMs: 20_000,
  maxQueuedControlFrames: 10_000,
  streamIdleTimeoutMs: 300_000,
};

/**
 * The options with defaults filled in.
 *
 * @throws RangeError for a frame size or window HTTP/2 cannot advertise
 */
export function resolveOptions(options: H2Options): Required<H2Options> {
  const o: Required<H2Options> = { ...DEFAULTS };
  for (const [k, v] of Object.entries(options)) {
    if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  }
  if (o.maxFrameSize < MIN_MAX_FRAME_SIZE || o.maxFrameSize > MAX_MAX_FRAME_SIZE) {
    throw new RangeError(`maxFrameSize ${o.maxFrameSize} out of range`);
  }
  if (o.initialWindowSize > MAX_WINDOW || o.connectionWindowSize > MAX_WINDOW) {
    throw new RangeError("window sizes must be below 2^31");
  }
  return o;
}

/** What a peer is assumed to have said before its SETTINGS come (RFC 9113 §6.5.2). */
export function initialRemoteSettings(): H2Settings {
  return {
    headerTableSize: 4096,
    enablePush: true,
    maxConcurrentStreams: Infinity,
    initialWindowSize: DEFAULT_WINDOW,
    maxFrameSize: MIN_MAX_FRAME_SIZE,
    maxHeaderListSize: Infinity,
  };
}

/** The SETTINGS we advertise. */
export function localSettings(o: Required<H2Options>): H2Settings {
  return {
    headerTableSize: 4096,
    enablePush: false,
    maxConcurrentStreams: o.maxConcurrentStreams,
    initialWindowSize: o.initialWindowSize,
    maxFrameSize: o.maxFrameSize,
    maxHeaderListSize: o.maxHeaderListSize,
  };
}

/** Our first SETTINGS frame; a client also turns push off. */
export function localSettingsFrame(o: Required<H2Options>, role: "client" | "server"): Buffer {
  const settings: [number, number][] = [
    [SettingId.MAX_CONCURRENT_STREAMS, o.maxConcurrentStreams],
    [SettingId.INITIAL_WINDOW_SIZE, o.initialWindowSize],
    [SettingId.MAX_FRAME_SIZE, o.maxFrameSize],
    [SettingId.MAX_HEADER_LIST_SIZE, o.maxHeaderListSize],
  ];
  if (role === "client") settings.push([SettingId.ENABLE_PUSH, 0]);
  return settingsFrame(settings);
}

/** What a peer's SETTINGS frame changed that the session must act on. */
export interface SettingsChange {
  /** Added to every open stream's send window (RFC 9113 §6.9.2). */
  windowDelta: number;
  /** SETTINGS_HEADER_TABLE_SIZE came: the encoder restates its table size. */
  tableSize: boolean;
}

/**
 * Applies the (id, value) pairs of a peer's SETTINGS to `remote`.
 *
 * @param remote What we know of the peer; updated in place
 * @param pairs The frame's settings in order
 * @param role Our role
 * @returns What the session must do about it
 * @throws H2ProtocolError for a value out of range
 */
export function applySettings(
  remote: H2Settings,
  pairs: readonly (readonly [number, number])[],
  role: "client" | "server",
): SettingsChange {
  const change: SettingsChange = { windowDelta: 0, tableSize: false };
  for (const [id, value] of pairs) {
    switch (id) {
      case SettingId.HEADER_TABLE_SIZE:
        remote.headerTableSize = value;
        change.tableSize = true;
        break;
      case SettingId.ENABLE_PUSH:
        // A server must not turn push on (RFC 9113 §6.5.2).
        if (value > 1 || (role === "client" && value === 1)) {
          throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "bad SETTINGS_ENABLE_PUSH");
        }
        remote.enablePush = value === 1;
        break;
      case SettingId.MAX_CONCURRENT_STREAMS:
        remote.maxConcurrentStreams = value;
        break;
      case SettingId.INITIAL_WINDOW_SIZE:
        if (value > MAX_WINDOW) {
          throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "initial window too large");
        }
        change.windowDelta += value - remote.initialWindowSize;
        remote.initialWindowSize = value;
        break;
      case SettingId.MAX_FRAME_SIZE:
        if (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) {
          throw new H2ProtocolError(
            ErrorCode.PROTOCOL_ERROR,
            "SETTINGS_MAX_FRAME_SIZE out of range",
          );
        }
        remote.maxFrameSize = value;
        break;
      case SettingId.MAX_HEADER_LIST_SIZE:
        remote.maxHeaderListSize = value;
        break;
      default:
        break; // Unknown settings are ignored (RFC 9113 §6.5.2).
    }
  }
  return change;
}
