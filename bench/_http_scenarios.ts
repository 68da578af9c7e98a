/**
 * HTTP/1.1 scenarios: a load tool speaks plain HTTP to a `tunnel connect --listen` process,
 * which carries each TCP connection as one HBONE stream (through the waypoint, or straight to
 * the destination stand-in); `plain` sends the same load to the backend with no tunnel at all.
 * Service port 80 is named `http`, so the waypoint runs its HTTP/1.1 path on these requests
 * (codec, chain, router); before the L7 path landed (e3e7f4e) it spliced them as TCP.
 */
import type { Proc } from "./_procs.ts";
import {
  cpuPer1k,
  fmt,
  type Scenario,
  type ScenarioContext,
  windowCells,
  windowColumns,
  withStack,
} from "./_scenario.ts";
import { assertRunning, denoProc, NET, PATHS, type Stack } from "./_stack.ts";
import {
  h2loadFixedRate,
  type HttpLoad,
  missingTools,
  TOOL_PACKAGES,
  type ToolResult,
  wrkSaturation,
} from "./_tools.ts";
import { Window, type WindowResult } from "./_window.ts";

/** Processes whose CPU the HTTP tables show, in column order. */
export const HTTP_PROCS = ["waypoint", "stand-in", "backend", "tunnel connect", "tool"];

/** Where a load tool sends HTTP: a `tunnel connect` listener, or the backend itself. */
export interface HttpPath {
  readonly name: string;
  readonly url: string;
  readonly connect?: Proc;
}

interface Measured {
  readonly load: string;
  readonly path: string;
  readonly result: ToolResult;
  readonly window: WindowResult;
}

/**
 * Starts `tunnel connect --listen` on `NET.clients:<port>`, tunnelling each connection to
 * `authority` through the HBONE server at `via`, which must present `identity`.
 */
export function startConnect(
  ctx: ScenarioContext,
  name: string,
  hbone: { readonly via: string; readonly identity: string; readonly authority: string },
  port: number,
): { listen: string; connect: Proc } {
  const listen = `${NET.clients}:${port}`;
  const connect = denoProc(`connect-${name}`, "main.ts", [
    ...["tunnel", "connect", "--via", hbone.via, "--authority", hbone.authority],
    ...["--certs", ctx.ws.certs.client, "--identity", hbone.identity, "--listen", listen],
  ]);
  return { listen, connect };
}

/** Starts one `tunnel connect --listen` per HBONE path and waits until it answers HTTP. */
async function startConnects(ctx: ScenarioContext, stack: Stack): Promise<HttpPath[]> {
  const paths: HttpPath[] = [];
  let port = 8000;
  for (const p of PATHS) {
    const { listen, connect } = startConnect(ctx, p.name, { ...p, authority: p.http }, port++);
    paths.push({ name: p.name, url: `http://${listen}/`, connect });
  }
  for (const p of paths) await waitHttp(p, stack, 30_000);
  paths.push({ name: "plain", url: `http://${NET.pod}:${NET.httpPort}/` });
  return paths;
}

/**
 * Waits until a GET of the path's URL answers 200.
 *
 * @param headers Sent with every attempt
 * @throws Error with the last answer and the tunnel's and waypoint's last lines on timeout
 */
export async function waitHttp(
  path: HttpPath,
  stack: Stack,
  timeoutMs: number,
  headers: Record<string, string> = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    if (path.connect?.done) throw path.connect.failure("exited before it tunnelled a request");
    const r = await fetch(path.url, { headers }).catch((e) => (last = String(e), undefined));
    await r?.body?.cancel();
    if (r?.ok) return;
    if (r) last = `HTTP ${r.status}`;
    if (Date.now() > deadline) {
      throw new Error(
        `No HTTP 200 at ${path.url} (${path.name} path) within ${timeoutMs} ms: ${last}\n` +
          `tunnel connect said:\n${path.connect?.tail}\nwaypoint said:\n${stack.waypoint.tail}`,
      );
    }
    await new Promise((res) => setTimeout(res, 100));
  }
}

/**
 * Runs one load inside a measured window over `pids` and checks the stack survived it.
 *
 * @param pids Every process of the run by name (the tool is added from its own report)
 */
export async function measure(
  ctx: ScenarioContext,
  stack: Stack,
  pids: Readonly<Record<string, number>>,
  run: (clockTicks: number) => Promise<ToolResult>,
): Promise<{ result: ToolResult; window: WindowResult }> {
  const win = new Window(pids);
  const result = await run(ctx.clockTicks);
  const window = win.close({ tool: result.cpuSeconds });
  assertRunning(stack);
  return { result, window };
}

/** One HTTP load of a table row: which tool, how many connections, what rate. */
export interface NamedLoad {
  readonly name: string;
  readonly load: Omit<HttpLoad, "url">;
  readonly tool: "h2load" | "wrk";
}

/**
 * The two HTTP loads (1,000 rps over 16 connections with h2load, saturation over 64 with wrk)
 * that the installed tools allow, with a note for each missing tool.
 */
