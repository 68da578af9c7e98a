/**
 * @module
 * Wasm plugins (proxy-wasm): the WasmPlugin contract, the module rewriting that bounds each
 * callback's run time (fuel metering), and the host. It must not block the request path on
 * module fetches.
 */
export {
  DEFAULT_INITIAL_FUEL,
  FUEL_GLOBAL,
  meter,
  MeterError,
  type MeterErrorKind,
  type MeterOptions,
} from "./meter.ts";
