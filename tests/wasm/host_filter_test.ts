import assert from "node:assert/strict";
import { LocalReply } from "../../http/mod.ts";
import type { HttpCallRequest } from "../../wasm/mod.ts";
import { LIFECYCLE, Plugin, send, spec, testRuntime } from "./_host.ts";

const OK_HEADERS =
  `(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))`;

Deno.test("wasmFilter() lets a plugin add, remove and rewrite request and response headers", async () => {
  const p = new Plugin();
  const bytes = p.build(`${LIFECYCLE}
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $add (i32.const 0) ${p.str("x-added")} ${p.str("yes")}))
      (drop (call $remove (i32.const 0) ${p.str("x-remove")}))
      (drop (call $replace (i32.const 0) ${p.str(":path")} ${p.str("/rewritten")}))
      (i32.const 0))
    (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
      (drop (call $add (i32.const 2) ${p.str("x-resp")} ${p.str("1")}))
      (drop (call $remove (i32.const 2) ${p.str("server")}))
      (i32.const 0))`);
  const { runtime } = testRuntime({ "demo/headers": bytes });
  const r = await send(runtime, [spec("demo/headers")], {
    path: "/orig",
    headers: [["x-remove", "1"], ["x-keep", "2"]],
  }, { headers: [["server", "upstream"]] });
  assert.equal(r.status, 200);
  assert.equal(r.upstream?.headers.get("x-added"), "yes");
  assert.equal(r.upstream?.headers.get("x-remove"), undefined);
  assert.equal(r.upstream?.headers.get("x-keep"), "2");
  assert.equal(r.upstream?.path, "/rewritten");
  assert.equal(r.headers.get("x-resp"), "1");
  assert.equal(r.headers.get("server"), undefined);
  runtime.close();
});

Deno.test("wasmFilter() answers with the plugin's local response and never reaches the upstream", async () => {
  const p = new Plugin();
  const bytes = p.build(`${LIFECYCLE}
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $local (i32.const 403) ${p.str("wasm_denied")} ${p.str("denied by plugin")}
        ${p.pairs([["x-deny", "1"]])} (i32.const -1)))
      (i32.const 1))`);
  const { runtime } = testRuntime({ "demo/deny": bytes });
  const r = await send(runtime, [spec("demo/deny")]);
  assert.equal(r.status, 403);
  assert.equal(r.body, "denied by plugin");
  assert.equal(r.headers.get("x-deny"), "1");
  assert.equal(r.detail, "wasm_denied");
  assert.equal(r.upstream, undefined);
  runtime.close();
});

function bodyRewriter(buffer: 0 | 1): Uint8Array {
  const p = new Plugin();
  const name = buffer === 0 ? "proxy_on_request_body" : "proxy_on_response_body";
  return p.build(`${LIFECYCLE} ${OK_HEADERS}
    (func (export "${name}") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
      (if (i32.eqz (local.get $eos)) (then (return (i32.const 1))))
      (drop (call $set_buf (i32.const ${buffer}) (i32.const 0) (local.get $size) ${
    p.str("REWRITTEN")
  }))
      (i32.const 0))`);
}

Deno.test("wasmFilter() buffers a request body for a plugin that rewrites it and fixes its length", async () => {
  const { runtime } = testRuntime({ "demo/body": bodyRewriter(0) });
  const r = await send(runtime, [spec("demo/body")], { method: "POST", body: "hello world" });
  assert.equal(r.upstream?.body, "REWRITTEN");
  assert.equal(r.upstream?.headers.get("content-length"), "9");
  runtime.close();
});

Deno.test("wasmFilter() lets a plugin rewrite the response body", async () => {
  const { runtime } = testRuntime({ "demo/resbody": bodyRewriter(1) });
  const r = await send(runtime, [spec("demo/resbody")], {}, { body: "original" });
  assert.equal(r.body, "REWRITTEN");
  assert.equal(r.headers.get("content-length"), "9");
  runtime.close();
});

Deno.test("wasmFilter() answers 413 when a plugin holds more body than the bound", async () => {
  const { runtime } = testRuntime({ "demo/body": bodyRewriter(0) }, { limits: { bodyLimit: 8 } });
  const r = await send(runtime, [spec("demo/body")], {
    method: "POST",
    body: "more than eight bytes",
  });
  assert.equal(r.status, 413);
  assert.equal(r.upstream, undefined);
  runtime.close();
});

