import assert from "node:assert/strict";
import fc from "fast-check";
import { meter } from "../../wasm/mod.ts";
import { fuelOf, instantiate, wat } from "./_wat.ts";

// Random small programs over i32: arithmetic, counted loops, if/else, br_table and calls to a
// helper that loops itself. Every loop runs at most 4 times, so each program ends quickly.

type Expr =
  | { readonly k: "const"; readonly v: number }
  | { readonly k: "var"; readonly name: "a" | "b" | "acc" }
  | { readonly k: "bin"; readonly op: string; readonly l: Expr; readonly r: Expr }
  | { readonly k: "call"; readonly arg: Expr };

type Stmt =
  | { readonly k: "set"; readonly name: "a" | "b" | "acc"; readonly e: Expr }
  | { readonly k: "loop"; readonly n: number; readonly body: readonly Stmt[] }
  | {
    readonly k: "if";
    readonly c: Expr;
    readonly yes: readonly Stmt[];
    readonly no: readonly Stmt[];
  }
  | { readonly k: "switch"; readonly e: Expr; readonly cases: readonly (readonly Stmt[])[] };

const OPS = [
  "add",
  "sub",
  "mul",
  "and",
  "or",
  "xor",
  "shl",
  "shr_s",
  "shr_u",
  "rotl",
  "eq",
  "lt_u",
  "gt_s",
  "div_u",
  "rem_s",
];
const VARS = ["a", "b", "acc"] as const;

const { stmts } = fc.letrec<{ expr: Expr; stmt: Stmt; stmts: readonly Stmt[] }>((tie) => ({
  expr: fc.oneof(
    { depthSize: "small" },
    fc.record({ k: fc.constant("const" as const), v: fc.integer() }),
    fc.record({ k: fc.constant("var" as const), name: fc.constantFrom(...VARS) }),
    fc.record({
      k: fc.constant("bin" as const),
      op: fc.constantFrom(...OPS),
      l: tie("expr"),
      r: tie("expr"),
    }),
    fc.record({ k: fc.constant("call" as const), arg: tie("expr") }),
  ),
  stmt: fc.oneof(
    { depthSize: "small" },
    fc.record({ k: fc.constant("set" as const), name: fc.constantFrom(...VARS), e: tie("expr") }),
    fc.record({
      k: fc.constant("loop" as const),
      n: fc.integer({ min: 0, max: 4 }),
      body: tie("stmts"),
    }),
    fc.record({
      k: fc.constant("if" as const),
      c: tie("expr"),
      yes: tie("stmts"),
      no: tie("stmts"),
    }),
    fc.record({
      k: fc.constant("switch" as const),
      e: tie("expr"),
      cases: fc.array(tie("stmts"), { minLength: 1, maxLength: 3 }),
    }),
  ),
  stmts: fc.array(tie("stmt"), { maxLength: 3 }),
}));

function renderExpr(e: Expr): string {
  switch (e.k) {
    case "const":
      return `(i32.const ${e.v})`;
    case "var":
      return `(local.get $${e.name})`;
    case "call":
      return `(call $helper ${renderExpr(e.arg)})`;
    case "bin": {
      const r = renderExpr(e.r);
      // Divisors are made odd so no program traps on division by zero.
      const right = e.op.startsWith("div") || e.op.startsWith("rem")
        ? `(i32.or ${r} (i32.const 1))`
        : r;
      return `(i32.${e.op} ${renderExpr(e.l)} ${right})`;
    }
  }
}

/** Renders statements; loop counters and labels get fresh numbers from `ids`. */
function render(list: readonly Stmt[], ids: { next: number }): string {
  return list.map((s) => renderStmt(s, ids)).join("\n");
}

function renderStmt(s: Stmt, ids: { next: number }): string {
  const id = ids.next++;
  switch (s.k) {
    case "set":
      return `(local.set $${s.name} ${renderExpr(s.e)})`;
    case "if":
      return `(if ${renderExpr(s.c)} (then ${render(s.yes, ids)}) (else ${render(s.no, ids)}))`;
    case "loop":
      return `(local.set $c${id} (i32.const ${s.n}))
        (block $b${id} (loop $l${id}
          (br_if $b${id} (i32.eqz (local.get $c${id})))
          ${render(s.body, ids)}
          (local.set $c${id} (i32.sub (local.get $c${id}) (i32.const 1)))
          (br $l${id})))`;
    case "switch": {
      const labels = s.cases.map((_, i) => `$s${id}_${i}`).join(" ");
      let inner = `(br_table ${labels} $s${id}_end (i32.and ${renderExpr(s.e)} (i32.const 3)))`;
      s.cases.forEach((body, i) => {
        inner = `(block $s${id}_${i} ${inner}) ${render(body, ids)} (br $s${id}_end)`;
      });
      return `(block $s${id}_end ${inner})`;
    }
  }
}

function program(body: readonly Stmt[]): string {
  const ids = { next: 0 };
  const code = render(body, ids);
  const counters = Array.from({ length: ids.next }, (_, i) => `(local $c${i} i32)`).join(" ");
  return `(module
    (func $helper (param $n i32) (result i32) (local $s i32)
      (local.set $n (i32.and (local.get $n) (i32.const 7)))
      (block $done (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $s (i32.add (local.get $s) (i32.mul (local.get $n) (local.get $n))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
      (local.get $s))
    (func (export "run") (param $a i32) (param $b i32) (result i32) (local $acc i32) ${counters}
      ${code}
      (i32.add (local.get $acc) (i32.xor (local.get $a) (local.get $b)))))`;
}

Deno.test("meter() keeps the result of random loop programs given ample fuel", () => {
  const inputs = fc.array(fc.tuple(fc.integer(), fc.integer()), { minLength: 1, maxLength: 3 });
  fc.assert(
    fc.property(stmts, inputs, (body, args) => {
      const plain = wat(program(body));
      const metered = meter(plain);
      assert.ok(WebAssembly.validate(metered));
      const before = instantiate(plain);
      const after = instantiate(metered, {}, 1n << 40n);
      for (const [a, b] of args) {
        const run = (exports: typeof before) =>
          (exports.run as (a: number, b: number) => number)(a, b);
        assert.equal(run(after), run(before), `run(${a}, ${b})`);
      }
      assert.ok((fuelOf(after).value as bigint) < 1n << 40n, "fuel was charged");
    }),
    { numRuns: 150 },
  );
});
