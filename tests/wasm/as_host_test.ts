/**
 * The AssemblyScript plugins (real SDK, `@solo-io/proxy-runtime` 0.1.8) run by our host through
 * `wasmFilter` and a fake router, metered as production runs them, each doing what its source
 * header says. The SDK's needs are met here: `malloc`, `wasi_unstable.proc_exit`, top-level code
 * in the start section, and `plugin_root_id` answering the WasmPlugin's `pluginName`.
 */
import assert from "node:assert/strict";
import { type HttpCallRequest, meter, type WasmPluginSpec } from "../../wasm/mod.ts";
import { buildPlugins, type PluginName, PLUGINS } from "./plugins/build.ts";
import { send, spec, testRuntime } from "./_host.ts";

const paths = await buildPlugins();
const modules = Object.fromEntries(
  await Promise.all(PLUGINS.map(async (p) => [`as/${p}`, await Deno.readFile(paths[p])])),
);

/** A runtime with every AS plugin, metered. */
function runtimeOf(o: Parameters<typeof testRuntime>[1] = {}) {
  return testRuntime(modules, { instrument: meter, ...o });
}

/** The spec of one AS plugin; its root id is its folder name, its config never empty (SDK bug). */
function plugin(name: PluginName, o: Partial<WasmPluginSpec> = {}): WasmPluginSpec {
  return spec(`as/${name}`, { rootId: name, pluginConfig: '{"unused":"x"}', ...o });
}

Deno.test("AS headers adds its configured request header and edits response headers", async () => {
  const { runtime } = runtimeOf();
  const headers = plugin("headers", { pluginConfig: '{"request":"from-config"}' });
  const r = await send(runtime, [headers], {
    headers: [["x-strip-me", "secret"], ["x-keep", "1"]],
  }, { headers: [["x-upstream-secret", "s"], ["x-upstream", "u"]] });
  assert.equal(r.status, 200);
  assert.deepEqual(r.upstream?.headers.entries(), [
    ["x-keep", "1"],
    ["x-wasm-request", "from-config"],
  ]);
  assert.deepEqual(r.headers.entries(), [["x-upstream", "u"], ["x-wasm-response", "yes"]]);
  runtime.close();
});

Deno.test("AS deny answers 403 with its body and header for x-deny, and passes others", async () => {
  const { runtime } = runtimeOf();
  const deny = plugin("deny");
  const denied = await send(runtime, [deny], { headers: [["x-deny", "1"]] });
  assert.equal(denied.status, 403);
  assert.equal(denied.body, "denied by wasm\n");
  assert.equal(denied.headers.get("x-wasm-denied"), "yes");
  assert.equal(denied.upstream, undefined);
  const passed = await send(runtime, [deny], { headers: [["x-other", "1"]] });
  assert.equal(passed.status, 200);
  assert.equal(passed.upstream?.path, "/");
  runtime.close();
});

Deno.test("AS http_call asks its cluster and lets the answer decide", async () => {
  const calls: HttpCallRequest[] = [];
  let answer: { status: string; body: string } | undefined = { status: "200", body: "fine" };
  const { runtime } = runtimeOf({
    httpCaller: (call) => {
      calls.push(call);
      if (!answer) return Promise.reject(new Error("no such cluster"));
      const { status, body } = answer;
      return Promise.resolve({
        headers: [[":status", status], ["content-type", "text/plain"]],
        body: new TextEncoder().encode(body),
        trailers: [],
      });
    },
  });
  const caller = plugin("http_call", {
    pluginConfig: '{"cluster":"authz.demo.svc.cluster.local"}',
  });
  const ok = await send(runtime, [caller], { path: "/orders/7" });
  assert.equal(ok.status, 200);
  assert.equal(ok.upstream?.headers.get("x-checked"), "fine");
  assert.equal(calls[0].cluster, "authz.demo.svc.cluster.local");
  assert.equal(calls[0].timeoutMs, 1000);
  assert.deepEqual(calls[0].headers, [
    [":method", "GET"],
    [":path", "/check"],
    [":authority", "authz.demo.svc.cluster.local"],
    ["x-original-path", "/orders/7"],
  ]);
  answer = { status: "403", body: "no" };
  const refused = await send(runtime, [caller]);
  assert.equal(refused.status, 403);
  assert.equal(refused.body, "refused: status 403\n");
  assert.equal(refused.upstream, undefined);
  answer = undefined;
  const failed = await send(runtime, [caller]);
  assert.equal(failed.status, 403);
  assert.equal(failed.body, "refused: no answer\n");
  assert.equal(calls.length, 3);
  runtime.close();
});

