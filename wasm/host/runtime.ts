/**
 * The VMs of all attached plugins: one per `vmKey`, started on first use (or ahead of requests by
 * {@link WasmRuntime.prepare}), with the stores every VM shares (metrics, shared data, queues).
 * Also the fail-strategy decision (l7.md §4.1), as plain data.
 *
 * Invariants:
 * - Module bytes are fetched and compiled once per source (url, digest, revision) and passed
 *   through `instrument` first: production gives `wasm/meter.ts`'s `meter`, so the module that
 *   runs has the fuel global.
 * - A module that cannot be fetched or compiled is remembered as failed for `retryMs`, then
 *   fetched again. A VM that failed while running stays failed (FAIL_CLOSE: 503, FAIL_OPEN: skipped)
 *   until FAIL_RELOAD or a config change replaces it.
 */
import { log } from "../../log/mod.ts";
import type {
  FailStrategy,
  GrpcCaller,
  HttpCaller,
  ModuleLoader,
  WasmPluginSpec,
} from "../spec.ts";
import { LogLevel } from "./abi.ts";
import { WasmHostError } from "./errors.ts";
import type { StreamLimits } from "./http_stream.ts";
import { WasmMetrics } from "./metrics.ts";
import type { NodeInfo } from "./properties.ts";
import { SharedStore } from "./shared.ts";
import { WasmVm } from "./vm.ts";

/** Options of {@link WasmRuntime}. */
export interface WasmRuntimeOptions {
  /** Fetches module bytes. */
  readonly loader: ModuleLoader;
  /** Sends `proxy_http_call`s; without it they answer `BAD_ARGUMENT`. */
  readonly httpCaller?: HttpCaller;
  /** Sends unary `proxy_grpc_call`s; without it they answer `UNIMPLEMENTED`. */
  readonly grpcCaller?: GrpcCaller;
  /** Rewrites module bytes before compiling; production passes `meter`. @default identity */
  readonly instrument?: (bytes: Uint8Array<ArrayBuffer>) => Uint8Array<ArrayBuffer>;
  /** The `node.*` properties. @default {id: "waypoint", cluster: "waypoint"} */
  readonly node?: NodeInfo;
  /** Fuel per callback and for start-up of metered modules. @default 50M and 2G units */
  readonly fuel?: { readonly callback: bigint; readonly start: bigint };
  /** Per-stream bounds. @default 1 MiB body, 60 s pause */
  readonly limits?: Partial<StreamLimits>;
  /** Where plugin log lines go. @default the process log with the plugin's name */
  readonly log?: (plugin: string, level: number, message: string) => void;
  /** How long a load failure is remembered before fetching again, ms. @default 30000 */
  readonly retryMs?: number;
}

/** What a plugin failure does to the request. */
export type FailAction = "skip" | "deny" | "fail";

/**
 * Istio's fail strategies: a module that never ran (fetch/compile) becomes deny-all RBAC under
 * FAIL_CLOSE and FAIL_RELOAD; a VM failure fails the stream with 503; FAIL_OPEN skips the plugin.
 *
 * @param strategy The plugin's failStrategy
 * @param error The failure
 * @returns What to do with the request
 */
export function failAction(strategy: FailStrategy, error: WasmHostError): FailAction {
  if (strategy === "FAIL_OPEN") return "skip";
  return error.beforeRun ? "deny" : "fail";
}

type Slot =
  | { readonly vm: WasmVm }
  | { readonly loading: Promise<WasmVm> }
  | { readonly error: WasmHostError; readonly until: number };

const LEVELS = ["debug", "debug", "info", "warn", "error", "error"] as const;

function defaultLog(plugin: string, level: number, message: string): void {
  log.log(LEVELS[level] ?? "info", message, { wasmPlugin: plugin });
}

/** All VMs of one waypoint process. */
export class WasmRuntime {
  readonly metrics = new WasmMetrics();
  readonly shared = new SharedStore();
  readonly limits: StreamLimits;
  readonly #options: WasmRuntimeOptions;
  readonly #slots = new Map<string, Slot>();
  readonly #modules = new Map<string, Promise<WebAssembly.Module>>();
  /** The module key of each VM key, to drop compiled modules no VM uses. */
  readonly #moduleOf = new Map<string, string>();

  constructor(options: WasmRuntimeOptions) {
    this.#options = options;
    this.limits = {
      bodyLimit: options.limits?.bodyLimit ?? 1 << 20,
      pauseTimeoutMs: options.limits?.pauseTimeoutMs ?? 60_000,
    };
  }

