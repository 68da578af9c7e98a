import assert from "node:assert/strict";
import { FUEL_GLOBAL, meter, MeterError } from "../../wasm/mod.ts";
import { type Exports, fuelOf, instantiate, wat } from "./_wat.ts";

const FIXTURES = new URL("../../../shared/fixtures/wasm/", import.meta.url);
const AMPLE = 1n << 40n;

function call(exports: Exports, name: string, ...args: unknown[]): unknown {
  return (exports[name] as (...a: unknown[]) => unknown)(...args);
}

const SPIN = `(module
  (func (export "spin") (loop (br 0)))
  (func (export "sum") (param $n i32) (result i64) (local $acc i64)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $n))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $acc)))`;

Deno.test("meter() makes an infinite loop trap once its fuel runs out", () => {
  const exports = instantiate(meter(wat(SPIN)), {}, 100_000n);
  assert.throws(() => call(exports, "spin"), WebAssembly.RuntimeError);
  assert.ok((fuelOf(exports).value as bigint) < 0n, "a fuel trap leaves the global negative");
});

Deno.test("meter() lets a finite loop finish with enough fuel, and charges for it", () => {
  const exports = instantiate(meter(wat(SPIN)), {}, 1_000_000n);
  assert.equal(call(exports, "sum", 1000), 500500n);
  const left = fuelOf(exports).value as bigint;
  assert.ok(left > 0n && left < 1_000_000n - 1000n, `fuel left ${left}`);
  fuelOf(exports).value = 500n;
  assert.throws(() => call(exports, "sum", 1000), WebAssembly.RuntimeError);
});

Deno.test("meter() charges a start function against the initial fuel", () => {
  const looping = wat(`(module (func $s (loop (br 0))) (start $s))`);
  assert.throws(
    () => instantiate(meter(looping, { initialFuel: 1000n })),
    WebAssembly.RuntimeError,
  );
});

