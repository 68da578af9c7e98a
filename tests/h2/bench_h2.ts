/**
 * Throughput of h2/ against node:http2, both ends in this process over cleartext TCP on
 * 127.0.14.5 (not a test):
 * - bulk: one CONNECT stream carrying `--mib` MiB from client to server;
 * - short streams: `--concurrency` workers each opening a CONNECT, sending 100 bytes, reading the
 *   100-byte echo and ending, for `--seconds`.
 *
 * Run: deno run -A tests/h2/bench_h2.ts [--mib 512] [--seconds 5] [--concurrency 50]
 */
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import net from "node:net";
import process from "node:process";
import type { Duplex } from "node:stream";
import { connectH2, serveH2 } from "../../h2/session.ts";

const HOST = "127.0.14.5";
const MIB = 1 << 20;

/** One implementation as the bench drives it. */
interface Impl {
  readonly name: string;
  /** Opens a CONNECT stream; resolves once answered 200. */
  open(): Promise<Duplex>;
  close(): Promise<void>;
}

/** The server side: echo, or count and discard for the bulk run. */
type Mode = "echo" | "sink";

interface Counter {
  received: number;
}

async function listenOn(onSocket: (s: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer(onSocket);
  await new Promise<void>((r) => server.listen(0, HOST, r));
  return server;
}

function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

function serverSide(stream: Duplex, mode: Mode, counter: Counter): void {
  stream.on("error", () => {});
  if (mode === "echo") {
    stream.pipe(stream);
  } else {
    stream.on("data", (c: Buffer) => (counter.received += c.length));
    stream.on("end", () => stream.end());
  }
}

async function ours(mode: Mode, counter: Counter): Promise<Impl> {
  const sockets: net.Socket[] = [];
  const server = await listenOn((sock) => {
    sockets.push(sock);
    serveH2(sock, { pingIntervalMs: 0 }, (s) => {
      s.respond(200);
      serverSide(s, mode, counter);
    });
  });
  const socket = net.connect(portOf(server), HOST);
  const client = connectH2(socket, { pingIntervalMs: 0 });
  await client.ready;
  return {
    name: "h2/",
    open: () => answered(client.request(CONNECT)),
    close: () => closeAll(client, sockets, server),
  };
}

async function nodeHttp2(mode: Mode, counter: Counter): Promise<Impl> {
  const settings = { initialWindowSize: 4 * MIB, maxFrameSize: MIB, maxConcurrentStreams: 100 };
  const h2 = http2.createServer({ settings });
  h2.on("session", (s) => s.setLocalWindowSize(16 * MIB));
  h2.on("stream", (s: http2.ServerHttp2Stream) => {
    s.respond({ ":status": 200 });
    serverSide(s, mode, counter);
  });
  const sockets: net.Socket[] = [];
  const server = await listenOn((sock) => {
    sockets.push(sock);
    h2.emit("connection", sock);
  });
  const client = http2.connect(`http://${HOST}:${portOf(server)}`, { settings });
  await new Promise((r) => client.once("connect", r));
  client.setLocalWindowSize(16 * MIB);
  return {
    name: "node:http2",
    open: () => answered(client.request(CONNECT)),
    close: () => closeAll(client, sockets, server),
  };
}

const CONNECT = { ":method": "CONNECT", ":authority": "10.0.0.1:80" };

/** Resolves with the stream once it got its response. */
function answered(s: Duplex): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    s.once("response", () => resolve(s));
    s.once("error", reject);
  });
}

async function closeAll(
  client: { destroy(): void },
  sockets: net.Socket[],
  server: net.Server,
): Promise<void> {
  client.destroy();
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
}

type Factory = (mode: Mode, counter: Counter) => Promise<Impl>;

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function bulk(make: Factory, mib: number): Promise<string> {
  const counter = { received: 0 };
  const impl = await make("sink", counter);
  const s = await impl.open();
  const chunk = Buffer.alloc(256 * 1024, 7);
  const total = mib * MIB;
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const done = new Promise<void>((r) => s.on("end", () => r()));
  s.resume();
  for (let sent = 0; sent < total; sent += chunk.length) {
    if (!s.write(chunk)) await new Promise((r) => s.once("drain", r));
  }
  s.end();
  await done;
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - cpu0;
  if (counter.received !== total) throw new Error(`${impl.name}: got ${counter.received}`);
  await impl.close();
  return `${impl.name.padEnd(11)} bulk: ${(mib / secs).toFixed(0).padStart(5)} MiB/s ` +
    `(${mib} MiB in ${secs.toFixed(2)} s, CPU ${(cpu / secs * 100).toFixed(0)}%)`;
}

async function shortStreams(make: Factory, seconds: number, concurrency: number): Promise<string> {
  const impl = await make("echo", { received: 0 });
  const payload = Buffer.alloc(100, 1);
  let streams = 0;
  const deadline = performance.now() + seconds * 1000;
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const worker = async () => {
    while (performance.now() < deadline) {
      const s = await impl.open();
      const got = await new Promise<number>((resolve, reject) => {
        let n = 0;
        s.on("data", (c: Buffer) => (n += c.length));
        s.once("end", () => resolve(n));
        s.once("error", reject);
        s.end(payload);
      });
      if (got !== 100) throw new Error(`${impl.name}: echo of ${got} bytes`);
      streams++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - cpu0;
  await impl.close();
  return `${impl.name.padEnd(11)} short streams: ${(streams / secs).toFixed(0).padStart(6)}/s ` +
    `(${streams} in ${secs.toFixed(2)} s, ${concurrency} concurrent, CPU ${
      (cpu / secs * 100).toFixed(0)
    }%)`;
}

if (import.meta.main) {
  const arg = (name: string, fallback: number) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  };
  const mib = arg("mib", 512), seconds = arg("seconds", 5);
  const concurrency = arg("concurrency", 50), rounds = arg("rounds", 2);
  console.log(`Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores; both ends here`);
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round}`);
    for (const make of [ours, nodeHttp2]) console.log("  " + await bulk(make, mib));
    for (const make of [ours, nodeHttp2]) {
      console.log("  " + await shortStreams(make, seconds, concurrency));
    }
  }
}
