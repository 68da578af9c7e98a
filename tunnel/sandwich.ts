/**
 * The "sandwich" inbound binding: a plain TCP listener that a local ztunnel feeds after it has
 * terminated HBONE itself, each connection opening with a PROXY v2 header that names the original
 * client, the target and (TLV 0xD0) the client's SPIFFE id (hbone.md §1.10).
 *
 * Invariants:
 * - The header must arrive within `headerTimeoutMs` and be at most a few KiB, else the connection
 *   is closed; bytes after the header are put back for the handler.
 * - LOCAL (health check) headers are answered by closing.
 */
import net from "node:net";
import { log } from "../log/mod.ts";
import { listenTcp, type TcpListener } from "./listen.ts";
import { parseProxyV2, type ProxyHeader, TLV_PEER_IDENTITY } from "./proxy_protocol.ts";

/** One accepted sandwich connection, after its header. */
export interface SandwichConnection {
  readonly header: ProxyHeader;
  /** SPIFFE id from TLV 0xD0; empty when ztunnel sent none. */
  readonly identity: string;
  /** The client socket, paused, with any bytes after the header unshifted. */
  readonly socket: net.Socket;
}

/** A listening sandwich server. */
export type SandwichServer = TcpListener;

/**
 * Listens for PROXY-v2-prefixed connections.
 *
 * @param hostname Address to bind
 * @param port Port to bind; 0 picks one
 * @param handler Called once per connection with a complete header
 * @param options `headerTimeoutMs` @default 5000
 */
export function listenSandwich(
  hostname: string,
  port: number,
  handler: (connection: SandwichConnection) => void,
  options: { headerTimeoutMs?: number } = {},
): Promise<SandwichServer> {
  const timeoutMs = options.headerTimeoutMs ?? 5_000;
  return listenTcp(hostname, port, (socket) => {
    socket.on("error", (e) => log.debug("Sandwich connection error", { reason: e }));
    readHeader(socket, timeoutMs, handler);
  });
}

function readHeader(
  socket: net.Socket,
  timeoutMs: number,
  handler: (connection: SandwichConnection) => void,
): void {
  let buf = new Uint8Array(0);
  const peer = `${socket.remoteAddress}:${socket.remotePort}`;
  const fail = (reason: string) => {
    clearTimeout(timer);
    socket.off("data", onData);
    log.warn("Sandwich connection refused", { peer, reason });
    socket.destroy();
  };
  const timer = setTimeout(() => fail(`no PROXY header within ${timeoutMs} ms`), timeoutMs);
  const onData = (chunk: Uint8Array) => {
    const next = new Uint8Array(buf.length + chunk.length);
    next.set(buf);
    next.set(chunk, buf.length);
    buf = next;
    const parsed = parseProxyV2(buf);
    if (parsed.state === "more") return;
    if (parsed.state === "error") return fail(parsed.reason);
    clearTimeout(timer);
    socket.off("data", onData);
    socket.pause();
    if (parsed.header.command === "local") return void socket.end();
    if (parsed.rest.length > 0) socket.unshift(parsed.rest);
    const id = parsed.header.tlvs.get(TLV_PEER_IDENTITY);
    handler({
      header: parsed.header,
      identity: id ? new TextDecoder().decode(id) : "",
      socket,
    });
  };
  socket.on("data", onData);
}
