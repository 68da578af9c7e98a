/**
 * The benchmark mesh on loopback, one process per role so that CPU is attributable:
 *
 *   client ──HBONE──▶ waypoint 127.0.9.100:15008 ──HBONE──▶ stand-in 127.0.9.1:15008 ──TCP──▶ backend
 *   client ──HBONE──────────────────────────────────────▶ stand-in (the direct path)
 *
 * Service `bench/backend` (VIP 127.10.9.1) has ports 9000 `tcp-echo`, 9001 `tcp-sink` and 80
 * `http` (→ 8080); its one pod is 127.0.9.1, where the backend process serves all three and the
 * destination-ztunnel stand-in (`main.ts tunnel serve`) listens on 15008. Namespace `bench`
 * uses waypoint `bench/waypoint`.
 */
import { createCa, issueCert } from "../tunnel/dev_ca.ts";
import { assertFree, Proc, waitListening } from "./_procs.ts";

/** Fixed loopback addresses and ports of the benchmark mesh. */
export const NET = {
  pod: "127.0.9.1",
  waypoint: "127.0.9.100",
  /** A second waypoint with the policy set of `http-policy`, beside the plain one. */
  policyWaypoint: "127.0.9.101",
  /** Where `tunnel connect --listen` listeners bind. */
  clients: "127.0.9.200",
  vip: "127.10.9.1",
  hbonePort: 15008,
  echoPort: 9000,
  sinkPort: 9001,
  httpPort: 8080,
  /** Service port of `http`. */
  vipHttpPort: 80,
} as const;

/** The SPIFFE id of a service account of namespace `bench`. */
export const spiffe = (sa: string) => `spiffe://cluster.local/ns/bench/sa/${sa}`;

/** Identities of the three parties. */
export const IDS = {
  client: spiffe("client"),
  waypoint: spiffe("waypoint"),
  backend: spiffe("backend"),
} as const;

/** Where a client sends HBONE and what it asks for, for one path. */
export interface HbonePath {
  readonly name: "waypoint" | "direct";
  /** `host:port` of the HBONE server the client dials. */
  readonly via: string;
  /** SPIFFE id that server must present. */
  readonly identity: string;
  /** CONNECT authority of each backend port on this path. */
  readonly echo: string;
  readonly sink: string;
  readonly http: string;
}

/** The waypoint path (to the VIP) and the direct path (to the pod, no waypoint). */
export const PATHS: readonly HbonePath[] = [
  {
    name: "waypoint",
    via: `${NET.waypoint}:${NET.hbonePort}`,
    identity: IDS.waypoint,
    echo: `${NET.vip}:${NET.echoPort}`,
    sink: `${NET.vip}:${NET.sinkPort}`,
    http: `${NET.vip}:${NET.vipHttpPort}`,
  },
  {
    name: "direct",
    via: `${NET.pod}:${NET.hbonePort}`,
    identity: IDS.backend,
    echo: `${NET.pod}:${NET.echoPort}`,
    sink: `${NET.pod}:${NET.sinkPort}`,
    http: `${NET.pod}:${NET.httpPort}`,
  },
];

/** Certificates and config made once per harness run. */
export interface Workspace {
  readonly dir: string;
  readonly certs: { readonly client: string; readonly waypoint: string; readonly backend: string };
  readonly config: string;
}

/** Makes a dev CA, one leaf per party and the mesh YAML in a temporary folder. */
export async function makeWorkspace(): Promise<Workspace> {
  const dir = await Deno.makeTempDir({ prefix: "waypoint-bench-" });
  await createCa(`${dir}/ca`, { trustDomain: "cluster.local" });
  const certs = { client: `${dir}/client`, waypoint: `${dir}/waypoint`, backend: `${dir}/backend` };
  for (const [sa, out] of Object.entries(certs)) await issueCert(`${dir}/ca`, spiffe(sa), out);
  const config = `${dir}/mesh.yaml`;
  await Deno.writeTextFile(config, MESH_YAML);
  return { dir, certs, config };
}

const MESH_YAML = `apiVersion: v1
kind: Namespace
metadata: { name: bench, labels: { istio.io/use-waypoint: waypoint } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: bench, labels: { istio.io/waypoint-for: service } }
spec:
  gatewayClassName: istio-waypoint
  listeners: [{ name: mesh, port: ${NET.hbonePort}, protocol: HBONE }]
---
apiVersion: v1
kind: Service
metadata: { name: backend, namespace: bench }
spec:
  clusterIP: ${NET.vip}
  selector: { app: backend }
  ports:
    - { name: tcp-echo, port: ${NET.echoPort}, targetPort: ${NET.echoPort} }
    - { name: tcp-sink, port: ${NET.sinkPort}, targetPort: ${NET.sinkPort} }
    - { name: http, port: ${NET.vipHttpPort}, targetPort: ${NET.httpPort} }
---
apiVersion: v1
kind: Pod
metadata: { name: backend-0, namespace: bench, labels: { app: backend } }
spec: { serviceAccountName: backend }
status: { podIP: ${NET.pod}, conditions: [{ type: Ready, status: "True" }] }
`;

/** The running server side: backend, destination stand-in and waypoint. */
export interface Stack {
  readonly backend: Proc;
  readonly dest: Proc;
  readonly waypoint: Proc;
  /** Pids by the names the report uses. */
  readonly pids: Readonly<Record<string, number>>;
}

