/**
 * The HTTP/1.1 scenarios of issue 8 on the paths of `_http.ts` (waypoint, direct, plain, and the
 * HAProxy peer with its own direct path), all in one run:
 *
 * - `http-1k`: Istio's latency method (1,000 rps at 2, 4, 16 and 64 connections, p50/p90/p99
 *   added), Istio's CPU method (16 connections at 100, 500 and 1,000 rps: proxy CPU s per 1,000
 *   requests and RSS), saturation (64 connections, closed loop), and the waypoint beside HAProxy
 *   against the issue's targets (`_compare.ts`); scenarios 1, 2, 3 and 6.
 * - `http-upload`: one POST of 1 GiB streamed through each path; scenario 4's HTTP half.
 */
import { compareTables } from "./_compare.ts";
import {
  assertBenchRunning,
  type Bench,
  httpCells,
  httpColumns,
  LOADS,
  measure,
  type Measured,
  PATH_ROLES,
  type PathName,
  ROLE_PROCS,
  type RolePath,
  rolePids,
  rowSeconds,
  toolNotes,
  toolRun,
  withPaths,
} from "./_http.ts";
import { HAPROXY_THREADS } from "./_peer.ts";
import { hasProgram } from "./_procs.ts";
import {
  cpuPer1k,
  fmt,
  type Plot,
  type Scenario,
  type ScenarioContext,
  type Table,
  windowCells,
  windowColumns,
} from "./_scenario.ts";
import { curlUpload, type HttpLoad, type ToolResult, type UploadResult } from "./_tools.ts";
import type { WindowResult } from "./_window.ts";

/** One load of `http-1k` and the paths it runs on. */
export interface LoadSpec {
  readonly name: string;
  readonly load: Omit<HttpLoad, "url" | "headers">;
  readonly tool: "h2load" | "wrk";
  readonly paths: readonly PathName[];
}

const ALL: readonly PathName[] = ["waypoint", "direct", "plain", "haproxy", "haproxy-direct"];
const PAIR: readonly PathName[] = ["waypoint", "direct"];
const PROXIES: readonly PathName[] = ["waypoint", "haproxy"];

/**
 * The loads of `http-1k` in the order they run: Istio's latency method, then the lower rates of
 * its CPU method, then saturation (last, so that the 1,000 rps rows' RSS is not the heap that
 * saturation grew). `--quick` keeps one of each kind.
 */
export function http1kLoads(quick: boolean): LoadSpec[] {
  const seconds = quick ? 1 : 10, warmupSeconds = quick ? 0.5 : 1;
  const fixed = (rate: number, connections: number, paths: readonly PathName[]): LoadSpec => ({
    name: `${rate.toLocaleString("en-US")} rps, ${connections} conns`,
    load: { connections, seconds, rate, warmupSeconds },
    tool: "h2load",
    paths,
  });
  const latency = quick
    ? [fixed(1000, 16, ALL)]
    : [fixed(1000, 2, PAIR), fixed(1000, 4, PAIR), fixed(1000, 16, ALL), fixed(1000, 64, PAIR)];
  const cpu = (quick ? [500] : [100, 500]).map((rate) => fixed(rate, 16, PROXIES));
  const saturation: LoadSpec = {
    name: LOADS.saturation,
    load: { connections: 64, seconds },
    tool: "wrk",
    paths: ALL,
  };
  return [...latency, ...cpu, saturation];
}

