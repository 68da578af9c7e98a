/**
 * Outbound HBONE: a pool of mTLS HTTP/2 connections to destination ztunnels, each carrying many
 * CONNECT streams.
 *
 * Invariants (after ztunnel `src/proxy/pool.rs`, hbone.md §1.8):
 * - Pool key = (our identity, the peer identity we require, peer ip:port). Connections are never
 *   shared across keys, so a stream always runs over a connection whose server proved the
 *   identity that the endpoint must have.
 * - A connection carries at most min(poolMaxStreams, peer's MAX_CONCURRENT_STREAMS) streams; a
 *   new connection is opened when every one of the key's connections is full.
 * - A connection that got GOAWAY or closed takes no new streams; its open streams finish.
 * - A connection with no streams for `poolIdleMs` is closed.
 */
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { connectH2, type H2Headers, type H2Session, type H2Stream } from "../h2/mod.ts";
import { log } from "../log/mod.ts";
import { CIPHERS, h2Options, type TunnelConfig } from "./config.ts";
import { TunnelError } from "./errors.ts";
import { IdentitySource, spiffeIdOf } from "./identity.ts";

/** Where one tunnel goes and what it asks for. */
export interface TunnelTarget {
  /** IP of the destination ztunnel (the pod IP). */
  readonly address: string;
  /** Its HBONE port. */
  readonly port: number;
  /**
   * SPIFFE id the server must present; one ending in `/` is a prefix (`spiffe://td/` accepts any
   * identity of that trust domain, as Envoy's SAN prefix matchers do).
   */
  readonly identity: string;
  /** CONNECT `:authority`, `podIP:targetPort`. */
  readonly authority: string;
  /** Extra request headers (`forwarded`, `baggage`, `traceparent`). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** An established tunnel: the byte stream after the peer answered 200. */
export interface Tunnel {
  readonly stream: Duplex;
  /** The CONNECT response headers; empty for plain TCP. */
  readonly headers: H2Headers;
}

/** Counts for metrics and tests. */
export interface PoolStats {
  readonly connections: number;
  readonly streams: number;
  /** Connections opened since the pool was made. */
  readonly opened: number;
}

interface Conn {
  readonly key: string;
  session?: H2Session;
  readonly ready: Promise<H2Session>;
  streams: number;
  usable: boolean;
  idle?: ReturnType<typeof setTimeout>;
}

/** A pool of outbound HBONE connections keyed by identity pair and address. */
export class HbonePool {
  #identity: IdentitySource;
  #config: TunnelConfig;
  #conns = new Map<string, Conn[]>();
  #opened = 0;

  constructor(identity: IdentitySource, config: TunnelConfig) {
    this.#identity = identity;
    this.#config = config;
  }

