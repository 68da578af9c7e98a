/**
 * The AssemblyScript test plugins build with the real SDK and have the shape a proxy-wasm host
 * meets in the field: ABI 0.2.0 marker, `malloc` allocator, `wasi_unstable.proc_exit`, no
 * `env.abort`. Running them is the host's tests' job.
 */
import assert from "node:assert/strict";
import { buildPlugins, type PluginName, PLUGINS } from "./plugins/build.ts";

const paths = await buildPlugins();

async function moduleOf(name: PluginName): Promise<WebAssembly.Module> {
  return new WebAssembly.Module(await Deno.readFile(paths[name]));
}

function importNames(module: WebAssembly.Module): string[] {
  return WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}`);
}

/** Each plugin's own imports beyond what every SDK plugin needs. */
const OWN_IMPORTS: Record<PluginName, string[]> = {
  headers: ["env.proxy_add_header_map_value", "env.proxy_remove_header_map_value"],
  deny: ["env.proxy_get_header_map_value", "env.proxy_send_local_response"],
  http_call: ["env.proxy_http_call", "env.proxy_continue_stream", "env.proxy_send_local_response"],
  tick: ["env.proxy_set_tick_period_milliseconds", "env.proxy_add_header_map_value"],
  shared_data: ["env.proxy_get_shared_data", "env.proxy_set_shared_data"],
  counter: ["env.proxy_define_metric", "env.proxy_increment_metric"],
  properties: ["env.proxy_get_property", "env.proxy_add_header_map_value"],
  trap: ["env.proxy_get_header_map_value"],
};

const COMMON_IMPORTS = [
  "env.proxy_log",
  "env.proxy_get_buffer_bytes",
  "env.proxy_get_property",
  "env.proxy_set_effective_context",
  "wasi_unstable.proc_exit",
];

for (const name of PLUGINS) {
  Deno.test(`buildPlugins() builds ${name} with the SDK's imports and exports`, async () => {
    const module = await moduleOf(name);
    const imports = importNames(module);
    for (const want of [...COMMON_IMPORTS, ...OWN_IMPORTS[name]]) {
      assert(imports.includes(want), `${name} should import ${want}: ${imports.join(" ")}`);
    }
    assert(!imports.includes("env.abort"), `${name} imports env.abort`);
    for (const i of imports) assert(/^(env\.proxy_|wasi_unstable\.)/.test(i), `${name}: ${i}`);
    const exports = WebAssembly.Module.exports(module).map((e) => e.name);
    for (
      const want of [
        "memory",
        "malloc",
        "proxy_abi_version_0_2_0",
        "proxy_on_context_create",
        "proxy_on_configure",
        "proxy_on_request_headers",
        "proxy_on_response_headers",
        "proxy_on_http_call_response",
        "proxy_on_tick",
      ]
    ) assert(exports.includes(want), `${name} should export ${want}`);
  });
}

Deno.test("buildPlugins() plugins run their start section and register a root context", async () => {
  // Top-level code (registerRootContext) runs in the start section at instantiation; with every
  // import answering Ok it must not trap or exit.
  for (const name of PLUGINS) {
    const module = await moduleOf(name);
    const exits: number[] = [];
    const imports: Record<string, Record<string, (...args: number[]) => number>> = {};
    for (const i of WebAssembly.Module.imports(module)) {
      imports[i.module] ??= {};
      imports[i.module][i.name] = i.name === "proc_exit"
        ? (code) => (exits.push(code), 0)
        : () => 0;
    }
    const instance = new WebAssembly.Instance(module, imports);
    assert.deepEqual(exits, [], `${name} exited during start`);
    assert(instance.exports.memory instanceof WebAssembly.Memory);
  }
});

Deno.test("buildPlugins() reuses the modules it built", async () => {
  const again = await buildPlugins();
  assert.deepEqual(again, paths);
  const bytes = await Deno.readFile(paths.deny);
  assert.deepEqual([...bytes.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d]);
});
