/**
 * Test kit for the proxy-wasm host: WAT plugins with a tiny hand-written "SDK" (imports, bump
 * allocator, lifecycle), plugin specs, an in-memory loader, and one request through
 * `wasmFilter` plus a fake router, as the chain runs it.
 */
import {
  type Body,
  bytesBody,
  compose,
  type Filter,
  HeaderMap,
  HttpContext,
  LocalReply,
  readAll,
  runChain,
} from "../../http/mod.ts";
import type { RequestState } from "../../proxy/http_state.ts";
import { wasmFilter, type WasmFilterOptions } from "../../proxy/wasm_filter.ts";
import {
  type ModuleLoader,
  type WasmPhase,
  type WasmPluginSpec,
  WasmRuntime,
  type WasmRuntimeOptions,
} from "../../wasm/mod.ts";
import { wat } from "./_wat.ts";

const IMPORTS = `
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value" (func $remove (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $set_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $effective (param i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get_shared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set_shared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $incr (param i32 i64) (result i32)))
  (import "env" "proxy_get_property" (func $prop (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 4)
  (global $heap (mut i32) (i32.const 65536))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
`;

/** Default lifecycle exports; a plugin that defines its own leaves these out. */
export const LIFECYCLE = `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
`;

/**
 * A WAT plugin under construction. Strings become data segments; `$slot` (8) and `$size` (12)
 * are the return slots host functions write into.
 */
export class Plugin {
  #data: string[] = [];
  #off = 1024;

  /** `(i32.const ptr) (i32.const len)` of a string placed in memory. */
  str(text: string): string {
    const bytes = new TextEncoder().encode(text);
    const off = this.#off;
    const escaped = [...bytes].map((b) => "\\" + b.toString(16).padStart(2, "0")).join("");
    this.#data.push(`(data (i32.const ${off}) "${escaped}")`);
    this.#off += bytes.length + 1;
    return `(i32.const ${off}) (i32.const ${bytes.length})`;
  }

  /** Serialized header pairs placed in memory, as `(i32.const ptr) (i32.const len)`. */
  pairs(pairs: [string, string][]): string {
    const enc = new TextEncoder();
    const parts = pairs.map(([k, v]) => [enc.encode(k), enc.encode(v)]);
    const head = new DataView(new ArrayBuffer(4 + pairs.length * 8));
    head.setUint32(0, pairs.length, true);
    parts.forEach(([k, v], i) => {
      head.setUint32(4 + i * 8, k.length, true);
      head.setUint32(8 + i * 8, v.length, true);
    });
    const bytes = [...new Uint8Array(head.buffer)];
    for (const [k, v] of parts) bytes.push(...k, 0, ...v, 0);
    const off = this.#off;
    this.#data.push(
      `(data (i32.const ${off}) "${
        bytes.map((b) => "\\" + b.toString(16).padStart(2, "0")).join("")
      }")`,
    );
    this.#off += bytes.length + 1;
    return `(i32.const ${off}) (i32.const ${bytes.length})`;
  }

  /**
   * The module bytes: imports (ours, then `imports`), memory, allocator, the ABI marker, `body`
   * and the strings.
   */
  build(body: string, imports = "", marker = "proxy_abi_version_0_2_1"): Uint8Array {
    return wat(`(module ${imports} ${IMPORTS}
      (func (export "${marker}"))
      ${body}
      ${this.#data.join("\n")})`);
  }
}

/** A spec with test defaults; `ref` names the module in {@link memoryLoader}. */
export function spec(ref: string, o: Partial<WasmPluginSpec> = {}): WasmPluginSpec {
  return {
    ref,
    name: ref.replace("/", "."),
    rootId: "",
    phase: "AUTHN",
    failStrategy: "FAIL_CLOSE",
    pluginConfig: "",
    env: {},
    source: { url: `file:///${ref}.wasm`, pullPolicy: "IfNotPresent", revision: "1" },
    vmKey: `${ref}#${o.pluginConfig ?? ""}#${o.rootId ?? ""}`,
    ...o,
  };
}

