/**
 * Upstream HTTP connections per endpoint, each one an HTTP/1.1 or h2c connection running inside
 * its own tunnel (one CONNECT stream per connection, as Envoy's waypoint does).
 *
 * Invariants:
 * - Key = endpoint `ip:port`, its identity and the service host, so a connection only ever
 *   carries requests for one destination identity; `forwarded` on such a shared tunnel names the
 *   service only, never one client.
 * - HTTP/1.1: one request at a time per connection; a connection goes back to the idle list only
 *   when its response body was read to the end and the codec says it is reusable.
 * - h2c: requests share a connection until it is full or going away; while one is being opened
 *   for a key, requests for that key wait for it instead of opening their own.
 * - Idle connections close after `idleMs`.
 */
import type { Endpoint } from "../mesh/mod.ts";
import type { Body, RequestHead, ResponseHead } from "../http/mod.ts";
import { Deadline, H1ClientConnection, type H1Response, H2cClientConnection } from "../http/mod.ts";
import type { Duplex } from "node:stream";
import { buildForwardedHost, nodeText } from "./forwarded.ts";
import type { TunnelOpener } from "./outbound.ts";

/** The two upstream codecs. */
export type UpstreamCodec = "http1" | "h2c";

/** What a pooled HTTP connection offers. */
interface HttpConnection {
  request(head: RequestHead, body: Body): Promise<{ head: ResponseHead; body: Body }>;
  readonly available: boolean;
  close(): void;
}

interface Slot {
  readonly conn: HttpConnection;
  /** Set while the connection is idle; made on first park, reused after. */
  idle?: Deadline;
}

/** Options of {@link HttpUpstreams}. */
export interface HttpUpstreamsOptions {
  readonly opener: TunnelOpener;
  /** HBONE port of destination ztunnels. */
  readonly ztunnelPort: number;
  /** @default 60 s */
  readonly idleMs?: number;
}

/** Sends requests to endpoints over pooled upstream connections. */
export class HttpUpstreams {
  #options: HttpUpstreamsOptions;
  #idle = new Map<string, Slot[]>();
  #shared = new Map<string, Slot[]>();
  #opening = new Map<string, Promise<Slot>>();
  #opened = 0;

  constructor(options: HttpUpstreamsOptions) {
    this.#options = options;
  }

  /** Upstream connections opened so far. */
  get opened(): number {
    return this.#opened;
  }

  /**
   * Sends one request to an endpoint and resolves at the response head.
   *
   * @param endpoint Where to send
   * @param codec HTTP/1.1 or h2c, from the port protocol
   * @param host Service FQDN for the tunnel's `forwarded: host=`, when known
   * @param head The request head, already prepared for the upstream
   * @param body The request body
   * @throws TunnelError when no tunnel could be opened; HttpCodecError when the exchange failed
   */
  async send(
    endpoint: Endpoint,
    codec: UpstreamCodec,
    host: string | undefined,
    head: RequestHead,
    body: Body,
  ): Promise<{ head: ResponseHead; body: Body }> {
    const key = poolKey(endpoint, codec, host);
    return codec === "h2c"
      ? await this.#sendShared(key, endpoint, host, head, body)
      : await this.#sendExclusive(key, endpoint, host, head, body);
  }

