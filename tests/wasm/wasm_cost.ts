/**
 * What Wasm plugins cost (issue 6), in process: added CPU per request of the real `wasmFilter`
 * and a fake router with no plugin, the AS `headers` plugin (metered and not), and a WAT plugin
 * that pauses for the whole request body and reads it; then VM start time and memory per VM for
 * the AS plugin and the Go SDK fixture. Not a test: run it by hand with
 * `deno run -A --v8-flags=--expose-gc tests/wasm/wasm_cost.ts`. Prints Markdown tables.
 */
import process from "node:process";
import {
  bytesBody,
  compose,
  type Filter,
  HeaderMap,
  HttpContext,
  readAll,
  runChain,
} from "../../http/mod.ts";
import type { RequestState } from "../../proxy/http_state.ts";
import { wasmFilter } from "../../proxy/wasm_filter.ts";
import { meter, type WasmPluginSpec, type WasmRuntime } from "../../wasm/mod.ts";
import { type CostVariant, printCosts } from "../fixtures/cpu_cost.ts";
import { buildPlugins } from "./plugins/build.ts";
import { fixture, LIFECYCLE, Plugin, spec, testRuntime, testState } from "./_host.ts";

const N = 20_000;
const BODY = "b".repeat(1024);

/** Pauses until the whole request body is in, copies it into guest memory, checks its first byte. */
function bodyReader(): Uint8Array {
  const p = new Plugin();
  return p.build(`${LIFECYCLE}
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (global.set $heap (i32.const 65536))
      (i32.const 0))
    (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32)
      (result i32)
      (if (i32.eqz (local.get $eos)) (then (return (i32.const 1))))
      (drop (call $get_buf (i32.const 0) (i32.const 0) (local.get $size) (i32.const 8)
        (i32.const 12)))
      (if (i32.eq (i32.load8_u (i32.load (i32.const 8))) (i32.const 120))
        (then (drop (call $local (i32.const 403) ${p.str("x")} ${p.str("no")} ${p.pairs([])}
          (i32.const -1)))))
      (i32.const 0))`);
}

/** The AS headers plugin's work without an SDK: one request and one response header added. */
function headerAdder(): Uint8Array {
  const p = new Plugin();
  return p.build(`${LIFECYCLE}
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $add (i32.const 0) ${p.str("x-wasm-request")} ${p.str("v")}))
      (i32.const 0))
    (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
      (drop (call $add (i32.const 2) ${p.str("x-wasm-response")} ${p.str("yes")}))
      (i32.const 0))`);
}

const router: Filter<RequestState> = async (ctx) => {
  await readAll(ctx.request.body, 1 << 20);
  ctx.response = {
    head: { status: 200, headers: new HeaderMap([["content-type", "text/plain"]]) },
    body: bytesBody("hello"),
  };
};

const paths = await buildPlugins();
const headersBytes = await Deno.readFile(paths.headers);
const goBytes = await fixture("go-http-headers.wasm");
const modules = {
  "as/headers": headersBytes,
  "wat/body": bodyReader(),
  "wat/headers": headerAdder(),
  "ext/go": goBytes,
};
const metered = testRuntime(modules, { instrument: meter, log: () => {} }).runtime;
const plain = testRuntime(modules, { log: () => {} }).runtime;
const headers = spec("as/headers", { rootId: "headers", pluginConfig: '{"request":"v"}' });
const body = spec("wat/body");

/** One request through the filter of `runtime` with these plugins and the fake router. */
function variant(name: string, runtime: WasmRuntime, plugins: WasmPluginSpec[]): CostVariant {
  const chain = compose([wasmFilter(runtime, "AUTHN"), router]);
  const state = testState(plugins);
  return {
    name,
    async request() {
      const headers = new HeaderMap([["user-agent", "curl/8"], ["content-length", "1024"]]);
      const head = { method: "POST", path: "/r/1", authority: "echo.demo", scheme: "http" };
      const ctx = new HttpContext<RequestState>({
        head: { ...head, version: "1.1", headers },
        body: bytesBody(BODY),
      }, state);
      await runChain(chain, ctx);
      const res = ctx.response!;
      if (res.head.status !== 200) throw new Error(`${name}: ${res.head.status}`);
      await readAll(res.body, 1 << 10);
    },
  };
}

await printCosts([
  variant("wasmFilter, no plugin (baseline)", metered, []),
  variant("AS headers plugin, metered", metered, [headers]),
  variant("AS headers plugin, not metered", plain, [headers]),
  variant("WAT header adder (no SDK), metered", metered, [spec("wat/headers")]),
  variant("WAT body reader (1 KiB), metered", metered, [body]),
], N);

/** Meter and compile time, then start time and memory of `count` VMs of one plugin. */
async function vms(name: string, bytes: Uint8Array, base: WasmPluginSpec, count: number) {
  const t0 = performance.now();
  const rewritten = meter(new Uint8Array(bytes));
  const t1 = performance.now();
  await WebAssembly.compile(rewritten);
  const t2 = performance.now();
  const { runtime } = testRuntime(modules, { instrument: meter, log: () => {} });
  await runtime.vm(base);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage();
  const t3 = performance.now();
  const started = [];
  for (let i = 0; i < count; i++) {
    started.push(await runtime.vm({ ...base, vmKey: `${base.vmKey}#${i}` }));
  }
  const each = (performance.now() - t3) / count;
  gc?.();
  const after = process.memoryUsage();
  const linear = started[0].memoryBytes;
  runtime.close();
  const kib = (b: number) => (b / 1024).toFixed(0);
  const js = after.external + after.heapUsed - before.external - before.heapUsed;
  console.log(
    `| ${name} | ${kib(bytes.length)} | ${(t1 - t0).toFixed(1)} | ${(t2 - t1).toFixed(1)} | ${
      each.toFixed(2)
    } | ${kib(linear)} | ${kib((after.rss - before.rss) / count)} | ${kib(js / count)} |`,
  );
}

console.log(
  "\n| plugin | module KiB | meter ms | compile ms | VM start ms | linear memory KiB | RSS KiB/VM | JS heap KiB/VM |\n|---|---:|---:|---:|---:|---:|---:|---:|",
);
await vms("AS headers", headersBytes, headers, 100);
await vms(
  "Go http_headers",
  goBytes,
  spec("ext/go", { pluginConfig: '{"header":"a","value":"b"}' }),
  100,
);
metered.close();
plain.close();
