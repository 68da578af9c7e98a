/**
 * Walks the instructions of one function body to find where fuel is charged: the body's entry and
 * the first instruction inside every `loop`, each with the length of the straight-line run that
 * starts there (the instructions that certainly execute once that point is reached).
 *
 * Invariants:
 * - Every opcode of the finished proposals is known with its immediates: MVP, sign extension,
 *   saturating truncation, bulk memory, reference types, multi-value, SIMD and relaxed SIMD,
 *   threads, tail calls, exception handling (legacy `try` and `try_table`), typed function
 *   references, GC, multi-memory, memory64, wide arithmetic. Anything else is `unsupported`:
 *   skipping a wrong number of bytes would corrupt the rest of the body.
 * - The walk ends exactly at the `end` that closes the body, or the body is `malformed`.
 */
import { MeterError, Reader, REF_NULL_TYPE, REF_TYPE } from "./_binary.ts";

/** Where fuel is charged in one body: input offsets and straight-line costs, entry first. */
export interface MeterPoints {
  readonly at: number[];
  readonly cost: number[];
}

// What an instruction does to control flow.
const PLAIN = 0; // falls through
const OPEN = 1; // block, if, try, try_table: a new nested block
const LOOP = 2; // a new nested block whose start is a branch target
const CLOSE = 3; // end, delegate: closes the innermost block
const JUMP = 4; // may transfer control elsewhere (branches, returns, throws, else, catch)

// Immediates of single-byte opcodes.
const NONE = 0;
const LEB1 = 1; // one LEB128 (an index, a label, a constant, a heap type)
const LEB2 = 2;
const BLOCK_TYPE = 3;
const MEMARG = 4;
const BR_TABLE = 5;
const BYTES4 = 6;
const BYTES8 = 7;
const SELECT_T = 8;
const TRY_TABLE = 9;
const PREFIX_GC = 10;
const PREFIX_MISC = 11;
const PREFIX_SIMD = 12;
const PREFIX_ATOMIC = 13;
const INVALID = 255;

const IMMEDIATES = new Uint8Array(256).fill(INVALID);
const FLOW = new Uint8Array(256);

function define(from: number, to: number, immediate: number, flow = PLAIN): void {
  for (let op = from; op <= to; op++) {
    IMMEDIATES[op] = immediate;
    FLOW[op] = flow;
  }
}

define(0x00, 0x00, NONE, JUMP); // unreachable
define(0x01, 0x01, NONE); // nop
define(0x02, 0x02, BLOCK_TYPE, OPEN); // block
define(0x03, 0x03, BLOCK_TYPE, LOOP);
define(0x04, 0x04, BLOCK_TYPE, OPEN); // if
define(0x05, 0x05, NONE, JUMP); // else
define(0x06, 0x06, BLOCK_TYPE, OPEN); // try (legacy exceptions)
define(0x07, 0x09, LEB1, JUMP); // catch, throw, rethrow
define(0x0a, 0x0a, NONE, JUMP); // throw_ref
define(0x0b, 0x0b, NONE, CLOSE); // end
define(0x0c, 0x0d, LEB1, JUMP); // br, br_if
define(0x0e, 0x0e, BR_TABLE, JUMP);
define(0x0f, 0x0f, NONE, JUMP); // return
define(0x10, 0x10, LEB1); // call
define(0x11, 0x11, LEB2); // call_indirect
define(0x12, 0x12, LEB1, JUMP); // return_call
define(0x13, 0x13, LEB2, JUMP); // return_call_indirect
define(0x14, 0x14, LEB1); // call_ref
define(0x15, 0x15, LEB1, JUMP); // return_call_ref
define(0x18, 0x18, LEB1, CLOSE); // delegate
define(0x19, 0x19, NONE, JUMP); // catch_all
define(0x1a, 0x1b, NONE); // drop, select
define(0x1c, 0x1c, SELECT_T);
define(0x1f, 0x1f, TRY_TABLE, OPEN);
define(0x20, 0x26, LEB1); // local.*, global.*, table.get, table.set
define(0x28, 0x3e, MEMARG); // loads and stores
define(0x3f, 0x42, LEB1); // memory.size, memory.grow, i32.const, i64.const
define(0x43, 0x43, BYTES4); // f32.const
define(0x44, 0x44, BYTES8); // f64.const
define(0x45, 0xc4, NONE); // numeric, including sign extension
define(0xd0, 0xd0, LEB1); // ref.null
define(0xd1, 0xd1, NONE); // ref.is_null
define(0xd2, 0xd2, LEB1); // ref.func
define(0xd3, 0xd4, NONE); // ref.eq, ref.as_non_null
define(0xd5, 0xd6, LEB1, JUMP); // br_on_null, br_on_non_null
define(0xfb, 0xfb, PREFIX_GC);
define(0xfc, 0xfc, PREFIX_MISC);
define(0xfd, 0xfd, PREFIX_SIMD);
define(0xfe, 0xfe, PREFIX_ATOMIC);

function unsupported(r: Reader, at: number, what: string): never {
  throw new MeterError(
    "unsupported",
    at,
    `Unknown opcode ${what} (byte 0x${r.bytes[at].toString(16)})`,
  );
}

function skipBlockType(r: Reader): void {
  const code = r.byte();
  // 0x40, a one-byte value type, or the first byte of a type index (s33)
  if (code === REF_NULL_TYPE || code === REF_TYPE) r.skipLeb();
  else if (code & 0x80) r.skipLeb();
}

