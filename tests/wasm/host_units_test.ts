import assert from "node:assert/strict";
import { HeaderMap } from "../../http/mod.ts";
import { BufferSlot, RequestHeaderView } from "../../wasm/host/context.ts";
import { decodePairs, encodePairs } from "../../wasm/host/pairs.ts";
import { lookupProperty } from "../../wasm/host/properties.ts";
import { meter } from "../../wasm/mod.ts";
import { fixture, LIFECYCLE, Plugin, send, spec, testRuntime } from "./_host.ts";

Deno.test("encodePairs() writes the spec's layout and decodePairs() reads it back", () => {
  const bytes = encodePairs([["a", "1"], ["b", "22"]]);
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(
    hex,
    "02000000" + "01000000" + "01000000" + "01000000" + "02000000" + "6100310062003232" + "00",
  );
  assert.deepEqual(decodePairs(bytes), [["a", "1"], ["b", "22"]]);
  assert.deepEqual(decodePairs(new Uint8Array([0])), []);
  assert.deepEqual(decodePairs(new Uint8Array()), []);
  assert.equal(decodePairs(new Uint8Array([5, 0, 0, 0, 1])), undefined, "count past the end");
});

Deno.test("BufferSlot.set() prepends, appends and replaces as proxy_set_buffer_bytes does", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const text = (b: BufferSlot) => new TextDecoder().decode(b.bytes);
  const slot = new BufferSlot(enc("body"), true);
  slot.set(0, 0, enc(">"));
  assert.equal(text(slot), ">body");
  slot.set(99, 0, enc("<"));
  assert.equal(text(slot), ">body<");
  slot.set(1, 4, enc("BODY!"));
  assert.equal(text(slot), ">BODY!<");
  assert.ok(slot.changed);
});

Deno.test("RequestHeaderView shows pseudo-headers and treats host as :authority", () => {
  const head = {
    method: "GET",
    path: "/p",
    authority: "a.example",
    scheme: "http",
    version: "1.1" as const,
    headers: new HeaderMap([["host", "a.example"], ["x", "1"]]),
  };
  const view = new RequestHeaderView(head);
  assert.deepEqual(view.pairs(), [
    [":method", "GET"],
    [":path", "/p"],
    [":authority", "a.example"],
    [":scheme", "http"],
    ["x", "1"],
  ]);
  view.replace(":authority", "b.example");
  assert.equal(head.authority, "b.example");
  assert.equal(head.headers.get("host"), "b.example");
  view.setPairs([[":path", "/q"], ["y", "2"]]);
  assert.equal(head.path, "/q");
  assert.deepEqual(head.headers.entries(), [["host", "b.example"], ["y", "2"]]);
});

Deno.test("lookupProperty() encodes values as Envoy does and splits a dotted path", () => {
  const tree = { a: { n: 7, b: true, s: "x", m: new Map([["k", "v"]]) } };
  assert.deepEqual(lookupProperty(tree, ["a", "n"]), new Uint8Array([7, 0, 0, 0, 0, 0, 0, 0]));
  assert.deepEqual(lookupProperty(tree, ["a", "b"]), new Uint8Array([1]));
  assert.equal(new TextDecoder().decode(lookupProperty(tree, ["a.s"])), "x");
  assert.deepEqual(decodePairs(lookupProperty(tree, ["a", "m"])!), [["k", "v"]]);
  assert.equal(lookupProperty(tree, ["a", "missing"]), undefined);
  assert.equal(lookupProperty(tree, ["a", "s", "deeper"]), undefined);
});

Deno.test("WasmRuntime stops a runaway plugin that meter() instrumented", async () => {
  const p = new Plugin();
  const bytes = p.build(`${LIFECYCLE}
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (loop $spin (br $spin))
      (i32.const 0))`);
  const { runtime } = testRuntime({ "demo/spin": bytes }, {
    instrument: meter,
    fuel: { callback: 1_000_000n, start: 10_000_000n },
  });
  const r = await send(runtime, [spec("demo/spin")]);
  assert.equal(r.status, 503);
  assert.match(
    r.detail ?? "",
    /runaway failure: Fuel budget exhausted in proxy_on_request_headers/,
  );
  runtime.close();
});

Deno.test("metered third-party fixtures behave as unmetered ones", async () => {
  const { runtime } = testRuntime({
    "ext/go": await fixture("go-http-headers.wasm"),
    "ext/legacy": await fixture("rust-legacy-abi010-headers.wasm"),
  }, { instrument: meter });
  const go = spec("ext/go", { pluginConfig: '{"header": "x-wasm-header", "value": "x-value"}' });
  const r = await send(runtime, [go, spec("ext/legacy")], { headers: [["test", "foo"]] });
  assert.equal(r.upstream?.headers.get("test"), "best");
  assert.equal(r.upstream?.headers.get("newheader"), "newheadervalue");
  assert.equal(r.headers.get("x-wasm-header"), "x-value");
  runtime.close();
});

Deno.test("the WASI shim gives the plugin its vmConfig.env and logs what it writes to stdout", async () => {
  const p = new Plugin();
  const bytes = p.build(
    `(func (export "proxy_on_context_create") (param i32 i32))
    (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
      (drop (call $environ_sizes_get (i32.const 16) (i32.const 20)))
      (drop (call $environ_get (i32.const 24) (i32.const 512)))
      (i32.store (i32.const 32) (i32.const 512))
      (i32.store (i32.const 36) (i32.sub (i32.load (i32.const 20)) (i32.const 1)))
      (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 40)))
      (i32.const 1))
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (call $proc_exit (i32.const 3))
      (i32.const 0))`,
    `(import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_unstable" "proc_exit" (func $proc_exit (param i32)))`,
  );
  const { runtime, logs } = testRuntime({ "demo/wasi": bytes });
  const plugin = spec("demo/wasi", { env: { GREETING: "hello" } });
  await runtime.vm(plugin);
  assert.deepEqual(logs[0], { plugin: "demo/wasi", level: 2, message: "GREETING=hello" });
  const r = await send(runtime, [plugin]);
  assert.equal(r.status, 503);
  assert.match(r.detail ?? "", /exit failure: proc_exit\(3\) in proxy_on_request_headers/);
  runtime.close();
});
