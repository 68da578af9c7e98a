/**
 * One proxy-wasm VM: an instance of a plugin's module with its root context, the stream contexts
 * of requests in flight, its tick timer and its outstanding http calls (l7.md §5.5 lifecycle).
 *
 * Invariants:
 * - Every call into the guest goes through {@link WasmVm.invoke}: it sets the effective context,
 *   refills the fuel global when the module is metered, and turns any trap or thrown error into a
 *   {@link WasmHostError} that marks the VM failed. A failed VM runs nothing again.
 * - Asynchronous deliveries (tick, http call response, queue ready) are dropped once the VM is
 *   failed or closed, or when the stream context that made the call is gone.
 * - Timers are unref'd and stopped on close; calls are bounded by `calls.ts`.
 * - Closing runs the root's `proxy_on_done`; when it answers false the VM keeps serving its
 *   timers and calls until the plugin calls `proxy_done` from the root context, at most
 *   {@link DONE_TIMEOUT_MS}; then `proxy_on_delete` on the root.
 */
import type {
  GrpcCaller,
  GrpcCallRequest,
  HttpCaller,
  HttpCallRequest,
  WasmPluginSpec,
} from "../spec.ts";
import { type AbiVersion, BufferType, detectAbi, Status } from "./abi.ts";
import { Calls } from "./calls.ts";
import { BufferSlot, type HeaderView, type HostContext } from "./context.ts";
import { envImports, type HostVm } from "./env_imports.ts";
import { ProcExit, WasmHostError } from "./errors.ts";
import { GuestMemory } from "./memory.ts";
import type { WasmMetrics } from "./metrics.ts";
import {
  lookupProperty,
  type NodeInfo,
  pluginProperties,
  type PropertyTree,
} from "./properties.ts";
import type { SharedStore } from "./shared.ts";
import { wasiImports } from "./wasi.ts";
import { FUEL_GLOBAL } from "../meter.ts";

/** Longest wait for `proxy_done` after the root's `proxy_on_done` answered "not yet", ms. */
export const DONE_TIMEOUT_MS = 10_000;

/** What a VM shares with its runtime. */
export interface VmServices {
  readonly metrics: WasmMetrics;
  readonly shared: SharedStore;
  readonly node: NodeInfo;
  readonly httpCaller?: HttpCaller;
  readonly grpcCaller?: GrpcCaller;
  /** Plugin log lines (level is `proxy_log_level_t`). */
  log(plugin: string, level: number, message: string): void;
  /** The level reported by `proxy_get_log_level`. */
  readonly logLevel: number;
  /** Fuel per callback and for start-up, when the module is metered. */
  readonly fuel: { readonly callback: bigint; readonly start: bigint };
}

type Export = (...args: number[]) => unknown;

type ImportObject = Record<string, Record<string, (...args: never[]) => unknown>>;

/**
 * The import object of a VM: `env`, and the WASI table as `wasi_snapshot_preview1` and the
 * legacy `wasi_unstable`.
 */
function hostImports(vm: HostVm, environ: readonly string[]): ImportObject {
  const wasi = wasiImports({ memory: vm.memory, environ, log: (l, m) => vm.log(l, m) });
  return { env: envImports(vm), wasi_snapshot_preview1: wasi, wasi_unstable: wasi };
}

/** Every `module.name` the host provides, to check a module's import section against. */
export function providedImports(): Set<string> {
  const imports = hostImports({ memory: new GuestMemory() } as HostVm, []);
  return new Set(
    Object.entries(imports).flatMap(([m, fns]) => Object.keys(fns).map((n) => `${m}.${n}`)),
  );
}

/** A context that host functions can act on; streams add their own slots. */
export class BaseContext implements HostContext {
  readonly id: number;
  readonly rootId: number;
  readonly maps = new Map<number, HeaderView>();
  readonly buffers = new Map<number, BufferSlot>();
  callStatus?: HostContext["callStatus"];
  stream?: HostContext["stream"];
  /** Woken when the VM fails while this context waits for the plugin. */
  onVmFailure?: (e: WasmHostError) => void;
  #tree: PropertyTree | (() => PropertyTree);
  #set?: Map<string, Uint8Array>;

