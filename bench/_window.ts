/**
 * A measured window: process CPU and memory from `/proc`, as Istio's method reads them.
 *
 * - CPU of a process is `utime + stime` of `/proc/<pid>/stat` (fields 14 and 15, all threads of
 *   the process), in clock ticks of `getconf CLK_TCK`; the window's figure is the delta between
 *   its two ends. A load tool that ends inside the window reports its own total instead (`_tools.ts`).
 * - RSS is `VmRSS` of `/proc/<pid>/status`, polled while the window is open; the maximum is kept.
 * - "other" is the machine's busy time from `/proc/stat` minus every process we account for: the
 *   load that other users of the machine added during the window, which skews our figures.
 */

import { round } from "./_stats.ts";

const POLL_MS = 200;

/** What one window measured. CPU percentages are of one core. */
export interface WindowResult {
  readonly seconds: number;
  /** CPU seconds per named process. */
  readonly cpuSeconds: Readonly<Record<string, number>>;
  /** CPU in percent of one core per named process. */
  readonly cpuPercent: Readonly<Record<string, number>>;
  /** Largest VmRSS seen per named process, in MiB. */
  readonly rssMiB: Readonly<Record<string, number>>;
  /** Busy CPU of everything else on the machine, percent of one core. */
  readonly otherPercent: number;
}

let clockTicks = 100;

/** Reads `getconf CLK_TCK` once; `/proc` counts CPU time in these ticks. */
export async function initClock(): Promise<number> {
  try {
    const r = await new Deno.Command("getconf", { args: ["CLK_TCK"] }).output();
    const n = Number(new TextDecoder().decode(r.stdout).trim());
    if (Number.isInteger(n) && n > 0) clockTicks = n;
  } catch {
    // Linux's USER_HZ is 100 nearly everywhere.
  }
  return clockTicks;
}

/** `utime + stime` of a process in ticks, or undefined once it is gone. */
export function cpuTicks(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces; the fields after it start past the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** VmRSS of a process in KiB, or undefined once it is gone. */
export function rssKiB(pid: number): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Busy ticks of the whole machine (all CPUs), from the first line of `/proc/stat`. */
function machineBusyTicks(): number {
  const line = Deno.readTextFileSync("/proc/stat").split("\n", 1)[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
  return v.slice(0, 8).reduce((a, b) => a + b, 0) - v[3] - (v[4] ?? 0);
}

/** An open window over a set of named processes. */
export class Window {
  #pids: Readonly<Record<string, number>>;
  #ticks: Record<string, number> = {};
  #machine = 0;
  #started = 0;
  #rss: Record<string, number> = {};
  #poll: ReturnType<typeof setInterval>;

  /**
   * Opens a window: samples CPU now and starts polling RSS.
   *
   * @param pids Processes to account for, by the name the report uses
   */
  constructor(pids: Readonly<Record<string, number>>) {
    this.#pids = pids;
    this.restart();
    this.#poll = setInterval(() => this.#sampleRss(), POLL_MS);
  }

  /**
   * Starts the window again from now: CPU, time and RSS count from here (a load tool's
   * measured phase begins after its warm-up).
   */
  restart(): void {
    for (const [name, pid] of Object.entries(this.#pids)) this.#ticks[name] = cpuTicks(pid) ?? 0;
    this.#machine = machineBusyTicks();
    this.#started = performance.now();
    this.#rss = {};
    this.#sampleRss();
  }

  /**
   * Closes the window.
   *
   * @param extraCpuSeconds CPU of processes that ended inside the window (load tools), by name
   * @returns CPU per process, largest RSS, and the CPU others used meanwhile
   */
  close(extraCpuSeconds: Readonly<Record<string, number>> = {}): WindowResult {
    clearInterval(this.#poll);
    this.#sampleRss();
    const seconds = (performance.now() - this.#started) / 1000;
    const cpuSeconds: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.#pids)) {
      const now = cpuTicks(pid);
      if (now !== undefined) cpuSeconds[name] = (now - this.#ticks[name]) / clockTicks;
    }
    Object.assign(cpuSeconds, extraCpuSeconds);
    const ours = Object.values(cpuSeconds).reduce((a, b) => a + b, 0);
    const machine = (machineBusyTicks() - this.#machine) / clockTicks;
    const pct = (s: number) => round(100 * s / seconds, 1);
    const rssMiB: Record<string, number> = {};
    for (const [name, kib] of Object.entries(this.#rss)) rssMiB[name] = round(kib / 1024, 1);
    return {
      seconds: round(seconds, 3),
      cpuSeconds,
      cpuPercent: Object.fromEntries(Object.entries(cpuSeconds).map(([k, s]) => [k, pct(s)])),
      rssMiB,
      otherPercent: Math.max(0, pct(machine - ours)),
    };
  }

  #sampleRss(): void {
    for (const [name, pid] of Object.entries(this.#pids)) {
      const kib = rssKiB(pid);
      if (kib !== undefined) this.#rss[name] = Math.max(this.#rss[name] ?? 0, kib);
    }
  }
}
