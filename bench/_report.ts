/**
 * The report of one harness run: the machine it ran on, a Markdown table per scenario, and the
 * same plus raw measurements as JSON, both written under the output folder.
 */
import { output } from "./_procs.ts";
import type { Outcome, Table } from "./_scenario.ts";

/** Where and with what a run happened. */
export interface Machine {
  readonly date: string;
  readonly nproc: number;
  readonly cpuModel: string;
  readonly memTotalMiB: number;
  readonly kernel: string;
  readonly deno: string;
  readonly v8: string;
  readonly commit: string;
  readonly dirty: boolean;
  readonly loadAverage: readonly number[];
  readonly tools: Readonly<Record<string, string>>;
}

/** One scenario's place in the report. */
export interface ScenarioReport extends Partial<Outcome> {
  readonly name: string;
  readonly status: "ok" | "skipped" | "failed";
  readonly reason?: string;
  readonly seconds: number;
}

/** Describes this machine and checkout. */
export async function describeMachine(): Promise<Machine> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const tools: Record<string, string> = {};
  const versions = [
    ["wrk", ["--version"]],
    ["h2load", ["--version"]],
    ["haproxy", ["-v"]],
    ["curl", ["--version"]],
  ] as const;
  for (const [name, args] of versions) {
    const v = await versionLine(name, args);
    if (v) tools[name] = v;
  }
  return {
    date: new Date().toISOString(),
    nproc: Number(await output("nproc", [])) || navigator.hardwareConcurrency,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    memTotalMiB: Math.round(Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0) / 1024),
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    commit: (await output("git", ["rev-parse", "HEAD"])) ?? "unknown",
    dirty: ((await output("git", ["status", "--porcelain"])) ?? "") !== "",
    loadAverage: Deno.loadavg(),
    tools,
  };
}

async function versionLine(name: string, args: readonly string[]): Promise<string | undefined> {
  try {
    // wrk prints its version on stdout and exits 1; take the first line of either stream.
    const r = await new Deno.Command(name, { args: [...args] }).output();
    const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    return text.trim().split("\n")[0];
  } catch {
    return undefined;
  }
}

/**
 * The whole report as Markdown.
 *
 * @param plots The SVG file (relative to the report) of each scenario that has a plot
 */
export function toMarkdown(
  machine: Machine,
  options: Readonly<Record<string, unknown>>,
  scenarios: readonly ScenarioReport[],
  plots: ReadonlyMap<string, string> = new Map(),
): string {
  const lines = [
    `# waypoint bench, ${machine.date}`,
    "",
    `${machine.nproc} × ${machine.cpuModel}, ${machine.memTotalMiB} MiB, Linux ${machine.kernel}, ` +
    `Deno ${machine.deno} (V8 ${machine.v8}), commit ${machine.commit.slice(0, 12)}` +
    `${machine.dirty ? " + local changes" : ""}, load average at start ` +
    `${machine.loadAverage.map((x) => x.toFixed(2)).join(" ")}; options ${JSON.stringify(options)}`,
    "",
    "CPU % is of one core (this machine has " + machine.nproc + "); `other %` is CPU that " +
    "processes outside the benchmark used during the row, which skews it. `limit` names what " +
    "held the row back: a process at ≥ 85 % of a core (JavaScript runs on one thread), the " +
    "machine (all CPUs ≥ 85 % busy, ours plus others), or `latency` (nothing CPU-bound).",
  ];
  for (const s of scenarios) {
    lines.push("");
    if (s.status !== "ok" || !s.tables?.length) {
      lines.push(`## ${s.name}: ${s.status}`, "", s.reason ?? s.skipped ?? "");
      continue;
    }
    for (const t of s.tables) lines.push(...tableMarkdown(t), "");
    const plot = plots.get(s.name);
    if (plot && s.plot) lines.push(`![${s.plot.title}](${plot})`, "");
    if (s.skipped) lines.push(s.skipped, "");
  }
  return lines.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd() + "\n";
}

function tableMarkdown(t: Table): string[] {
  const row = (cells: readonly (string | number)[]) => `| ${cells.join(" | ")} |`;
  return [
    `## ${t.title}`,
    "",
    row(t.columns),
    row(t.columns.map((_, i) => (i === 0 ? "---" : "---:"))),
    ...t.rows.map(row),
    ...(t.notes?.length ? ["", ...t.notes.map((n) => `- ${n}`)] : []),
  ];
}

/** `<dir>/<date>-<commit>`: the path of a run's files without their extension. */
export function reportBase(dir: string, machine: Machine): string {
  const stamp = machine.date.replace(/[:.]/g, "-").replace(/-\d+Z$/, "Z");
  return `${dir.replace(/\/$/, "")}/${stamp}-${machine.commit.slice(0, 7)}`;
}

/**
 * Writes `<base>.json` and `<base>.md`.
 *
 * @returns The two paths
 */
export async function writeReport(
  base: string,
  markdown: string,
  json: unknown,
): Promise<string[]> {
  await Deno.mkdir(base.slice(0, base.lastIndexOf("/") + 1) || ".", { recursive: true });
  await Deno.writeTextFile(`${base}.json`, JSON.stringify(json, null, 2) + "\n");
  await Deno.writeTextFile(`${base}.md`, markdown);
  return [`${base}.json`, `${base}.md`];
}
