/**
 * HPACK (RFC 7541): a decoder with the static and dynamic tables, table size updates and Huffman,
 * and an encoder that uses only the static table and literals without indexing.
 *
 * Invariants:
 * - Field names and values are byte strings carried as latin1 JS strings (one char per octet).
 * - The decoder's dynamic table never exceeds the size we advertised (`maxTableSize`); a size
 *   update above it, or one after the first field of a block, is a COMPRESSION_ERROR.
 * - The encoder never inserts into the peer's dynamic table, and starts its first block (and the
 *   first after {@link HpackEncoder.tableSizeChanged}) with a size update to 0, which every
 *   decoder accepts whatever its SETTINGS_HEADER_TABLE_SIZE.
 */
import { Buffer } from "node:buffer";
import { HUFFMAN_CODES, HUFFMAN_LENGTHS, STATIC_TABLE } from "./hpack_tables.ts";

/** A malformed header block; the connection must end with COMPRESSION_ERROR. */
export class HpackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HpackError";
  }
}

/** A header field as (name, value). */
export type HeaderField = [name: string, value: string];

/** Result of {@link HpackDecoder.decode}. */
export interface DecodedBlock {
  /** The fields in order; empty when `tooLarge`. */
  readonly fields: HeaderField[];
  /** The list exceeded `maxListSize` (RFC 9113 §6.5.2 accounting); the table is still updated. */
  readonly tooLarge: boolean;
}

const ENTRY_OVERHEAD = 32;

/** Decodes header blocks of one connection direction. */
export class HpackDecoder {
  /** Dynamic table, oldest first. */
  #entries: HeaderField[] = [];
  #size = 0;
  #maxSize: number;
  readonly #limit: number;

  /** @param maxTableSize Our SETTINGS_HEADER_TABLE_SIZE @default 4096 */
  constructor(maxTableSize = 4096) {
    this.#limit = maxTableSize;
    this.#maxSize = maxTableSize;
  }

  /** Bytes the dynamic table holds now (RFC 7541 §4.1). */
  get tableSize(): number {
    return this.#size;
  }

  /** Entries of the dynamic table, newest first (index 62 first). */
  get dynamicEntries(): readonly HeaderField[] {
    return [...this.#entries].reverse();
  }

  /**
   * Decodes one complete header block.
   *
   * @param block The concatenated header block fragments
   * @param maxListSize Fields beyond this decoded size are dropped and `tooLarge` is set
   * @throws HpackError on any encoding error
   */
  decode(block: Uint8Array, maxListSize = Infinity): DecodedBlock {
    const fields: HeaderField[] = [];
    let listSize = 0;
    let tooLarge = false;
    const cur = { at: 0 };
    let sawField = false;
    while (cur.at < block.length) {
      const b = block[cur.at];
      let field: HeaderField;
      if (b & 0x80) {
        field = this.#lookup(readInt(block, cur, 7));
      } else if (b & 0x40) {
        field = this.#literal(block, cur, 6);
        this.#insert(field);
      } else if (b & 0x20) {
        if (sawField) throw new HpackError("dynamic table size update after a header field");
        const size = readInt(block, cur, 5);
        if (size > this.#limit) {
          throw new HpackError(`table size update to ${size} exceeds our ${this.#limit}`);
        }
        this.#maxSize = size;
        this.#evict(0);
        continue;
      } else {
        field = this.#literal(block, cur, 4); // without indexing (0000) or never indexed (0001)
      }
      sawField = true;
      if (tooLarge) continue;
      listSize += field[0].length + field[1].length + ENTRY_OVERHEAD;
      if (listSize > maxListSize) {
        tooLarge = true;
        fields.length = 0;
      } else {
        fields.push(field);
      }
    }
    return { fields, tooLarge };
  }

  #lookup(index: number): HeaderField {
    if (index === 0) throw new HpackError("index 0");
    if (index <= STATIC_TABLE.length) {
      const e = STATIC_TABLE[index - 1];
      return [e[0], e[1]];
    }
    const i = this.#entries.length - (index - STATIC_TABLE.length);
    if (i < 0) throw new HpackError(`index ${index} beyond the dynamic table`);
    const e = this.#entries[i];
    return [e[0], e[1]];
  }

