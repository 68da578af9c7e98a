/**
 * The Pratt parser of our CEL subset. It builds no tree: each rule hands its operands to the
 * node builders of `_nodes.ts`, so parsing ends with the compiled closure. Depth is bounded.
 */

import { REFUSED, ROOTS } from "./attributes.ts";
import { CelError } from "./errors.ts";
import { type Token, tokenText } from "./_lexer.ts";
import {
  binary,
  call,
  conditional,
  type Fn,
  has,
  index,
  method,
  type Node,
  select,
  settle,
} from "./_nodes.ts";
import { asBool, asNumber } from "./_values.ts";

/** Bound on nesting, so the parser's stack stays small. */
const MAX_DEPTH = 64;

/** Binding power of binary operators (cel-spec precedence, lowest first). */
const BINARY: Record<string, number> = {
  "||": 2,
  "&&": 3,
  "==": 4,
  "!=": 4,
  "<": 4,
  "<=": 4,
  ">": 4,
  ">=": 4,
  in: 4,
  "+": 5,
  "-": 5,
  "*": 6,
  "/": 6,
  "%": 6,
};
/** Parses a token list; `expression(0)` then `expectEnd()` reads a whole expression. */
export class Parser {
  readonly #tokens: Token[];
  #at = 0;
  #depth = 0;

  constructor(tokens: Token[]) {
    this.#tokens = tokens;
  }

  expectEnd(): void {
    const t = this.#peek();
    if (t.kind !== "end") throw new CelError(`Unexpected "${tokenText(t)}"`, t.at);
  }

  /** Pratt loop: conditional lowest, then the binary table. */
  expression(minPower: number): Node {
    if (++this.#depth > MAX_DEPTH) {
      throw new CelError("Expression nested too deeply", this.#peek().at);
    }
    let left = this.#unary();
    for (;;) {
      const t = this.#peek();
      const op = t.kind === "op" || (t.kind === "id" && t.value === "in") ? t.value : undefined;
      if (op === "?" && minPower <= 1) {
        this.#next();
        const yes = this.expression(1);
        this.#expect(":");
        const no = this.expression(1);
        left = conditional(left, yes, no);
        continue;
      }
      const power = op !== undefined ? BINARY[op] : undefined;
      if (power === undefined || power <= minPower) break;
      this.#next();
      const right = this.expression(power);
      left = binary(op!, settle(left), settle(right), t.at);
    }
    this.#depth--;
    return left;
  }

  #unary(): Node {
    const t = this.#peek();
    if (t.kind === "op" && (t.value === "!" || t.value === "-")) {
      this.#next();
      const operand = settle(this.#unary());
      const f = operand.fn;
      const fn: Fn = t.value === "!" ? (a) => !asBool(f(a)) : (a) => -asNumber(f(a));
      return { fn, pure: operand.pure, offset: t.at };
    }
    return this.#member(this.#primary());
  }

  #primary(): Node {
    const t = this.#next();
    if (t.kind === "num" || t.kind === "str") {
      const v = t.value;
      return { fn: () => v, pure: true, offset: t.at };
    }
    if (t.kind === "op" && t.value === "(") {
      const inner = settle(this.expression(0));
      this.#expect(")");
      return inner;
    }
    if (t.kind === "op" && t.value === "[") return this.#list(t.at);
    if (t.kind !== "id") throw new CelError(`Unexpected "${tokenText(t)}"`, t.at);
    if (t.value === "true" || t.value === "false") {
      const v = t.value === "true";
      return { fn: () => v, pure: true, offset: t.at };
    }
    if (t.value === "null") return { fn: () => null, pure: true, offset: t.at };
    if (this.#peekOp("(")) return this.#call(t.value, t.at);
    if (REFUSED.has(t.value)) {
      throw new CelError(`Attribute ${t.value} is not available in this waypoint`, t.at);
    }
    if (!ROOTS.has(t.value)) throw new CelError(`Unknown identifier ${t.value}`, t.at);
    return { fn: () => undefined, pure: false, path: t.value, offset: t.at };
  }

  #list(at: number): Node {
    const items: Node[] = [];
    while (!this.#peekOp("]")) {
      items.push(settle(this.expression(0)));
      if (!this.#peekOp("]")) this.#expect(",");
    }
    this.#next();
    const fns = items.map((n) => n.fn);
    return { fn: (a) => fns.map((f) => f(a)), pure: items.every((n) => n.pure), offset: at };
  }

  /** `.field`, `.method(args)` and `[key]` after a primary. */
  #member(node: Node): Node {
    for (;;) {
      const t = this.#peek();
      if (t.kind === "op" && t.value === ".") {
        this.#next();
        const name = this.#next();
        if (name.kind !== "id") throw new CelError(`Expected a name after "."`, name.at);
        if (this.#peekOp("(")) {
          this.#next();
          const args = this.#arguments();
          node = method(settle(node), name.value, args, name.at);
          continue;
        }
        node = select(node, name.value, name.at);
        continue;
      }
      if (t.kind === "op" && t.value === "[") {
        this.#next();
        const key = settle(this.expression(0));
        this.#expect("]");
        node = index(settle(node), key);
        continue;
      }
      return node;
    }
  }

  #call(name: string, at: number): Node {
    this.#next();
    if (name === "has") {
      const arg = this.expression(0);
      this.#expect(")");
      return has(arg, at);
    }
    return call(name, this.#arguments(), at);
  }

  #arguments(): Node[] {
    const args: Node[] = [];
    while (!this.#peekOp(")")) {
      args.push(settle(this.expression(0)));
      if (!this.#peekOp(")")) this.#expect(",");
    }
    this.#next();
    return args;
  }

  #peek(): Token {
    return this.#tokens[this.#at];
  }

  #peekOp(op: string): boolean {
    const t = this.#peek();
    return t.kind === "op" && t.value === op;
  }

  #next(): Token {
    const t = this.#tokens[this.#at];
    if (t.kind !== "end") this.#at++;
    return t;
  }

  #expect(op: string): void {
    const t = this.#next();
    if (t.kind !== "op" || t.value !== op) {
      throw new CelError(`Expected "${op}", found "${tokenText(t)}"`, t.at);
    }
  }
}