  /**
   * Sends an upgrade request (WebSocket-style) over a fresh, unpooled HTTP/1.1 connection.
   *
   * @returns The response; `upgraded` is the raw upstream stream after a 101
   * @throws TunnelError when no tunnel could be opened; HttpCodecError when the exchange failed
   */
  async upgrade(
    endpoint: Endpoint,
    host: string | undefined,
    head: RequestHead,
    body: Body,
  ): Promise<H1Response> {
    const conn = new H1ClientConnection(await this.#tunnel(endpoint, host));
    const res = await conn.request(head, body).catch((e) => {
      conn.close();
      throw e;
    });
    if (!res.upgraded) return { ...res, body: onBodyEnd(res.body, () => conn.close()) };
    return res;
  }

  /** Closes every pooled connection. */
  close(): void {
    for (const map of [this.#idle, this.#shared]) {
      for (const slots of map.values()) {
        for (const s of slots) {
          s.idle?.stop();
          s.conn.close();
        }
      }
      map.clear();
    }
  }

  async #sendExclusive(
    key: string,
    endpoint: Endpoint,
    host: string | undefined,
    head: RequestHead,
    body: Body,
  ) {
    const idle = this.#idle.get(key);
    let slot = idle?.pop();
    while (slot && !slot.conn.available) {
      slot.idle?.stop();
      slot = idle?.pop();
    }
    slot?.idle?.cancel();
    const taken = slot ?? { conn: h1Connection(await this.#tunnel(endpoint, host)) };
    const conn = taken.conn;
    const res = await conn.request(head, body).catch((e) => {
      taken.idle?.stop();
      conn.close();
      throw e;
    });
    return {
      head: res.head,
      body: onBodyEnd(res.body, (complete) => {
        if (complete && conn.available) return this.#park(this.#idle, key, taken);
        taken.idle?.stop();
        conn.close();
      }),
    };
  }

  async #sendShared(
    key: string,
    endpoint: Endpoint,
    host: string | undefined,
    head: RequestHead,
    body: Body,
  ) {
    const chosen = this.#shared.get(key)?.find((s) => s.conn.available) ??
      await this.#openShared(key, endpoint, host);
    chosen.idle?.cancel();
    const res = await chosen.conn.request(head, body);
    return {
      head: res.head,
      body: onBodyEnd(res.body, () => this.#armIdle(this.#shared, key, chosen)),
    };
  }

  /** One h2c connection per key at a time is being opened; requests arriving meanwhile share it. */
  #openShared(key: string, endpoint: Endpoint, host: string | undefined): Promise<Slot> {
    let opening = this.#opening.get(key);
    if (!opening) {
      opening = this.#tunnel(endpoint, host).then((stream) => {
        const slot = { conn: new H2cClientConnection(stream) };
        const slots = (this.#shared.get(key) ?? []).filter((s) => s.conn.available);
        slots.push(slot);
        this.#shared.set(key, slots);
        return slot;
      }).finally(() => this.#opening.delete(key));
      this.#opening.set(key, opening);
    }
    return opening;
  }

  async #tunnel(endpoint: Endpoint, host: string | undefined): Promise<Duplex> {
    const tunnel = await this.#options.opener.open({
      address: endpoint.address,
      port: this.#options.ztunnelPort,
      identity: endpoint.identity,
      authority: nodeText(endpoint.address, endpoint.port),
      headers: host ? { forwarded: buildForwardedHost(host) } : undefined,
    });
    this.#opened++;
    return tunnel.stream;
  }

  #park(map: Map<string, Slot[]>, key: string, slot: Slot): void {
    const list = map.get(key) ?? [];
    list.push(slot);
    map.set(key, list);
    this.#armIdle(map, key, slot);
  }

  #armIdle(map: Map<string, Slot[]>, key: string, slot: Slot): void {
    slot.idle ??= new Deadline(() => {
      slot.idle?.stop();
      const list = map.get(key);
      if (!list) return;
      const i = list.indexOf(slot);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) map.delete(key);
      slot.conn.close();
    });
    slot.idle.set(this.#options.idleMs ?? 60_000);
  }
}

/** Pool keys per endpoint (immutable in its snapshot), codec and host: built once, not per request. */
const poolKeys = new WeakMap<Endpoint, Map<string, string>[]>();

function poolKey(endpoint: Endpoint, codec: UpstreamCodec, host: string | undefined): string {
  let byCodec = poolKeys.get(endpoint);
  if (!byCodec) poolKeys.set(endpoint, byCodec = [new Map(), new Map()]);
  const byHost = byCodec[codec === "h2c" ? 1 : 0];
  let key = byHost.get(host ?? "");
  if (key === undefined) {
    key = `${codec}|${endpoint.identity}|${nodeText(endpoint.address, endpoint.port)}|${
      host ?? ""
    }`;
    byHost.set(host ?? "", key);
  }
  return key;
}

/** An HTTP/1.1 connection seen through the pool's interface: available = reusable. */
function h1Connection(stream: Duplex): HttpConnection {
  const c = new H1ClientConnection(stream);
  return {
    request: (head, body) => c.request(head, body),
    get available() {
      return c.reusable;
    },
    close: () => c.close(),
  };
}

/**
 * Wraps a body so `done(true)` runs when it was read to the end, `done(false)` on cancel/error.
 * A body already wrapped here gets one more callback instead of a second wrapper: the pool and
 * the router both watch each response body, and every layer costs a promise per read.
 */
export function onBodyEnd(body: Body, done: (complete: boolean) => void): Body {
  if (body instanceof WatchedBody && body.watch(done)) return body;
  const watched = new WatchedBody(body);
  watched.watch(done);
  return watched;
}

/** A body that tells its watchers, once, whether it was read to the end. */
class WatchedBody implements Body {
  #body: Body;
  #watchers: ((complete: boolean) => void)[] = [];
  #finished = false;
  #onChunk = (chunk: Uint8Array | null) => {
    if (chunk === null) this.#finish(true);
    return chunk;
  };
  #onError = (e: unknown) => {
    this.#finish(false);
    throw e;
  };

  constructor(body: Body) {
    this.#body = body;
  }

  /** Adds a watcher; false when the body is already over (the caller wraps it afresh). */
  watch(done: (complete: boolean) => void): boolean {
    if (this.#finished) return false;
    this.#watchers.push(done);
    return true;
  }

  read(): Promise<Uint8Array | null> {
    return this.#body.read().then(this.#onChunk, this.#onError);
  }

  get trailers(): Body["trailers"] {
    return this.#body.trailers;
  }

  get length(): number | undefined {
    return this.#body.length;
  }

  cancel(reason?: Error): void {
    this.#finish(false);
    this.#body.cancel(reason);
  }

  #finish(complete: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    for (const done of this.#watchers) done(complete);
  }
}
