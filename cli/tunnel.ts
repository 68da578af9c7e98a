/**
 * `tunnel connect` (an HBONE client) and `tunnel serve` (a destination-ztunnel stand-in).
 */
import net from "node:net";
import process from "node:process";
import { log } from "../log/mod.ts";
import {
  DEFAULT_TUNNEL_CONFIG,
  HbonePool,
  IdentitySource,
  serveDestination,
  splice,
  type TunnelTarget,
} from "../tunnel/mod.ts";
import { type HostPort, parseFlags, parseHostPort, required, UsageError } from "./flags.ts";

/**
 * Runs `tunnel connect ...` or `tunnel serve ...`.
 *
 * @param args Arguments after `tunnel`
 * @throws UsageError for an unknown subcommand or bad flags
 */
export async function tunnelCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === "connect") return await connectCommand(rest);
  if (sub === "serve") return await serveCommand(rest);
  throw new UsageError(`tunnel wants "connect" or "serve": got "${sub ?? ""}"`);
}

async function connectCommand(args: string[]): Promise<void> {
  const f = parseFlags(args, {
    via: { type: "string" },
    authority: { type: "string" },
    certs: { type: "string" },
    listen: { type: "string" },
    identity: { type: "string" },
  });
  const via = parseHostPort("via", required("via", f.via));
  const authority = required("authority", f.authority);
  const identity = await IdentitySource.fromDir(required("certs", f.certs));
  const pool = new HbonePool(identity, DEFAULT_TUNNEL_CONFIG);
  const target: TunnelTarget = {
    address: via.hostname,
    port: via.port,
    // Without --identity any server of our trust domain is accepted, as Envoy's SAN prefix does.
    identity: f.identity ?? `spiffe://${identity.current.trustDomain}/`,
    authority,
  };
  if (f.listen) return await listenAndTunnel(parseHostPort("listen", f.listen), pool, target);
  const tunnel = await pool.open(target);
  process.stdin.pipe(tunnel.stream);
  tunnel.stream.pipe(process.stdout);
  await new Promise((r) => tunnel.stream.once("close", r));
  pool.close();
}

async function listenAndTunnel(listen: HostPort, pool: HbonePool, target: TunnelTarget) {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.setNoDelay(true);
    pool.open(target).then(
      (tunnel) => splice(socket, tunnel.stream),
      (e) => {
        log.warn("Tunnel failed", { authority: target.authority, via: target.address, reason: e });
        socket.destroy();
      },
    );
  });
  await new Promise<void>((r) => server.listen(listen.port, listen.hostname, r));
  log.info("Tunnelling connections", {
    listen: `${listen.hostname}:${listen.port}`,
    via: `${target.address}:${target.port}`,
    authority: target.authority,
  });
  await new Promise(() => {});
}

async function serveCommand(args: string[]): Promise<void> {
  const f = parseFlags(args, {
    listen: { type: "string", multiple: true },
    certs: { type: "string" },
    "trust-domain": { type: "string", multiple: true },
  });
  const listen = required("listen", f.listen).map((a) => parseHostPort("listen", a));
  const identity = await IdentitySource.fromDir(required("certs", f.certs));
  identity.watch(f.certs!);
  const domains = f["trust-domain"] ?? [identity.current.trustDomain];
  const servers = await serveDestination(
    listen.map((l) => ({ host: l.hostname, port: l.port })),
    { identity, config: DEFAULT_TUNNEL_CONFIG, trustDomains: () => domains },
  );
  log.info("Destination ztunnel stand-in listening", {
    addresses: servers.map((s) => `${s.address}:${s.port}`),
    identity: identity.current.identity,
  });
  await new Promise(() => {});
}
