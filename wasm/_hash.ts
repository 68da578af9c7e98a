/** A short, stable, synchronous digest of text parts, for cache keys and revisions (not security). */

const PRIME = 0x01000193;

/**
 * Two 32-bit FNV-1a lanes with different offsets over the UTF-16 code units of the parts, each
 * part ended by a separator so `["ab", "c"]` and `["a", "bc"]` differ.
 *
 * @param parts Text to digest
 * @returns 16 lowercase hex digits
 */
export function fingerprint(parts: readonly string[]): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (const part of parts) {
    for (let i = 0; i <= part.length; i++) {
      const unit = i < part.length ? part.charCodeAt(i) : 0xffff;
      a = Math.imul(a ^ unit, PRIME);
      b = Math.imul(b ^ unit, PRIME) ^ (a >>> 15);
    }
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}