export async function httpLoads(
  ctx: ScenarioContext,
): Promise<{ loads: NamedLoad[]; seconds: number; notes: string[] }> {
  const missing = await missingTools(["h2load", "wrk"]);
  const notes = missing.map((t) =>
    `${t} is not installed, so its load was skipped: apt-get install ${TOOL_PACKAGES[t]} ` +
    "(or run `bash bench/setup.sh` as root)"
  );
  const seconds = ctx.quick ? 2 : 10;
  const loads: NamedLoad[] = [
    { name: "1,000 rps, 16 conns", load: { connections: 16, seconds, rate: 1000 }, tool: "h2load" },
    { name: "saturation, 64 conns", load: { connections: 64, seconds }, tool: "wrk" },
  ];
  return { loads: loads.filter((l) => !missing.includes(l.tool)), seconds, notes };
}

/** `http-1k`: HTTP/1.1 1 KiB responses at 1,000 rps (h2load) and at saturation (wrk). */
export const http1k: Scenario = {
  name: "http-1k",
  summary: "HTTP/1.1 1 KiB responses through `tunnel connect`: 1,000 rps over 16 connections " +
    "(h2load) and saturation over 64 (wrk); req/s, added p50/p99, CPU s per 1,000 requests, RSS",
  run: async (ctx) => {
    const { loads, seconds, notes } = await httpLoads(ctx);
    if (loads.length === 0) return { tables: [], data: [], skipped: notes.join("; ") };
    const measured = await withStack(ctx, async (stack) => {
      const paths = await startConnects(ctx, stack);
      try {
        const warm = loads[0];
        for (const p of paths) {
          ctx.progress(`http-1k: warm-up, ${p.name}`);
          await toolRun(warm.tool, { ...warm.load, seconds: 1, url: p.url }, ctx.clockTicks);
        }
        const out: Measured[] = [];
        for (const l of loads) {
          for (const p of paths) {
            ctx.progress(`http-1k: ${l.name}, ${p.name}, ${seconds} s`);
            const pids: Record<string, number> = { ...stack.pids };
            if (p.connect) pids["tunnel connect"] = p.connect.pid;
            const m = await measure(
              ctx,
              stack,
              pids,
              (ticks) => toolRun(l.tool, { ...l.load, url: p.url }, ticks),
            );
            out.push({ load: l.name, path: p.name, ...m });
          }
        }
        return out;
      } finally {
        await Promise.all(paths.map((p) => p.connect?.stop()));
      }
    });
    return {
      tables: [{
        title: `http-1k: HTTP/1.1 GET, 1 KiB response, ${seconds} s per row`,
        columns: httpColumns("path"),
        rows: measured.map((m) => httpRow(m, measured, ctx.nproc)),
        notes: [
          ...notes,
          "added = waypoint path minus direct path (client → `tunnel connect` → stand-in), same load.",
          "plain = the load tool straight to the backend, no tunnel: the floor of this machine.",
        ],
      }],
      data: measured,
    };
  },
};

/** Runs `wrk` (saturation) or `h2load` (fixed rate) with the load. */
export function toolRun(tool: string, load: HttpLoad, ticks: number): Promise<ToolResult> {
  return tool === "wrk" ? wrkSaturation(load, ticks) : h2loadFixedRate(load, ticks);
}

function httpRow(m: Measured, all: readonly Measured[], nproc: number): (string | number)[] {
  const direct = all.find((d) => d.load === m.load && d.path === "direct");
  const base = m.path === "waypoint" ? direct?.result : undefined;
  return httpCells([m.load, m.path], m, base, [], nproc);
}

/**
 * Columns of an HTTP load table.
 *
 * @param what Second column: what differs between the rows of one load (path, policy)
 * @param extra Columns after the waypoint's CPU
 */
export function httpColumns(what: string, extra: readonly string[] = []): string[] {
  return [
    ...["load", what, "req/s", "p50 ms", "p90 ms", "p99 ms", "added p50 ms", "added p99 ms"],
    "waypoint CPU s/1k req",
    ...extra,
    "waypoint RSS MiB",
    ...windowColumns(HTTP_PROCS),
  ];
}

/**
 * Cells under {@link httpColumns} for one row.
 *
 * @param label The first two cells
 * @param base The row of the same load that "added" is measured against; none: `–`
 * @param extra Cells under the extra columns
 */
export function httpCells(
  label: readonly [string, string],
  m: { readonly result: ToolResult; readonly window: WindowResult },
  base: ToolResult | undefined,
  extra: readonly (string | number)[],
  nproc: number,
): (string | number)[] {
  const r = m.result;
  const added = (q: string) => base ? fmt(r.latencyMs[q] - base.latencyMs[q], 3) : "–";
  return [
    ...label,
    fmt(r.perSecond, 0),
    fmt(r.latencyMs.p50, 3),
    fmt(r.latencyMs.p90, 3),
    fmt(r.latencyMs.p99, 3),
    added("p50"),
    added("p99"),
    fmt(cpuPer1k(m.window, "waypoint", r.requests), 3),
    ...extra,
    fmt(m.window.rssMiB.waypoint, 1),
    ...windowCells(m.window, HTTP_PROCS, nproc, r.errors),
  ];
}
