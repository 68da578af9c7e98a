/**
 * Where a running Deno process allocates: attaches to its inspector (`deno run --inspect=HOST:PORT
 * ...`), runs V8's sampling heap profiler for a while, counting objects that were already
 * collected too (young and old), and prints the bytes allocated per function and per file. Under
 * a fixed-rate load, bytes per request = total / requests; garbage per request is what drives the
 * scavenges (and a young generation that grows RSS), so it is a steadier figure than CPU on a
 * shared machine.
 *
 * Usage: deno run -A bench/heap_profile.ts [--inspect 127.0.0.1:9229] [--seconds 5] [--top 30]
 *          [--out FILE.heapprofile]
 */
import { parseArgs } from "node:util";

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

/** Bytes allocated per function and per file during the sampling. */
export interface HeapSummary {
  readonly totalBytes: number;
  readonly functions: readonly (readonly [string, number])[];
  readonly files: readonly (readonly [string, number])[];
}

const REPO = new URL("../", import.meta.url).href;

/**
 * Samples allocations of the process behind an inspector address.
 *
 * @param inspect `host:port` of `--inspect`
 * @param seconds How long to sample
 * @returns The raw profile (Chrome DevTools can open it as `.heapprofile`)
 * @throws Error when the inspector cannot be reached or answers with an error
 */
export async function sampleHeap(inspect: string, seconds: number): Promise<{ head: HeapNode }> {
  const targets = await (await fetch(`http://${inspect}/json/list`)).json();
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  const pending = new Map<number, (m: { result?: unknown; error?: unknown }) => void>();
  let id = 0;
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    pending.get(m.id)?.(m);
    pending.delete(m.id);
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`No inspector at ${inspect}`));
  });
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve, reject) => {
      pending.set(
        ++id,
        (m) => m.error ? reject(new Error(JSON.stringify(m.error))) : resolve(m.result),
      );
      ws.send(JSON.stringify({ id, method, params }));
    });
  try {
    await call("HeapProfiler.enable");
    await call("HeapProfiler.startSampling", {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const result = await call("HeapProfiler.stopSampling") as { profile: { head: HeapNode } };
    return result.profile;
  } finally {
    ws.close();
  }
}

/**
 * Sums a sampled heap profile per function and per file, largest first.
 *
 * @param head The profile's root node
 * @param top How many functions and files to keep
 */
export function summarizeHeap(head: HeapNode, top = 30): HeapSummary {
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapNode) => {
    const f = n.callFrame;
    const file = f.url.startsWith(REPO) ? f.url.slice(REPO.length) : f.url || "(native)";
    if (n.selfSize > 0) {
      total += n.selfSize;
      const fn = `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
      fns.set(fn, (fns.get(fn) ?? 0) + n.selfSize);
      files.set(file, (files.get(file) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c);
  };
  walk(head);
  const list = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
  return { totalBytes: total, functions: list(fns), files: list(files) };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      inspect: { type: "string", default: "127.0.0.1:9229" },
      seconds: { type: "string", default: "5" },
      top: { type: "string", default: "30" },
      out: { type: "string" },
    },
  });
  const profile = await sampleHeap(values.inspect, Number(values.seconds));
  if (values.out) await Deno.writeTextFile(values.out, JSON.stringify(profile));
  const s = summarizeHeap(profile.head, Number(values.top));
  const mb = (b: number) => (b / 1e6).toFixed(2);
  const pct = (b: number) => (100 * b / s.totalBytes).toFixed(1);
  console.log(`Allocated ${mb(s.totalBytes)} MB in ${values.seconds} s (sampled every 1 KiB)\n`);
  console.log("| file | MB | % |\n| --- | ---: | ---: |");
  for (const [name, b] of s.files) console.log(`| ${name} | ${mb(b)} | ${pct(b)} |`);
  console.log("\n| function | MB | % |\n| --- | ---: | ---: |");
  for (const [name, b] of s.functions) console.log(`| ${name} | ${mb(b)} | ${pct(b)} |`);
}