/** `http-1k`: issue 8's scenarios 1, 2, 3 and 6 in one run. */
export const http1k: Scenario = {
  name: "http-1k",
  summary: "HTTP/1.1 GET, 1 KiB: Istio's latency method (1,000 rps, 2/4/16/64 conns), its CPU " +
    "method (16 conns, 100/500/1,000 rps), saturation (64 conns), waypoint vs HAProxy vs direct",
  run: async (ctx) => {
    const tools = await toolNotes(["h2load", "wrk"]);
    const specs = http1kLoads(ctx.quick).filter((l) => !tools.missing.includes(l.tool));
    if (specs.length === 0) return { tables: [], data: [], skipped: tools.notes.join("; ") };
    const { measured, notes, peer } = await withPaths(ctx, "http-1k", async (bench) => {
      const out: Measured[] = [];
      for (const spec of specs) {
        for (const path of bench.paths.filter((p) => spec.paths.includes(p.name))) {
          ctx.progress(`http-1k: ${spec.name}, ${path.name}, ${spec.load.seconds} s`);
          out.push(await measureLoad(ctx, bench, spec, path));
        }
      }
      return { measured: out, notes: bench.notes, peer: bench.peer };
    });
    const seconds = rowSeconds(ctx);
    const common = [
      ...tools.notes,
      ...notes,
      "added = the path minus its direct path at the same load: waypoint − direct (both through " +
      "the client's `tunnel connect` and the stand-in), haproxy − haproxy-direct (both through " +
      "the TLS terminator).",
      "proxy = the waypoint on the waypoint rows, HAProxy on the haproxy rows; dest = the " +
      "stand-in (destination ztunnel) or HAProxy's TLS terminator; client tunnel = `tunnel " +
      "connect`. Every other process of the run is counted as ours, not in `other %`.",
    ];
    const peerNote = peer
      ? [
        `haproxy = ${peer.version}, ${HAPROXY_THREADS} threads, HTTP mode, TLS from the tool ` +
        "(no client certificate: the tools cannot send one), a route on the Host header, " +
        "`option forwardfor`, keep-alive, TLS with a client certificate to the terminator " +
        "(`verify required` both ways, dev CA); checked before the load: " + `${peer.checks}.`,
      ]
      : [];
    const byRate = (rate: number) => measured.filter((m) => m.rate === rate);
    const tables: Table[] = [
      {
        title: "http-1k, Istio's latency method: HTTP/1.1 GET, 1 KiB response, 1,000 rps fixed " +
          `rate (h2load --rps, paced per connection), ${seconds} s per row`,
        columns: httpColumns("path", [], PATH_ROLES),
        rows: byRate(1000).map((m) => row(m, measured, ctx.nproc)),
        notes: [
          ...common,
          ...peerNote,
          "plain = the tool straight to the backend, no tunnel and no TLS: the floor of this " +
          "machine.",
          `Each h2load row first runs ${ctx.quick ? 0.5 : 1} s of the same load on the same ` +
          "connections, not counted " +
          "(`--warm-up-time`: TLS handshakes, the proxies' first upstream connections); its CPU " +
          "and RSS window starts when h2load's measured phase does.",
          "A row whose req/s is below 1,000 could not keep the rate: h2load sends one request " +
          "at a time per HTTP/1.1 connection, so 2 connections at 1,000 rps need a reply " +
          "within 2 ms.",
        ],
      },
      cpuTable(measured, seconds, ctx.nproc),
      {
        title: `http-1k, saturation: 64 connections, closed loop (wrk), ${seconds} s per row`,
        columns: httpColumns("path", [], PATH_ROLES),
        rows: measured.filter((m) => m.rate === undefined).map((m) => row(m, measured, ctx.nproc)),
      },
      ...compareTables(measured, peer !== undefined),
    ];
    return { tables, plot: latencyPlot("http-1k", measured), data: measured };
  },
};

async function measureLoad(
  ctx: ScenarioContext,
  bench: Bench,
  spec: LoadSpec,
  path: RolePath,
): Promise<Measured> {
  const load = { ...spec.load, url: path.url, headers: path.headers };
  const m = await measure(
    ctx,
    bench.stack,
    rolePids(bench, path),
    (ticks, measuring) => toolRun(spec.tool, load, ticks, measuring),
  );
  assertBenchRunning(bench);
  return {
    load: spec.name,
    path: path.name,
    rate: spec.load.rate,
    connections: spec.load.connections,
    ...m,
  };
}

function row(m: Measured, all: readonly Measured[], nproc: number): (string | number)[] {
  const pathOf = (name: PathName) => all.find((o) => o.load === m.load && o.path === name);
  const base = m.path === "waypoint"
    ? pathOf("direct")
    : m.path === "haproxy"
    ? pathOf("haproxy-direct")
    : undefined;
  return httpCells([m.load, m.path], m, base?.result, [], nproc, PATH_ROLES);
}

