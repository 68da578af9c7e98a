import assert from "node:assert/strict";
import { providedImports } from "../../wasm/host/vm.ts";
import { fixture, send, spec, testRuntime } from "./_host.ts";

const manifest: Record<string, { sha256: string; imports: Record<string, string> }> = JSON.parse(
  await Deno.readTextFile(new URL("../../../shared/fixtures/wasm/manifest.json", import.meta.url)),
);

Deno.test("the host provides every import of every third-party fixture in the manifest", async () => {
  const provided = providedImports();
  for (const [file, entry] of Object.entries(manifest)) {
    const missing = Object.keys(entry.imports).filter((name) => !provided.has(name));
    assert.deepEqual(missing, [], file);
    const bytes = await fixture(file);
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
    );
    assert.equal([...digest].map((b) => b.toString(16).padStart(2, "0")).join(""), entry.sha256);
  }
});

Deno.test("go-http-headers replaces a request header and adds response headers through the chain", async () => {
  const { runtime, logs } = testRuntime({ "ext/go": await fixture("go-http-headers.wasm") });
  const plugin = spec("ext/go", {
    pluginConfig: '{"header": "x-wasm-header", "value": "x-value"}',
  });
  const r = await send(runtime, [plugin], { headers: [["test", "foo"]] }, {
    headers: [["key1", "value1"], ["key2", "value2"]],
  });
  assert.equal(r.upstream?.headers.get("test"), "best");
  assert.deepEqual(r.headers.entries(), [
    ["key1", "value1"],
    ["key2", "value2"],
    ["x-proxy-wasm-go-sdk-example", "http_headers"],
    ["x-proxy-wasm-counter", "1"],
    ["x-wasm-header", "x-value"],
  ]);
  const second = await send(runtime, [plugin]);
  assert.equal(second.headers.get("x-proxy-wasm-counter"), "2");
  const messages = logs.map((l) => l.message);
  assert.ok(messages.includes("header from config: x-wasm-header = x-value"), messages.join("\n"));
  assert.ok(messages.some((m) => m === "request header --> test: best"));
  runtime.close();
});

Deno.test("go-http-headers refuses an invalid config, which fails its requests closed", async () => {
  const { runtime, logs } = testRuntime({ "ext/go": await fixture("go-http-headers.wasm") });
  const r = await send(runtime, [spec("ext/go", { pluginConfig: '{"header": ""}' })]);
  assert.equal(r.status, 503);
  assert.ok(
    logs.some((l) => l.level === 5 && l.message.startsWith("invalid configuration format")),
  );
  runtime.close();
});

Deno.test("rust-envoy-filter-metadata answers locally when the metadata property is set", async () => {
  const { runtime } = testRuntime({ "ext/meta": await fixture("rust-envoy-filter-metadata.wasm") });
  const plugin = spec("ext/meta");
  const metadata = () => ({
    filter_metadata: { "envoy.filters.http.lua": { "uppercased-custom-metadata": "SOME-VALUE" } },
  });
  const r = await send(runtime, [plugin], {}, {}, { metadata });
  assert.equal(r.status, 200);
  assert.equal(r.upstream, undefined);
  assert.equal(r.headers.get("powered-by"), "proxy-wasm");
  assert.equal(r.headers.get("uppercased-metadata"), "SOME-VALUE");
  assert.equal(r.body, 'Custom response with Envoy metadata: "SOME-VALUE"\n');
  const plain = await send(runtime, [plugin], {}, { body: "from upstream" });
  assert.equal(plain.body, "from upstream");
  runtime.close();
});

