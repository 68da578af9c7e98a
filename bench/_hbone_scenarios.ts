/**
 * Transport scenarios over HBONE with `bench/hbone_load.ts` as the client: short streams, one
 * bulk stream, and memory with many streams held open. Each path (through the waypoint, and
 * straight to the destination stand-in) is measured in the same run.
 */
import type { Proc } from "./_procs.ts";
import {
  cpuPer1k,
  fmt,
  hboneClient,
  type Outcome,
  type Scenario,
  windowCells,
  windowColumns,
  withStack,
} from "./_scenario.ts";
import { assertRunning, PATHS } from "./_stack.ts";
import type { CurvePoint } from "./_stats.ts";
import { rssKiB, Window, type WindowResult } from "./_window.ts";

const PROCS = ["waypoint", "stand-in", "backend", "client"];

interface ShortResult {
  concurrency: number;
  streams: number;
  perSecond: number;
  errors: number;
  firstError?: string;
  latencyMs: Record<string, number>;
  curve: CurvePoint[];
}

/** `hbone-short`: streams/s, stream latency and CPU per 1,000 streams at 1, 16 and 64 workers. */
export const hboneShort: Scenario = {
  name: "hbone-short",
  summary:
    "open CONNECT, write 100 B, read the echo, close; 1/16/64 workers; streams/s, p50/p99, " +
    "waypoint CPU s per 1,000 streams",
  run: (ctx) =>
    withStack(ctx, async (stack) => {
      const levels = [1, 16, 64];
      const seconds = ctx.quick ? 1 : 10, warmup = ctx.quick ? 0.5 : 1;
      const clients = new Map<string, Proc>(PATHS.map((p) => [
        p.name,
        hboneClient(ctx, p, "short", p.echo, [
          ...["--concurrency", levels.join(","), "--duration", `${seconds}`],
          ...["--warmup", `${warmup}`, "--stepped"],
        ]),
      ]));
      const rows: (string | number)[][] = [];
      const data: (ShortResult & { path: string; window: WindowResult })[] = [];
      try {
        for (const c of levels) {
          for (const path of PATHS) {
            ctx.progress(`hbone-short: ${path.name}, ${c} workers, ${seconds} s`);
            const client = clients.get(path.name)!;
            await client.send("next");
            await client.event("start", (warmup + 60) * 1000);
            const win = new Window({ ...stack.pids, client: client.pid });
            const r = await client.event<ShortResult>("result", (seconds + 60) * 1000);
            const w = win.close();
            assertRunning(stack);
            data.push({ path: path.name, ...r, window: w });
            rows.push([
              path.name,
              c,
              fmt(r.perSecond, 0),
              fmt(r.latencyMs.p50, 3),
              fmt(r.latencyMs.p99, 3),
              fmt(cpuPer1k(w, "waypoint", r.streams), 3),
              fmt(cpuPer1k(w, "stand-in", r.streams), 3),
              ...windowCells(w, PROCS, ctx.nproc, r.errors),
            ]);
          }
        }
      } finally {
        await Promise.all([...clients.values()].map((p) => p.stop()));
      }
      return {
        tables: [{
          title: `hbone-short: 100 B echo per stream, closed loop, ${seconds} s per row`,
          columns: [
            "path",
            "workers",
            "streams/s",
            "p50 ms",
            "p99 ms",
            "waypoint CPU s/1k streams",
            "stand-in CPU s/1k streams",
            ...windowColumns(PROCS),
          ],
          rows,
        }],
        plot: {
          title: "hbone-short: stream latency by percentile",
          panels: levels.map((c) => ({
            title: `${c} worker${c === 1 ? "" : "s"}`,
            series: data.filter((d) => d.concurrency === c).map((d) => ({
              name: d.path,
              points: d.curve,
            })),
          })),
        },
        data,
      };
    }),
};

interface BulkResult {
  bytes: number;
  received: number;
  seconds: number;
  gbitPerSecond: number;
  errors: number;
}

