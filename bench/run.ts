/**
 * The benchmark harness (`deno task bench`): brings the waypoint, a destination-ztunnel
 * stand-in, a backend and a load client up as separate processes on loopback addresses, runs
 * each scenario through the waypoint and on the direct path in the same run, and prints and
 * writes a Markdown report plus a JSON file under the output folder. It measures and never
 * asserts; it fails only when a scenario cannot run.
 *
 * Usage: deno run -A bench/run.ts [--quick] [--scenario NAME]... [--out DIR] [--cpu-prof]
 */
import { parseArgs } from "node:util";
import { HBONE_SCENARIOS } from "./_hbone_scenarios.ts";
import { http1k, httpUpload } from "./_http_scenarios.ts";
import { plotSvg } from "./_plot.ts";
import { httpPolicy } from "./_policy_scenario.ts";
import { shutDown, stopAll } from "./_procs.ts";
import {
  describeMachine,
  reportBase,
  type ScenarioReport,
  toMarkdown,
  writeReport,
} from "./_report.ts";
import type { Scenario, ScenarioContext } from "./_scenario.ts";
import { makeWorkspace } from "./_stack.ts";
import { initClock } from "./_window.ts";
import { profileMarkdown, type ProfileSummary, summarizeProfile } from "./profile.ts";

/** Every scenario, in the order a default run takes them. */
export const SCENARIOS: readonly Scenario[] = [
  ...HBONE_SCENARIOS,
  http1k,
  httpUpload,
  httpPolicy,
];

const USAGE = `Usage: deno task bench [--quick] [--scenario NAME]... [--out DIR] [--cpu-prof]

  --quick          about a second per measurement and fewer loads (CI smoke), 256 MiB bulk
  --scenario NAME  run only these (repeatable); default: all
  --out DIR        where the .json, .md and .svg files of the run go (default bench/results/)
  --cpu-prof       run the waypoint under deno --cpu-prof and summarize where its time goes

Scenarios:
${SCENARIOS.map((s) => `  ${s.name.padEnd(12)} ${s.summary}`).join("\n")}
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      scenario: { type: "string", multiple: true },
      out: { type: "string", default: "bench/results/" },
      "cpu-prof": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const names = values.scenario ?? SCENARIOS.map((s) => s.name);
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) {
    console.error(`Unknown scenario: ${unknown.join(", ")}\n\n${USAGE}`);
    return 2;
  }
  const chosen = SCENARIOS.filter((s) => names.includes(s.name));
  const machine = await describeMachine();
  const ws = await makeWorkspace();
  workspaceDir = ws.dir;
  const progress = (msg: string) => console.error(`[bench ${clock()}] ${msg}`);
  const cpuProfDir = values["cpu-prof"] ? `${ws.dir}/profile` : undefined;
  const ctx: ScenarioContext = {
    ws,
    quick: values.quick,
    clockTicks: await initClock(),
    nproc: machine.nproc,
    cpuProfDir,
    progress,
  };
  const reports: ScenarioReport[] = [];
  const profiles: { scenario: string; file: string; summary: ProfileSummary }[] = [];
  try {
    for (const s of chosen) {
      reports.push(await runScenario(s, ctx));
      if (cpuProfDir) {
        await Deno.mkdir(values.out, { recursive: true });
        const keep = `${values.out.replace(/\/$/, "")}/${s.name}.cpuprofile`;
        const p = await takeProfile(cpuProfDir, keep);
        if (p) profiles.push({ scenario: s.name, ...p });
      }
    }
  } finally {
    await stopAll();
    await Deno.remove(ws.dir, { recursive: true }).catch(() => {});
  }
  const options = { quick: values.quick, scenarios: names, cpuProf: values["cpu-prof"] };
  const base = reportBase(values.out, machine);
  await Deno.mkdir(values.out, { recursive: true });
  const plots = new Map<string, string>();
  for (const r of reports) {
    if (!r.plot) continue;
    const file = `${base}-${r.name}.svg`;
    await Deno.writeTextFile(file, plotSvg(r.plot));
    plots.set(r.name, file.slice(file.lastIndexOf("/") + 1));
  }
  let markdown = toMarkdown(machine, options, reports, plots);
  for (const p of profiles) {
    markdown += "\n" + profileMarkdown(p.summary, `waypoint CPU profile during ${p.scenario}`) +
      `\nRaw profile: ${p.file} (open in Chrome DevTools or speedscope).\n`;
  }
  if (profiles.length > 0) {
    markdown += "\nUnder --cpu-prof the waypoint's CPU figures above include the profiler.\n";
  }
  console.log(markdown);
  // The plots' points are in each scenario's data already; the JSON names their files.
  const scenarios = reports.map(({ plot: _, ...r }) => ({ ...r, plotFile: plots.get(r.name) }));
  const files = await writeReport(base, markdown, { machine, options, scenarios, profiles });
  progress(`wrote ${files.join(", ")}, and ${plots.size} SVG plots beside them`);
  return reports.some((r) => r.status === "failed") ? 1 : 0;
}

async function runScenario(s: Scenario, ctx: ScenarioContext): Promise<ScenarioReport> {
  const t0 = performance.now();
  const seconds = () => Math.round((performance.now() - t0) / 100) / 10;
  ctx.progress(`${s.name}: starting`);
  try {
    const outcome = await s.run(ctx);
    if (outcome.skipped) ctx.progress(`${s.name}: ${outcome.skipped}`);
    const status = outcome.tables.length > 0 ? "ok" : "skipped";
    ctx.progress(`${s.name}: ${status} in ${seconds()} s`);
    return { name: s.name, status, seconds: seconds(), ...outcome };
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    ctx.progress(`${s.name}: failed: ${reason}`);
    return { name: s.name, status: "failed", reason, seconds: seconds() };
  }
}

/**
 * Summarizes the newest `.cpuprofile` in `dir`, moves it to `keep` as `<scenario>.cpuprofile`
 * (for Chrome DevTools or speedscope) and removes the others.
 */
async function takeProfile(
  dir: string,
  keep: string,
): Promise<{ summary: ProfileSummary; file: string } | undefined> {
  const files: { path: string; mtime: number }[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.name.endsWith(".cpuprofile")) continue;
      const path = `${dir}/${e.name}`;
      files.push({ path, mtime: (await Deno.stat(path)).mtime?.getTime() ?? 0 });
    }
  } catch {
    return undefined; // No profile written.
  }
  const [newest, ...older] = files.sort((a, b) => b.mtime - a.mtime);
  if (!newest) return undefined;
  const summary = await summarizeProfile(newest.path);
  await Deno.copyFile(newest.path, keep);
  for (const f of [newest, ...older]) await Deno.remove(f.path);
  return { summary, file: keep };
}

/** The temporary folder of this run, removed on exit and on interruption. */
let workspaceDir: string | undefined;

function clock(): string {
  return new Date().toISOString().slice(11, 19);
}

if (import.meta.main) {
  const interrupted = async () => {
    console.error("[bench] interrupted: stopping every process the harness started");
    await shutDown(1_000);
    if (workspaceDir) await Deno.remove(workspaceDir, { recursive: true }).catch(() => {});
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", interrupted);
  Deno.addSignalListener("SIGTERM", interrupted);
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    console.error(`[bench] ${e instanceof Error ? e.message : e}`);
  } finally {
    await shutDown();
  }
  Deno.exit(code);
}