Deno.test("rust-hello-world logs at VM start and on each tick; on HTTP traffic it fails", async () => {
  const { runtime, logs } = testRuntime({ "ext/hello": await fixture("rust-hello-world.wasm") });
  const vm = await runtime.vm(spec("ext/hello"));
  assert.equal(logs[0]?.message, "Hello, World!");
  vm.invoke(vm.root, "proxy_on_tick", [vm.root.id]);
  assert.match(logs.at(-1)?.message ?? "", /^It's .*, your lucky number is \d+\.$/);
  const closed = await send(runtime, [spec("ext/hello")]);
  assert.equal(closed.status, 503);
  const open = testRuntime({ "ext/hello": await fixture("rust-hello-world.wasm") });
  const r = await send(open.runtime, [spec("ext/hello", { failStrategy: "FAIL_OPEN" })]);
  assert.equal(r.status, 200);
  assert.ok(open.logs.some((l) => l.level === 5 && /missing ContextType/.test(l.message)));
  runtime.close();
  open.runtime.close();
});

Deno.test('cpp-log-request-headers logs each request header under root id ""', async () => {
  const { runtime, logs } = testRuntime({
    "ext/cpp": await fixture("cpp-log-request-headers.wasm"),
  });
  await send(runtime, [spec("ext/cpp")], { headers: [["hello", "World"]] });
  const messages = logs.map((l) => l.message);
  assert.ok(
    messages.some((m) => m.endsWith("print from wasm, hello -> World")),
    messages.join("\n"),
  );
  assert.ok(messages.some((m) => m.endsWith("print from wasm, :path -> /")));
  for (const what of ["onDone", "onLog", "onDelete"]) {
    assert.ok(messages.some((m) => m.includes(`${what} 2`)), what);
  }
  runtime.close();
});

const zigConfig = (http: string) => JSON.stringify({ root: "", http, tcp: "" });

Deno.test("zig-example header-operation rewrites a request path and forces a 500 response", async () => {
  const { runtime, logs } = testRuntime({ "ext/zig": await fixture("zig-example.wasm") });
  const plugin = spec("ext/zig", { pluginConfig: zigConfig("header-operation") });
  const upstream = { headers: [["cache-control", "no-cache"]] as [string, string][] };
  const f = await send(runtime, [plugin], { path: "/force-500" }, upstream);
  assert.equal(f.status, 500);
  assert.equal(f.headers.get("cache-control"), undefined);
  const b = await send(runtime, [plugin], { path: "/badclusters" });
  assert.equal(b.upstream?.path, "/clusters");
  const messages = logs.map((l) => l.message);
  assert.ok(messages.includes('plugin configuration: root="", http="header-operation", stream=""'));
  assert.ok(
    messages.includes("upstream cluster: inbound-vip|80|http|echo.demo.svc.cluster.local "),
  );
  runtime.close();
});

// This build's SDK serializes header maps with a @memcpy of unequal lengths (a safety panic in
// any host): the plugin traps, and the fail strategy decides.
Deno.test("zig-example's SDK panic in proxy_on_response_headers fails the stream closed, or open", async () => {
  const { runtime } = testRuntime({ "ext/zig": await fixture("zig-example.wasm") });
  const closed = spec("ext/zig", { pluginConfig: zigConfig("header-operation") });
  const r = await send(runtime, [closed], { path: "/response-headers" });
  assert.equal(r.status, 503);
  assert.match(r.detail ?? "", /unreachable in proxy_on_response_headers/);
  const open = spec("ext/zig", {
    pluginConfig: zigConfig("header-operation"),
    failStrategy: "FAIL_OPEN",
    vmKey: "zig-open",
  });
  const o = await send(runtime, [open], { path: "/response-headers" }, { body: "upstream" });
  assert.equal(o.status, 200);
  assert.equal(o.body, "upstream");
  runtime.close();
});

Deno.test("zig-example traps in proxy_on_configure on a config without its fields", async () => {
  const { runtime } = testRuntime({ "ext/zig": await fixture("zig-example.wasm") });
  const r = await send(runtime, [spec("ext/zig", { pluginConfig: "{}" })]);
  assert.equal(r.status, 503);
  assert.match(r.detail ?? "", /start failure/);
  runtime.close();
});

Deno.test("rust-legacy-abi010-headers sets headers under ABI 0.1.0", async () => {
  const { runtime, logs } = testRuntime({
    "ext/legacy": await fixture("rust-legacy-abi010-headers.wasm"),
  });
  const r = await send(runtime, [spec("ext/legacy")], { headers: [["server", "envoy"]] });
  assert.equal(r.status, 200);
  assert.equal(r.upstream?.headers.get("newheader"), "newheadervalue");
  assert.equal(r.upstream?.headers.get("server"), "envoy-wasm");
  const messages = logs.map((l) => l.message);
  assert.ok(messages.includes("header path /"), messages.join("\n"));
  assert.ok(messages.includes("onDone 2"));
  runtime.close();
});
