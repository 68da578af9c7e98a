// Helpers shared by the test plugins: reading pluginConfig, properties and shared data.
import * as imports from "@solo-io/proxy-runtime/imports";
import { get_property, Reference } from "@solo-io/proxy-runtime/runtime";

/** The string value of `"key":"value"` in a flat JSON object; "" when absent. */
export function configField(config: string, key: string): string {
  const marker = '"' + key + '":"';
  const start = config.indexOf(marker);
  if (start < 0) return "";
  const from = start + marker.length;
  const end = config.indexOf('"', from);
  return end < 0 ? "" : config.substring(from, end);
}

/** A property by its path segments (`["request", "path"]`), as text. */
export function property(segments: string[]): string {
  return String.UTF8.decode(get_property(segments.join(String.fromCharCode(0))));
}

/** A shared-data value as text ("" when the key is absent) and its CAS. */
export class Shared {
  value: string = "";
  cas: u32 = 0;
}

// The SDK's own get/set_shared_data pass the output pointers the wrong way round, so the plugins
// call the ABI directly.
export function sharedGet(key: string): Shared {
  const name = String.UTF8.encode(key);
  const data = new Reference<usize>();
  const size = new Reference<usize>();
  const cas = new Reference<u32>();
  const out = new Shared();
  const result = imports.proxy_get_shared_data(
    changetype<usize>(name),
    name.byteLength,
    data.ptr(),
    size.ptr(),
    cas.ptr(),
  );
  if (result != 0) return out;
  out.value = String.UTF8.decodeUnsafe(data.data, size.data);
  out.cas = cas.data;
  return out;
}

/** Sets a shared-data value if its CAS still matches; returns whether it was written. */
export function sharedSet(key: string, value: string, cas: u32): bool {
  const name = String.UTF8.encode(key);
  const bytes = String.UTF8.encode(value);
  const result = imports.proxy_set_shared_data(
    changetype<usize>(name),
    name.byteLength,
    changetype<usize>(bytes),
    bytes.byteLength,
    cas,
  );
  return result == 0;
}
