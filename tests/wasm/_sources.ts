/** Module sources and failure checks shared by the fetch tests. */
import assert from "node:assert/strict";
import { WasmFetchError } from "../../wasm/fetch_error.ts";
import type { ModuleSource } from "../../wasm/spec.ts";

/** A source with `IfNotPresent` and revision "1" unless overridden. */
export function source(url: string, extra: Partial<ModuleSource> = {}): ModuleSource {
  return { url, pullPolicy: "IfNotPresent", revision: "1", ...extra };
}

/** The WasmFetchError a load fails with (the test fails if it succeeds or throws another). */
export async function fetchError(promise: Promise<unknown>): Promise<WasmFetchError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof WasmFetchError, `not a WasmFetchError: ${error}`);
    return error;
  }
  assert.fail("the load should have failed");
}
