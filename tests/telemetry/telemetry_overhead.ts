/**
 * CPU of the real waypoint per 1,000 HTTP requests with each telemetry feature on (issue 5):
 * metrics only (always on), + tracing at 1 %, + tracing at 100 % (spans exported to a local
 * OTLP/HTTP receiver), + Istio's JSON access log to a file. Not a test: run it by hand with
 * `deno run -A tests/telemetry/telemetry_overhead.ts [requests]`.
 *
 * The waypoint runs as its own process (`main.ts run`, one per variant, one after the other),
 * and its CPU (user + system) is read from `/proc/<pid>/stat`, so the client, the destination
 * stand-in, the backend and the receiver (all in this process) are not counted. Each variant
 * warms up, then sends N requests (default 20,000) over 16 keep-alive HTTP/1.1 connections
 * through HBONE. The variants run interleaved, three rounds, each kept at its least (the
 * machine is shared). Loopback 127.0.28.x. Prints one Markdown table.
 */
import { startMesh, type TestMesh, WAYPOINT_ID } from "../fixtures/mesh.ts";
import { Http1, startHttpBackends } from "../integration/_l7.ts";

const N = Number(Deno.args[0] ?? 20_000);
const CONNECTIONS = 16;
const WARMUP = 2_000;
const ROUNDS = 3;
const VIP = "127.0.28.1";
const POD = { name: "echo-1", ip: "127.0.28.2" };
const RECEIVER_IP = "127.0.28.10";
const WAYPOINT_IP = "127.0.28.100";
const HBONE_PORT = 15008;
/** Linux `CLK_TCK`: `/proc/<pid>/stat` counts CPU in 1/100 s. */
const TICKS_PER_SECOND = 100;

interface Variant {
  readonly name: string;
  readonly flags: readonly string[];
  readonly meshConfig: string;
}

/** The least CPU ms per 1,000 requests and its requests/s, per variant. */
interface Best {
  cpuPer1k: number;
  rate: number;
}

/** CPU seconds (user + system) of a process so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // Fields after the `(comm)`, which may hold spaces: utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Sends `n` GETs over `connections`, each connection one after the other. */
async function load(connections: Http1[], n: number): Promise<void> {
  let next = 0;
  await Promise.all(connections.map(async (c) => {
    while (next < n) {
      next++;
      const res = await c.fetch("GET", "/reviews/1");
      if (res.status !== 200) throw new Error(`Got ${res.status}`);
    }
  }));
}

/** A receiver that accepts OTLP/HTTP and counts spans. */
function receiver() {
  let spans = 0;
  const server = Deno.serve({ hostname: RECEIVER_IP, port: 0, onListen() {} }, async (req) => {
    const body = await req.json();
    for (const r of body.resourceSpans) for (const s of r.scopeSpans) spans += s.spans.length;
    return new Response("{}");
  });
  return {
    port: server.addr.port,
    get spans() {
      return spans;
    },
    close: () => server.shutdown(),
  };
}

/** Starts the waypoint process and waits for its HBONE port. */
async function spawnWaypoint(args: string[]): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../main.ts", import.meta.url).pathname, "run", ...args],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  for (let i = 0; i < 300; i++) {
    try {
      (await Deno.connect({ hostname: WAYPOINT_IP, port: HBONE_PORT })).close();
      return child;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  child.kill();
  throw new Error("The waypoint did not start");
}

async function main(): Promise<void> {
  const otlp = receiver();
  const backends = await startHttpBackends([POD.ip]);
  const logFile = await Deno.makeTempFile({ suffix: ".log" });
  // The in-process mesh gives certificates, config, destination stand-in and client pool; its
  // own waypoint (on another address) stays idle.
  const mesh = await startMesh({
    waypointIp: "127.0.28.200",
    vip: VIP,
    pods: [POD],
    ports: [{ name: "http", port: 80, targetPort: backends.port }],
  });
  const provider = `extensionProviders:
  - name: otel
    opentelemetry: { service: obs/${RECEIVER_IP}, port: ${otlp.port}, http: { path: /v1/traces } }
`;
  const variants: Variant[] = [
    { name: "metrics only", flags: [], meshConfig: provider },
    {
      name: "+ tracing 1 %",
      flags: ["--trace-provider", "otel", "--trace-sampling", "1"],
      meshConfig: provider,
    },
    {
      name: "+ tracing 100 %",
      flags: ["--trace-provider", "otel", "--trace-sampling", "100"],
      meshConfig: provider,
    },
    {
      name: "+ JSON access log to a file",
      flags: [],
      meshConfig: `${provider}accessLogFile: ${logFile}\naccessLogEncoding: JSON\n`,
    },
  ];
  const best = new Map<string, Best>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const v of variants) {
        const got = await measure(mesh, v);
        const prior = best.get(v.name);
        if (!prior || got.cpuPer1k < prior.cpuPer1k) best.set(v.name, got);
      }
    }
  } finally {
    await mesh[Symbol.asyncDispose]();
    await backends[Symbol.asyncDispose]();
    await otlp.close();
    await Deno.remove(logFile);
  }
  console.log(`Waypoint CPU per 1,000 requests, ${N} requests over ${CONNECTIONS} connections`);
  console.log(`(spans received: ${otlp.spans})\n`);
  console.log("| variant | CPU ms / 1k requests | added ms / 1k | requests/s |");
  console.log("|---|---:|---:|---:|");
  const base = best.get(variants[0].name)!.cpuPer1k;
  for (const v of variants) {
    const b = best.get(v.name)!;
    const added = v === variants[0] ? "" : (b.cpuPer1k - base).toFixed(0);
    console.log(`| ${v.name} | ${b.cpuPer1k.toFixed(0)} | ${added} | ${b.rate.toFixed(0)} |`);
  }
}

/** One waypoint process with a variant's flags: warm-up, then N measured requests. */
async function measure(mesh: TestMesh, v: Variant): Promise<Best> {
  const meshConfigFile = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(meshConfigFile, v.meshConfig);
  const local = (port: number) => `${WAYPOINT_IP}:${port}`;
  const child = await spawnWaypoint([
    ...["--config", mesh.configFile, "--certs", await mesh.pki.certs(WAYPOINT_ID)],
    ...["--namespace", "ns1", "--name", "waypoint", "--log-level", "warn"],
    ...["--hbone", local(HBONE_PORT), "--readiness", local(15021)],
    ...["--metrics", local(15020), "--admin", local(15000)],
    ...["--ztunnel-port", String(mesh.ztunnelPort), "--mesh-config", meshConfigFile],
    ...v.flags,
  ]);
  try {
    const connections = await Promise.all(
      Array.from({ length: CONNECTIONS }, async () =>
        new Http1(
          (await mesh.client.open({
            address: WAYPOINT_IP,
            port: HBONE_PORT,
            identity: WAYPOINT_ID,
            authority: `${VIP}:80`,
          })).stream,
        )),
    );
    await load(connections, WARMUP);
    const before = await cpuSeconds(child.pid);
    const started = performance.now();
    await load(connections, N);
    const wallS = (performance.now() - started) / 1000;
    const cpuMs = (await cpuSeconds(child.pid) - before) * 1000;
    for (const c of connections) c.stream.destroy();
    return { cpuPer1k: cpuMs / (N / 1000), rate: N / wallS };
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(meshConfigFile);
  }
}

if (import.meta.main) await main();