/** Pauses the request, asks a service, and resumes or denies on the answer's first byte. */
function callout(): Uint8Array {
  const p = new Plugin();
  return p.build(`${LIFECYCLE}
    (global $ctx (mut i32) (i32.const 0))
    (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
      (global.set $ctx (local.get $ctx))
      (drop (call $call ${p.str("authz.demo.svc.cluster.local")}
        ${p.pairs([[":method", "GET"], [":path", "/check"], [":authority", "authz"]])}
        (i32.const 0) (i32.const 0) ${p.pairs([])} (i32.const 1000) (i32.const 16)))
      (i32.const 1))
    (func (export "proxy_on_http_call_response") (param i32 i32 i32) (param $bl i32) (param i32)
      (drop (call $effective (global.get $ctx)))
      (drop (call $get_buf (i32.const 4) (i32.const 0) (local.get $bl) (i32.const 8) (i32.const 12)))
      (if (i32.and (i32.ne (local.get $bl) (i32.const 0))
                   (i32.eq (i32.load8_u (i32.load (i32.const 8))) (i32.const 97)))
        (then (drop (call $continue (i32.const 0))))
        (else (drop (call $local (i32.const 403) ${p.str("callout_denied")} ${p.str("no")}
          ${p.pairs([])} (i32.const -1))))))`);
}

Deno.test("wasmFilter() pauses a request until the plugin's http call answer resumes it", async () => {
  const calls: HttpCallRequest[] = [];
  const { runtime } = testRuntime({ "demo/callout": callout() }, {
    httpCaller: (req) => {
      calls.push(req);
      return Promise.resolve({
        headers: [[":status", "200"]],
        body: new TextEncoder().encode("allow"),
        trailers: [],
      });
    },
  });
  const r = await send(runtime, [spec("demo/callout")]);
  assert.equal(r.status, 200);
  assert.equal(r.upstream?.path, "/");
  assert.equal(calls.length, 1);
  assert.equal(calls[0].cluster, "authz.demo.svc.cluster.local");
  assert.deepEqual(calls[0].headers.find(([k]) => k === ":path"), [":path", "/check"]);
  runtime.close();
});

Deno.test("wasmFilter() denies when the plugin's http call answer says so, or the call fails", async () => {
  const deny = testRuntime({ "demo/callout": callout() }, {
    httpCaller: () =>
      Promise.resolve({ headers: [], body: new TextEncoder().encode("deny"), trailers: [] }),
  });
  const r = await send(deny.runtime, [spec("demo/callout")]);
  assert.equal(r.status, 403);
  assert.equal(r.upstream, undefined);
  deny.runtime.close();
  const failing = testRuntime({ "demo/callout": callout() }, {
    httpCaller: () => Promise.reject(new Error("no such cluster")),
  });
  const f = await send(failing.runtime, [spec("demo/callout")]);
  assert.equal(f.status, 403);
  failing.runtime.close();
});

/** A plugin that defines counter `name` at VM start (its id in `$m`), runs `atStart`, and has `callbacks`. */
function counting(name: string, atStart: string, callbacks: string): Uint8Array {
  const p = new Plugin();
  return p.build(`
    (global $m (mut i32) (i32.const 0))
    (func (export "proxy_on_context_create") (param i32 i32))
    (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
      (drop (call $define (i32.const 0) ${p.str(name)} (i32.const 16)))
      (global.set $m (i32.load (i32.const 16)))
      ${atStart}
      (i32.const 1))
    (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
    ${callbacks}`);
}