// Each program exports `run` returning a number or bigint; metered and plain must agree.
const PROGRAMS: [string, string][] = [
  [
    "recursion",
    `(module (func $fib (export "run") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2)) (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2))))))))`,
  ],
  [
    "nested loops and br_table",
    `(module (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $j i32) (local $acc i32)
    (loop $outer
      (local.set $j (i32.const 0))
      (loop $inner
        (block $c (block $b (block $a
          (br_table $a $b $c (i32.rem_u (i32.add (local.get $i) (local.get $j)) (i32.const 3))))
          (local.set $acc (i32.add (local.get $acc) (i32.const 1))) (br $c))
          (local.set $acc (i32.mul (local.get $acc) (i32.const 3))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br_if $inner (i32.lt_u (local.get $j) (local.get $n))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $outer (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc)))`,
  ],
  [
    "multi-value blocks and a loop with parameters",
    `(module
    (type $pair (func (param i32 i32) (result i32 i32)))
    (func (export "run") (param $n i32) (result i32)
      (local.get $n) (i32.const 0)
      (loop $l (type $pair) (param i32 i32) (result i32 i32)
        (block (param i32 i32) (result i32 i32) (i32.add) (i32.const 7) (i32.xor) (i32.const 1))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br_if $l (local.get $n)))
      (i32.mul)))`,
  ],
  [
    "SIMD",
    `(module (memory 1)
    (func (export "run") (param $n i32) (result i32) (local $v v128)
      (v128.store (i32.const 16) (v128.const i32x4 1 2 3 4))
      (local.set $v (v128.load (i32.const 16)))
      (loop $l
        (local.set $v (i32x4.add (local.get $v)
          (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 (local.get $v) (local.get $v))))
        (local.set $v (i32x4.replace_lane 3 (local.get $v) (i32.const 9)))
        (v128.store32_lane 1 (i32.const 0) (local.get $v))
        (local.set $v (v128.load8_lane 2 (i32.const 1) (local.get $v)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br_if $l (local.get $n)))
      (i32.add (i32x4.extract_lane 0 (local.get $v))
        (i32.add (i8x16.extract_lane_u 9 (local.get $v)) (i32.load (i32.const 0))))))`,
  ],
  [
    "bulk memory, saturating conversions and sign extension",
    `(module (memory 1)
    (data $d "\\01\\02\\03\\04\\05\\06\\07\\08")
    (func (export "run") (param $n i32) (result i32)
      (memory.init $d (i32.const 100) (i32.const 0) (i32.const 8))
      (data.drop $d)
      (memory.fill (i32.const 200) (i32.const 255) (local.get $n))
      (memory.copy (i32.const 300) (i32.const 100) (i32.const 16))
      (i32.add (i32.add (i32.load (i32.const 300)) (i32.extend8_s (i32.load8_u (i32.const 200))))
        (i32.add (i32.trunc_sat_f64_s (f64.const 1e300)) (i32.extend16_s (local.get $n))))))`,
  ],
  [
    "tail calls and reference types",
    `(module
    (table $t 2 funcref) (elem (table $t) (i32.const 0) func $even $odd)
    (type $pred (func (param i32) (result i32)))
    (func $even (param i32) (result i32) (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 1)) (else (return_call_indirect $t (type $pred)
        (i32.sub (local.get 0) (i32.const 1)) (i32.const 1)))))
    (func $odd (param i32) (result i32) (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0)) (else (return_call $even (i32.sub (local.get 0) (i32.const 1))))))
    (func (export "run") (param $n i32) (result i32)
      (select (result i32) (call $even (local.get $n)) (i32.const 2)
        (ref.is_null (table.get $t (i32.const 1))))))`,
  ],
  [
    "exceptions with try_table",
    `(module (tag $e (param i32))
    (func $thrower (param i32) (loop $l (br_if $l (i32.eqz (local.get 0)))) (throw $e (local.get 0)))
    (func (export "run") (param $n i32) (result i32)
      (block $h (result i32)
        (try_table (catch $e $h) (call $thrower (local.get $n)))
        (i32.const -1))))`,
  ],
  [
    "legacy exceptions with try, catch and delegate",
    `(module (tag $e (param i32))
    (func (export "run") (param $n i32) (result i32)
      (try (result i32)
        (do (try (result i32)
          (do (loop (result i32) (throw $e (i32.mul (local.get $n) (i32.const 3))))) (delegate 0)))
        (catch $e (i32.add (i32.const 1))))))`,
  ],
  [
    "atomics on shared memory",
    `(module (memory 1 1 shared)
    (func (export "run") (param $n i32) (result i32)
      (loop $l
        (drop (i32.atomic.rmw.add (i32.const 8) (local.get $n)))
        (atomic.fence)
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br_if $l (local.get $n)))
      (i64.atomic.store (i32.const 16) (i64.const 5))
      (i32.add (i32.atomic.load (i32.const 8)) (i32.wrap_i64 (i64.atomic.load (i32.const 16))))))`,
  ],
  [
    "multi-memory, memory64 and relaxed SIMD",
    `(module (memory $a 1) (memory $b 1) (memory $c i64 1)
    (func (export "run") (param $n i32) (result i32)
      (i32.store $b offset=4 (i32.const 8) (local.get $n))
      (i64.store $c offset=8 (i64.const 16) (i64.extend_i32_u (local.get $n)))
      (memory.copy $a $b (i32.const 0) (i32.const 0) (i32.const 32))
      (v128.store $a (i32.const 64) (i32x4.relaxed_laneselect (v128.const i32x4 1 2 3 4)
        (v128.const i32x4 5 6 7 8) (v128.const i32x4 -1 0 -1 0)))
      (i32.add (i32.add (i32.load $a offset=4 (i32.const 8)) (i32.wrap_i64 (i64.load $c (i64.const 24))))
        (i32.add (i32.load (i32.const 68))
          (i32.wrap_i64 (i64.add (memory.size $c) (i64.extend_i32_u (memory.size $b))))))))`,
  ],
];

for (const [name, source] of PROGRAMS) {
  Deno.test(`meter() keeps the results of a program with ${name}`, () => {
    const plain = wat(source);
    const metered = meter(plain);
    assert.ok(WebAssembly.validate(metered), "the metered module validates");
    for (const n of [1, 2, 7, 20]) {
      const after = instantiate(metered, {}, AMPLE);
      assert.equal(call(after, "run", n), call(instantiate(plain), "run", n), `run(${n})`);
      assert.ok((fuelOf(after).value as bigint) < AMPLE, "fuel was charged");
    }
  });
}

