/**
 * @module
 * Wasm plugins (proxy-wasm): the WasmPlugin contract, the module rewriting that bounds each
 * callback's run time (fuel metering), and the host (ABI 0.2.1, 0.2.0 and 0.1.0, with its WASI
 * shim). It must not block the request path on module fetches, nor know the chain or the mesh
 * beyond the contract: `proxy/wasm_filter.ts` puts plugins on the request path.
 */
export type {
  FailStrategy,
  GrpcCaller,
  GrpcCallRequest,
  GrpcCallResponse,
  HttpCaller,
  HttpCallRequest,
  HttpCallResponse,
  ModuleLoader,
  ModuleSource,
  PullPolicy,
  RegistryAuth,
  WasmPhase,
  WasmPluginSpec,
} from "./spec.ts";
export {
  type FailAction,
  failAction,
  WasmRuntime,
  type WasmRuntimeOptions,
} from "./host/runtime.ts";
export { HttpStream, type PhaseResult, type StreamLimits } from "./host/http_stream.ts";
export { WasmHostError, type WasmHostErrorKind } from "./host/errors.ts";
export { WasmVm } from "./host/vm.ts";
export {
  DEFAULT_INITIAL_FUEL,
  FUEL_GLOBAL,
  meter,
  MeterError,
  type MeterErrorKind,
  type MeterOptions,
} from "./meter.ts";
export type { NodeInfo, PropertyTree, StreamFacts } from "./host/properties.ts";
export {
  compileWasmPlugins,
  EMPTY_WASM_PLUGINS,
  type WasmContext,
  WasmPlugins,
} from "./plugins.ts";
export { ModuleFetcher, type ModuleFetcherOptions } from "./fetch.ts";
export { WasmFetchError, type WasmFetchErrorKind } from "./fetch_error.ts";
