/**
 * Fuel metering: rewrites a module so that a plugin stuck in a loop traps instead of stalling the
 * one JS thread every connection shares (JS cannot interrupt synchronous wasm). Like wasmtime's
 * fuel, the module gets an exported mutable i64 global, `__waypoint_fuel`, which the host sets
 * before each callback. Every defined function's entry and every `loop` header subtract a cost
 * from it and execute `unreachable` once it goes negative.
 *
 * Invariants:
 * - Fuel is counted in instructions: each point charges the length of the straight-line run that
 *   starts there (at least 1). Code between points is bounded by the function's size, so fuel
 *   bounds time; branches skipped inside a run are still charged.
 * - After a fuel trap the global is negative; a trap with fuel left is the plugin's own.
 * - The new global is appended after every imported and defined global, so no existing global
 *   index moves; functions, tables, memories, types and their indices are untouched. Imported
 *   functions are host code and are not charged.
 * - Sections other than global, export and code are copied byte for byte. Code offsets move, so
 *   DWARF and source maps in custom sections describe the old code (names stay right).
 * - A module that already exports `__waypoint_fuel` as a global is returned as is.
 */
import { MeterError, Reader, Writer } from "./_binary.ts";
import { findMeterPoints, type MeterPoints } from "./_instructions.ts";

export { MeterError, type MeterErrorKind } from "./_binary.ts";

/** Name of the exported fuel global. */
export const FUEL_GLOBAL = "__waypoint_fuel";

/**
 * Fuel the module starts with. A `start` function runs inside instantiation, before the host can
 * set the global, so this is its budget; after that the host sets fuel before each callback.
 */
export const DEFAULT_INITIAL_FUEL = 1_000_000_000n;

/** Options of {@link meter}. */
export interface MeterOptions {
  /**
   * Initial value of `__waypoint_fuel`, between 0 and 2^63-1.
   * @default DEFAULT_INITIAL_FUEL
   */
  readonly initialFuel?: bigint;
}

const MAGIC = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const I64_MAX = (1n << 63n) - 1n;

const SECTION = {
  custom: 0,
  import: 2,
  global: 6,
  export: 7,
  code: 10,
} as const;
// Position of each known section id in the required order (the tag section sits before global).
const ORDER: Record<number, number> = {
  1: 1,
  2: 2,
  3: 3,
  4: 4,
  5: 5,
  13: 6,
  6: 7,
  7: 8,
  8: 9,
  9: 10,
  12: 11,
  10: 12,
  11: 13,
};
const EXTERNAL_FUNC = 0;
const EXTERNAL_GLOBAL = 3;

interface Section {
  readonly id: number;
  /** Offset of the section id byte. */
  readonly start: number;
  /** Offset of the payload. */
  readonly payload: number;
  readonly end: number;
}

/**
 * Rewrites a WebAssembly module so that each callback's run time is bounded by fuel.
 *
 * @param bytes A core WebAssembly module (not a component)
 * @param options Initial fuel
 * @returns The metered module, or `bytes` itself when it already exports `__waypoint_fuel`
 * @throws MeterError `malformed` for a binary we cannot decode, `unsupported` for an unknown
 *   opcode or encoding; RangeError for an initial fuel outside 0..2^63-1
 *
 * @example
 * ```ts
 * const metered = meter(bytes);
 * const { instance } = await WebAssembly.instantiate(metered, imports);
 * (instance.exports.__waypoint_fuel as WebAssembly.Global).value = 10_000_000n;
 * ```
 */
export function meter(
  bytes: Uint8Array<ArrayBuffer>,
  options: MeterOptions = {},
): Uint8Array<ArrayBuffer> {
  const initialFuel = options.initialFuel ?? DEFAULT_INITIAL_FUEL;
  if (initialFuel < 0n || initialFuel > I64_MAX) {
    throw new RangeError(`Initial fuel must be between 0 and 2^63-1: ${initialFuel}`);
  }
  const sections = readSections(bytes);
  const find = (id: number) => sections.find((s) => s.id === id);
  const exports = find(SECTION.export);
  const fuelExportKind = exports && findExportKind(bytes, exports, FUEL_GLOBAL);
  if (fuelExportKind === EXTERNAL_GLOBAL) return bytes;
  if (fuelExportKind !== undefined) {
    throw new MeterError("unsupported", exports!.payload, `Exports ${FUEL_GLOBAL} as a non-global`);
  }
  const imports = countImports(bytes, find(SECTION.import));
  const globals = find(SECTION.global);
  const fuelIndex = imports.globals + (globals ? new Reader(bytes, globals.payload).u32() : 0);

  return rewrite(sections, { bytes, initialFuel, fuelIndex, firstFunc: imports.funcs });
}

