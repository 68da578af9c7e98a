/**
 * The embedded demo: a small mesh (`demo/mesh.yaml`) with dev certificates made on first start,
 * fake pods on loopback addresses (an HTTP server and a TCP echo each), destination-ztunnel
 * stand-ins in front of them, and the waypoint itself, so one command shows traffic flowing.
 */
import net from "node:net";
import { log } from "../log/mod.ts";
import { createCa, issueCert } from "../tunnel/dev_ca.ts";
import { DEFAULT_TUNNEL_CONFIG, IdentitySource, serveDestination } from "../tunnel/mod.ts";
import type { RunOptions } from "./run.ts";

/** The demo mesh file shipped inside the binary (`deno compile --include demo/`). */
export const DEMO_CONFIG = new URL("../demo/mesh.yaml", import.meta.url).pathname;

/** Fake pods of the demo mesh; must match `demo/mesh.yaml`. */
const PODS = [
  { ip: "127.0.1.1", name: "echo-v1" },
  { ip: "127.0.1.2", name: "echo-v2" },
];
const POD_IDENTITY = "spiffe://cluster.local/ns/demo/sa/echo";
const WAYPOINT_IDENTITY = "spiffe://cluster.local/ns/demo/sa/waypoint";
const CLIENT_IDENTITY = "spiffe://cluster.local/ns/demo/sa/client";

/**
 * Prepares certificates and starts the fake pods; returns the `run` options for the demo.
 *
 * @param dir Where dev certificates live between starts
 */
export async function prepareDemo(dir: string): Promise<RunOptions> {
  await ensureCerts(dir);
  const podIdentity = await IdentitySource.fromDir(`${dir}/echo`);
  for (const pod of PODS) {
    await serveHttp(pod.ip, 8080, pod.name);
    await serveEcho(pod.ip, 9000);
  }
  await serveDestination(PODS.map((p) => ({ host: p.ip, port: 15008 })), {
    identity: podIdentity,
    config: DEFAULT_TUNNEL_CONFIG,
  });
  const local = (port: number) => ({ hostname: "127.0.0.1", port });
  return {
    config: [DEMO_CONFIG],
    certs: `${dir}/waypoint`,
    namespace: "demo",
    name: "waypoint",
    trustDomain: "cluster.local",
    trustDomainAliases: [],
    hbone: local(15008),
    readiness: local(15021),
    metrics: local(15020),
    admin: local(15000),
    ztunnelPort: 15008,
    devHttp: local(18080),
    devIdentity: CLIENT_IDENTITY,
  };
}

/** How to send traffic through the demo, printed once it runs. */
export function demoInstructions(dir: string): string {
  const connect = (authority: string, listen: string) =>
    `deno run -A main.ts tunnel connect --via 127.0.0.1:15008 --authority ${authority} ` +
    `--certs ${dir}/client --listen ${listen}`;
  return [
    "",
    "Waypoint demo is up. Gateway demo/waypoint binds Service demo/echo (VIP 127.10.0.1).",
    "Try the routes with plain curl (requests count as coming from the demo client identity):",
    "  curl -i -H 'host: echo.demo' http://127.0.0.1:18080/             # HTTPRoute echo-split: v1 or v2",
    "  curl -i -H 'host: echo.demo' -H 'x-version: v2' http://127.0.0.1:18080/   # always v2",
    "Or over real HBONE, tunnelling a local port to the service through the waypoint:",
    `  ${connect("127.10.0.1:80", "127.0.0.1:8000")}`,
    "  curl http://127.0.0.1:8000/           # answered by echo-v1 or echo-v2",
    "TCP port 9000 of the same service echoes:",
    `  ${connect("127.10.0.1:9000", "127.0.0.1:9001")}`,
    "An unbound target is refused with 404 (Service other/unbound opts out):",
    `  ${connect("127.10.0.2:80", "127.0.0.1:8002")}`,
    "Config dump: curl http://127.0.0.1:15000/config_dump   Ready: curl http://127.0.0.1:15021/healthz/ready",
    "",
  ].join("\n");
}

async function ensureCerts(dir: string): Promise<void> {
  if (await exists(`${dir}/client/cert-chain.pem`)) return;
  await createCa(`${dir}/ca`, { trustDomain: "cluster.local" });
  await issueCert(`${dir}/ca`, WAYPOINT_IDENTITY, `${dir}/waypoint`);
  await issueCert(`${dir}/ca`, POD_IDENTITY, `${dir}/echo`);
  await issueCert(`${dir}/ca`, CLIENT_IDENTITY, `${dir}/client`);
  log.info("Dev certificates created", { dir });
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function serveHttp(hostname: string, port: number, name: string): Promise<void> {
  return new Promise((resolve) => {
    Deno.serve({ hostname, port, onListen: () => resolve() }, (req) => {
      const path = new URL(req.url).pathname;
      return new Response(`hello from ${name}: ${req.method} ${path}\n`);
    });
  });
}

function serveEcho(host: string, port: number): Promise<void> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => {});
    s.pipe(s);
  });
  return new Promise((resolve) => server.listen(port, host, resolve));
}