// wabt cannot write GC instructions, so this module is assembled by hand:
// (type $s (struct (field (mut i32)))) (func (export "run") (param i32) (result i32)
//   (struct.get $s 0 (block (result (ref $s)) (br_on_cast 0 (ref $s) (ref $s)
//     (struct.new $s (local.get 0)))))
//   (ref.test (ref $s) (struct.new $s (local.get 0))) i32.add)
const GC_BODY = [
  ...[0x00, 0x02, 0x64, 0x00, 0x20, 0x00, 0xfb, 0x00, 0x00, 0xfb, 0x18, 0x00, 0x00, 0x00, 0x00],
  ...[0x0b, 0xfb, 0x02, 0x00, 0x00, 0x20, 0x00, 0xfb, 0x00, 0x00, 0xfb, 0x14, 0x00, 0x6a, 0x0b],
];
const GC_MODULE = Uint8Array.from([
  ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
  ...[0x01, 0x0a, 0x02, 0x5f, 0x01, 0x7f, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f], // types
  ...[0x03, 0x02, 0x01, 0x01], // functions
  ...[0x07, 0x07, 0x01, 0x03, 0x72, 0x75, 0x6e, 0x00, 0x00], // export "run"
  ...[0x0a, GC_BODY.length + 2, 0x01, GC_BODY.length, ...GC_BODY], // code
]);

Deno.test("meter() keeps the results of a program with GC structs and casts", () => {
  const exports = instantiate(meter(GC_MODULE), {}, AMPLE);
  assert.equal(call(exports, "run", 41), 42);
  assert.equal(call(instantiate(GC_MODULE), "run", 41), 42);
});

Deno.test("meter() keeps the indices of imported globals and appends the fuel global", () => {
  const source = `(module
    (import "env" "a" (global $a i32)) (import "env" "b" (global $b (mut i64)))
    (global $c (mut i32) (i32.const 5))
    (func (export "run") (result i64)
      (global.set $c (i32.add (global.get $c) (global.get $a)))
      (global.set $b (i64.add (global.get $b) (i64.extend_i32_s (global.get $c))))
      (global.get $b))
    (export "c" (global $c)))`;
  const metered = meter(wat(source));
  const b = new WebAssembly.Global({ value: "i64", mutable: true }, 100n);
  const exports = instantiate(metered, { env: { a: 3, b } }, AMPLE);
  assert.equal(call(exports, "run"), 108n);
  assert.equal(b.value, 108n);
  assert.equal((exports.c as WebAssembly.Global).value, 8);
  const kinds = WebAssembly.Module.exports(new WebAssembly.Module(metered));
  assert.deepEqual(kinds.at(-1), { name: FUEL_GLOBAL, kind: "global" });
});

Deno.test("meter() adds global and export sections to a module that has neither", () => {
  const metered = meter(wat(`(module (func $s (loop (br 0))) (start $s))`), { initialFuel: 10n });
  assert.deepEqual(WebAssembly.Module.exports(new WebAssembly.Module(metered)), [
    { name: FUEL_GLOBAL, kind: "global" },
  ]);
});

Deno.test("meter() returns a module that already exports the fuel global unchanged", () => {
  const once = meter(wat(SPIN));
  assert.equal(meter(once), once);
});

Deno.test("meter() rejects a truncated module and an unknown opcode", () => {
  const bytes = wat(SPIN);
  assert.throws(() => meter(bytes.subarray(0, bytes.length - 3)), (e) => {
    assert.ok(e instanceof MeterError);
    assert.equal(e.kind, "malformed");
    return true;
  });
  // (func) whose body is the undefined opcode 0x17, then end.
  const unknown = Uint8Array.from([
    0,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    1,
    4,
    1,
    0x60,
    0,
    0,
    3,
    2,
    1,
    0,
    10,
    5,
    1,
    3,
    0,
    0x17,
    0x0b,
  ]);
  assert.throws(() => meter(unknown), (e) => {
    assert.ok(e instanceof MeterError);
    assert.equal(e.kind, "unsupported");
    assert.match(e.message, /Unknown opcode 0x17/);
    return true;
  });
});

const fixtures = [...Deno.readDirSync(FIXTURES)].map((e) => e.name).filter((n) =>
  n.endsWith(".wasm")
).sort();

Deno.test("the wasm fixtures are present", () => {
  assert.ok(fixtures.length >= 6, `found ${fixtures.join(", ")}`);
});

for (const name of fixtures) {
  Deno.test(`meter() rewrites ${name} into a module that validates and compiles`, async () => {
    const bytes = await Deno.readFile(new URL(name, FIXTURES));
    const metered = meter(bytes);
    assert.ok(WebAssembly.validate(metered), "validates");
    const before = new WebAssembly.Module(bytes);
    const after = new WebAssembly.Module(metered);
    assert.deepEqual(WebAssembly.Module.imports(after), WebAssembly.Module.imports(before));
    assert.deepEqual(WebAssembly.Module.exports(after), [
      ...WebAssembly.Module.exports(before),
      { name: FUEL_GLOBAL, kind: "global" },
    ]);
  });
}
