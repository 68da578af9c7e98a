/**
 * Event-loop delay during a scrape (issue 5: "a scrape must not stall requests; measure the
 * event loop delay during a scrape of 10,000 series"). Not a test: run it by hand with
 * `deno run -A tests/telemetry/scrape_delay.ts`. A 1 ms timer ticks while the scrape runs; its
 * lateness is the delay any request would see. Prints one Markdown table.
 */
import { prometheusStream, type Registry } from "../../telemetry/mod.ts";
import { filledOtel, filledOurs } from "./_bench_fixtures.ts";

interface Measure {
  wallMs: number;
  maxDelayMs: number;
  p99DelayMs: number;
  megabytes: number;
}

/** Reads the streamed scrape chunk by chunk, as a socket would, without joining it. */
async function streamed(registry: Registry): Promise<number> {
  let bytes = 0;
  for await (const chunk of prometheusStream(registry)) bytes += chunk.length;
  return bytes;
}

/** Runs `scrape` while a 1 ms ticker records how late it fires. */
async function during(scrape: () => Promise<string | number>): Promise<Measure> {
  let running = true;
  const delays: number[] = [];
  const ticker = (async () => {
    while (running) {
      const t = performance.now();
      await new Promise((r) => setTimeout(r, 1));
      delays.push(performance.now() - t - 1);
    }
  })();
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  const size = await scrape();
  const wallMs = performance.now() - t0;
  running = false;
  await ticker;
  delays.sort((a, b) => a - b);
  return {
    wallMs,
    maxDelayMs: delays[delays.length - 1],
    p99DelayMs: delays[Math.floor(delays.length * 0.99)],
    megabytes: (typeof size === "number" ? size : size.length) / 1e6,
  };
}

/** The best of `runs` by wall time, after one warm-up. */
async function best(runs: number, scrape: () => Promise<string | number>): Promise<Measure> {
  await scrape();
  let out: Measure | undefined;
  for (let i = 0; i < runs; i++) {
    const m = await during(scrape);
    if (!out || m.wallMs < out.wallMs) out = m;
  }
  return out!;
}

const counters = filledOurs(10_000, true);
const http = filledOurs(2_500);
const sdkCounters = filledOtel(10_000, true);
const sdkHttp = filledOtel(2_500);
const COUNTERS = "10k counter series";
const HTTP = "2.5k label sets x 4 HTTP instruments (10k series)";
const scrapes: [string, number, () => Promise<string | number>][] = [
  [`ours, ${COUNTERS}, 4 ms slices joined`, 5, () => counters.registry.renderText()],
  [`ours, ${COUNTERS}, streamed in 4 ms slices`, 5, () => streamed(counters.registry)],
  [`ours, ${COUNTERS}, unsliced`, 5, () => counters.registry.renderText({ sliceMs: Infinity })],
  [`ours, ${HTTP}, 4 ms slices joined`, 3, () => http.registry.renderText()],
  [`ours, ${HTTP}, streamed in 4 ms slices`, 3, () => streamed(http.registry)],
  [`ours, ${HTTP}, unsliced`, 3, () => http.registry.renderText({ sliceMs: Infinity })],
  [`OpenTelemetry SDK, ${COUNTERS}`, 2, () => sdkCounters.scrape()],
  [`OpenTelemetry SDK, ${HTTP}`, 2, () => sdkHttp.scrape()],
];
const rows: [string, Measure][] = [
  [
    "idle (no scrape), 200 ms",
    await during(() => new Promise((r) => setTimeout(() => r(""), 200))),
  ],
];
for (const [name, runs, scrape] of scrapes) rows.push([name, await best(runs, scrape)]);

const f = (n: number) => n.toFixed(1);
console.log("| scrape | wall ms | max loop delay ms | p99 loop delay ms | MB |");
console.log("|---|---:|---:|---:|---:|");
for (const [name, m] of rows) {
  console.log(
    `| ${name} | ${f(m.wallMs)} | ${f(m.maxDelayMs)} | ${f(m.p99DelayMs)} | ${f(m.megabytes)} |`,
  );
}
