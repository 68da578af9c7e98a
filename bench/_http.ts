/**
 * What the HTTP scenarios share: the paths a load tool can take, their processes by role, a
 * measured window around one load, and the columns of an HTTP load table.
 *
 * Paths (`http-1k`, `http-upload`):
 * - `waypoint`: tool → `tunnel connect` (HBONE) → waypoint → stand-in → backend;
 * - `direct`: tool → `tunnel connect` → stand-in → backend (the client's and the destination's
 *   tunnels, no waypoint);
 * - `plain`: tool → backend, no tunnel: the floor of this machine;
 * - `haproxy`: tool → HAProxy (TLS) → terminator (mTLS) → backend, the industrial peer
 *   (`_peer.ts`);
 * - `haproxy-direct`: tool → terminator (TLS) → backend.
 *
 * Service port 80 is named `http`, so the waypoint runs its HTTP/1.1 path on these requests
 * (codec, chain, router); before the L7 path landed (e3e7f4e) it spliced them as TCP.
 */
import { type Peer, peerMissing, startPeer, stopPeer } from "./_peer.ts";
import type { Proc } from "./_procs.ts";
import {
  cpuPer1k,
  fmt,
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

/** Processes whose CPU the `http-policy` table shows, in column order. */
export const HTTP_PROCS = ["waypoint", "stand-in", "backend", "tunnel connect", "tool"];

/** Roles whose CPU the `http-1k` and `http-upload` tables show, in column order. */
export const ROLE_PROCS = ["proxy", "dest", "backend", "client tunnel", "tool"];

/** Which window entry is the proxy under test, and the processes of the CPU % column. */
export interface Roles {
  readonly proxy: string;
  readonly procs: readonly string[];
}

/** `http-policy`'s naming: the waypoint is the proxy, processes by name. */
export const WAYPOINT_ROLES: Roles = { proxy: "waypoint", procs: HTTP_PROCS };

/** `http-1k`'s naming: processes by role, the proxy being the waypoint or HAProxy. */
export const PATH_ROLES: Roles = { proxy: "proxy", procs: ROLE_PROCS };

/** Where a load tool sends HTTP: a `tunnel connect` listener, or the backend itself. */
export interface HttpPath {
  readonly name: string;
  readonly url: string;
  readonly connect?: Proc;
}

/** Names of the paths of `http-1k` and `http-upload`. */
export type PathName = "waypoint" | "direct" | "plain" | "haproxy" | "haproxy-direct";

/** A path with the processes in its roles. */
export interface RolePath extends HttpPath {
  readonly name: PathName;
  /** Request header lines every load on this path sends. */
  readonly headers: readonly string[];
  /** HTTPS to a dev certificate, which curl must not check. */
  readonly insecure: boolean;
  /** The proxy under test: the waypoint or HAProxy; none on the direct and plain paths. */
  readonly proxy?: Proc;
  /** Where the destination's tunnel ends: the stand-in or HAProxy's TLS terminator. */
  readonly dest?: Proc;
  /** The path whose latency "added" subtracts at the same load. */
  readonly base?: PathName;
}

/** One measured row of `http-1k`. */
export interface Measured {
  readonly load: string;
  readonly path: PathName;
  /** Total requests per second asked for; none at saturation. */
  readonly rate?: number;
  readonly connections: number;
  readonly result: ToolResult;
  readonly window: WindowResult;
}

/** The names of the loads that the comparison with HAProxy and the targets read. */
export const LOADS = {
  fixed: "1,000 rps, 16 conns",
  saturation: "saturation, 64 conns",
} as const;

/** Every path and process of an HTTP scenario. */
export interface Bench {
  readonly stack: Stack;
  readonly paths: readonly RolePath[];
  readonly peer?: Peer;
  /** Why a part did not run (a missing tool, the peer), for the table notes. */
  readonly notes: readonly string[];
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

/**
 * Starts the stack, one `tunnel connect` per HBONE path, and the HAProxy peer when it is
 * installed; runs `body` on every path that answers; stops all of them, also on error.
 *
 * @param label Scenario name for progress lines
 */
export function withPaths<T>(
  ctx: ScenarioContext,
  label: string,
  body: (bench: Bench) => Promise<T>,
): Promise<T> {
  return withStack(ctx, async (stack) => {
    const connects: Proc[] = [];
    const paths: RolePath[] = [];
    const notes: string[] = [];
    let peer: Peer | undefined;
    try {
      let port = 8000;
      for (const p of PATHS) {
        const { listen, connect } = startConnect(ctx, p.name, { ...p, authority: p.http }, port++);
        connects.push(connect);
        const viaWaypoint = p.name === "waypoint";
        paths.push({
          name: p.name,
          url: `http://${listen}/`,
          connect,
          headers: [],
          insecure: false,
          proxy: viaWaypoint ? stack.waypoint : undefined,
          dest: stack.dest,
          base: viaWaypoint ? "direct" : undefined,
        });
      }
      for (const p of paths) await waitHttp(p, stack, 30_000);
      const plain = `http://${NET.pod}:${NET.httpPort}/`;
      paths.push({ name: "plain", url: plain, headers: [], insecure: false });
      const missing = await peerMissing();
      if (missing) {
        notes.push(missing);
      } else {
        try {
          peer = await startPeer(ctx.ws);
        } catch (e) {
          const why = (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, " | ");
          notes.push(`The HAProxy peer did not start, so its rows are missing: ${why}`);
        }
      }
      if (peer) {
        ctx.progress(`${label}: ${peer.version}; ${peer.checks}`);
        const tls = { headers: peer.headers, insecure: true, dest: peer.terminator } as const;
        paths.push(
          { name: "haproxy", url: peer.url, ...tls, proxy: peer.haproxy, base: "haproxy-direct" },
          { name: "haproxy-direct", url: peer.directUrl, ...tls },
        );
      } else {
        ctx.progress(`${label}: ${notes.at(-1)}`);
      }
      return await body({ stack, paths, peer, notes });
    } finally {
      if (peer) await stopPeer(peer);
      await Promise.all(connects.map((c) => c.stop()));
    }
  });
}

/**
 * The processes of one row by role (`proxy`, `dest`, `backend`, `client tunnel`), every other
 * process of the run as `idle <name>` and the harness: so that "other %" is only what others ran.
 */
export function rolePids(bench: Bench, path: RolePath): Record<string, number> {
  const { stack, peer } = bench;
  const roles: Record<string, Proc | undefined> = {
    proxy: path.proxy,
    dest: path.dest,
    backend: stack.backend,
    "client tunnel": path.connect,
  };
  const pids: Record<string, number> = { harness: Deno.pid };
  for (const [role, proc] of Object.entries(roles)) if (proc) pids[role] = proc.pid;
  const used = new Set(Object.values(pids));
  const every = [stack.waypoint, stack.dest, stack.backend, peer?.haproxy, peer?.terminator];
  for (const p of bench.paths) every.push(p.connect);
  for (const proc of every) {
    if (proc && !used.has(proc.pid)) pids[`idle ${proc.name}`] = proc.pid;
    if (proc) used.add(proc.pid);
  }
  return pids;
}

/**
 * Checks that every process of the bench is still running.
 *
 * @throws Error naming the one that ended, with its last output lines
 */
export function assertBenchRunning(bench: Bench): void {
  assertRunning(bench.stack);
  for (
    const p of [
      bench.peer?.haproxy,
      bench.peer?.terminator,
      ...bench.paths.map((x) => x.connect),
    ]
  ) {
    if (p?.done) throw p.failure("ended during the measurement");
  }
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
 * @param run Runs the load; calls `measuring` when its measured phase starts (after a warm-up),
 *   which starts the window again from there
 */
export async function measure<R extends { readonly cpuSeconds: number }>(
  ctx: ScenarioContext,
  stack: Stack,
  pids: Readonly<Record<string, number>>,
  run: (clockTicks: number, measuring: () => void) => Promise<R>,
): Promise<{ result: R; window: WindowResult }> {
  const win = new Window(pids);
  const result = await run(ctx.clockTicks, () => win.restart());
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

/** Seconds of one measured row: 10, or 1 under `--quick`. */
export function rowSeconds(ctx: ScenarioContext): number {
  return ctx.quick ? 1 : 10;
}

/** A note for each load tool that is not installed. */
export async function toolNotes(tools: readonly string[]): Promise<{
  missing: string[];
  notes: string[];
}> {
  const missing = await missingTools(tools);
  const notes = missing.map((t) =>
    `${t} is not installed, so its load was skipped: apt-get install ${TOOL_PACKAGES[t]} ` +
    "(or run `bash bench/setup.sh` as root)"
  );
  return { missing, notes };
}

/**
 * `http-policy`'s loads, the same set as `http-1k`'s waypoint rows: Istio's latency method (1,000
 * rps over 2, 4, 16 and 64 connections), its CPU method (16 connections at 100 and 500 rps; 1,000
 * is the latency row) and saturation (64 connections, closed loop); `--quick` keeps 1,000 and 500
 * rps over 16 connections and saturation. A missing tool drops its loads, with a note.
 */
export async function httpLoads(
  ctx: ScenarioContext,
): Promise<{ loads: NamedLoad[]; seconds: number; notes: string[] }> {
  const { missing, notes } = await toolNotes(["h2load", "wrk"]);
  const seconds = rowSeconds(ctx);
  const warmupSeconds = ctx.quick ? 0.5 : 1;
  const fixed = (rate: number, connections: number): NamedLoad => ({
    name: `${rate.toLocaleString("en-US")} rps, ${connections} conns`,
    load: { connections, seconds, rate, warmupSeconds },
    tool: "h2load",
  });
  const latency = (ctx.quick ? [16] : [2, 4, 16, 64]).map((c) => fixed(1000, c));
  const cpu = (ctx.quick ? [500] : [100, 500]).map((rate) => fixed(rate, 16));
  const loads: NamedLoad[] = [
    ...latency,
    ...cpu,
    { name: LOADS.saturation, load: { connections: 64, seconds }, tool: "wrk" },
  ];
  return { loads: loads.filter((l) => !missing.includes(l.tool)), seconds, notes };
}

/**
 * Runs `wrk` (saturation) or `h2load` (fixed rate, after its warm-up) with the load.
 *
 * @param measuring Called when h2load's measured phase starts
 */
export function toolRun(
  tool: string,
  load: HttpLoad,
  ticks: number,
  measuring?: () => void,
): Promise<ToolResult> {
  return tool === "wrk" ? wrkSaturation(load, ticks) : h2loadFixedRate(load, ticks, measuring);
}

/**
 * Columns of an HTTP load table.
 *
 * @param what Second column: what differs between the rows of one load (path, policy)
 * @param extra Columns after the proxy's CPU
 */
export function httpColumns(
  what: string,
  extra: readonly string[] = [],
  roles: Roles = WAYPOINT_ROLES,
): string[] {
  return [
    ...["load", what, "req/s", "p50 ms", "p90 ms", "p99 ms"],
    ...["added p50 ms", "added p90 ms", "added p99 ms"],
    `${roles.proxy} CPU s/1k req`,
    ...extra,
    `${roles.proxy} RSS MiB`,
    ...windowColumns(roles.procs),
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
  roles: Roles = WAYPOINT_ROLES,
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
    added("p90"),
    added("p99"),
    fmt(cpuPer1k(m.window, roles.proxy, r.requests), 3),
    ...extra,
    fmt(m.window.rssMiB[roles.proxy], 1),
    ...windowCells(m.window, roles.procs, nproc, r.errors),
  ];
}