/** Options for {@link startStack}. */
export interface StackOptions {
  /** Run the waypoint under `--cpu-prof`, writing the profile to this folder. */
  readonly cpuProfDir?: string;
}

const DENO = Deno.execPath();
const QUIET = { WAYPOINT_LOG_LEVEL: "warn" };

/** `deno run -A <script> ...args` as a harness child. */
export function denoProc(
  name: string,
  script: string,
  args: readonly string[],
  options: { stdin?: boolean; denoFlags?: readonly string[] } = {},
): Proc {
  return new Proc(name, DENO, ["run", "-A", ...(options.denoFlags ?? []), script, ...args], {
    env: QUIET,
    stdin: options.stdin,
  });
}

/**
 * Starts backend, stand-in and waypoint, and waits until each one listens.
 *
 * @throws Error when an address is taken or a process does not come up
 */
export async function startStack(ws: Workspace, options: StackOptions = {}): Promise<Stack> {
  for (const port of [NET.echoPort, NET.sinkPort, NET.httpPort, NET.hbonePort]) {
    await assertFree(NET.pod, port);
  }
  await assertFree(NET.waypoint, NET.hbonePort);
  const backend = denoProc("backend", "bench/backend.ts", [
    ...["--host", NET.pod, "--echo", `${NET.echoPort}`, "--sink", `${NET.sinkPort}`],
    ...["--http", `${NET.httpPort}`],
  ]);
  const dest = denoProc("stand-in", "main.ts", [
    ...["tunnel", "serve", "--listen", `${NET.pod}:${NET.hbonePort}`],
    ...["--certs", ws.certs.backend],
  ]);
  const waypoint = spawnWaypoint(ws, { cpuProfDir: options.cpuProfDir });
  await Promise.all([
    waitListening(backend, NET.pod, NET.httpPort),
    waitListening(dest, NET.pod, NET.hbonePort),
    waitWaypoint(waypoint, NET.waypoint),
  ]);
  return {
    backend,
    dest,
    waypoint,
    // The harness itself is counted so that "other" is only what others ran.
    pids: { waypoint: waypoint.pid, "stand-in": dest.pid, backend: backend.pid, harness: Deno.pid },
  };
}

/** Options for {@link startWaypoint}. */
export interface WaypointOptions extends StackOptions {
  /** Process name in progress and failures. @default "waypoint" */
  readonly name?: string;
  /** Where its HBONE (15008), readiness (15021), metrics and admin listeners bind. */
  readonly address?: string;
  /** Config files loaded after the mesh (`run --config` is repeatable). */
  readonly extraConfig?: readonly string[];
}

/**
 * Starts one more waypoint on the running stack's mesh (same Gateway, certificates and
 * destination stand-in) and waits until it is ready.
 *
 * @throws Error when its address is taken or it does not come up
 */
export async function startWaypoint(ws: Workspace, options: WaypointOptions): Promise<Proc> {
  const address = options.address ?? NET.waypoint;
  await assertFree(address, NET.hbonePort);
  const waypoint = spawnWaypoint(ws, options);
  try {
    await waitWaypoint(waypoint, address);
  } catch (e) {
    await waypoint.stop();
    throw e;
  }
  return waypoint;
}

function spawnWaypoint(ws: Workspace, options: WaypointOptions): Proc {
  const w = options.address ?? NET.waypoint;
  const profile = options.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`] : [];
  const configs = [ws.config, ...(options.extraConfig ?? [])].flatMap((c) => ["--config", c]);
  return denoProc(options.name ?? "waypoint", "main.ts", [
    ...["run", ...configs, "--certs", ws.certs.waypoint, "--namespace", "bench"],
    ...["--name", "waypoint", "--hbone", `${w}:${NET.hbonePort}`, "--readiness", `${w}:15021`],
    ...["--metrics", `${w}:15020`, "--admin", `${w}:15000`, "--ztunnel-port", `${NET.hbonePort}`],
    ...["--log-level", "warn"],
  ], { denoFlags: profile });
}

async function waitWaypoint(waypoint: Proc, address: string): Promise<void> {
  await waitListening(waypoint, address, 15021);
  await waitReady(waypoint, `http://${address}:15021/healthz/ready`);
}

async function waitReady(proc: Proc, url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.done) throw proc.failure("exited before it was ready");
    const r = await fetch(url).catch(() => undefined);
    await r?.body?.cancel();
    if (r?.ok) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw proc.failure(`was not ready at ${url} within ${timeoutMs} ms`);
}

/**
 * Checks that backend, stand-in and waypoint are still running.
 *
 * @throws Error naming the process that ended, with its last output lines
 */
export function assertRunning(stack: Stack): void {
  for (const p of [stack.waypoint, stack.dest, stack.backend]) {
    if (p.done) throw p.failure("ended during the measurement");
  }
}

/**
 * Stops the stack; the waypoint gets a longer grace when it must write a CPU profile.
 *
 * @param stack The running stack
 * @param waypointGraceMs SIGTERM grace of the waypoint before SIGKILL
 */
export async function stopStack(stack: Stack, waypointGraceMs = 3_000): Promise<void> {
  await stack.waypoint.stop(waypointGraceMs);
  await Promise.all([stack.dest.stop(), stack.backend.stop()]);
}