Deno.test("AS tick counts the ticks of the period its config sets", async () => {
  const { runtime } = runtimeOf();
  const tick = plugin("tick", { pluginConfig: '{"period_ms":"5"}' });
  const ticks = async () => Number((await send(runtime, [tick])).headers.get("x-ticks"));
  const first = await ticks();
  let later = first;
  // Bounded wait for two more ticks (at most 500 × 10 ms).
  for (let i = 0; i < 500 && later < first + 2; i++) {
    await new Promise((r) => setTimeout(r, 10));
    later = await ticks();
  }
  assert.ok(later >= first + 2, `ticks stayed at ${later}`);
  runtime.close();
});

Deno.test("AS shared_data counts requests across two VMs through compare-and-swap", async () => {
  const { runtime } = runtimeOf();
  // Different configs make different VMs that share the runtime's data.
  const a = plugin("shared_data", { pluginConfig: '{"vm":"a"}' });
  const b = plugin("shared_data", { ref: "as/shared_data", pluginConfig: '{"vm":"b"}' });
  assert.notEqual(a.vmKey, b.vmKey);
  const first = await send(runtime, [a, b]);
  // Responses run the plugins in reverse: b's header first.
  assert.deepEqual(first.headers.getAll("x-hits"), ["2", "1"]);
  const second = await send(runtime, [b]);
  assert.deepEqual(second.headers.getAll("x-hits"), ["3"]);
  runtime.close();
});

Deno.test("AS counter defines its metric and counts each request for Prometheus", async () => {
  const { runtime } = runtimeOf();
  const counter = plugin("counter");
  for (let i = 0; i < 3; i++) assert.equal((await send(runtime, [counter])).status, 200);
  const lines = runtime.prometheus().split("\n");
  assert.ok(lines.includes("# TYPE wasm_test_requests counter"), lines.join("\n"));
  assert.ok(lines.includes("wasm_test_requests 3"), lines.join("\n"));
  runtime.close();
});

Deno.test("AS properties reads the request path, source principal and plugin name", async () => {
  const { runtime } = runtimeOf();
  const r = await send(runtime, [plugin("properties")], { path: "/a/b?c=d" });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-request-path"), "/a/b?c=d");
  assert.equal(r.headers.get("x-source-principal"), "spiffe://cluster.local/ns/demo/sa/client");
  assert.equal(r.headers.get("x-plugin-name"), "as.properties");
  runtime.close();
});

Deno.test("AS plugins fail to start when pluginName is not their root id", async () => {
  const { runtime, logs } = runtimeOf();
  const r = await send(runtime, [plugin("headers", { rootId: "someone-else" })]);
  assert.equal(r.status, 503);
  assert.equal(r.upstream, undefined);
  assert.match(r.detail ?? "", /exit failure: proc_exit\(255\)/);
  assert.ok(logs.some((l) => l.level === 4 && l.message.includes("proc_exit(255)")));
  runtime.close();
});

const TRAP_CASES = [
  { strategy: "FAIL_CLOSE", trapped: 503, after: 503 },
  { strategy: "FAIL_OPEN", trapped: 200, after: 200 },
  { strategy: "FAIL_RELOAD", trapped: 503, after: 200 },
] as const;

for (const { strategy, trapped, after } of TRAP_CASES) {
  Deno.test(`AS trap under ${strategy} answers ${trapped}, then ${after}`, async () => {
    const { runtime } = runtimeOf();
    const trap = plugin("trap", { failStrategy: strategy });
    const r = await send(runtime, [trap], { headers: [["x-trap", "1"]] });
    assert.equal(r.status, trapped);
    if (trapped === 503) {
      assert.equal(r.body, "");
      assert.match(r.detail ?? "", /^wasm_fail_stream: .*runtime failure: unreachable/);
    } else assert.equal(r.upstream?.path, "/");
    // FAIL_CLOSE keeps the failed VM; FAIL_RELOAD starts a new one; FAIL_OPEN skips it.
    assert.equal((await send(runtime, [trap])).status, after);
    runtime.close();
  });
}

Deno.test("AS trap aborting through the SDK (proc_exit) fails the stream closed", async () => {
  const { runtime } = runtimeOf();
  const r = await send(runtime, [plugin("trap")], { headers: [["x-abort", "1"]] });
  assert.equal(r.status, 503);
  assert.match(r.detail ?? "", /exit failure: proc_exit\(255\) in proxy_on_request_headers/);
  runtime.close();
});