/** Istio's CPU method: the proxies at 16 connections and each fixed rate. */
function cpuTable(measured: readonly Measured[], seconds: number, nproc: number): Table {
  const rows = measured
    .filter((m) => m.connections === 16 && m.rate !== undefined && PROXIES.includes(m.path))
    .sort((a, b) => a.rate! - b.rate! || PROXIES.indexOf(a.path) - PROXIES.indexOf(b.path))
    .map((m) => [
      fmt(m.rate, 0),
      m.path,
      fmt(m.result.perSecond, 0),
      fmt(cpuPer1k(m.window, "proxy", m.result.requests), 3),
      fmt(m.window.cpuPercent.proxy, 1),
      fmt(m.window.rssMiB.proxy, 1),
      fmt(m.result.latencyMs.p50, 3),
      fmt(m.result.latencyMs.p99, 3),
      ...windowCells(m.window, ROLE_PROCS, nproc, m.result.errors),
    ]);
  return {
    title: "http-1k, Istio's CPU method: 16 connections at 100, 500 and 1,000 rps " +
      `(h2load --rps), ${seconds} s per row`,
    columns: [
      ...["rps asked", "path", "req/s", "proxy CPU s/1k req", "proxy CPU %"],
      ...["proxy RSS MiB", "p50 ms", "p99 ms", ...windowColumns(ROLE_PROCS)],
    ],
    rows,
    notes: [
      "proxy CPU s/1k req = the proxy's `utime + stime` over the row / requests × 1,000; at a " +
      "fixed rate that is vCPU per 1,000 rps, Istio's unit. proxy RSS = the largest VmRSS " +
      "during the row. The 1,000 rps rows are the latency table's 16-connection rows.",
    ],
  };
}

/** A panel per load, a line per path. */
export function latencyPlot(
  scenario: string,
  measured: readonly { load: string; path: string; result: ToolResult }[],
): Plot {
  const loads = [...new Set(measured.map((m) => m.load))];
  return {
    title: `${scenario}: latency by percentile`,
    panels: loads.map((load) => ({
      title: load,
      series: measured.filter((m) => m.load === load).map((m) => ({
        name: m.path,
        points: m.result.curve,
      })),
    })),
  };
}

/** A measured upload on one path. */
interface Uploaded {
  readonly path: PathName;
  readonly result: UploadResult;
  readonly window: WindowResult;
}

/** `http-upload`: one POST of 1 GiB (256 MiB quick) streamed through each path. */
export const httpUpload: Scenario = {
  name: "http-upload",
  summary: "one HTTP/1.1 POST of 1 GiB (256 MiB quick) streamed by curl, the backend counting " +
    "it; Gbit/s and proxy CPU s per GiB on every path",
  run: async (ctx) => {
    if (!(await hasProgram("curl"))) {
      return { tables: [], data: [], skipped: "curl is not installed: apt-get install curl" };
    }
    const bytes = (ctx.quick ? 256 : 1024) << 20;
    // A sparse file: curl reads zeros from the page cache, never from a disk.
    const file = `${ctx.ws.dir}/upload.bin`;
    const f = await Deno.open(file, { create: true, write: true, truncate: true });
    await f.truncate(bytes);
    f.close();
    try {
      const { rows, notes } = await withPaths(ctx, "http-upload", async (bench) => {
        const out: Uploaded[] = [];
        for (const path of bench.paths) {
          ctx.progress(`http-upload: ${path.name}, ${bytes >> 20} MiB`);
          const upload = { url: path.url, bytes, file, insecure: path.insecure };
          const m = await measure(
            ctx,
            bench.stack,
            rolePids(bench, path),
            (ticks) => curlUpload({ ...upload, headers: path.headers }, ticks),
          );
          assertBenchRunning(bench);
          out.push({ path: path.name, ...m });
        }
        return { rows: out, notes: bench.notes };
      });
      return {
        tables: [{
          title: `http-upload: one POST of ${bytes >> 20} MiB (Content-Length, streamed by ` +
            "curl; the backend reads it to the end and answers the count)",
          columns: [
            ...["path", "MiB", "Gbit/s", "seconds", "proxy CPU s/GiB", "proxy RSS MiB"],
            ...windowColumns(ROLE_PROCS),
          ],
          rows: rows.map((u) => [
            u.path,
            bytes >> 20,
            fmt(u.result.gbitPerSecond, 2),
            fmt(u.result.seconds, 2),
            fmt(perGiB(u.window, bytes), 2),
            fmt(u.window.rssMiB.proxy, 1),
            ...windowCells(u.window, ROLE_PROCS, ctx.nproc, u.result.errors),
          ]),
          notes: [
            ...notes,
            "seconds = curl's `time_total` (connect to the backend's answer); an error is an " +
            "answer other than 200 with the byte count sent.",
            "Paths and roles as in http-1k; the haproxy paths carry the upload over TLS.",
          ],
        }],
        data: rows,
      };
    } finally {
      await Deno.remove(file).catch(() => {});
    }
  },
};

function perGiB(w: WindowResult, bytes: number): number | undefined {
  const s = w.cpuSeconds.proxy;
  return s === undefined ? undefined : s / (bytes / (1 << 30));
}
