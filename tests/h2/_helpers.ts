/**
 * Helpers for the h2/ tests: loopback listeners, session pairs, a raw-frame peer that speaks
 * HTTP/2 by hand (to send what a correct stack never would), and stream readers.
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import type { Duplex, Readable } from "node:stream";
import {
  CLIENT_PREFACE,
  encodeFrame,
  ErrorCode,
  Flag,
  type Frame,
  FrameReader,
  FrameType,
  headersFrames,
  parseGoaway,
  settingsFrame,
} from "../../h2/frame.ts";
import type { H2Headers } from "../../h2/fields.ts";
import { HpackEncoder } from "../../h2/hpack.ts";
import {
  connectH2,
  type H2Options,
  type H2Session,
  serveH2,
  type StreamHandler,
} from "../../h2/session.ts";
import type { H2Stream } from "../../h2/stream.ts";

/** A TCP listener on loopback that hands each socket to `onSocket`. */
export interface Listener extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** Sockets accepted so far. */
  readonly sockets: net.Socket[];
}

/** Listens on `host` (port 0). Disposing closes it and destroys accepted sockets. */
export async function listen(host: string, onSocket: (s: net.Socket) => void): Promise<Listener> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    onSocket(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    host,
    port,
    sockets,
    [Symbol.asyncDispose]: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Connects a TCP socket, resolved once connected. */
export function dial(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

/** Our client and our server over loopback TCP. */
export interface Pair extends AsyncDisposable {
  readonly client: H2Session;
  /** Server sessions, in accept order. */
  readonly servers: H2Session[];
  readonly listener: Listener;
}

/** Starts our server on `host` and connects our client to it. */
export async function pair(
  host: string,
  onStream: StreamHandler,
  serverOptions: H2Options = {},
  clientOptions: H2Options = {},
): Promise<Pair> {
  const servers: H2Session[] = [];
  const listener = await listen(host, (s) => servers.push(serveH2(s, serverOptions, onStream)));
  const client = connectH2(await dial(host, listener.port), clientOptions);
  await client.ready;
  return {
    client,
    servers,
    listener,
    [Symbol.asyncDispose]: async () => {
      client.destroy();
      for (const s of servers) s.destroy();
      await listener[Symbol.asyncDispose]();
      await settle();
    },
  };
}

/** Our server with a raw client peer connected to it. */
export interface RawClient extends AsyncDisposable {
  readonly peer: RawPeer;
  /** Server sessions, in accept order. */
  readonly sessions: H2Session[];
}

/**
 * Starts our server on `host` and connects a {@link RawPeer} client, resolved once our SETTINGS
 * arrived.
 */
export async function rawClient(
  host: string,
  onStream: StreamHandler,
  options: H2Options = {},
  peerOptions: ConstructorParameters<typeof RawPeer>[2] = {},
): Promise<RawClient> {
  const sessions: H2Session[] = [];
  const listener = await listen(host, (s) => sessions.push(serveH2(s, options, onStream)));
  const peer = new RawPeer(await dial(host, listener.port), "client", peerOptions);
  await peer.waitFor((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK));
  return {
    peer,
    sessions,
    [Symbol.asyncDispose]: async () => {
      peer.destroy();
      for (const s of sessions) s.destroy();
      await listener[Symbol.asyncDispose]();
      await settle();
    },
  };
}

/** Lets pending I/O callbacks and timers of 0 ms run. */
export function settle(ms = 20): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves with everything read until `end`; rejects on `error`. */
export function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.once("end", () => resolve(Buffer.concat(chunks)));
    stream.once("error", reject);
  });
}

/** Resolves with the first emission of `event` (its first argument). */
export function once<T = unknown>(emitter: NodeJS.EventEmitter, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (v: T) => resolve(v)));
}