  #literal(block: Uint8Array, cur: { at: number }, prefix: number): HeaderField {
    const index = readInt(block, cur, prefix);
    const name = index === 0 ? readString(block, cur) : this.#lookup(index)[0];
    return [name, readString(block, cur)];
  }

  #insert(field: HeaderField): void {
    const size = field[0].length + field[1].length + ENTRY_OVERHEAD;
    if (size > this.#maxSize) {
      this.#entries = [];
      this.#size = 0;
      return;
    }
    this.#evict(size);
    this.#entries.push(field);
    this.#size += size;
  }

  /** Evicts oldest entries until `room` more bytes fit. */
  #evict(room: number): void {
    let drop = 0;
    while (this.#size + room > this.#maxSize && drop < this.#entries.length) {
      const e = this.#entries[drop++];
      this.#size -= e[0].length + e[1].length + ENTRY_OVERHEAD;
    }
    if (drop > 0) this.#entries.splice(0, drop);
  }
}

/** Reads an integer with an N-bit prefix (RFC 7541 §5.1). */
function readInt(block: Uint8Array, cur: { at: number }, prefix: number): number {
  const mask = (1 << prefix) - 1;
  let value = block[cur.at++] & mask;
  if (value < mask) return value;
  let shift = 0;
  for (;;) {
    if (cur.at >= block.length) throw new HpackError("truncated integer");
    const b = block[cur.at++];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) break;
    if (shift > 28) throw new HpackError("integer too large");
  }
  if (value > 0xffff_ffff) throw new HpackError("integer too large");
  return value;
}

/** Reads a string literal (RFC 7541 §5.2), Huffman or raw. */
function readString(block: Uint8Array, cur: { at: number }): string {
  if (cur.at >= block.length) throw new HpackError("truncated string");
  const huffman = (block[cur.at] & 0x80) !== 0;
  const length = readInt(block, cur, 7);
  const end = cur.at + length;
  if (end > block.length) throw new HpackError("truncated string");
  const bytes = block.subarray(cur.at, end);
  cur.at = end;
  return huffman ? huffmanDecode(bytes) : latin1(bytes);
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

// ---- Huffman decoding: a 4-bit-at-a-time state machine built from the code table. ----

/** Per (state, nibble): next state; the symbol emitted on the way (or -1); 256 means EOS. */
const HUFF_NEXT = new Uint16Array(256 * 16);
const HUFF_EMIT = new Int16Array(256 * 16);
/** Per state: a string may end here (root, or at most 7 one-bits into the tree). */
const HUFF_ACCEPT = new Uint8Array(256);

(function buildHuffman() {
  // Internal nodes 0..255; child value > 0 is a node, < 0 is -(symbol + 1), 0 is empty.
  const child = [new Int32Array(256), new Int32Array(256)];
  const depth = new Uint8Array(256);
  const ones = new Uint8Array(256);
  ones[0] = 1;
  let nodes = 1;
  for (let sym = 0; sym < 257; sym++) {
    const code = HUFFMAN_CODES[sym], len = HUFFMAN_LENGTHS[sym];
    let node = 0;
    for (let i = len - 1; i > 0; i--) {
      const bit = Math.floor(code / 2 ** i) & 1;
      let next = child[bit][node];
      if (next === 0) {
        next = nodes++;
        child[bit][node] = next;
        depth[next] = depth[node] + 1;
        ones[next] = ones[node] && bit ? 1 : 0;
      }
      node = next;
    }
    child[code & 1][node] = -(sym + 1);
  }
  for (let s = 0; s < nodes; s++) {
    HUFF_ACCEPT[s] = s === 0 || (ones[s] && depth[s] <= 7) ? 1 : 0;
    for (let n = 0; n < 16; n++) {
      let cur = s, emit = -1;
      for (let bit = 3; bit >= 0; bit--) {
        const next = child[(n >> bit) & 1][cur];
        if (next < 0) {
          emit = -next - 1;
          cur = 0;
          if (emit === 256) break;
        } else {
          cur = next;
        }
      }
      HUFF_NEXT[s * 16 + n] = cur;
      HUFF_EMIT[s * 16 + n] = emit;
    }
  }
})();

/**
 * Decodes a Huffman-coded string (RFC 7541 §5.2, Appendix B).
 *
 * @throws HpackError on EOS in the data or padding that is not a short run of 1 bits
 */
export function huffmanDecode(bytes: Uint8Array): string {
  const out = Buffer.allocUnsafe(Math.floor((bytes.length * 8) / 5));
  let n = 0, state = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    let k = state * 16 + (b >> 4);
    let emit = HUFF_EMIT[k];
    if (emit >= 0) {
      if (emit === 256) throw new HpackError("EOS in Huffman data");
      out[n++] = emit;
    }
    state = HUFF_NEXT[k];
    k = state * 16 + (b & 0xf);
    emit = HUFF_EMIT[k];
    if (emit >= 0) {
      if (emit === 256) throw new HpackError("EOS in Huffman data");
      out[n++] = emit;
    }
    state = HUFF_NEXT[k];
  }
  if (!HUFF_ACCEPT[state]) throw new HpackError("bad Huffman padding");
  return out.toString("latin1", 0, n);
}

