/**
 * Byte-level reading and writing of the WebAssembly binary format (LEB128, vectors, names), and the
 * error a malformed or unsupported module raises while we rewrite it.
 *
 * Invariants:
 * - A read never goes past the end of the buffer: it throws {@link MeterError} `malformed` with
 *   the byte offset instead. Callers check structure ends (section, body) themselves.
 * - LEB128 values are skipped without decoding where only their length matters, so 64-bit
 *   immediates (i64.const, memory64 offsets) need no BigInt.
 */

/** Closed set of reasons a module cannot be metered. */
export type MeterErrorKind =
  | "malformed" // not a valid WebAssembly binary (truncated, bad LEB, body past its end)
  | "unsupported"; // valid perhaps, but uses an encoding we do not know (a new opcode, a component)

/** A module that cannot be metered, with the byte offset of the fault. */
export class MeterError extends Error {
  readonly kind: MeterErrorKind;
  /** Offset in the input module where decoding stopped. */
  readonly offset: number;

  /**
   * @param kind Why the module cannot be metered
   * @param offset Byte offset of the fault in the input
   * @param reason What is wrong there
   */
  constructor(kind: MeterErrorKind, offset: number, reason: string) {
    super(`Cannot meter wasm module (${kind}) at byte 0x${offset.toString(16)}: ${reason}`);
    this.name = "MeterError";
    this.kind = kind;
    this.offset = offset;
  }
}

const LEB_MAX_BYTES = 10;
const UTF8 = new TextDecoder();
const U32_MAX_BYTES = 5;

/** A cursor over a module's bytes. */
export class Reader {
  readonly bytes: Uint8Array;
  /** Offset of the next byte to read. */
  pos: number;

  constructor(bytes: Uint8Array, pos = 0) {
    this.bytes = bytes;
    this.pos = pos;
  }

  byte(): number {
    if (this.pos >= this.bytes.length) {
      throw new MeterError("malformed", this.pos, "Unexpected end of module");
    }
    return this.bytes[this.pos++];
  }

  /** An unsigned LEB128 of at most 32 bits. */
  u32(): number {
    const start = this.pos;
    let result = 0;
    for (let i = 0; i < U32_MAX_BYTES; i++) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) break;
        return result;
      }
    }
    throw new MeterError("malformed", start, "Integer does not fit in 32 bits");
  }

  /** Skips one LEB128 of any width and sign. */
  skipLeb(): void {
    const start = this.pos;
    for (let i = 0; i < LEB_MAX_BYTES; i++) {
      if ((this.byte() & 0x80) === 0) return;
    }
    throw new MeterError("malformed", start, "Integer longer than 10 bytes");
  }

  skip(n: number): void {
    if (this.pos + n > this.bytes.length) {
      throw new MeterError("malformed", this.pos, "Unexpected end of module");
    }
    this.pos += n;
  }

  /** A `name`: a length-prefixed UTF-8 string. */
  name(): string {
    const length = this.u32();
    const start = this.pos;
    this.skip(length);
    return UTF8.decode(this.bytes.subarray(start, start + length));
  }

  /** Skips a value type, including `(ref null? ht)` with its heap type. */
  skipValType(): void {
    const code = this.byte();
    if (code === REF_NULL_TYPE || code === REF_TYPE) this.skipLeb();
  }
}

/** Type codes of `(ref null ht)` and `(ref ht)`: the only value types longer than one byte. */
export const REF_NULL_TYPE = 0x63;
export const REF_TYPE = 0x64;

/** A growable output buffer. */
export class Writer {
  #buf: Uint8Array;
  #len = 0;

  constructor(capacity = 1024) {
    this.#buf = new Uint8Array(Math.max(16, capacity));
  }

  get length(): number {
    return this.#len;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  byte(b: number): void {
    this.#reserve(1);
    this.#buf[this.#len++] = b;
  }

  bytes(data: Uint8Array): void {
    this.#reserve(data.length);
    this.#buf.set(data, this.#len);
    this.#len += data.length;
  }

  /** An unsigned LEB128. */
  u32(value: number): void {
    do {
      const low = value % 0x80;
      value = Math.floor(value / 0x80);
      this.byte(value === 0 ? low : low | 0x80);
    } while (value !== 0);
  }

  /** A signed LEB128 of a 64-bit integer. */
  s64(value: bigint): void {
    for (;;) {
      const low = Number(value & 0x7fn);
      value >>= 7n;
      const done = (value === 0n && (low & 0x40) === 0) || (value === -1n && (low & 0x40) !== 0);
      this.byte(done ? low : low | 0x80);
      if (done) return;
    }
  }

  /** A `name`: length-prefixed UTF-8. */
  name(text: string): void {
    const data = new TextEncoder().encode(text);
    this.u32(data.length);
    this.bytes(data);
  }

  /** A section: id, payload size, payload. */
  section(id: number, payload: Writer): void {
    this.byte(id);
    this.u32(payload.length);
    this.bytes(payload.result());
  }

  /** The bytes written so far (a view, valid until the next write). */
  result(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }
}
