/**
 * HTTP load tools from Debian: `h2load` at a fixed rate (it logs every request's latency in
 * microseconds), `wrk` for saturation (closed loop, HdrHistogram percentiles, the plot's curve
 * printed by a Lua `done` hook) and `curl` for one streamed upload.
 *
 * A tool runs under `sh`, which writes its own `/proc/self/stat` once the tool has exited: the
 * `cutime + cstime` there is the tool's whole CPU time, read after the tool is gone.
 */
import { hasProgram, Proc } from "./_procs.ts";
import { curveGrid, type CurvePoint, percentileCurve, percentiles } from "./_stats.ts";

/** One tool run. */
export interface ToolResult {
  readonly requests: number;
  readonly errors: number;
  readonly perSecond: number;
  readonly latencyMs: Record<string, number>;
  /** Latency by percentile for the plot (`_stats.ts` {@link curveGrid}). */
  readonly curve: readonly CurvePoint[];
  /** CPU seconds of the tool itself. */
  readonly cpuSeconds: number;
}

/** Debian packages that carry each tool. */
export const TOOL_PACKAGES: Readonly<Record<string, string>> = {
  h2load: "nghttp2-client",
  wrk: "wrk",
  curl: "curl",
};

/** Names of the tools that are not installed. */
export async function missingTools(names: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const n of names) if (!(await hasProgram(n))) missing.push(n);
  return missing;
}

/** How long past its planned end a tool may run before it is stopped as hung. */
const TOOL_GRACE_S = 60;
/** curl's own limit on one upload. */
const UPLOAD_TIMEOUT_S = 300;

/**
 * Runs a program to its end under `sh` and returns its output and CPU seconds.
 *
 * @param timeoutS After this long the tool (and its `sh`) are stopped and the row fails
 * @throws Error with the tool's output when it fails or hangs
 */
async function runMeasured(
  program: string,
  args: readonly string[],
  clockTicks: number,
  timeoutS: number,
  onLine?: (line: string) => void,
): Promise<{ stdout: string; cpuSeconds: number }> {
  const statFile = await Deno.makeTempFile({ prefix: "bench-tool-stat-" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const script = `"$@"; rc=$?; cat /proc/$$/stat > "${statFile}"; exit $rc`;
    const proc = new Proc(program, "sh", ["-c", script, "sh", program, ...args], {
      tailLines: 200,
      onLine,
    });
    let hung = false;
    timer = setTimeout(() => {
      hung = true;
      proc.stop();
    }, timeoutS * 1000);
    const status = await proc.exited;
    if (hung) throw proc.failure(`did not finish within ${timeoutS} s and was stopped`);
    if (!status.success) throw proc.failure(`exited with code ${status.code}`);
    const stat = await Deno.readTextFile(statFile);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 16 and 17 (cutime, cstime) are the waited-for children: the tool.
    const cpuSeconds = (Number(f[13]) + Number(f[14])) / clockTicks;
    return { stdout: proc.tail, cpuSeconds };
  } finally {
    clearTimeout(timer);
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
  /**
   * h2load only: seconds of load on the same connections before the measured phase, not
   * counted (TLS handshakes, the proxy's first upstream connections, JIT). @default 1
   */
  readonly warmupSeconds?: number;
}

/**
 * `-H <line>` for each header: both tools take the same flag, but h2load adds a `host` line as a
 * second Host header; it replaces the Host only when told `:authority`.
 */
function headerArgs(load: HttpLoad, tool: "h2load" | "wrk"): string[] {
  return (load.headers ?? []).flatMap((h) => [
    "-H",
    tool === "h2load" ? h.replace(/^host:/i, ":authority:") : h,
  ]);
}

/**
 * `h2load --h1` at a fixed total rate spread over the connections, each request's latency from
 * its log file. Its warm-up (`--warm-up-time`) runs on the same connections and is left out of
 * the log; `measuring` is called when h2load says its measured phase started.
 */
export async function h2loadFixedRate(
  load: HttpLoad,
  clockTicks: number,
  measuring?: () => void,
): Promise<ToolResult> {
  const log = await Deno.makeTempFile({ prefix: "bench-h2load-" });
  try {
    // h2load takes a fractional rate per client: 1,000 rps over 16 connections is 62.5 each.
    const perClient = (load.rate ?? 1000) / load.connections;
    const warmup = load.warmupSeconds ?? 1;
    const { stdout, cpuSeconds } = await runMeasured(
      "h2load",
      [
        ...["--h1", "-c", `${load.connections}`, "--rps", `${perClient}`, "-D", `${load.seconds}`],
        `--warm-up-time=${Math.round(warmup * 1000)}ms`,
        ...[`--log-file=${log}`, ...headerArgs(load, "h2load"), load.url],
      ],
      clockTicks,
      warmup + load.seconds + TOOL_GRACE_S,
      (line) => {
        if (line.startsWith("Main benchmark duration is started")) measuring?.();
      },
    );
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
      curve: percentileCurve(ms),
      cpuSeconds,
    };
  } finally {
    await Deno.remove(log).catch(() => {});
  }
}

/**
 * A wrk script whose `done` hook prints the plot's percentiles (microseconds) as `curve P US`
 * lines. It defines no per-request hook, so wrk keeps its fast path.
 */
function wrkCurveScript(): string {
  const points = curveGrid().join(", ");
  return `done = function(summary, latency, requests)
  for _, p in ipairs({ ${points} }) do
    io.write(string.format("curve %g %d\\n", p, latency:percentile(p)))
  end
end
`;
}

/** `wrk` at saturation: one thread, `connections` connections, closed loop. */
export async function wrkSaturation(load: HttpLoad, clockTicks: number): Promise<ToolResult> {
  const script = await Deno.makeTempFile({ prefix: "bench-wrk-", suffix: ".lua" });
  let run: { stdout: string; cpuSeconds: number };
  try {
    await Deno.writeTextFile(script, wrkCurveScript());
    run = await runMeasured(
      "wrk",
      [
        ...["-t", "1", "-c", `${load.connections}`, "-d", `${load.seconds}s`, "--latency"],
        ...["-s", script, ...headerArgs(load, "wrk"), load.url],
      ],
      clockTicks,
      load.seconds + TOOL_GRACE_S,
    );
  } finally {
    await Deno.remove(script).catch(() => {});
  }
  const { stdout, cpuSeconds } = run;
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
    curve: [...stdout.matchAll(/^curve ([\d.]+) (\d+)$/gm)].map(([, p, us]) =>
      [Number(p), Number(us) / 1000] as const
    ),
    cpuSeconds,
  };
}

