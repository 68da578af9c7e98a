/**
 * HTTP load tools from Debian: `h2load` at a fixed rate (it logs every request's latency in
 * microseconds) and `wrk` for saturation (closed loop, HdrHistogram percentiles).
 *
 * A tool runs under `sh`, which writes its own `/proc/self/stat` once the tool has exited: the
 * `cutime + cstime` there is the tool's whole CPU time, read after the tool is gone.
 */
import { hasProgram, Proc } from "./_procs.ts";
import { percentiles } from "./_stats.ts";

/** One tool run. */
export interface ToolResult {
  readonly requests: number;
  readonly errors: number;
  readonly perSecond: number;
  readonly latencyMs: Record<string, number>;
  /** CPU seconds of the tool itself. */
  readonly cpuSeconds: number;
}

/** Debian packages that carry each tool. */
export const TOOL_PACKAGES: Readonly<Record<string, string>> = {
  h2load: "nghttp2-client",
  wrk: "wrk",
};

/** Names of the tools that are not installed. */
export async function missingTools(names: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const n of names) if (!(await hasProgram(n))) missing.push(n);
  return missing;
}

/**
 * Runs a program to its end under `sh` and returns its output and CPU seconds.
 *
 * @throws Error with the tool's output when it fails
 */
async function runMeasured(
  program: string,
  args: readonly string[],
  clockTicks: number,
): Promise<{ stdout: string; cpuSeconds: number }> {
  const statFile = await Deno.makeTempFile({ prefix: "bench-tool-stat-" });
  try {
    const script = `"$@"; rc=$?; cat /proc/$$/stat > "${statFile}"; exit $rc`;
    const proc = new Proc(program, "sh", ["-c", script, "sh", program, ...args]);
    const status = await proc.exited;
    if (!status.success) throw proc.failure(`exited with code ${status.code}`);
    const stat = await Deno.readTextFile(statFile);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 16 and 17 (cutime, cstime) are the waited-for children: the tool.
    return { stdout: proc.tail, cpuSeconds: (Number(f[13]) + Number(f[14])) / clockTicks };
  } finally {
    await Deno.remove(statFile).catch(() => {});
  }
}

/** Options of one HTTP load. */
export interface HttpLoad {
  readonly url: string;
  readonly connections: number;
  readonly seconds: number;
  /** Total requests per second over all connections; saturation (closed loop) when absent. */
  readonly rate?: number;
  /** Request header lines (`name: value`) sent on every request. */
  readonly headers?: readonly string[];
}

/** `-H <line>` for each header: both tools take the same flag. */
function headerArgs(load: HttpLoad): string[] {
  return (load.headers ?? []).flatMap((h) => ["-H", h]);
}

/**
 * `h2load --h1` at a fixed total rate spread over the connections, each request's latency from
 * its log file.
 */
export async function h2loadFixedRate(load: HttpLoad, clockTicks: number): Promise<ToolResult> {
  const log = await Deno.makeTempFile({ prefix: "bench-h2load-" });
  try {
    // h2load takes a fractional rate per client: 1,000 rps over 16 connections is 62.5 each.
    const perClient = (load.rate ?? 1000) / load.connections;
    const { stdout, cpuSeconds } = await runMeasured("h2load", [
      ...["--h1", "-c", `${load.connections}`, "--rps", `${perClient}`],
      ...["-D", `${load.seconds}`, `--log-file=${log}`, ...headerArgs(load), load.url],
    ], clockTicks);
    const ms: number[] = [];
    let errors = 0;
    for (const line of (await Deno.readTextFile(log)).split("\n")) {
      const [, status, us] = line.split("\t");
      if (!status) continue;
      if (status !== "200") errors++;
      else ms.push(Number(us) / 1000);
    }
    const m = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(stdout);
    const failed = /(\d+) failed, (\d+) errored/.exec(stdout);
    return {
      requests: ms.length,
      errors: errors + (failed ? Number(failed[1]) + Number(failed[2]) : 0),
      perSecond: m ? Number(m[3]) : ms.length / load.seconds,
      latencyMs: percentiles(ms),
      cpuSeconds,
    };
  } finally {
    await Deno.remove(log).catch(() => {});
  }
}

/** `wrk` at saturation: one thread, `connections` connections, closed loop. */
export async function wrkSaturation(load: HttpLoad, clockTicks: number): Promise<ToolResult> {
  const { stdout, cpuSeconds } = await runMeasured("wrk", [
    ...["-t", "1", "-c", `${load.connections}`, "-d", `${load.seconds}s`, "--latency"],
    ...headerArgs(load),
    load.url,
  ], clockTicks);
  const latencyMs: Record<string, number> = {};
  for (const [, q, v, unit] of stdout.matchAll(/^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$/gm)) {
    latencyMs[`p${q}`] = Number(v) * ({ us: 0.001, ms: 1, s: 1000 } as const)[unit as "ms"];
  }
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
    .exec(stdout);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const errors = non2xx +
    (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return {
    requests,
    errors,
    perSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0),
    latencyMs,
    cpuSeconds,
  };
}
