/**
 * Summarizes a V8 `.cpuprofile` (from `deno run --cpu-prof`): self time by function and by
 * area (Deno's Node compatibility layer, the Deno runtime, each folder of this repository, npm
 * packages, garbage collection), so the split between transport and our own code is one look.
 *
 * Usage: deno run -A bench/profile.ts FILE.cpuprofile [--top N]
 */
import { parseArgs } from "node:util";
import { round } from "./_stats.ts";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time of one function or area. */
export interface SelfTime {
  readonly name: string;
  readonly ms: number;
  /** Percent of busy (non-idle) time. */
  readonly percent: number;
}

/** What {@link summarizeProfile} finds. */
export interface ProfileSummary {
  readonly totalMs: number;
  readonly idleMs: number;
  readonly busyMs: number;
  readonly functions: readonly SelfTime[];
  readonly areas: readonly SelfTime[];
}

const REPO = new URL("../", import.meta.url).href;

/**
 * Reads a profile and sums self time per function and per area.
 *
 * @param path The `.cpuprofile` file
 * @param top How many functions to keep
 * @returns Totals, the top functions and every area, largest first
 */
export async function summarizeProfile(path: string, top = 20): Promise<ProfileSummary> {
  const profile: CpuProfile = JSON.parse(await Deno.readTextFile(path));
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const fns = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0, idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    // A sample's time runs until the next sample (as Chrome DevTools counts it).
    const us = profile.timeDeltas[i + 1] ?? 0;
    const frame = byId.get(profile.samples[i]);
    if (!frame || us <= 0) continue;
    total += us;
    if (frame.functionName === "(idle)") {
      idle += us;
      continue;
    }
    const key = `${frame.functionName || "(anonymous)"} ${where(frame)}`.trim();
    fns.set(key, (fns.get(key) ?? 0) + us);
    const area = areaOf(frame);
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  const busy = total - idle;
  const list = (m: Map<string, number>, n: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, us]) => ({
      name,
      ms: round(us / 1000, 1),
      percent: round(100 * us / busy, 1),
    }));
  return {
    totalMs: round(total / 1000, 1),
    idleMs: round(idle / 1000, 1),
    busyMs: round(busy / 1000, 1),
    functions: list(fns, top),
    areas: list(areas, Infinity),
  };
}

function where(frame: CallFrame): string {
  if (!frame.url) return frame.functionName.startsWith("(") ? "" : "(native)";
  const url = frame.url.startsWith(REPO) ? frame.url.slice(REPO.length) : shortUrl(frame.url);
  return `${url}:${frame.lineNumber + 1}`;
}

function shortUrl(url: string): string {
  const npm = /\/npm\/[^/]+\/(@?[^/]+(?:\/[^/@]+)?)\/[^/]+\/(.*)$/.exec(url);
  return npm ? `npm:${npm[1]}/${npm[2]}` : url;
}

/** The area a frame's self time is charged to. */
function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) {
    // Deno's native bindings (TCP and TLS writes, nghttp2's receive and send) and V8 builtins.
    return functionName.startsWith("(") ? functionName : "native: Deno ops and V8 builtins";
  }
  if (url.startsWith("node:") || url.startsWith("ext:deno_node")) return "Deno node compat";
  if (url.startsWith("ext:")) return "Deno runtime (ext:)";
  if (url.startsWith(REPO)) {
    const rel = url.slice(REPO.length);
    return `waypoint ${rel.includes("/") ? rel.split("/")[0] + "/" : rel}`;
  }
  const npm = /\/npm\/[^/]+\/(@?[^/]+)/.exec(url);
  if (npm) return `npm:${npm[1]}`;
  return url.split("/").slice(0, 3).join("/");
}

/** Markdown of a summary: areas, then the top functions. */
export function profileMarkdown(s: ProfileSummary, title: string): string {
  const rows = (items: readonly SelfTime[]) =>
    items.map((x) => `| ${x.name.replaceAll("|", "\\|")} | ${x.ms} | ${x.percent} |`);
  return [
    `## ${title}`,
    "",
    `Sampled ${s.totalMs} ms, of which idle ${s.idleMs} ms; percentages are of busy time ` +
    `(${s.busyMs} ms).`,
    "",
    "| area | self ms | % busy |",
    "| --- | ---: | ---: |",
    ...rows(s.areas),
    "",
    "| function (self time) | self ms | % busy |",
    "| --- | ---: | ---: |",
    ...rows(s.functions),
    "",
  ].join("\n");
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { top: { type: "string", default: "25" } },
    allowPositionals: true,
  });
  if (positionals.length !== 1) {
    console.error("Usage: deno run -A bench/profile.ts FILE.cpuprofile [--top N]");
    Deno.exit(2);
  }
  const summary = await summarizeProfile(positionals[0], Number(values.top));
  console.log(profileMarkdown(summary, `CPU profile ${positionals[0]}`));
}
