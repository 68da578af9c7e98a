/**
 * HBONE load client: the project's own pooled client (`HbonePool`) in a process of its own, so
 * its CPU is not the waypoint's. It talks to the harness in JSON lines on stdout: a `start`
 * event when a measured phase begins (the harness samples `/proc` then) and a `result` event
 * when it ends.
 *
 * Modes (closed loop: each worker starts its next stream when the previous one has closed):
 * - `short --concurrency 1,16,64 --duration S --warmup S --payload N [--stepped]`: per phase, C
 *   workers each open a CONNECT, write N bytes, read the echo, end, and wait for the stream to
 *   close. With `--stepped` each phase waits for a line `next` on stdin, so the harness can
 *   interleave the waypoint and direct paths.
 * - `bulk --bytes N`: one stream carrying N bytes one way to the sink, which answers the count.
 * - `hold --streams N`: opens N streams, checks each with a one-byte echo, reports `held`, and
 *   keeps them until a line `release` (or end of input) arrives on stdin.
 *
 * Usage: deno run -A bench/hbone_load.ts MODE --certs DIR --via HOST:PORT --identity SPIFFE_ID
 *          --authority IP:PORT [mode flags]
 */
import type { Duplex } from "node:stream";
import { parseArgs } from "node:util";
import {
  DEFAULT_TUNNEL_CONFIG,
  HbonePool,
  IdentitySource,
  type TunnelTarget,
} from "../tunnel/mod.ts";
import { percentileCurve, percentiles } from "./_stats.ts";

const CHUNK = 256 << 10;

function emit(event: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ event, ...fields }));
}

/** Resolves when the stream has read `want` bytes (echo) and keeps counting. */
function readBytes(stream: Duplex, want: number): Promise<Uint8Array[]> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let got = 0;
    const onData = (c: Uint8Array) => {
      chunks.push(c);
      got += c.length;
      if (got >= want) done();
    };
    const onEnd = () => done(new Error(`Stream ended after ${got} of ${want} bytes`));
    const done = (e?: Error) => {
      stream.off("data", onData).off("end", onEnd).off("error", done);
      e ? reject(e) : resolve(chunks);
    };
    stream.on("data", onData).once("end", onEnd).once("error", done);
  });
}

function closed(stream: Duplex): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.resume(); // Read to end, or 'close' never comes.
    stream.once("close", () => resolve());
  });
}

/** One short stream: open, write, read the echo, end, closed. Returns its duration in ms. */
async function shortStream(pool: HbonePool, target: TunnelTarget, payload: Uint8Array) {
  const t0 = performance.now();
  const { stream } = await pool.open(target);
  try {
    const echoed = readBytes(stream, payload.length);
    stream.write(payload);
    await echoed;
    stream.end();
    await closed(stream);
  } catch (e) {
    stream.destroy();
    throw e;
  }
  return performance.now() - t0;
}

async function shortMode(pool: HbonePool, target: TunnelTarget, f: Flags): Promise<void> {
  const payload = new Uint8Array(Number(f.payload)).fill(0x61);
  for (const c of String(f.concurrency).split(",").map(Number)) {
    if (f.stepped && (await command()) !== "next") break;
    const phase = `c=${c}`;
    let measuring = false, stop = false;
    const latencies: number[] = [];
    let errors = 0, firstError: string | undefined;
    const worker = async () => {
      while (!stop) {
        const counted = measuring;
        try {
          const ms = await shortStream(pool, target, payload);
          if (counted && measuring) latencies.push(ms);
        } catch (e) {
          if (counted) errors++;
          firstError ??= String(e);
        }
      }
    };
    const workers = Array.from({ length: c }, worker);
    await sleep(Number(f.warmup) * 1000);
    measuring = true;
    emit("start", { phase });
    const t0 = performance.now();
    await sleep(Number(f.duration) * 1000);
    measuring = false;
    const seconds = (performance.now() - t0) / 1000;
    emit("result", {
      phase,
      concurrency: c,
      seconds,
      streams: latencies.length,
      perSecond: latencies.length / seconds,
      errors,
      firstError,
      latencyMs: percentiles(latencies),
      curve: percentileCurve(latencies),
    });
    stop = true;
    await Promise.all(workers);
  }
}

