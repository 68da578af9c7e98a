/**
 * What every scenario shares: its inputs, its outcome (tables for the report plus raw data for
 * the JSON file), and starting the stack and an HBONE load client around it.
 */
import type { Proc } from "./_procs.ts";
import {
  denoProc,
  type HbonePath,
  type Stack,
  startStack,
  stopStack,
  type Workspace,
} from "./_stack.ts";
import { type CurvePoint, round } from "./_stats.ts";
import type { WindowResult } from "./_window.ts";

/** Inputs of a scenario run. */
export interface ScenarioContext {
  readonly ws: Workspace;
  /** Seconds-long phases for CI smoke instead of the full method. */
  readonly quick: boolean;
  readonly clockTicks: number;
  /** CPUs of this machine. */
  readonly nproc: number;
  /** When set, the waypoint runs under `--cpu-prof` and writes here. */
  readonly cpuProfDir?: string;
  /** Progress line on stderr. */
  progress(msg: string): void;
}

/** A table of the report. */
export interface Table {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | number)[])[];
  readonly notes?: readonly string[];
}

/** One line of a latency-percentile plot: a path (or variant) and its curve. */
export interface PlotSeries {
  readonly name: string;
  readonly points: readonly CurvePoint[];
}

/** One panel of a plot: the lines of one load. */
export interface PlotPanel {
  readonly title: string;
  readonly series: readonly PlotSeries[];
}

/** A scenario's latency-percentile plot, written as SVG next to the report (`_plot.ts`). */
export interface Plot {
  readonly title: string;
  readonly panels: readonly PlotPanel[];
}

/** What a scenario produced. */
export interface Outcome {
  readonly tables: readonly Table[];
  /** Its latency-percentile plot, when it measures latency. */
  readonly plot?: Plot;
  /** Raw measurements for the JSON file. */
  readonly data: unknown;
  /** Set when the scenario (or part of it) could not run, with the reason. */
  readonly skipped?: string;
}

/** A named scenario. */
export interface Scenario {
  readonly name: string;
  /** One line for `--help` and the README. */
  readonly summary: string;
  run(ctx: ScenarioContext): Promise<Outcome>;
}

/**
 * Starts the stack, runs `body`, and stops the stack even when `body` throws. With a CPU profile
 * the waypoint gets time to write it on SIGTERM.
 */
export async function withStack<T>(
  ctx: ScenarioContext,
  body: (stack: Stack) => Promise<T>,
): Promise<T> {
  const stack = await startStack(ctx.ws, { cpuProfDir: ctx.cpuProfDir });
  try {
    return await body(stack);
  } finally {
    await stopStack(stack, ctx.cpuProfDir ? 30_000 : 3_000);
  }
}

/**
 * Starts `bench/hbone_load.ts` in a mode against one path.
 *
 * @param authority CONNECT authority (an echo or sink of the path)
 * @param args Mode flags
 */
export function hboneClient(
  ctx: ScenarioContext,
  path: HbonePath,
  mode: string,
  authority: string,
  args: readonly string[],
): Proc {
  return denoProc(`client-${path.name}`, "bench/hbone_load.ts", [
    mode,
    ...["--certs", ctx.ws.certs.client, "--via", path.via, "--identity", path.identity],
    ...["--authority", authority, ...args],
  ], { stdin: true });
}

/** The last columns of every load table: CPU split, others' CPU, the limit, errors. */
export function windowColumns(names: readonly string[]): string[] {
  return [`CPU % ${names.join(" / ")}`, "other %", "limit", "errors"];
}

/** The cells under {@link windowColumns} for one row. */
export function windowCells(
  w: WindowResult,
  names: readonly string[],
  nproc: number,
  errors: number,
): (string | number)[] {
  return [cpuSplit(w, names), fmt(w.otherPercent, 0), limitOf(w, nproc), errors];
}

/** CPU percent of the named processes as `a / b / c`, in the order given. */
export function cpuSplit(w: WindowResult, names: readonly string[]): string {
  return names.map((n) => fmt(w.cpuPercent[n], 0)).join(" / ");
}

/**
 * What held a row back: a process at 85 % of a core or more (one Deno process runs its
 * JavaScript on one thread), else the whole machine when its CPUs were 85 % busy (ours plus
 * others), else nothing CPU-bound: the row was latency-bound (wake-ups and hops).
 */
export function limitOf(w: WindowResult, nproc: number): string {
  const ours = Object.entries(w.cpuPercent).filter(([name]) => name !== "harness");
  const [name, top] = ours.reduce((a, b) => (b[1] > a[1] ? b : a), ["", 0]);
  if (top >= 85) return `${name} ${fmt(top, 0)} %`;
  const total = Object.values(w.cpuPercent).reduce((a, b) => a + b, 0) + w.otherPercent;
  if (total >= 0.85 * 100 * nproc) return `machine ${fmt(total, 0)} %`;
  return "latency";
}

/** CPU seconds of a process per 1,000 units (streams, requests) in a window. */
export function cpuPer1k(w: WindowResult, name: string, units: number): number | undefined {
  const s = w.cpuSeconds[name];
  return s === undefined || units === 0 ? undefined : s / units * 1000;
}

/** A number for a table cell: `–` when missing. */
export function fmt(x: number | undefined, digits: number): string {
  return x === undefined || !Number.isFinite(x) ? "–" : round(x, digits).toFixed(digits);
}
