/**
 * Header-map serialization (l7.md §5.4): `u32 count`, `count × (u32 key_len, u32 value_len)`,
 * then each key and value followed by a NUL byte; little-endian. Lengths exclude the NUL.
 */

/** A list of header-like pairs. */
export type Pairs = readonly (readonly [string, string])[];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Serializes pairs; an empty map is a 4-byte zero count, as cpp-host emits it.
 *
 * @param pairs The pairs in order
 * @returns The serialized bytes
 */
export function encodePairs(pairs: Pairs): Uint8Array {
  const keys = pairs.map(([k]) => encoder.encode(k));
  const values = pairs.map(([, v]) => encoder.encode(v));
  let size = 4 + pairs.length * 8;
  for (let i = 0; i < pairs.length; i++) size += keys[i].length + values[i].length + 2;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, pairs.length, true);
  let off = 4 + pairs.length * 8;
  for (let i = 0; i < pairs.length; i++) {
    view.setUint32(4 + i * 8, keys[i].length, true);
    view.setUint32(8 + i * 8, values[i].length, true);
    out.set(keys[i], off);
    off += keys[i].length + 1;
    out.set(values[i], off);
    off += values[i].length + 1;
  }
  return out;
}

/**
 * Parses serialized pairs; `size 0` and a lone NUL byte both mean an empty map.
 *
 * @param bytes The serialized map
 * @returns The pairs, or undefined when the bytes are malformed
 */
export function decodePairs(bytes: Uint8Array): [string, string][] | undefined {
  if (bytes.length === 0 || (bytes.length === 1 && bytes[0] === 0)) return [];
  if (bytes.length < 4) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  if (count > (bytes.length - 4) / 8) return undefined;
  let off = 4 + count * 8;
  const out: [string, string][] = [];
  for (let i = 0; i < count; i++) {
    const kl = view.getUint32(4 + i * 8, true);
    const vl = view.getUint32(8 + i * 8, true);
    if (off + kl + vl + 2 > bytes.length) return undefined;
    const key = decoder.decode(bytes.subarray(off, off + kl));
    off += kl + 1;
    const value = decoder.decode(bytes.subarray(off, off + vl));
    off += vl + 1;
    out.push([key, value]);
  }
  return out;
}