/** What the rewritten sections need to know. */
interface Plan {
  readonly bytes: Uint8Array;
  readonly initialFuel: bigint;
  /** Index of the new global: after every imported and defined one. */
  readonly fuelIndex: number;
  /** Index of the first defined function (after the imported ones), for error messages. */
  readonly firstFunc: number;
}

/** Copies the module, rewriting global, export and code, and adding global and export if absent. */
function rewrite(sections: readonly Section[], plan: Plan): Uint8Array<ArrayBuffer> {
  const { bytes } = plan;
  const out = new Writer(bytes.length + (bytes.length >> 3) + 64);
  out.bytes(bytes.subarray(0, MAGIC.length));
  const missing = [SECTION.global, SECTION.export].filter((id) =>
    !sections.some((s) => s.id === id)
  );
  const addMissingBefore = (order: number) => {
    while (missing.length > 0 && ORDER[missing[0]] < order) {
      const id = missing.shift()!;
      out.section(id, rewriteSection(plan, id)!);
    }
  };
  for (const s of sections) {
    if (s.id !== SECTION.custom) addMissingBefore(ORDER[s.id]);
    const payload = rewriteSection(plan, s.id, s);
    if (payload) out.section(s.id, payload);
    else out.bytes(bytes.subarray(s.start, s.end));
  }
  addMissingBefore(Infinity);
  return out.result().slice();
}

/** The new payload of section `id` (absent when `s` is undefined), or undefined to copy it. */
function rewriteSection(plan: Plan, id: number, s?: Section): Writer | undefined {
  switch (id) {
    case SECTION.global:
      return globalSection(plan.bytes, s, plan.initialFuel);
    case SECTION.export:
      return exportSection(plan.bytes, s, plan.fuelIndex);
    case SECTION.code:
      return s && codeSection(plan.bytes, s, plan.fuelIndex, plan.firstFunc);
  }
  return undefined;
}

function readSections(bytes: Uint8Array): Section[] {
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) {
      const what = i < 4 ? "No wasm magic number" : "Not a version 1 core module";
      throw new MeterError(i < 4 ? "malformed" : "unsupported", i, what);
    }
  }
  const r = new Reader(bytes, MAGIC.length);
  const sections: Section[] = [];
  while (r.pos < bytes.length) {
    const start = r.pos;
    const id = r.byte();
    const size = r.u32();
    const payload = r.pos;
    r.skip(size);
    if (id !== SECTION.custom && ORDER[id] === undefined) {
      throw new MeterError("unsupported", start, `Unknown section id ${id}`);
    }
    sections.push({ id, start, payload, end: r.pos });
  }
  return sections;
}

/** The kind of the export named `name`, or undefined. */
function findExportKind(bytes: Uint8Array, s: Section, name: string): number | undefined {
  const r = new Reader(bytes, s.payload);
  for (let n = r.u32(); n > 0; n--) {
    const exportName = r.name();
    const kind = r.byte();
    r.skipLeb();
    if (exportName === name) return kind;
  }
  return undefined;
}

/** Imported functions and globals: they come first in their index spaces. */
function countImports(
  bytes: Uint8Array,
  s: Section | undefined,
): { funcs: number; globals: number } {
  const counts = { funcs: 0, globals: 0 };
  if (!s) return counts;
  const r = new Reader(bytes, s.payload);
  for (let n = r.u32(); n > 0; n--) {
    r.name();
    r.name();
    const at = r.pos;
    switch (r.byte()) {
      case EXTERNAL_FUNC:
        r.skipLeb();
        counts.funcs++;
        break;
      case 1: // table: reference type, limits
        r.skipValType();
        skipLimits(r);
        break;
      case 2: // memory
        skipLimits(r);
        break;
      case EXTERNAL_GLOBAL:
        r.skipValType();
        r.byte();
        counts.globals++;
        break;
      case 4: // tag: attribute, type index
        r.byte();
        r.skipLeb();
        break;
      default:
        throw new MeterError("unsupported", at, `Unknown import kind ${r.bytes[at]}`);
    }
  }
  return counts;
}