  /**
   * The VM of a plugin, started on first use.
   *
   * @returns The VM (possibly failed while running: invoking it throws its failure)
   * @throws {WasmHostError} when the module cannot be loaded or the VM cannot start
   */
  vm(spec: WasmPluginSpec): WasmVm | Promise<WasmVm> {
    const slot = this.#slots.get(spec.vmKey);
    if (slot && "vm" in slot) return slot.vm;
    if (slot && "loading" in slot) return slot.loading;
    if (slot && Date.now() < slot.until) throw slot.error;
    this.#moduleOf.set(spec.vmKey, moduleKey(spec));
    const current = () => this.#slots.get(spec.vmKey) === slotOf;
    const loading = this.#start(spec).then(
      (vm) => {
        // A config change while starting dropped this key: the VM serves only this request.
        if (current()) this.#slots.set(spec.vmKey, { vm });
        else vm.close();
        return vm;
      },
      (e) => {
        const error = e instanceof WasmHostError
          ? e
          : new WasmHostError("load", spec.ref, e instanceof Error ? e.message : String(e));
        const until = error.beforeRun ? Date.now() + (this.#options.retryMs ?? 30_000) : Infinity;
        if (current()) this.#slots.set(spec.vmKey, { error, until });
        if (error.beforeRun) this.#modules.delete(moduleKey(spec));
        log.error("WasmPlugin not started", { wasmPlugin: spec.ref, reason: error.message });
        throw error;
      },
    );
    const slotOf: Slot = { loading };
    this.#slots.set(spec.vmKey, slotOf);
    return loading;
  }

  /** Starts the VMs of these plugins in the background, so requests do not wait. */
  async prepare(specs: readonly WasmPluginSpec[]): Promise<void> {
    await Promise.allSettled(specs.map((s) => this.vm(s)));
  }

  /**
   * Reports a VM failure seen by a request: FAIL_RELOAD drops the VM so that the next request
   * starts a new one.
   */
  failed(spec: WasmPluginSpec, vm: WasmVm): void {
    if (spec.failStrategy !== "FAIL_RELOAD") return;
    const slot = this.#slots.get(spec.vmKey);
    if (slot && "vm" in slot && slot.vm === vm) {
      this.#slots.delete(spec.vmKey);
      vm.close();
    }
  }

  /** Closes the VMs whose key is not in `keys` (after a config change). */
  retain(keys: Iterable<string>): void {
    const keep = new Set(keys);
    for (const [key, slot] of this.#slots) {
      if (keep.has(key)) continue;
      if ("vm" in slot) slot.vm.close();
      this.#slots.delete(key);
      this.#moduleOf.delete(key);
    }
    const used = new Set(this.#moduleOf.values());
    for (const key of this.#modules.keys()) if (!used.has(key)) this.#modules.delete(key);
  }

  /** Closes every VM. */
  close(): void {
    this.retain([]);
  }

  /** Plugin metrics as Prometheus text, to append to `/stats/prometheus`. */
  prometheus(): string {
    return this.metrics.prometheus();
  }

  async #start(spec: WasmPluginSpec): Promise<WasmVm> {
    const module = await this.#module(spec);
    const o = this.#options;
    return WasmVm.start(module, spec, {
      metrics: this.metrics,
      shared: this.shared,
      node: o.node ?? { id: "waypoint", cluster: "waypoint" },
      httpCaller: o.httpCaller,
      grpcCaller: o.grpcCaller,
      log: o.log ?? defaultLog,
      logLevel: log.enabled("debug") ? LogLevel.DEBUG : LogLevel.INFO,
      fuel: o.fuel ?? { callback: 50_000_000n, start: 2_000_000_000n },
    });
  }

  #module(spec: WasmPluginSpec): Promise<WebAssembly.Module> {
    const key = moduleKey(spec);
    let module = this.#modules.get(key);
    if (!module) {
      module = this.#compile(spec);
      this.#modules.set(key, module);
    }
    return module;
  }

  async #compile(spec: WasmPluginSpec): Promise<WebAssembly.Module> {
    let bytes: Uint8Array;
    try {
      bytes = await this.#options.loader.load(spec.source);
    } catch (e) {
      throw new WasmHostError("load", spec.ref, e instanceof Error ? e.message : String(e));
    }
    try {
      const plain = bytes.buffer instanceof ArrayBuffer
        ? bytes as Uint8Array<ArrayBuffer>
        : new Uint8Array(bytes);
      return await WebAssembly.compile(this.#options.instrument?.(plain) ?? plain);
    } catch (e) {
      throw new WasmHostError("compile", spec.ref, e instanceof Error ? e.message : String(e));
    }
  }
}

function moduleKey(spec: WasmPluginSpec): string {
  const s = spec.source;
  return `${s.url}\n${s.sha256 ?? ""}\n${s.revision}`;
}
