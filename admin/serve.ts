/**
 * Serves an admin app on a socket. The apps themselves stay socket-free so tests call
 * `app.request()`; only `main.ts` and integration tests listen.
 *
 * Invariants:
 * - Addresses are `host:port` or `[v6]:port`, as Istio's flags write them; an empty host means all
 *   IPv4 interfaces, and port 0 asks for an ephemeral port, reported back in `addr`.
 */
import type { Hono } from "hono";

/** A listening admin server. */
export interface ServedApp {
  /** The bound address, `host:port` or `[v6]:port`, with the real port when 0 was asked for. */
  readonly addr: string;
  /** Stops accepting connections and resolves once in-flight requests have finished. */
  shutdown(): Promise<void>;
}

/** A listen address split into its parts. */
export interface HostPort {
  /** IPv4 address, hostname or IPv6 address without brackets. */
  readonly hostname: string;
  readonly port: number;
}

/**
 * Splits a listen address.
 *
 * @example
 * ```ts
 * parseHostPort("[::1]:15000"); // { hostname: "::1", port: 15000 }
 * parseHostPort(":15021"); // { hostname: "0.0.0.0", port: 15021 }
 * ```
 *
 * @param addr `host:port` or `[v6]:port`; an empty host means `0.0.0.0`.
 * @returns The hostname (IPv6 without brackets) and the port.
 * @throws {Error} When the address has no port, a port outside 0–65535, or an unbracketed IPv6 host.
 */
export function parseHostPort(addr: string): HostPort {
  const match = /^(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([^\[\]:]*)):(\d{1,5})$/.exec(addr);
  const port = Number(match?.[3]);
  if (match === null || port > 65535) {
    throw new Error(`Invalid listen address, want host:port or [v6]:port: "${addr}"`);
  }
  return { hostname: match[1] ?? (match[2] || "0.0.0.0"), port };
}

/**
 * Serves a Hono app with `Deno.serve` on the given address.
 *
 * @example
 * ```ts
 * const server = serveApp(readinessApp(() => true), "0.0.0.0:15021");
 * await server.shutdown();
 * ```
 *
 * @param app The app to serve.
 * @param addr `host:port` or `[v6]:port`; port 0 picks a free port.
 * @returns The bound address and a way to stop.
 * @throws {Error} When the address is invalid or cannot be bound (in use, not local).
 */
export function serveApp(app: Hono, addr: string): ServedApp {
  const { hostname, port } = parseHostPort(addr);
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname, port, onListen() {} }, app.fetch);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new Error(`Cannot listen on ${addr}: ${reason}`, { cause });
  }
  return {
    addr: formatHostPort(server.addr),
    shutdown: () => server.shutdown(),
  };
}

function formatHostPort({ hostname, port }: Deno.NetAddr): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}