async function bulkMode(pool: HbonePool, target: TunnelTarget, f: Flags): Promise<void> {
  const total = Number(f.bytes);
  const chunk = new Uint8Array(CHUNK).fill(0x62);
  const { stream } = await pool.open(target);
  const answer = readBytes(stream, 8);
  emit("start", { phase: "bulk" });
  const t0 = performance.now();
  for (let sent = 0; sent < total;) {
    const n = Math.min(CHUNK, total - sent);
    sent += n;
    if (!stream.write(n === CHUNK ? chunk : chunk.subarray(0, n))) {
      await new Promise((r) => stream.once("drain", r));
    }
  }
  stream.end();
  const chunks = await answer;
  const seconds = (performance.now() - t0) / 1000;
  await closed(stream);
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  const counted = Number(new DataView(bytes.buffer).getBigUint64(0));
  emit("result", {
    phase: "bulk",
    bytes: total,
    received: counted,
    seconds,
    gbitPerSecond: total * 8 / seconds / 1e9,
    errors: counted === total ? 0 : 1,
  });
}

async function holdMode(pool: HbonePool, target: TunnelTarget, f: Flags): Promise<void> {
  const want = Number(f.streams);
  const streams: Duplex[] = [];
  let errors = 0, firstError: string | undefined;
  const t0 = performance.now();
  let next = 0;
  const opener = async () => {
    while (next < want) {
      next++;
      try {
        const { stream } = await pool.open(target);
        streams.push(stream);
        const echoed = readBytes(stream, 1);
        stream.write(new Uint8Array([0x63]));
        await echoed;
      } catch (e) {
        errors++;
        firstError ??= String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, opener));
  emit("held", {
    streams: streams.length - errors,
    errors,
    firstError,
    connections: pool.stats.connections,
    seconds: (performance.now() - t0) / 1000,
  });
  let line: string | undefined;
  do line = await command(); while (line !== undefined && line !== "release");
  await Promise.all(streams.map((s) => {
    s.end();
    return closed(s);
  }));
  emit("released");
}

type Flags = Record<string, string | boolean | undefined>;

let stdin: ReadableStreamDefaultReader<string> | undefined;
let pending = "";

/** The next line from the harness on stdin, or undefined at its end. */
async function command(): Promise<string | undefined> {
  stdin ??= Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const i = pending.indexOf("\n");
    if (i >= 0) {
      const line = pending.slice(0, i).trim();
      pending = pending.slice(i + 1);
      return line;
    }
    const { value, done } = await stdin.read();
    if (done) return undefined;
    pending += value;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

if (import.meta.main) {
  const [mode, ...rest] = Deno.args;
  const { values } = parseArgs({
    args: rest,
    options: {
      certs: { type: "string" },
      via: { type: "string" },
      identity: { type: "string" },
      authority: { type: "string" },
      concurrency: { type: "string", default: "1,16,64" },
      duration: { type: "string", default: "10" },
      warmup: { type: "string", default: "1" },
      payload: { type: "string", default: "100" },
      bytes: { type: "string", default: String(1 << 30) },
      streams: { type: "string", default: "1000" },
      stepped: { type: "boolean", default: false },
    },
  });
  const [host, port] = String(values.via).split(/:(?=\d+$)/);
  const identity = await IdentitySource.fromDir(String(values.certs));
  const pool = new HbonePool(identity, DEFAULT_TUNNEL_CONFIG);
  const target: TunnelTarget = {
    address: host,
    port: Number(port),
    identity: String(values.identity),
    authority: String(values.authority),
  };
  const modes = { short: shortMode, bulk: bulkMode, hold: holdMode };
  const run = modes[mode as keyof typeof modes];
  if (!run) {
    console.error(`hbone_load wants a mode (short, bulk, hold): got "${mode ?? ""}"`);
    Deno.exit(2);
  }
  await run(pool, target, values);
  // Exit without pool.close(): a GOAWAY after a few thousand streams can abort a Deno 2.9.6
  // node:http2 server inside nghttp2 (denoland/deno#36788; bench/README.md), and the harness
  // measures the waypoint, not that crash.
  Deno.exit(0);
}
