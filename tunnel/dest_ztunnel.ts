/**
 * A stand-in for a destination ztunnel, for tests, benchmarks and the demo: it accepts HBONE
 * CONNECTs and dials the authority in plain TCP, as ztunnel's inbound does (hbone.md §1.3, §1.5).
 *
 * - A method other than CONNECT, an unparsable authority, or an authority IP that is not the
 *   address the connection arrived on: 400 (ztunnel's IPMismatch).
 * - The TCP dial to the authority fails or times out: 503. Otherwise 200, and only then bytes.
 */
import net from "node:net";
import { log } from "../log/mod.ts";
import { parseAuthority } from "./address.ts";
import type { TunnelConfig } from "./config.ts";
import type { IdentitySource } from "./identity.ts";
import { accept, type ConnectRequest, type HboneServer, listenHbone, refuse } from "./server.ts";
import { splice } from "./splice.ts";

/** Options for {@link serveDestination}. */
export interface DestinationOptions {
  identity: IdentitySource;
  config: TunnelConfig;
  /** Trust domains accepted from clients. @default our own */
  trustDomains?: () => readonly string[];
}

/**
 * Listens as a destination ztunnel on each address.
 *
 * @param addresses `ip:port` pairs, one per fake pod
 * @param options Identity and tunables
 * @returns The servers, in the order of `addresses`
 */
export async function serveDestination(
  addresses: readonly { host: string; port: number }[],
  options: DestinationOptions,
): Promise<HboneServer[]> {
  const servers: HboneServer[] = [];
  for (const { host, port } of addresses) {
    servers.push(await listenHbone(host, port, { ...options, handler: handleConnect }));
  }
  return servers;
}

function handleConnect(request: ConnectRequest): void {
  const { stream } = request;
  const target = request.method === "CONNECT" ? parseAuthority(request.authority) : undefined;
  const local = unmapped(request.localAddress);
  if (!target || target.host !== local) {
    log.warn("Destination refused CONNECT", {
      authority: request.authority,
      local,
      src: request.peer.identity,
      reason: !target ? "bad method or authority" : "authority IP is not the arrival IP",
    });
    return refuse(stream, 400);
  }
  const socket = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
  socket.setNoDelay(true);
  const timer = setTimeout(() => socket.destroy(new Error("Connect timed out")), 10_000);
  socket.once("error", (e) => {
    clearTimeout(timer);
    if (!stream.headersSent) {
      log.warn("Destination dial failed", { authority: request.authority, reason: e });
      refuse(stream, 503);
    }
  });
  socket.once("connect", () => {
    clearTimeout(timer);
    if (stream.destroyed) return socket.destroy();
    accept(stream);
    void splice(stream, socket);
  });
}

function unmapped(address: string): string {
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}