/** A loader that serves modules by spec ref (`file:///<ref>.wasm`). */
export function memoryLoader(modules: Record<string, Uint8Array>): ModuleLoader {
  return {
    load(source) {
      const ref = source.url.replace(/^file:\/\/\//, "").replace(/\.wasm$/, "");
      const bytes = modules[ref];
      return bytes
        ? Promise.resolve(bytes)
        : Promise.reject(new Error(`${source.url}: no such file`));
    },
  };
}

/** A plugin log line. */
export interface LogLine {
  readonly plugin: string;
  readonly level: number;
  readonly message: string;
}

/** A runtime whose plugin logs are collected. */
export function testRuntime(
  modules: Record<string, Uint8Array>,
  o: Partial<WasmRuntimeOptions> = {},
): { runtime: WasmRuntime; logs: LogLine[] } {
  const logs: LogLine[] = [];
  const runtime = new WasmRuntime({
    loader: memoryLoader(modules),
    log: (plugin, level, message) => logs.push({ plugin, level, message }),
    ...o,
  });
  return { runtime, logs };
}

/** The request to send. */
export interface TestRequest {
  readonly method?: string;
  readonly path?: string;
  readonly authority?: string;
  readonly headers?: [string, string][];
  readonly body?: string;
  /** A streamed body of unknown length, chunk by chunk (instead of `body`). */
  readonly chunks?: string[];
  /** Trailers after the body (which then has no declared length). */
  readonly trailers?: [string, string][];
}

/** What the upstream answers. */
export interface TestUpstream {
  /** Thrown by the router instead of answering, as a later filter's local reply. */
  readonly reply?: LocalReply;
  readonly status?: number;
  readonly headers?: [string, string][];
  readonly body?: string;
  readonly trailers?: [string, string][];
}

/** What came back, and what the upstream saw. */
export interface TestResult {
  readonly status: number;
  readonly headers: HeaderMap;
  readonly body: string;
  readonly detail?: string;
  readonly flag: string;
  readonly trailers?: HeaderMap;
  readonly upstream?: {
    readonly headers: HeaderMap;
    readonly path: string;
    readonly body: string;
    readonly trailers?: HeaderMap;
  };
}

/** The state a request carries, with these plugins attached to every phase. */
export function testState(plugins: readonly WasmPluginSpec[]): RequestState {
  return {
    config: {
      wasm: {
        pluginsFor: (_s: unknown, phase: WasmPhase) => plugins.filter((p) => p.phase === phase),
      },
    },
    client: "10.1.2.3:40000",
    peer: { identity: "spiffe://cluster.local/ns/demo/sa/client", address: "127.0.0.1", port: 1 },
    target: { address: "10.96.0.10", port: 80 },
    requestId: "req-1",
    destination: {
      kind: "service",
      service: {
        kind: "Service",
        namespace: "demo",
        name: "echo",
        hostname: "echo.demo.svc.cluster.local",
      },
    },
    attempts: 0,
    codec: "http1",
  } as unknown as RequestState;
}

/**
 * Sends one request through `wasmFilter(AUTHN)` and a fake router.
 *
 * @param runtime The runtime
 * @param plugins The plugins attached (phase AUTHN)
 * @param request The request
 * @param upstream The router's answer
 */
export async function send(
  runtime: WasmRuntime,
  plugins: readonly WasmPluginSpec[],
  request: TestRequest = {},
  upstream: TestUpstream = {},
  options: WasmFilterOptions = {},
): Promise<TestResult> {
  let seen: TestResult["upstream"];
  const router: Filter<RequestState> = async (ctx) => {
    if (upstream.reply) throw upstream.reply;
    const body = new TextDecoder().decode(await readAll(ctx.request.body, 1 << 24));
    const { headers, path } = ctx.request.head;
    seen = { headers, path, body, trailers: ctx.request.body.trailers };
    ctx.response = {
      head: { status: upstream.status ?? 200, headers: new HeaderMap(upstream.headers ?? []) },
      body: bytesBody(upstream.body ?? "ok", trailerMap(upstream.trailers)),
    };
  };
  const headers = new HeaderMap(request.headers ?? []);
  if (request.body !== undefined) headers.set("content-length", String(request.body.length));
  const ctx = new HttpContext({
    head: {
      method: request.method ?? "GET",
      path: request.path ?? "/",
      authority: request.authority ?? "echo.demo",
      scheme: "http",
      version: "1.1",
      headers,
    },
    body: request.chunks || request.trailers
      ? chunkedBody(request.chunks ?? [request.body ?? ""], trailerMap(request.trailers))
      : bytesBody(request.body ?? ""),
  }, testState(plugins));
  await runChain(compose([wasmFilter(runtime, "AUTHN", options), router]), ctx);
  const res = ctx.response!;
  const body = new TextDecoder().decode(await readAll(res.body, 1 << 24));
  return {
    status: res.head.status,
    headers: res.head.headers,
    body,
    detail: ctx.localReply?.detail,
    flag: ctx.flag,
    trailers: res.body.trailers,
    upstream: seen,
  };
}

/** Reads a third-party fixture from `shared/fixtures/wasm/`. */
export function fixture(name: string): Promise<Uint8Array> {
  return Deno.readFile(new URL(`../../../shared/fixtures/wasm/${name}`, import.meta.url));
}

function trailerMap(trailers?: [string, string][]): HeaderMap | undefined {
  return trailers && new HeaderMap(trailers);
}

/** A body of unknown length that yields these chunks, then these trailers. */
function chunkedBody(chunks: string[], trailers?: HeaderMap): Body {
  const queue = chunks.map((c) => new TextEncoder().encode(c));
  return {
    read: () => Promise.resolve(queue.shift() ?? null),
    get trailers() {
      return queue.length === 0 ? trailers : undefined;
    },
    length: undefined,
    cancel: () => queue.splice(0),
  };
}
