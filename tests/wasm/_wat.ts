/** WAT to wasm with every proposal wabt knows, and instantiation with a fuel budget, for tests. */
import wabtInit from "wabt";
import { FUEL_GLOBAL } from "../../wasm/mod.ts";

const wabt = await wabtInit();

const FEATURES = {
  exceptions: true,
  threads: true,
  tail_call: true,
  function_references: true,
  multi_memory: true,
  extended_const: true,
  relaxed_simd: true,
  memory64: true,
};

/** Assembles WAT text; throws with wabt's message on a syntax or validation error. */
export function wat(text: string): Uint8Array<ArrayBuffer> {
  const module = wabt.parseWat("test.wat", text, FEATURES);
  try {
    // wabt's typings omit the features argument; without it threads and the like fail to validate.
    (module as unknown as { validate(features: object): void }).validate(FEATURES);
    return new Uint8Array(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

/** Exports of a fresh instance, typed loosely for calling. */
export type Exports = Record<string, CallableFunction | WebAssembly.Global | WebAssembly.Memory>;

/** Instantiates `bytes`; when `fuel` is given, sets the fuel global to it first. */
export function instantiate(
  bytes: Uint8Array<ArrayBuffer>,
  imports: WebAssembly.Imports = {},
  fuel?: bigint,
): Exports {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), imports);
  const exports = instance.exports as Exports;
  if (fuel !== undefined) fuelOf(exports).value = fuel;
  return exports;
}

/** The fuel global of a metered instance. */
export function fuelOf(exports: Exports): WebAssembly.Global {
  const fuel = exports[FUEL_GLOBAL];
  if (!(fuel instanceof WebAssembly.Global)) throw new Error(`No ${FUEL_GLOBAL} export`);
  return fuel;
}
