/**
 * Added CPU per request of the telemetry filters (issue 5), in process: the chain with a fake
 * router, with metrics off and on, Telemetry overrides, tracing at 1% and 100%, and access logs.
 * Not a test: run it by hand with `deno run -A tests/telemetry/telemetry_cost.ts`. Prints one
 * Markdown table of CPU µs per request (user + system, `process.cpuUsage`) over the baseline.
 */
import process from "node:process";
import { setImmediate } from "node:timers";
import type { Filter } from "../../http/mod.ts";
import { bytesBody, compose, HeaderMap, HttpContext, readAll, runChain } from "../../http/mod.ts";
import { parseConfigText } from "../../mesh/mod.ts";
import {
  AccessLogs,
  compileTelemetry,
  DEFAULT_JSON_LABELS,
  DEFAULT_PROVIDERS,
  IstioMetrics,
  metricsFilter,
  tracingFilter,
  type TracingState,
} from "../../telemetry/mod.ts";
import { connection, endpointOf, request, type TestState } from "./_helpers.ts";

const N = 100_000;

type State = TestState & TracingState;

const router: Filter<State> = (ctx) => {
  ctx.state.endpoint = endpointOf("reviews");
  ctx.response = {
    head: { status: 200, headers: new HeaderMap([["content-type", "text/plain"]]) },
    body: bytesBody("hello"),
  };
  return Promise.resolve();
};

function telemetry(spec: string) {
  const yaml = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: t, namespace: istio-system }
spec:
${spec}`;
  return compileTelemetry(parseConfigText(yaml, "t.yaml").documents, {
    self: { namespace: "mesh", name: "waypoint" },
    rootNamespace: "istio-system",
    providers: DEFAULT_PROVIDERS,
  }).telemetry;
}

const nullLogs = (labels?: Record<string, string>) =>
  new AccessLogs([{ name: "envoy", path: "/dev/stdout", labels }], {
    open: () => ({ write: (b) => Promise.resolve(b.length) }),
    maxQueued: 1 << 20,
  });
const noSpans = { add() {}, fault() {} };
const proxy = {
  nodeId: "waypoint~10.0.0.9~w.mesh~mesh.svc.cluster.local",
  canonicalService: "w",
  namespace: "mesh",
};

const LOGS = telemetry("  accessLogging: [{ providers: [{ name: envoy }] }]");
const CONSTANT = telemetry(`  metrics:
    - overrides:
        - match: { metric: REQUEST_COUNT }
          tagOverrides: { custom_dimension: { value: "'test'" }, source_principal: { operation: REMOVE } }`);
const DYNAMIC = telemetry(`  metrics:
    - overrides:
        - match: { metric: REQUEST_COUNT }
          tagOverrides: { method: { value: "request.method" } }`);

interface Variant {
  readonly name: string;
  readonly filters: () => Filter<State>[];
  readonly telemetry?: ReturnType<typeof telemetry>;
}

const metricsOn = () => metricsFilter<State>(new IstioMetrics());
const variants: Variant[] = [
  { name: "chain + fake router (baseline)", filters: () => [] },
  { name: "metrics on", filters: () => [metricsOn()] },
  { name: "metrics, constant tag override", filters: () => [metricsOn()], telemetry: CONSTANT },
  {
    name: "metrics, per-request tag (request.method)",
    filters: () => [metricsOn()],
    telemetry: DYNAMIC,
  },
  {
    name: "metrics + tracing 1%",
    filters: () => [metricsOn(), tracingFilter({ sink: noSpans, proxy, samplingPercentage: 1 })],
  },
  {
    name: "metrics + tracing 100%",
    filters: () => [metricsOn(), tracingFilter({ sink: noSpans, proxy, samplingPercentage: 100 })],
  },
  {
    name: "metrics + access log (text)",
    filters: () => [metricsFilter<State>(new IstioMetrics(), { accessLogs: nullLogs() })],
    telemetry: LOGS,
  },
  {
    name: "metrics + access log (JSON)",
    filters: () => [
      metricsFilter<State>(new IstioMetrics(), {
        accessLogs: nullLogs({ ...DEFAULT_JSON_LABELS }),
      }),
    ],
    telemetry: LOGS,
  },
];

async function run(v: Variant, n: number): Promise<number> {
  const chain = compose([...v.filters(), router]);
  const state = connection({ service: "reviews", telemetry: v.telemetry });
  const head = request("GET", "/reviews/1", [["user-agent", "curl/8"], ["x-request-id", "r-1"]]);
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const ctx = new HttpContext<State>(
      { head: { ...head, headers: head.headers.clone() }, body: bytesBody("") },
      { ...state(), requestId: "r-1" },
      performance.now(),
    );
    await runChain(chain, ctx);
    await readAll(ctx.response!.body, 1 << 10);
    // A server turns its event loop between I/O events; background writers run there.
    if (i % 64 === 63) await new Promise((r) => setImmediate(r));
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

// Each variant runs three times, interleaved, and keeps its least: the machine is shared.
const best = new Map<string, number>();
for (let round = 0; round < 3; round++) {
  for (const v of variants) {
    await run(v, N / 10);
    const us = await run(v, N);
    best.set(v.name, Math.min(best.get(v.name) ?? Infinity, us));
  }
}
const rows = [...best];
const base = rows[0][1];
console.log("| variant | CPU µs/request | added µs |\n|---|---:|---:|");
for (const [name, us] of rows) {
  console.log(`| ${name} | ${us.toFixed(2)} | ${(us - base).toFixed(2)} |`);
}