/** Polls `done` every 5 ms; throws after `ms`. */
export async function until(done: () => boolean, ms = 5_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`Gave up after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Deterministic pseudo-random bytes. */
export function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * An HTTP/2 peer driven frame by frame. As a client it sends the preface and empty SETTINGS
 * (and ACKs the server's); as a server it sends SETTINGS after reading the preface. Every frame
 * it reads is kept in `frames`.
 */
export class RawPeer {
  readonly frames: Frame[] = [];
  readonly encoder = new HpackEncoder();
  readonly closed: Promise<void>;
  #reader: FrameReader;
  #prefaceLeft: number;
  #ackSettings: boolean;
  #autoPong: boolean;

  /**
   * @param socket Connected socket
   * @param role Which side this peer plays
   * @param opts `ackSettings` (default true) answers SETTINGS; `autoPong` (default true) answers
   *   PINGs; `settings` to send instead of an empty SETTINGS
   */
  constructor(
    readonly socket: Duplex,
    role: "client" | "server",
    opts: { ackSettings?: boolean; autoPong?: boolean; settings?: [number, number][] } = {},
  ) {
    this.#ackSettings = opts.ackSettings ?? true;
    this.#autoPong = opts.autoPong ?? true;
    this.#prefaceLeft = role === "server" ? CLIENT_PREFACE.length : 0;
    this.#reader = new FrameReader(1 << 24, (f) => this.#onFrame(f));
    this.closed = new Promise((r) => socket.once("close", () => r()));
    socket.on("error", () => {});
    socket.on("data", (c: Buffer) => {
      if (this.#prefaceLeft > 0) {
        const n = Math.min(this.#prefaceLeft, c.length);
        this.#prefaceLeft -= n;
        c = c.subarray(n);
      }
      this.#reader.push(c);
    });
    if (role === "client") socket.write(CLIENT_PREFACE);
    socket.write(settingsFrame(opts.settings ?? []));
  }

  #onFrame(f: Frame): void {
    this.frames.push(f);
    if (f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK) && this.#ackSettings) {
      this.send(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
    }
    if (f.type === FrameType.PING && !(f.flags & Flag.ACK) && this.#autoPong) {
      this.send(encodeFrame(FrameType.PING, Flag.ACK, 0, f.payload));
    }
  }

  /** Writes raw bytes. */
  send(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Sends a HEADERS block (split into CONTINUATION frames above `maxFrame`). */
  headers(streamId: number, fields: [string, string][], endStream = false, maxFrame = 16_384) {
    this.send(headersFrames(streamId, this.encoder.encode(fields), endStream, maxFrame));
  }

  /** Sends a DATA frame. */
  data(streamId: number, payload: Uint8Array, endStream = false): void {
    this.send(encodeFrame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId, payload));
  }

  /** Resolves with the first frame (already read or coming) that matches. */
  async waitFor(match: (f: Frame) => boolean, ms = 3_000, what = "frame"): Promise<Frame> {
    let found: Frame | undefined;
    await until(() => (found = this.frames.find(match)) !== undefined, ms, what);
    return found!;
  }

  /** Resolves with our peer's GOAWAY: its code and last stream id. */
  async goaway(ms = 3_000): Promise<{ errorCode: number; lastStreamId: number }> {
    const f = await this.waitFor((f) => f.type === FrameType.GOAWAY, ms, "GOAWAY");
    const g = parseGoaway(f.payload);
    return { errorCode: g.errorCode, lastStreamId: g.lastStreamId };
  }

  /** Resolves with the code of the RST_STREAM on `streamId`. */
  async reset(streamId: number, ms = 3_000): Promise<number> {
    const f = await this.waitFor(
      (f) => f.type === FrameType.RST_STREAM && f.streamId === streamId,
      ms,
      `RST_STREAM on ${streamId}`,
    );
    return f.payload.readUInt32BE(0);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** CONNECT request headers for {@link H2Session.request}. */
export function connectHeaders(authority = "10.0.0.1:80"): Record<string, string> {
  return { ":method": "CONNECT", ":authority": authority };
}

/** A CONNECT request block for {@link RawPeer.headers}. */
export function connectFields(authority = "10.0.0.1:80"): [string, string][] {
  return [[":method", "CONNECT"], [":authority", authority]];
}

/** Answers 200 with what arrived, echoes the body, and ends with trailers. */
export function echoRequest(stream: H2Stream, h: H2Headers): void {
  stream.on("error", () => {});
  stream.respond(200, {
    "x-method": String(h[":method"]),
    "x-path": String(h[":path"]),
    "x-scheme": String(h[":scheme"]),
    "x-authority": String(h[":authority"]),
  });
  const body: Buffer[] = [];
  stream.on("data", (c: Buffer) => body.push(c));
  stream.on("end", () => {
    stream.write(Buffer.concat(body));
    stream.sendTrailers({
      "x-body-bytes": String(Buffer.concat(body).length),
      "x-request-trailer": String(stream.trailers?.["x-checksum"] ?? "none"),
    });
  });
}

/** Sends a request and collects the response head, body and trailers. */
export async function exchange(stream: H2Stream) {
  const trailers = once<H2Headers>(stream, "trailers");
  const [head, body] = await exchangeHead(stream);
  return { head, body, trailers: await trailers };
}

/** The response head and body of a stream without trailers. */
export function exchangeHead(stream: H2Stream): Promise<[H2Headers, Buffer]> {
  stream.on("error", () => {});
  return Promise.all([once<H2Headers>(stream, "response"), readAll(stream)]);
}

export { ErrorCode, FrameType };
