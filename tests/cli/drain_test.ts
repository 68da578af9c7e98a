/**
 * `main.ts run` as a subprocess, drained by SIGTERM with a request in flight, on loopback
 * addresses 127.0.24.x (the waypoint, the backend pod) and 127.10.24.x (the VIP). The waypoint's
 * ports are fixed: no other test binds 127.0.24.100.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { makePki, spiffe } from "../fixtures/pki.ts";
import { DEFAULT_TUNNEL_CONFIG, HbonePool, TunnelError } from "../../tunnel/mod.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WAYPOINT = "127.0.24.100";
const POD = "127.0.24.1";
const VIP = "127.10.24.1";
const HBONE_PORT = 15008;
const READY_URL = `http://${WAYPOINT}:15021/healthz/ready`;
const WAYPOINT_ID = spiffe("ns1", "waypoint");
const CLIENT_ID = spiffe("ns1", "client");

function meshYaml(backendPort: number): string {
  return `apiVersion: v1
kind: Namespace
metadata: { name: ns1, labels: { istio.io/use-waypoint: waypoint } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: ns1 }
spec:
  gatewayClassName: istio-waypoint
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
---
apiVersion: v1
kind: Service
metadata: { name: slow, namespace: ns1 }
spec:
  clusterIP: ${VIP}
  selector: { app: slow }
  ports: [{ name: http, port: 80, targetPort: ${backendPort} }]
---
apiVersion: v1
kind: Pod
metadata: { name: slow-1, namespace: ns1, labels: { app: slow } }
status: { podIP: ${POD}, conditions: [{ type: Ready, status: "True" }] }
`;
}

/** An HTTP backend that holds each response until {@link SlowBackend.release} is called. */
interface SlowBackend extends AsyncDisposable {
  readonly port: number;
  /** Resolves when the first request arrived. */
  readonly received: Promise<void>;
  release(): void;
}

async function startSlowBackend(): Promise<SlowBackend> {
  let arrived!: () => void;
  let release!: () => void;
  const received = new Promise<void>((r) => arrived = r);
  const released = new Promise<void>((r) => release = r);
  const server = http.createServer(async (_req, res) => {
    arrived();
    await released;
    res.end("slow answer");
  });
  await new Promise<void>((r) => server.listen(0, POD, r));
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
async function readiness(): Promise<number | "refused"> {
  try {
    const res = await fetch(READY_URL);
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

Deno.test("run drains on SIGTERM: readiness 503, new connections refused, the request in flight gets its 200, exit 0", async () => {
  const pki = await makePki();
  await using backend = await startSlowBackend();
  const config = `${pki.dir}/mesh.yaml`;
  await Deno.writeTextFile(config, meshYaml(backend.port));
  const child = new Deno.Command(Deno.execPath(), {
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
      `${WAYPOINT}:${HBONE_PORT}`,
      "--readiness",
      `${WAYPOINT}:15021`,
      "--metrics",
      `${WAYPOINT}:15020`,
      "--admin",
      `${WAYPOINT}:15000`,
      "--dev-plain-upstreams",
      "--drain-timeout",
      "20s",
      "--log-level",
      "warn",
    ],
    cwd: ROOT,
    stdout: "null",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).spawn();
  const client = new HbonePool(await pki.identity(CLIENT_ID), DEFAULT_TUNNEL_CONFIG);
  const target = { address: WAYPOINT, port: HBONE_PORT, identity: WAYPOINT_ID };
  try {
    await until("readiness", readiness, 200);
    const inFlight = await client.open({ ...target, authority: `${VIP}:80` });
    const response = readAll(inFlight.stream);
    inFlight.stream.write(`GET / HTTP/1.1\r\nhost: slow.ns1\r\nconnection: close\r\n\r\n`);
    await backend.received;

    child.kill("SIGTERM");
    await until("readiness to fail during the drain", readiness, 503);
    // A new client (its own connection) is refused: the listener is closed.
    const late = new HbonePool(await pki.identity(CLIENT_ID), DEFAULT_TUNNEL_CONFIG);
    const refused = await late.open({ ...target, authority: `${VIP}:80` }).then(
      () => undefined,
      (e) => e,
    );
    late.close();
    assert.ok(refused instanceof TunnelError && refused.kind === "connect", String(refused));
    assert.equal(await readiness(), 503, "still draining while the request is held");

    backend.release();
    const text = await response;
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.match(text, /slow answer$/);
    const status = await child.status;
    assert.equal(status.code, 0);
  } finally {
    client.close();
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await pki.remove();
  }
});