function skipMemarg(r: Reader): void {
  // Bit 6 of the alignment says a memory index follows (multi-memory).
  if (r.u32() & 0x40) r.skipLeb();
  r.skipLeb();
}

function skipLebs(r: Reader, n: number): void {
  for (let i = 0; i < n; i++) r.skipLeb();
}

/** 0xFB: GC. Returns the control flow effect. */
function skipGc(r: Reader, at: number): number {
  const sub = r.u32();
  if (sub <= 1 || (sub >= 6 && sub <= 7) || (sub >= 11 && sub <= 14) || sub === 16) skipLebs(r, 1);
  else if ((sub >= 2 && sub <= 5) || (sub >= 8 && sub <= 10) || (sub >= 17 && sub <= 19)) {
    skipLebs(r, 2);
  } else if (sub >= 20 && sub <= 23) skipLebs(r, 1); // ref.test, ref.cast: heap type
  else if (sub === 24 || sub === 25) { // br_on_cast(_fail): flags, label, two heap types
    r.byte();
    skipLebs(r, 3);
    return JUMP;
  } else if (sub !== 15 && (sub < 26 || sub > 30)) unsupported(r, at, `0xfb ${sub}`);
  return PLAIN;
}

/** 0xFC: saturating truncation, bulk memory, table ops, wide arithmetic. */
function skipMisc(r: Reader, at: number): void {
  const sub = r.u32();
  if (sub <= 7 || (sub >= 19 && sub <= 22)) return;
  if (sub === 8 || sub === 10 || sub === 12 || sub === 14) skipLebs(r, 2);
  else if (sub === 9 || sub === 11 || sub === 13 || (sub >= 15 && sub <= 17)) skipLebs(r, 1);
  else unsupported(r, at, `0xfc ${sub}`);
}

const V128_BYTES = 16;

/** 0xFD: SIMD and relaxed SIMD. */
function skipSimd(r: Reader, at: number): void {
  const sub = r.u32();
  if (sub <= 11 || sub === 92 || sub === 93) skipMemarg(r); // loads, v128.store, load*_zero
  else if (sub === 12 || sub === 13) r.skip(V128_BYTES); // v128.const, i8x16.shuffle
  else if (sub >= 21 && sub <= 34) r.byte(); // extract/replace_lane
  else if (sub >= 84 && sub <= 91) { // load*_lane, store*_lane
    skipMemarg(r);
    r.byte();
  } else if (sub > 0x113) unsupported(r, at, `0xfd ${sub}`);
}

/** 0xFE: threads. */
function skipAtomic(r: Reader, at: number): void {
  const sub = r.u32();
  if (sub === 3) r.byte(); // atomic.fence
  else if (sub <= 2 || (sub >= 0x10 && sub <= 0x4e)) skipMemarg(r);
  else unsupported(r, at, `0xfe ${sub}`);
}

/** Skips the immediates of `op` (already read at `at`) and returns its control flow effect. */
function skipInstruction(r: Reader, op: number, at: number): number {
  switch (IMMEDIATES[op]) {
    case NONE:
      break;
    case LEB1:
      r.skipLeb();
      break;
    case LEB2:
      skipLebs(r, 2);
      break;
    case BLOCK_TYPE:
      skipBlockType(r);
      break;
    case MEMARG:
      skipMemarg(r);
      break;
    case BR_TABLE:
      skipLebs(r, r.u32() + 1);
      break;
    case BYTES4:
      r.skip(4);
      break;
    case BYTES8:
      r.skip(8);
      break;
    case SELECT_T:
      for (let n = r.u32(); n > 0; n--) r.skipValType();
      break;
    case TRY_TABLE:
      skipBlockType(r);
      for (let n = r.u32(); n > 0; n--) skipLebs(r, r.byte() < 2 ? 2 : 1); // catch(_ref) tag label
      break;
    case PREFIX_GC:
      return skipGc(r, at);
    case PREFIX_MISC:
      skipMisc(r, at);
      break;
    case PREFIX_SIMD:
      skipSimd(r, at);
      break;
    case PREFIX_ATOMIC:
      skipAtomic(r, at);
      break;
    default:
      unsupported(r, at, `0x${op.toString(16)}`);
  }
  return FLOW[op];
}

/**
 * Finds the fuel points of the body whose instructions run from `r.pos` to `end`.
 *
 * @param r Positioned at the first instruction (after the locals)
 * @param end Offset just past the body
 * @param out Reused between bodies; cleared first
 * @throws MeterError on an unknown opcode or a body that does not end where its size says
 */
export function findMeterPoints(r: Reader, end: number, out: MeterPoints): void {
  out.at.length = 0;
  out.cost.length = 0;
  out.at.push(r.pos);
  out.cost.push(0);
  let counting = 0; // the point whose straight-line run is still open, or -1
  let depth = 0;
  while (r.pos < end) {
    const at = r.pos;
    const op = r.byte();
    if (counting >= 0) out.cost[counting]++;
    switch (skipInstruction(r, op, at)) {
      case PLAIN:
        continue;
      case OPEN:
        depth++;
        break;
      case LOOP:
        depth++;
        out.at.push(r.pos);
        out.cost.push(0);
        counting = out.at.length - 1;
        continue;
      case CLOSE:
        if (depth-- > 0) break;
        if (r.pos === end) return;
        throw new MeterError("malformed", r.pos, "Function body continues after its final end");
    }
    counting = -1;
  }
  throw new MeterError("malformed", r.pos, "Function body does not end where its size says");
}
