/**
 * The Protocol Buffers wire format, only as much as our hand-written gRPC clients (ext_authz,
 * the Istio CA) need (https://protobuf.dev/programming-guides/encoding/): varints,
 * length-delimited fields and skipping what a reader does not know. There is no reflection and no code generation; the file
 * that owns a message writes and reads it field by field.
 *
 * Invariants:
 * - proto3 scalars at their default (0, "", empty bytes) are not written; sub-messages and map
 *   entries always are, since a present empty message means something (`ok_response {}`).
 * - Negative int32/int64 values take ten bytes, as two's complement 64-bit (the spec's rule, so
 *   other readers sign-extend them right).
 * - A reader skips unknown fields of wire types 0, 1, 2 and 5, so messages from newer peers stay
 *   readable; groups (3, 4) and truncated input are refused with an Error.
 */

/** Wire types (protobuf.dev "Message Structure"). */
export const WIRE = Object.freeze({ varint: 0, i64: 1, len: 2, i32: 5 });

const UTF8 = new TextEncoder();
const UTF8_OUT = new TextDecoder();

/** Builds one message; `finish()` returns its bytes. */
export class ProtoWriter {
  #parts: Uint8Array[] = [];
  #size = 0;

  /**
   * A varint field (int32, int64, uint32, enum, bool); 0 is not written.
   *
   * @param field Field number
   * @param value A safe integer or bigint; negatives become ten-byte two's complement
   */
  varint(field: number, value: number | bigint): this {
    if (value === 0 || value === 0n) return this;
    this.#push(varintBytes(tagOf(field, WIRE.varint)));
    this.#push(varintBytes(value));
    return this;
  }

  /** A string field, UTF-8; "" is not written. */
  string(field: number, value: string): this {
    return value === "" ? this : this.#len(field, UTF8.encode(value));
  }

  /** A bytes field; empty is not written. */
  bytes(field: number, value: Uint8Array): this {
    return value.length === 0 ? this : this.#len(field, value);
  }

  /** An embedded message, written even when empty. */
  message(field: number, value: ProtoWriter | Uint8Array): this {
    return this.#len(field, value instanceof ProtoWriter ? value.finish() : value);
  }

  /** One entry of a `map<string, string>`: a message with key 1 and value 2, both written. */
  mapEntry(field: number, key: string, value: string): this {
    const k = UTF8.encode(key);
    const v = UTF8.encode(value);
    const entry = new ProtoWriter();
    entry.#push(varintBytes(tagOf(1, WIRE.len)), varintBytes(k.length), k);
    entry.#push(varintBytes(tagOf(2, WIRE.len)), varintBytes(v.length), v);
    return this.message(field, entry);
  }

  /** The message's bytes. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.#size);
    let off = 0;
    for (const p of this.#parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  #len(field: number, value: Uint8Array): this {
    this.#push(varintBytes(tagOf(field, WIRE.len)), varintBytes(value.length), value);
    return this;
  }

  #push(...parts: Uint8Array[]): void {
    for (const p of parts) {
      this.#parts.push(p);
      this.#size += p.length;
    }
  }
}

/**
 * Reads one message field by field: `while (r.next()) switch (r.field) { ... default: r.skip() }`.
 * Each value getter checks the wire type, so a peer that changed a field's type is caught.
 */
export class ProtoReader {
  #buf: Uint8Array;
  #pos = 0;
  #field = 0;
  #wire = -1;

  constructor(bytes: Uint8Array) {
    this.#buf = bytes;
  }

  /** The current field's number. */
  get field(): number {
    return this.#field;
  }

  /** Moves to the next field; false at the end of the message. */
  next(): boolean {
    if (this.#pos >= this.#buf.length) return false;
    const tag = this.#varint();
    this.#field = Number(tag >> 3n);
    this.#wire = Number(tag & 7n);
    if (this.#field === 0) throw malformed("field number 0");
    return true;
  }

  /** An int32 or enum value (sign-extended varints are cut to 32 bits). */
  int32(): number {
    return Number(BigInt.asIntN(32, this.#expectVarint()));
  }

  /** A uint32 value. */
  uint32(): number {
    return Number(BigInt.asUintN(32, this.#expectVarint()));
  }

  /** An int64 value, as a number (exact up to 2^53). */
  int64(): number {
    return Number(BigInt.asIntN(64, this.#expectVarint()));
  }

  bool(): boolean {
    return this.#expectVarint() !== 0n;
  }

  /** A string value; invalid UTF-8 becomes U+FFFD, as proto3 readers in JavaScript do. */
  string(): string {
    return UTF8_OUT.decode(this.bytes());
  }

  /** A bytes or embedded-message value (a view, not a copy). */
  bytes(): Uint8Array {
    this.#expect(WIRE.len);
    const n = Number(this.#varint());
    if (n > this.#buf.length - this.#pos) throw malformed(`field ${this.#field} is truncated`);
    const out = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  /** Passes over the current field's value. */
  skip(): void {
    switch (this.#wire) {
      case WIRE.varint:
        this.#varint();
        return;
      case WIRE.len:
        this.bytes();
        return;
      case WIRE.i64:
        return this.#advance(8);
      case WIRE.i32:
        return this.#advance(4);
      default:
        throw malformed(`field ${this.#field} has unsupported wire type ${this.#wire}`);
    }
  }

  #advance(n: number): void {
    if (n > this.#buf.length - this.#pos) throw malformed(`field ${this.#field} is truncated`);
    this.#pos += n;
  }

  #expectVarint(): bigint {
    this.#expect(WIRE.varint);
    return this.#varint();
  }

  #expect(wire: number): void {
    if (this.#wire !== wire) {
      throw malformed(`field ${this.#field} has wire type ${this.#wire}, expected ${wire}`);
    }
  }

  #varint(): bigint {
    let value = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.#buf.length) throw malformed("varint is truncated");
      const b = this.#buf[this.#pos++];
      value |= BigInt(b & 0x7f) << BigInt(7 * i);
      if (b < 0x80) return value;
    }
    throw malformed("varint is longer than 10 bytes");
  }
}

/** Readers of fields by number, for {@link readFields}; each must read its field's value. */
export type FieldHandlers = Readonly<Record<number, (r: ProtoReader) => void>>;

/**
 * Reads one message, handing each field to the handler of its number and skipping the others.
 *
 * @param bytes The message
 * @param on Handlers by field number
 * @throws Error `Malformed protobuf: ...`
 */
export function readFields(bytes: Uint8Array, on: FieldHandlers): void {
  for (const r = new ProtoReader(bytes); r.next();) {
    const handle = Object.hasOwn(on, r.field) ? on[r.field] : undefined;
    if (handle) handle(r);
    else r.skip();
  }
}

/**
 * A value as varint bytes.
 *
 * @param value A non-negative integer, or a negative one that is encoded as 64-bit two's complement
 */
export function varintBytes(value: number | bigint): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

function tagOf(field: number, wire: number): number {
  return field * 8 + wire;
}

function malformed(what: string): Error {
  return new Error(`Malformed protobuf: ${what}`);
}