/** `hbone-bulk`: one stream carrying 1 GiB (256 MiB quick) to the sink; Gbit/s. */
export const hboneBulk: Scenario = {
  name: "hbone-bulk",
  summary: "one stream carrying 1 GiB one way to a sink that answers the byte count; Gbit/s",
  run: (ctx) =>
    withStack(ctx, async (stack) => {
      const bytes = (ctx.quick ? 256 : 1024) << 20;
      const rows: (string | number)[][] = [];
      const data: unknown[] = [];
      for (const path of PATHS) {
        ctx.progress(`hbone-bulk: ${path.name}, ${bytes >> 20} MiB`);
        const client = hboneClient(ctx, path, "bulk", path.sink, ["--bytes", `${bytes}`]);
        try {
          await client.event("start", 60_000);
          const win = new Window({ ...stack.pids, client: client.pid });
          const r = await client.event<BulkResult>("result", 600_000);
          const w = win.close();
          assertRunning(stack);
          data.push({ path: path.name, ...r, window: w });
          rows.push([
            path.name,
            bytes >> 20,
            fmt(r.gbitPerSecond, 2),
            fmt(r.seconds, 2),
            fmt(perGiB(w, "waypoint", bytes), 2),
            ...windowCells(w, PROCS, ctx.nproc, r.errors),
          ]);
        } finally {
          await client.stop();
        }
      }
      return {
        tables: [{
          title: "hbone-bulk: one stream, one way",
          columns: [
            "path",
            "MiB",
            "Gbit/s",
            "seconds",
            "waypoint CPU s/GiB",
            ...windowColumns(PROCS),
          ],
          rows,
        }],
        data,
      };
    }),
};

function perGiB(w: WindowResult, name: string, bytes: number): number | undefined {
  const s = w.cpuSeconds[name];
  return s === undefined ? undefined : s / (bytes / (1 << 30));
}

/** `rss`: waypoint RSS idle after start and with 1,000 open streams; the stand-in alike. */
export const rss: Scenario = {
  name: "rss",
  summary: "VmRSS idle after start and with 1,000 streams held open (echo-checked)",
  run: async (ctx) => {
    const streams = 1000;
    const idleSeconds = ctx.quick ? 1 : 2;
    const rows: (string | number)[][] = [];
    const data: unknown[] = [];
    // A fresh stack per path, so "idle" means idle for both proxies.
    for (const path of PATHS) {
      const proxy = path.name === "waypoint" ? "waypoint" : "stand-in";
      await withStack(ctx, async (stack) => {
        ctx.progress(`rss: ${path.name}, ${streams} streams`);
        await sleep(idleSeconds * 1000);
        const idle = kib(stack.pids[proxy]);
        const client = hboneClient(ctx, path, "hold", path.echo, ["--streams", `${streams}`]);
        try {
          const held = await client.event<Record<string, number>>("held", 120_000);
          await sleep(1_000);
          const full = kib(stack.pids[proxy]);
          assertRunning(stack);
          data.push({ path: path.name, process: proxy, idleKiB: idle, heldKiB: full, ...held });
          rows.push([
            path.name,
            proxy,
            held.streams,
            fmt(idle / 1024, 1),
            fmt(full / 1024, 1),
            fmt((full - idle) / held.streams, 1),
            fmt(held.seconds, 2),
            held.errors,
          ]);
          await client.send("release");
          await client.event("released", 60_000);
        } finally {
          await client.stop();
        }
      });
    }
    return {
      tables: [{
        title: `rss: VmRSS idle (${idleSeconds} s after ready) and with ${streams} streams held ` +
          "open",
        columns: [
          "path",
          "process",
          "streams held",
          "idle MiB",
          "held MiB",
          "KiB per stream",
          "open s",
          "errors",
        ],
        rows,
        notes: [
          "The direct path has no waypoint: its row shows the destination stand-in, which holds " +
          "the same streams with one HBONE leg and one TCP leg.",
        ],
      }],
      data,
    } satisfies Outcome;
  },
};

function kib(pid: number): number {
  return rssKiB(pid) ?? NaN;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Used by `run.ts` to list these scenarios in order. */
export const HBONE_SCENARIOS: readonly Scenario[] = [hboneShort, hboneBulk, rss];