  /**
   * Opens a CONNECT stream to the target, reusing a pooled connection when one has room.
   *
   * @param target Peer address, required identity, authority and headers
   * @returns The stream once the peer answered 200
   * @throws TunnelError of kind connect, tls, status, reset or timeout
   */
  async open(target: TunnelTarget): Promise<Tunnel> {
    const conn = this.#reserve(target);
    let stream: H2Stream;
    try {
      const session = await conn.ready;
      stream = session.request({
        ":method": "CONNECT",
        ":authority": target.authority,
        ...target.headers,
      });
    } catch (e) {
      this.#release(conn);
      throw asTunnelError(e, target);
    }
    stream.once("close", () => this.#release(conn));
    return await awaitResponse(stream, target, this.#config.connectTimeoutMs);
  }

  /** Current connection and stream counts. */
  get stats(): PoolStats {
    let connections = 0, streams = 0;
    for (const list of this.#conns.values()) {
      connections += list.length;
      for (const c of list) streams += c.streams;
    }
    return { connections, streams, opened: this.#opened };
  }

  /** Closes every connection (GOAWAY), letting open streams finish. */
  close(): void {
    for (const list of this.#conns.values()) {
      for (const c of list) {
        clearTimeout(c.idle);
        c.usable = false;
        void c.ready.then((session) => session.close(), () => {});
      }
    }
    this.#conns.clear();
  }

  #reserve(target: TunnelTarget): Conn {
    const key =
      `${this.#identity.current.identity}|${target.identity}|${target.address}:${target.port}`;
    const list = this.#conns.get(key) ?? [];
    let conn = list.find((c) => c.usable && c.streams < this.#limit(c));
    if (!conn) {
      conn = this.#dial(key, target);
      list.push(conn);
      this.#conns.set(key, list);
    }
    clearTimeout(conn.idle);
    conn.idle = undefined;
    conn.streams++;
    return conn;
  }

  #limit(conn: Conn): number {
    const peer = conn.session?.remoteSettings.maxConcurrentStreams;
    return Math.min(this.#config.poolMaxStreams, peer && peer > 0 ? peer : Infinity);
  }

  #release(conn: Conn): void {
    conn.streams--;
    if (conn.streams > 0 || !conn.usable) return;
    conn.idle = setTimeout(() => {
      this.#retire(conn);
      void conn.session?.close();
    }, this.#config.poolIdleMs);
  }

  #retire(conn: Conn): void {
    conn.usable = false;
    clearTimeout(conn.idle);
    const list = this.#conns.get(conn.key);
    if (!list) return;
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#conns.delete(conn.key);
  }

  #dial(key: string, target: TunnelTarget): Conn {
    const me = this.#identity.current;
    const peer = `${target.address}:${target.port}`;
    const config = this.#config;
    this.#opened++;
    // The callbacks below run after `conn` is assigned: the socket cannot call back synchronously.
    const ready = new Promise<H2Session>((resolve, reject) => {
      const socket = tls.connect({
        host: target.address,
        port: target.port,
        key: me.key,
        cert: me.certChain,
        ca: me.root,
        minVersion: "TLSv1.3",
        ciphers: CIPHERS,
        ALPNProtocols: ["h2"],
        // ztunnel verifies the peer by URI SAN only, never by DNS or IP name (hbone.md §1.6).
        checkServerIdentity: (_host, cert) => {
          const got = spiffeIdOf(cert.subjectaltname);
          return got && identityMatches(got, target.identity) ? undefined : new TunnelError(
            "tls",
            peer,
            `server identity ${got ?? "(none)"} is not the expected ${target.identity}`,
          );
        },
      });
      const timer = setTimeout(() => {
        const e = new TunnelError(
          "timeout",
          peer,
          `no HTTP/2 session in ${config.connectTimeoutMs} ms`,
        );
        socket.destroy(e);
        reject(e);
      }, config.connectTimeoutMs);
      socket.once("error", (e) => {
        clearTimeout(timer);
        this.#retire(conn);
        reject(e);
      });
      socket.once("secureConnect", () => {
        socket.setNoDelay(true);
        const session = connectH2(socket, h2Options(config));
        conn.session = session;
        session.on(
          "error",
          (e: Error) => log.debug("HBONE upstream session error", { peer, reason: e }),
        );
        session.on("goaway", () => this.#retire(conn));
        session.on("close", () => this.#retire(conn));
        session.ready.then(() => {
          clearTimeout(timer);
          resolve(session);
        }, (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
    });
    const conn: Conn = { key, ready, streams: 0, usable: true };
    conn.ready.catch(() => {}); // Observed by each opener; silence the unhandled copy.
    return conn;
  }
}

/** Exact match, or prefix match when `wanted` ends with `/`. */
export function identityMatches(got: string, wanted: string): boolean {
  return wanted.endsWith("/") ? got.startsWith(wanted) : got === wanted;
}

function awaitResponse(
  stream: H2Stream,
  target: TunnelTarget,
  timeoutMs: number,
): Promise<Tunnel> {
  const peer = `${target.address}:${target.port}`;
  return new Promise((resolve, reject) => {
    const fail = (e: TunnelError) => {
      cleanup();
      if (!stream.destroyed) stream.destroy();
      reject(e);
    };
    const timer = setTimeout(
      () => fail(new TunnelError("timeout", peer, `no CONNECT response in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onResponse = (headers: H2Headers) => {
      const status = Number(headers[":status"]);
      if (status !== 200) {
        return fail(
          new TunnelError("status", peer, `CONNECT ${target.authority} got ${status}`, status),
        );
      }
      cleanup();
      resolve({ stream, headers });
    };
    const onError = (e: Error) => fail(asTunnelError(e, target));
    const onClose = () =>
      fail(
        new TunnelError("reset", peer, `stream closed before a response (code ${stream.rstCode})`),
      );
    const cleanup = () => {
      clearTimeout(timer);
      stream.off("response", onResponse);
      stream.off("error", onError);
      stream.off("close", onClose);
    };
    stream.once("response", onResponse);
    stream.once("error", onError);
    stream.once("close", onClose);
  });
}

function asTunnelError(e: unknown, target: TunnelTarget): TunnelError {
  if (e instanceof TunnelError) return e;
  const peer = `${target.address}:${target.port}`;
  const err = e as Error & { code?: string };
  const code = err.code ?? "";
  if (/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ECONNRESET|ETIMEDOUT|EADDRNOTAVAIL/.test(code)) {
    return new TunnelError("connect", peer, `${code}: ${err.message}`);
  }
  if (/TLS|SSL|CERT|certificate|handshake/i.test(`${code} ${err.message}`)) {
    return new TunnelError("tls", peer, err.message);
  }
  return new TunnelError("reset", peer, err.message);
}
