/**
 * `main.ts run` as a subprocess, drained by SIGTERM with a request in flight, on loopback
 * addresses 127.0.24.x and 127.0.31.x (the waypoint, the backend pod) and 127.10.24.x and
 * 127.10.31.x (the VIP), one set per test. The waypoint's ports are fixed: no other test binds
 * 127.0.24.100 or 127.0.31.100.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { makePki, spiffe } from "../fixtures/pki.ts";
import { oneServiceMesh } from "../fixtures/mesh_yaml.ts";
import { DEFAULT_TUNNEL_CONFIG, HbonePool, TunnelError } from "../../tunnel/mod.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const HBONE_PORT = 15008;
const WAYPOINT_ID = spiffe("ns1", "waypoint");
const CLIENT_ID = spiffe("ns1", "client");

/** The addresses of one test. */
interface Site {
  readonly waypoint: string;
  readonly pod: string;
  readonly vip: string;
}

function meshYaml({ pod, vip }: Site, backendPort: number): string {
  return oneServiceMesh({
    name: "slow",
    vip,
    app: "slow",
    ports: [{ name: "http", port: 80, targetPort: backendPort }],
    pods: [{ name: "slow-1", ip: pod }],
  });
}

/** An HTTP backend that holds each response until {@link SlowBackend.release} is called. */
interface SlowBackend extends AsyncDisposable {
  readonly port: number;
  /** Resolves when the first request arrived. */
  readonly received: Promise<void>;
  release(): void;
}

async function startSlowBackend(pod: string): Promise<SlowBackend> {
  let arrived!: () => void;
  let release!: () => void;
  const received = new Promise<void>((r) => arrived = r);
  const released = new Promise<void>((r) => release = r);
  const server = http.createServer(async (_req, res) => {
    arrived();
    await released;
    res.end("slow answer");
  });
  await new Promise<void>((r) => server.listen(0, pod, r));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    release,
    async [Symbol.asyncDispose]() {
      release();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** The readiness status, or `refused` when nothing listens. */
async function readiness(site: Site): Promise<number | "refused"> {
  try {
    const res = await fetch(`http://${site.waypoint}:15021/healthz/ready`);
    await res.body?.cancel();
    return res.status;
  } catch {
    return "refused";
  }
}

/** Polls `probe` every 50 ms until it returns `want`; gives up after 30 s, naming what it saw. */
async function until<T>(what: string, probe: () => Promise<T>, want: T): Promise<void> {
  let last: T | undefined;
  for (const end = Date.now() + 30_000; Date.now() < end;) {
    last = await probe();
    if (last === want) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`Gave up waiting for ${what}: last saw ${last}`);
}

/** Reads from a tunnel until it ends. */
function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    stream.on("data", (c: Uint8Array) => text += new TextDecoder().decode(c));
    stream.once("end", () => resolve(text));
    stream.once("error", reject);
  });
}

/**
 * Starts `main.ts run` on the site's waypoint address with fixed ports.
 *
 * @param drainTimeout `--drain-timeout`
 * @param minDrain `MINIMUM_DRAIN_DURATION`, the accept window
 */
async function spawnWaypoint(
  site: Site,
  pki: Awaited<ReturnType<typeof makePki>>,
  backendPort: number,
  drainTimeout: string,
  minDrain: string,
): Promise<Deno.ChildProcess> {
  const config = `${pki.dir}/mesh.yaml`;
  await Deno.writeTextFile(config, meshYaml(site, backendPort));
  const at = (port: number) => `${site.waypoint}:${port}`;
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "main.ts",
      "run",
      "--config",
      config,
      "--certs",
      await pki.certs(WAYPOINT_ID),
      "--namespace",
      "ns1",
      "--name",
      "waypoint",
      "--hbone",
      at(HBONE_PORT),
      "--readiness",
      at(15021),
      "--metrics",
      at(15020),
      "--admin",
      at(15000),
      "--dev-plain-upstreams",
      "--drain-timeout",
      drainTimeout,
      "--log-level",
      "warn",
    ],
    cwd: ROOT,
    stdout: "null",
    stderr: "inherit",
    env: { NO_COLOR: "1", MINIMUM_DRAIN_DURATION: minDrain },
  }).spawn();
}

/** Kills the child if it is still running and waits for it. */
async function reap(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch {
    // Already exited.
  }
  await child.status;
}