function skipLimits(r: Reader): void {
  const flags = r.byte();
  r.skipLeb(); // minimum
  if (flags & 0x01) r.skipLeb(); // maximum
  if (flags & 0x08) r.skipLeb(); // custom page size
}

/** The global section with the fuel global appended. */
function globalSection(bytes: Uint8Array, s: Section | undefined, initialFuel: bigint): Writer {
  const w = new Writer();
  const r = new Reader(bytes, s?.payload ?? 0);
  w.u32((s ? r.u32() : 0) + 1);
  if (s) w.bytes(bytes.subarray(r.pos, s.end));
  w.bytes(new Uint8Array([0x7e, 0x01, 0x42])); // i64, mutable, init i64.const
  w.s64(initialFuel);
  w.byte(0x0b);
  return w;
}

/** The export section with the fuel global's export appended. */
function exportSection(bytes: Uint8Array, s: Section | undefined, fuelIndex: number): Writer {
  const w = new Writer();
  const r = new Reader(bytes, s?.payload ?? 0);
  w.u32((s ? r.u32() : 0) + 1);
  if (s) w.bytes(bytes.subarray(r.pos, s.end));
  w.name(FUEL_GLOBAL);
  w.byte(EXTERNAL_GLOBAL);
  w.u32(fuelIndex);
  return w;
}

/** The code section with a fuel check inserted at every point of every body. */
function codeSection(bytes: Uint8Array, s: Section, fuelIndex: number, firstFunc: number): Writer {
  const w = new Writer(s.end - s.payload + ((s.end - s.payload) >> 3));
  const r = new Reader(bytes, s.payload);
  const checks = new FuelChecks(fuelIndex);
  const points: MeterPoints = { at: [], cost: [] };
  const count = r.u32();
  w.u32(count);
  for (let i = 0; i < count; i++) {
    const size = r.u32();
    const end = r.pos + size;
    const start = r.pos;
    if (end > s.end) {
      throw new MeterError(
        "malformed",
        start,
        `Body of function ${firstFunc + i} ends past the code section`,
      );
    }
    for (let groups = r.u32(); groups > 0; groups--) {
      r.skipLeb();
      r.skipValType();
    }
    findMeterPoints(r, end, points);
    let added = 0;
    for (const cost of points.cost) added += checks.get(cost).length;
    w.u32(size + added);
    let from = start;
    for (let p = 0; p < points.at.length; p++) {
      w.bytes(bytes.subarray(from, points.at[p]));
      w.bytes(checks.get(points.cost[p]));
      from = points.at[p];
    }
    w.bytes(bytes.subarray(from, end));
  }
  if (r.pos !== s.end) throw new MeterError("malformed", r.pos, "Code section has trailing bytes");
  return w;
}

/** Encoded fuel checks, one per distinct cost. */
class FuelChecks {
  #index: Uint8Array;
  #byCost = new Map<number, Uint8Array>();

  constructor(fuelIndex: number) {
    const w = new Writer(8);
    w.u32(fuelIndex);
    this.#index = w.result().slice();
  }

  /**
   * `fuel -= cost; if (fuel < 0) unreachable`: global.get, i64.const cost, i64.sub, global.set,
   * global.get, i64.const 0, i64.lt_s, if, unreachable, end. Stack-neutral, so valid anywhere.
   */
  get(cost: number): Uint8Array {
    let check = this.#byCost.get(cost);
    if (check) return check;
    const w = new Writer(32);
    w.byte(0x23);
    w.bytes(this.#index);
    w.byte(0x42);
    w.s64(BigInt(cost));
    w.byte(0x7d);
    w.byte(0x24);
    w.bytes(this.#index);
    w.byte(0x23);
    w.bytes(this.#index);
    w.bytes(new Uint8Array([0x42, 0x00, 0x53, 0x04, 0x40, 0x00, 0x0b]));
    check = w.result().slice();
    this.#byCost.set(cost, check);
    return check;
  }
}