Deno.test("WasmRuntime delivers proxy_on_tick at the period the plugin set, and counts metrics", async () => {
  const bytes = counting(
    "wasm_ticks_total",
    "(drop (call $tick (i32.const 5)))",
    `(func (export "proxy_on_tick") (param i32) (drop (call $incr (global.get $m) (i64.const 1))))`,
  );
  const { runtime } = testRuntime({ "demo/tick": bytes });
  await runtime.vm(spec("demo/tick"));
  let ticks = 0;
  for (let i = 0; i < 1000 && ticks < 3; i++) {
    await new Promise((r) => setTimeout(r, 5));
    ticks = Number(/wasm_ticks_total (\d+)/.exec(runtime.prometheus())?.[1] ?? 0);
  }
  assert.ok(ticks >= 3, `ticks: ${ticks}`);
  assert.match(runtime.prometheus(), /# TYPE wasm_ticks_total counter/);
  runtime.close();
});

Deno.test("wasmFilter() gives plugins shared data with compare-and-swap", async () => {
  const p = new Plugin();
  const bytes = p.build(`${LIFECYCLE}
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (local $cas i32)
      (i32.store8 (i32.const 40) (i32.add (i32.const 48)
        (call $set_shared ${p.str("k")} ${p.str("v1")} (i32.const 0))))
      (drop (call $get_shared ${p.str("k")} (i32.const 8) (i32.const 12) (i32.const 16)))
      (local.set $cas (i32.load (i32.const 16)))
      (i32.store8 (i32.const 41) (i32.add (i32.const 48)
        (call $set_shared ${p.str("k")} ${
    p.str("v2")
  } (i32.add (local.get $cas) (i32.const 1000)))))
      (i32.store8 (i32.const 42) (i32.add (i32.const 48)
        (call $set_shared ${p.str("k")} ${p.str("v3")} (local.get $cas))))
      (drop (call $add (i32.const 0) ${p.str("x-cas")} (i32.const 40) (i32.const 3)))
      (i32.const 0))`);
  const { runtime } = testRuntime({ "demo/cas": bytes });
  const r = await send(runtime, [spec("demo/cas")]);
  assert.equal(r.upstream?.headers.get("x-cas"), "080"); // OK, CAS_MISMATCH, OK
  assert.equal(new TextDecoder().decode(runtime.shared.get("k")?.value), "v3");
  runtime.close();
});

Deno.test("wasmFilter() counts a plugin's counter per request and renders it for Prometheus", async () => {
  const bytes = counting(
    "wasm_requests_total",
    "",
    `(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $incr (global.get $m) (i64.const 1)))
      (i32.const 0))`,
  );
  const { runtime } = testRuntime({ "demo/count": bytes });
  await send(runtime, [spec("demo/count")]);
  await send(runtime, [spec("demo/count")]);
  assert.match(
    runtime.prometheus(),
    /^# TYPE wasm_requests_total counter\nwasm_requests_total 2\n/,
  );
  runtime.close();
});

Deno.test("wasmFilter() answers property reads from the request's facts and the plugin", async () => {
  const p = new Plugin();
  const copy = (path: string, header: string) => `
      (drop (call $prop ${p.str(path)} (i32.const 8) (i32.const 12)))
      (drop (call $add (i32.const 0) ${
    p.str(header)
  } (i32.load (i32.const 8)) (i32.load (i32.const 12))))`;
  const bytes = p.build(`${LIFECYCLE}
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      ${copy("source\0address", "x-src")}
      ${copy("plugin_name", "x-plugin")}
      ${copy("connection\0uri_san_peer_certificate", "x-peer")}
      ${copy("request\0url_path", "x-url-path")}
      ${copy("cluster_name", "x-cluster")}
      (i32.const 0))`);
  const { runtime } = testRuntime({ "demo/props": bytes });
  const r = await send(runtime, [spec("demo/props")], { path: "/a/b?x=1" });
  const h = r.upstream!.headers;
  assert.equal(h.get("x-src"), "10.1.2.3:40000");
  assert.equal(h.get("x-plugin"), "demo.props");
  assert.equal(h.get("x-peer"), "spiffe://cluster.local/ns/demo/sa/client");
  assert.equal(h.get("x-url-path"), "/a/b");
  assert.equal(h.get("x-cluster"), "inbound-vip|80|http|echo.demo.svc.cluster.local");
  runtime.close();
});

function trapper(): Uint8Array {
  const p = new Plugin();
  return p.build(`${LIFECYCLE}
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (if (i32.eqz (call $get (i32.const 0) ${p.str("x-trap")} (i32.const 8) (i32.const 12)))
        (then unreachable))
      (i32.const 0))`);
}

for (
  const [strategy, first, second] of [
    ["FAIL_CLOSE", 503, 503],
    ["FAIL_OPEN", 200, 200],
    ["FAIL_RELOAD", 503, 200],
  ] as const
) {
  Deno.test(`wasmFilter() handles a trapping plugin under ${strategy}`, async () => {
    const { runtime, logs } = testRuntime({ "demo/trap": trapper() });
    const plugin = spec("demo/trap", { failStrategy: strategy });
    const r1 = await send(runtime, [plugin], { headers: [["x-trap", "1"]] });
    assert.equal(r1.status, first);
    if (first === 503) {
      assert.equal(r1.body, "");
      assert.match(r1.detail ?? "", /^wasm_fail_stream: WasmPlugin demo\/trap: runtime failure/);
    }
    const r2 = await send(runtime, [plugin]);
    assert.equal(r2.status, second);
    assert.ok(logs.some((l) => l.level === 4 && /runtime failure/.test(l.message)));
    runtime.close();
  });
}

Deno.test("wasmFilter() treats a bad pointer as a status for the plugin, not a host crash", async () => {
  const p = new Plugin();
  const bytes = p.build(`${LIFECYCLE}
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (i32.store8 (i32.const 40) (i32.add (i32.const 48)
        (call $log (i32.const 2) (i32.const -16) (i32.const 100))))
      (i32.store8 (i32.const 41) (i32.add (i32.const 48)
        (call $get (i32.const 0) ${p.str(":path")} (i32.const -4) (i32.const 12))))
      (drop (call $add (i32.const 0) ${p.str("x-status")} (i32.const 40) (i32.const 2)))
      (i32.const 0))`);
  const { runtime } = testRuntime({ "demo/badptr": bytes });
  const r = await send(runtime, [spec("demo/badptr")]);
  assert.equal(r.status, 200);
  assert.equal(r.upstream?.headers.get("x-status"), "66"); // INVALID_MEMORY_ACCESS twice
  runtime.close();
});

Deno.test("wasmFilter() stops a runaway plugin through its fuel global and fails closed", async () => {
  const p = new Plugin();
  const bytes = p.build(`${LIFECYCLE}
    (global $fuel (export "__waypoint_fuel") (mut i64) (i64.const 0))
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (loop $spin
        (global.set $fuel (i64.sub (global.get $fuel) (i64.const 1)))
        (if (i64.lt_s (global.get $fuel) (i64.const 0)) (then unreachable))
        (br $spin))
      (i32.const 0))`);
  const { runtime, logs } = testRuntime({ "demo/spin": bytes }, {
    fuel: { callback: 100_000n, start: 1_000_000n },
  });
  const r = await send(runtime, [spec("demo/spin")]);
  assert.equal(r.status, 503);
  assert.match(r.detail ?? "", /runaway failure/);
  assert.ok(logs.some((l) => /Fuel budget/.test(l.message)));
  runtime.close();
});

Deno.test("wasmFilter() denies with RBAC 403 when a FAIL_CLOSE module cannot be loaded", async () => {
  const { runtime } = testRuntime({});
  const r = await send(runtime, [spec("demo/missing")]);
  assert.equal(r.status, 403);
  assert.equal(r.body, "RBAC: access denied");
  assert.equal(r.flag, "RBAC");
  const open = await send(runtime, [spec("demo/missing2", { failStrategy: "FAIL_OPEN" })]);
  assert.equal(open.status, 200);
  assert.equal(open.upstream?.path, "/");
  runtime.close();
});

Deno.test("wasmFilter() fails a plugin whose proxy_on_configure refuses its config", async () => {
  const p = new Plugin();
  const bytes = p.build(`
    (func (export "proxy_on_context_create") (param i32 i32))
    (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 0))`);
  const { runtime } = testRuntime({ "demo/refuse": bytes });
  const r = await send(runtime, [spec("demo/refuse", { pluginConfig: "{}" })]);
  assert.equal(r.status, 503);
  assert.match(r.detail ?? "", /config failure: Returned false in proxy_on_configure/);
  runtime.close();
});

Deno.test("wasmFilter() streams a body of unknown length through a plugin's body callback", async () => {
  const bytes = counting(
    "wasm_body_chunks_total",
    "",
    `${OK_HEADERS}
    (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
      (drop (call $incr (global.get $m) (i64.const 1)))
      (i32.const 0))`,
  );
  const { runtime } = testRuntime({ "demo/chunks": bytes });
  const r = await send(runtime, [spec("demo/chunks")], {
    method: "POST",
    chunks: ["ab", "cd", "ef"],
  });
  assert.equal(r.upstream?.body, "abcdef");
  assert.equal(r.upstream?.headers.get("content-length"), undefined);
  assert.match(runtime.prometheus(), /wasm_body_chunks_total 4\n/); // three chunks, then the end
  runtime.close();
});

Deno.test("wasmFilter() shows a later filter's local reply to the plugin's response callback", async () => {
  const p = new Plugin();
  const bytes = p.build(`${LIFECYCLE} ${OK_HEADERS}
    (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
      (drop (call $add (i32.const 2) ${p.str("x-seen")} ${p.str("1")}))
      (i32.const 0))`);
  const { runtime } = testRuntime({ "demo/seen": bytes });
  const reply = new LocalReply(403, "RBAC: access denied", { flag: "RBAC" });
  const r = await send(runtime, [spec("demo/seen")], {}, { reply });
  assert.equal(r.status, 403);
  assert.equal(r.body, "RBAC: access denied");
  assert.equal(r.headers.get("x-seen"), "1");
  assert.equal(r.flag, "RBAC");
  runtime.close();
});

Deno.test("wasmFilter() fails a request whose plugin pauses and never resumes", async () => {
  const p = new Plugin();
  const bytes = p.build(`${LIFECYCLE}
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 1))`);
  const { runtime } = testRuntime({ "demo/stuck": bytes }, { limits: { pauseTimeoutMs: 20 } });
  const r = await send(runtime, [spec("demo/stuck")]);
  assert.equal(r.status, 503);
  assert.match(r.detail ?? "", /^wasm_fail_stream: demo\/stuck paused/);
  assert.equal(r.upstream, undefined);
  runtime.close();
});