/** A waypoint subprocess with one HTTP/1.1 request in flight, held by the backend. */
interface Scene extends AsyncDisposable {
  readonly pki: Awaited<ReturnType<typeof makePki>>;
  readonly backend: SlowBackend;
  readonly child: Deno.ChildProcess;
  readonly target: { address: string; port: number; identity: string; authority: string };
  /** Everything the in-flight tunnel received, once it ended. */
  readonly response: Promise<string>;
}

/** How {@link holdRequest} runs the waypoint and asks. */
interface SceneOptions {
  /** `--drain-timeout` */
  readonly drainTimeout: string;
  /** `MINIMUM_DRAIN_DURATION`, the accept window */
  readonly minDrain: string;
  /** Send `connection: close`; else the request is keep-alive. */
  readonly close?: boolean;
}

/** Starts the waypoint and sends a GET through a tunnel; resolves once the backend holds it. */
async function holdRequest(site: Site, options: SceneOptions): Promise<Scene> {
  const { drainTimeout, minDrain } = options;
  const pki = await makePki();
  const backend = await startSlowBackend(site.pod);
  const child = await spawnWaypoint(site, pki, backend.port, drainTimeout, minDrain);
  const client = new HbonePool(await pki.identity(CLIENT_ID), DEFAULT_TUNNEL_CONFIG);
  const target = {
    address: site.waypoint,
    port: HBONE_PORT,
    identity: WAYPOINT_ID,
    authority: `${site.vip}:80`,
  };
  const dispose = async () => {
    client.close();
    await reap(child);
    await backend[Symbol.asyncDispose]();
    await pki.remove();
  };
  try {
    await until("readiness", () => readiness(site), 200);
    const inFlight = await client.open(target);
    const response = readAll(inFlight.stream);
    const close = options.close ? "connection: close\r\n" : "";
    inFlight.stream.write(`GET / HTTP/1.1\r\nhost: slow.ns1\r\n${close}\r\n`);
    await backend.received;
    return { pki, backend, child, target, response, [Symbol.asyncDispose]: dispose };
  } catch (e) {
    await dispose();
    throw e;
  }
}

Deno.test("run drains on SIGTERM with no accept window: readiness 503, new connections refused, the request in flight gets its 200, exit 0", async () => {
  const site = { waypoint: "127.0.24.100", pod: "127.0.24.1", vip: "127.10.24.1" };
  await using scene = await holdRequest(site, { drainTimeout: "20s", minDrain: "0s", close: true });
  scene.child.kill("SIGTERM");
  await until("readiness to fail during the drain", () => readiness(site), 503);
  // A new client (its own connection) is refused: the listener is closed.
  const late = new HbonePool(await scene.pki.identity(CLIENT_ID), DEFAULT_TUNNEL_CONFIG);
  const refused = await late.open(scene.target).then(() => undefined, (e) => e);
  late.close();
  assert.ok(refused instanceof TunnelError && refused.kind === "connect", String(refused));
  assert.equal(await readiness(site), 503, "still draining while the request is held");

  scene.backend.release();
  const text = await scene.response;
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.match(text, /slow answer$/);
  assert.equal((await scene.child.status).code, 0);
});

Deno.test("run on SIGTERM closes a keep-alive tunnel after its response with connection: close and exits well before a 30 s drain timeout", async () => {
  const site = { waypoint: "127.0.31.100", pod: "127.0.31.1", vip: "127.10.31.1" };
  // A keep-alive request: only the drain can end this tunnel stream early.
  await using scene = await holdRequest(site, { drainTimeout: "30s", minDrain: "1s" });
  scene.child.kill("SIGTERM");
  const signalled = performance.now();
  await until("readiness to fail during the drain", () => readiness(site), 503);
  scene.backend.release();
  const text = await scene.response;
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.match(text, /\r\nconnection: close\r\n/i);
  assert.match(text, /slow answer$/);
  const status = await scene.child.status;
  const exitedAfterMs = performance.now() - signalled;
  assert.equal(status.code, 0);
  // The accept window is 1 s, the drain timeout 30 s: exiting on the last stream is far below.
  assert.ok(exitedAfterMs < 10_000, `exited ${Math.round(exitedAfterMs)} ms after SIGTERM`);
});