// ---- Encoding ----

const STATIC_EXACT = new Map<string, number>();
const STATIC_NAME = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  const key = `${name}\0${value}`;
  if (!STATIC_EXACT.has(key)) STATIC_EXACT.set(key, i + 1);
  if (!STATIC_NAME.has(name)) STATIC_NAME.set(name, i + 1);
});

/** Encodes header blocks for one connection direction, without touching the dynamic table. */
export class HpackEncoder {
  #sizeUpdate = true;

  /** The peer changed SETTINGS_HEADER_TABLE_SIZE: the next block restates our table size, 0. */
  tableSizeChanged(): void {
    this.#sizeUpdate = true;
  }

  /**
   * Encodes fields: static-table index when name and value match, else a literal without
   * indexing (with the static name index when the name matches). No Huffman coding.
   *
   * @param fields Names lower-case, names and values latin1 (chars above 0xff are not checked)
   */
  encode(fields: Iterable<readonly [string, string]>): Buffer {
    const parts: (readonly [string, string])[] = [];
    let size = 1;
    for (const f of fields) {
      parts.push(f);
      size += f[0].length + f[1].length + 12;
    }
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    if (this.#sizeUpdate) {
      out[at++] = 0x20; // dynamic table size update to 0
      this.#sizeUpdate = false;
    }
    for (const [name, value] of parts) {
      const exact = STATIC_EXACT.get(`${name}\0${value}`);
      if (exact !== undefined) {
        at = writeInt(out, at, exact, 7, 0x80);
        continue;
      }
      const index = STATIC_NAME.get(name);
      if (index !== undefined) {
        at = writeInt(out, at, index, 4, 0x00);
      } else {
        out[at++] = 0x00;
        at = writeString(out, at, name);
      }
      at = writeString(out, at, value);
    }
    return out.subarray(0, at);
  }
}

/** Writes an integer with an N-bit prefix and the given high bits; returns the new offset. */
function writeInt(
  out: Uint8Array,
  at: number,
  value: number,
  prefix: number,
  high: number,
): number {
  const mask = (1 << prefix) - 1;
  if (value < mask) {
    out[at++] = high | value;
    return at;
  }
  out[at++] = high | mask;
  value -= mask;
  while (value >= 128) {
    out[at++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  out[at++] = value;
  return at;
}

function writeString(out: Buffer, at: number, s: string): number {
  at = writeInt(out, at, s.length, 7, 0x00);
  return at + out.write(s, at, "latin1");
}

/** Encodes an integer with an N-bit prefix (RFC 7541 §5.1); `high` fills the bits above it. */
export function encodeInteger(value: number, prefix: number, high = 0): Uint8Array {
  const out = new Uint8Array(8);
  return out.subarray(0, writeInt(out, 0, value, prefix, high));
}

/**
 * Decodes an integer with an N-bit prefix at the start of `bytes`.
 *
 * @returns The value and the number of bytes it took
 * @throws HpackError when truncated or too large
 */
export function decodeInteger(bytes: Uint8Array, prefix: number): [number, number] {
  if (bytes.length === 0) throw new HpackError("truncated integer");
  const cur = { at: 0 };
  const value = readInt(bytes, cur, prefix);
  return [value, cur.at];
}
