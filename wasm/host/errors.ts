/**
 * The one error type of the proxy-wasm host (STYLE habit 12): which plugin, what went wrong, and
 * whether the failure happened before the plugin ran (load) or while it ran (runtime). The fail
 * strategy (l7.md §4.1) turns the kind into a response in `wasm/host/runtime.ts`.
 */

/** Closed set of plugin failure kinds. */
export type WasmHostErrorKind =
  | "load" // the module bytes could not be had (fetch, digest)
  | "compile" // the bytes are not a usable proxy-wasm module (no marker, no allocator, bad import)
  | "start" // a trap or error while the VM started (`_initialize`, `proxy_on_vm_start`)
  | "config" // `proxy_on_vm_start` or `proxy_on_configure` answered false
  | "runtime" // a trap or host-side error during a callback
  | "runaway" // the fuel budget of one callback ran out
  | "exit"; // the module called WASI `proc_exit`

/** A plugin failure, naming the WasmPlugin. */
export class WasmHostError extends Error {
  readonly kind: WasmHostErrorKind;
  /** `namespace/name` of the WasmPlugin. */
  readonly plugin: string;
  readonly detail: string;

  /**
   * @param kind What failed
   * @param plugin `namespace/name` of the WasmPlugin
   * @param detail Why
   */
  constructor(kind: WasmHostErrorKind, plugin: string, detail: string) {
    super(`WasmPlugin ${plugin}: ${kind} failure: ${detail}`);
    this.name = "WasmHostError";
    this.kind = kind;
    this.plugin = plugin;
    this.detail = detail;
  }

  /** Whether the failure happened before the plugin ever ran (Istio's fetch/convert failure). */
  get beforeRun(): boolean {
    return this.kind === "load" || this.kind === "compile";
  }
}

/** Thrown out of WASI `proc_exit` to unwind the guest; becomes an `exit` failure. */
export class ProcExit extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`proc_exit(${code})`);
    this.name = "ProcExit";
    this.code = code;
  }
}