  /** @param tree The properties, or a function that builds them on the first lookup */
  constructor(id: number, rootId: number, tree: PropertyTree | (() => PropertyTree)) {
    this.id = id;
    this.rootId = rootId;
    this.#tree = tree;
  }

  property(path: readonly string[]): Uint8Array | undefined {
    if (typeof this.#tree === "function") this.#tree = this.#tree();
    return this.#set?.get(path.join("\0")) ?? lookupProperty(this.#tree, path);
  }

  setProperty(path: readonly string[], value: Uint8Array): void {
    (this.#set ??= new Map()).set(path.join("\0"), value);
  }
}

/** One instance of a plugin module. */
export class WasmVm implements HostVm {
  readonly spec: WasmPluginSpec;
  readonly abi: AbiVersion;
  readonly memory = new GuestMemory();
  readonly metrics: WasmMetrics;
  readonly shared: SharedStore;
  readonly root: BaseContext;
  readonly pluginTree: PropertyTree;
  #services: VmServices;
  #exports: Record<string, Export> = {};
  #fuel?: WebAssembly.Global;
  #contexts = new Map<number, BaseContext>();
  #effective?: BaseContext;
  #nextId = 1;
  #tick?: ReturnType<typeof setInterval>;
  #calls: Calls;
  #streamWarned = false;
  #pendingDone?: ReturnType<typeof setTimeout>;
  #config: BufferSlot;
  #failure?: WasmHostError;
  #closed = false;

  /**
   * Instantiates a module and starts its root context.
   *
   * @param module The compiled (and, in production, metered) module
   * @param spec The plugin
   * @param services Runtime-wide stores, caller and log
   * @returns The started VM
   * @throws {WasmHostError} `compile` for a module that is not proxy-wasm, `start`/`config`/
   *   `exit`/`runaway` when starting failed
   */
  static start(module: WebAssembly.Module, spec: WasmPluginSpec, services: VmServices): WasmVm {
    const abi = detectAbi(module);
    if (!abi) throw new WasmHostError("compile", spec.ref, "No proxy_abi_version_* export");
    const vm = new WasmVm(spec, abi, services);
    vm.#instantiate(module);
    vm.#boot();
    return vm;
  }

  private constructor(spec: WasmPluginSpec, abi: AbiVersion, services: VmServices) {
    this.spec = spec;
    this.abi = abi;
    this.#services = services;
    this.metrics = services.metrics;
    this.shared = services.shared;
    this.#config = new BufferSlot(new TextEncoder().encode(spec.pluginConfig));
    this.pluginTree = pluginProperties(spec, services.node);
    this.root = this.#newContext(this.#nextId++, 0, this.pluginTree);
    this.#calls = new Calls(
      {
        root: this.root,
        alive: (ctx) => this.#contexts.has(ctx.id),
        deliver: (name, args) => this.#deliver(this.root, name, args),
      },
      services.httpCaller,
      services.grpcCaller,
    );
  }

  #instantiate(module: WebAssembly.Module): void {
    const environ = Object.entries(this.spec.env).map(([k, v]) => `${k}=${v}`);
    const imports = hostImports(this, environ);
    for (const i of WebAssembly.Module.imports(module)) {
      if (i.kind !== "function" || !imports[i.module]?.[i.name]) {
        throw new WasmHostError("compile", this.spec.ref, `Unknown import ${i.module}.${i.name}`);
      }
    }
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(module, imports);
    } catch (e) {
      throw this.#fail(e, "start");
    }
    const ex = instance.exports as Record<string, unknown>;
    for (const [k, v] of Object.entries(ex)) {
      if (typeof v === "function") this.#exports[k] = v as Export;
    }
    const alloc = this.#exports.malloc ?? this.#exports.proxy_on_memory_allocate;
    if (!(ex.memory instanceof WebAssembly.Memory) || !alloc) {
      throw new WasmHostError("compile", this.spec.ref, "No memory or allocator export");
    }
    this.memory.bind(ex.memory, (n) => Number(alloc(n)));
    if (ex[FUEL_GLOBAL] instanceof WebAssembly.Global) this.#fuel = ex[FUEL_GLOBAL];
  }

  #boot(): void {
    const fuel = this.#services.fuel.start;
    if (this.#exports._initialize) {
      this.invoke(this.root, "_initialize", [], fuel, "start");
      if (this.#exports.main) this.invoke(this.root, "main", [0, 0], fuel, "start");
    } else if (this.#exports._start) this.invoke(this.root, "_start", [], fuel, "start");
    const id = this.root.id;
    this.invoke(this.root, "proxy_on_context_create", [id, 0], fuel, "start");
    if (
      this.#exports.proxy_on_vm_start &&
      !this.invoke(this.root, "proxy_on_vm_start", [id, 0], fuel, "start")
    ) {
      throw this.#fail(new Error("Returned false"), "config", "proxy_on_vm_start");
    }
    const size = this.#config.bytes.length;
    if (
      this.#exports.proxy_on_configure &&
      !this.invoke(this.root, "proxy_on_configure", [id, size], fuel, "start")
    ) {
      throw this.#fail(new Error("Returned false"), "config", "proxy_on_configure");
    }
  }

  /** Whether the module exports a function. */
  has(name: string): boolean {
    return name in this.#exports;
  }

  /** The failure that stopped this VM, if any. */
  get failure(): WasmHostError | undefined {
    return this.#failure;
  }

  /** Bytes of guest memory. */
  get memoryBytes(): number {
    return this.memory.size;
  }

  /**
   * Calls an export with `ctx` effective; a missing export answers 0.
   *
   * @throws {WasmHostError} when the VM failed before or during the call
   */
  invoke(
    ctx: BaseContext,
    name: string,
    args: number[],
    fuel = this.#services.fuel.callback,
    kind: "start" | "runtime" = "runtime",
  ): number {
    if (this.#failure) throw this.#failure;
    const fn = this.#exports[name];
    if (!fn) return 0;
    const prev = this.#effective;
    this.#effective = ctx;
    if (this.#fuel) this.#fuel.value = fuel;
    try {
      const r = fn(...args);
      return typeof r === "number" ? r : 0;
    } catch (e) {
      throw this.#fail(e, kind, name);
    } finally {
      this.#effective = prev;
    }
  }

  #fail(e: unknown, kind: "start" | "runtime" | "config", where = "instantiation"): WasmHostError {
    if (e instanceof WasmHostError) return e;
    const reason = e instanceof Error ? e.message : String(e);
    const failure = e instanceof ProcExit
      ? new WasmHostError("exit", this.spec.ref, `${reason} in ${where}`)
      : this.#fuel && this.#fuel.value <= 0n
      ? new WasmHostError("runaway", this.spec.ref, `Fuel budget exhausted in ${where}`)
      : new WasmHostError(kind, this.spec.ref, `${reason} in ${where}`);
    this.#failure = failure;
    this.#stopTick();
    this.#services.log(this.spec.ref, 4, failure.message);
    for (const c of this.#contexts.values()) c.onVmFailure?.(failure);
    return failure;
  }

  /**
   * Opens a stream context (`proxy_on_context_create(id, root)`).
   *
   * @param tree The stream's properties
   * @param setup Fills the context's stream slots before the plugin sees it
   */
  openStream(tree: () => PropertyTree, setup: (ctx: BaseContext) => void): BaseContext {
    const ctx = this.#newContext(this.#nextId++, this.root.id, tree);
    setup(ctx);
    this.invoke(ctx, "proxy_on_context_create", [ctx.id, this.root.id]);
    return ctx;
  }

  /** Ends a stream context: `proxy_on_done`, `proxy_on_log`, `proxy_on_delete`. */
  closeStream(ctx: BaseContext): void {
    try {
      if (!this.#failure) {
        this.invoke(ctx, "proxy_on_done", [ctx.id]);
        this.invoke(ctx, "proxy_on_log", [ctx.id]);
        this.invoke(ctx, "proxy_on_delete", [ctx.id]);
      }
    } finally {
      this.#contexts.delete(ctx.id);
    }
  }

  #newContext(
    id: number,
    rootId: number,
    tree: PropertyTree | (() => PropertyTree),
  ): BaseContext {
    const ctx = new BaseContext(id, rootId || id, tree);
    this.#contexts.set(id, ctx);
    return ctx;
  }

  /**
   * Ends the root context (`proxy_on_done`, then `proxy_on_delete` now or after `proxy_done`),
   * stops timers, aborts calls and drops every context; deliveries after this are ignored.
   */
  close(): void {
    if (this.#closed || this.#pendingDone) return;
    if (this.#failure || !this.has("proxy_on_done")) return this.#shutdown();
    let done = true;
    try {
      done = this.invoke(this.root, "proxy_on_done", [this.root.id]) !== 0;
    } catch {
      // #fail logged it; a failed VM has nothing left to finish.
    }
    if (done || this.#failure) return this.#shutdown();
    this.#pendingDone = setTimeout(() => this.#shutdown(), DONE_TIMEOUT_MS);
    Deno.unrefTimer(this.#pendingDone);
  }

  #shutdown(): void {
    if (this.#closed) return;
    clearTimeout(this.#pendingDone);
    if (!this.#failure) {
      try {
        this.invoke(this.root, "proxy_on_delete", [this.root.id]);
      } catch {
        // Logged by #fail; the VM is going away.
      }
    }
    this.#closed = true;
    this.#stopTick();
    this.#calls.close();
    this.#contexts.clear();
  }

  // HostVm

  effective(): HostContext | undefined {
    return this.#effective;
  }

  setEffective(id: number): boolean {
    const ctx = this.#contexts.get(id);
    if (!ctx) return false;
    this.#effective = ctx;
    return true;
  }

  buffer(type: number): BufferSlot | undefined {
    if (type === BufferType.PLUGIN_CONFIGURATION) return this.#config;
    if (type === BufferType.VM_CONFIGURATION) return new BufferSlot(new Uint8Array());
    return undefined;
  }

  log(level: number, message: string): void {
    this.#services.log(this.spec.ref, level, message);
  }

  logLevel(): number {
    return this.#services.logLevel;
  }

  setTick(_rootId: number, ms: number): void {
    this.#stopTick();
    if (ms === 0 || this.#closed) return;
    const tick = setInterval(() => this.#deliver(this.root, "proxy_on_tick", [this.root.id]), ms);
    Deno.unrefTimer(tick);
    this.#tick = tick;
  }

  #stopTick(): void {
    if (this.#tick !== undefined) clearInterval(this.#tick);
    this.#tick = undefined;
  }

  /** An asynchronous delivery: skipped when the VM or context is gone, failures logged. */
  #deliver(ctx: BaseContext, name: string, args: number[]): void {
    if (this.#closed || this.#failure || !this.#contexts.has(ctx.id)) return;
    try {
      this.invoke(ctx, name, args);
    } catch {
      // #fail logged it and woke the waiting streams.
    }
  }

  httpCall(from: HostContext, request: HttpCallRequest): { id: number } | { status: number } {
    return this.#calls.http(from, request);
  }

  grpcCall(
    from: HostContext,
    request: Omit<GrpcCallRequest, "signal">,
  ): { id: number } | { status: number } {
    return this.#calls.grpc(from, request);
  }

  grpcCancel(id: number): number {
    return this.#calls.cancelGrpc(id);
  }

  grpcStream(): number {
    if (!this.#streamWarned) {
      this.#streamWarned = true;
      this.log(3, "gRPC streams (proxy_grpc_stream/proxy_grpc_send) are not supported");
    }
    return Status.UNIMPLEMENTED;
  }

  done(): number {
    if (!this.#pendingDone || this.#effective !== this.root) return Status.NOT_FOUND;
    this.#shutdown();
    return Status.OK;
  }

  registerQueue(_rootId: number, name: string): number | undefined {
    return this.shared.register(
      name,
      (qid) => this.#deliver(this.root, "proxy_on_queue_ready", [this.root.id, qid]),
    );
  }
}