/** One upload with curl. */
export interface Upload {
  readonly url: string;
  readonly bytes: number;
  /** A file of that size to send (a sparse file: reading it costs no disk). */
  readonly file: string;
  /** Accept any server certificate (HTTPS to a dev certificate without a DNS name). */
  readonly insecure?: boolean;
  /** Request header lines (`name: value`). */
  readonly headers?: readonly string[];
}

/** What an upload measured. */
export interface UploadResult {
  readonly bytes: number;
  /** What the backend said it read. */
  readonly received: number;
  readonly status: number;
  /** curl's `time_total`: connect to the last byte of the answer. */
  readonly seconds: number;
  readonly gbitPerSecond: number;
  readonly errors: number;
  readonly cpuSeconds: number;
}

/**
 * POSTs a file with curl, streamed with its `Content-Length` (no `Expect: 100-continue`), and
 * reads the byte count the backend answers.
 */
export async function curlUpload(u: Upload, clockTicks: number): Promise<UploadResult> {
  const { stdout, cpuSeconds } = await runMeasured(
    "curl",
    [
      ...["-sS", "--max-time", `${UPLOAD_TIMEOUT_S}`, "-X", "POST", "-T", u.file, "-H", "expect:"],
      ...(u.headers ?? []).flatMap((h) => ["-H", h]),
      ...["-w", "\\n%{http_code} %{time_total}\\n", ...(u.insecure ? ["-k"] : []), u.url],
    ],
    clockTicks,
    UPLOAD_TIMEOUT_S + TOOL_GRACE_S,
  );
  const [body, tail] = stdout.trim().split("\n").slice(-2);
  const [status, seconds] = (tail ?? "").split(" ").map(Number);
  const received = Number(body);
  return {
    bytes: u.bytes,
    received,
    status,
    seconds,
    gbitPerSecond: u.bytes * 8 / seconds / 1e9,
    errors: status === 200 && received === u.bytes ? 0 : 1,
    cpuSeconds,
  };
}
