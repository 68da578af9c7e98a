/**
 * The subset of CEL (cel-spec `langdef.md`) that Telemetry resources use in `tagOverrides` values
 * and `accessLogging.filter.expression`: Envoy attribute paths, literals, comparisons, boolean
 * logic, `in`, `has()`, string methods, `size()`, `string()`, `int()` and `? :`. An expression is
 * compiled once at load into a closure; a request only runs the closure.
 *
 * Invariants:
 * - Compiling refuses what we cannot evaluate (unknown functions, unknown attributes,
 *   `filter_state`, `metadata`, `xds`, `node`, `plugin`) with a message naming the expression and
 *   the place; a config is never half-understood.
 * - Evaluation never throws to the caller: a missing attribute, a missing map key or a type
 *   mismatch makes the value unknown, as Envoy's CEL evaluator reports an error value
 *   (a filter is then false, a tag value `unknown`).
 * - Evaluation work is bounded by the expression's size: no loops, regexes compiled at load.
 */

/** Envoy attribute names we fill (Envoy `attributes.html`, the parts a waypoint knows). */
export const ATTRIBUTES: readonly string[] = Object.freeze([
  "request.path",
  "request.url_path",
  "request.host",
  "request.scheme",
  "request.method",
  "request.headers",
  "request.referer",
  "request.useragent",
  "request.id",
  "request.protocol",
  "request.size",
  "request.total_size",
  "request.time",
  "request.duration",
  "request.query",
  "response.code",
  "response.code_details",
  "response.flags",
  "response.grpc_status",
  "response.headers",
  "response.trailers",
  "response.size",
  "response.total_size",
  "source.address",
  "source.port",
  "source.principal",
  "destination.address",
  "destination.port",
  "destination.principal",
  "connection.mtls",
  "connection.requested_server_name",
  "upstream.address",
  "upstream.port",
]);

const KNOWN = new Set(ATTRIBUTES);
const ROOTS = new Set(["request", "response", "source", "destination", "connection", "upstream"]);
/** Roots Envoy has but we cannot fill from a waypoint's own state. */
const REFUSED = new Set([
  "filter_state",
  "metadata",
  "xds",
  "node",
  "plugin",
  "upstream_filter_state",
]);

/** A string-keyed map value (headers): lookups are by lower-case name for headers. */
export interface CelMap {
  get(key: string): string | undefined;
}

/** Where attribute values come from; `undefined` means the attribute is absent. */
export interface CelAttributes {
  /**
   * @param name One of {@link ATTRIBUTES}
   * @returns A string, number, boolean, {@link CelMap} or `Date`, or undefined when absent
   */
  attribute(name: string): unknown;
}

/** A compiled expression. */
export interface CelProgram {
  /** The source text. */
  readonly source: string;
  /** Set when the value does not depend on any attribute (folded at compile). */
  readonly constant?: unknown;
  /** The value, or undefined when evaluation failed (Envoy's error value). */
  evaluate(attributes: CelAttributes): unknown;
  /** The value as a bool; false on error or a non-bool (an access-log filter). */
  test(attributes: CelAttributes): boolean;
  /** The value as a label value: `unknown` on error (a tag override). */
  text(attributes: CelAttributes): string;
}

/** A refused expression. */
export class CelError extends Error {
  /** Character offset in the expression. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.name = "CelError";
    this.offset = offset;
  }
}

/** Bound on the expression length, so load time and stack depth stay small. */
const MAX_SOURCE = 4096;
const MAX_DEPTH = 64;

/**
 * Compiles an expression.
 *
 * @example
 * ```ts
 * const p = compileCel("response.code >= 400 && request.url_path.startsWith('/api')");
 * p.test(attributes);
 * ```
 *
 * @param source CEL text
 * @returns The program
 * @throws CelError naming the fault and its offset
 */
export function compileCel(source: string): CelProgram {
  if (source.length > MAX_SOURCE) {
    throw new CelError(`Expression longer than ${MAX_SOURCE} characters`, 0);
  }
  const parser = new Parser(tokenize(source));
  const node = settle(parser.expression(0));
  parser.expectEnd();
  const fn = node.fn;
  const constant = node.pure ? safe(fn, NO_ATTRIBUTES) : undefined;
  return {
    source,
    constant: node.pure ? constant : undefined,
    evaluate: node.pure ? () => constant : (a) => safe(fn, a),
    test: node.pure ? () => constant === true : (a) => safe(fn, a) === true,
    text: node.pure ? () => labelOf(constant) : (a) => labelOf(safe(fn, a)),
  };
}

const NO_ATTRIBUTES: CelAttributes = { attribute: () => undefined };

/** The evaluation-time fault: caught at the top, never seen by callers. */
class EvalError extends Error {}

function safe(fn: Fn, a: CelAttributes): unknown {
  try {
    return fn(a);
  } catch {
    return undefined;
  }
}

function labelOf(v: unknown): string {
  if (v === undefined || v === null) return "unknown";
  if (v instanceof Date) return v.toISOString();
  if (typeof v === "object") return "unknown";
  return String(v);
}

type Fn = (a: CelAttributes) => unknown;

/** A compiled sub-expression: its closure, whether it reads no attribute, an attribute path. */
interface Node {
  readonly fn: Fn;
  readonly pure: boolean;
  /** Dotted path while the node is still a bare identifier chain (`request.headers`). */
  readonly path?: string;
  readonly offset: number;
}

type Token =
  | { kind: "num"; value: number; at: number }
  | { kind: "str"; value: string; at: number }
  | { kind: "id"; value: string; at: number }
  | { kind: "op"; value: string; at: number }
  | { kind: "end"; at: number };

const OPS = [
  "&&",
  "||",
  "==",
  "!=",
  "<=",
  ">=",
  "<",
  ">",
  "!",
  "?",
  ":",
  ".",
  ",",
  "(",
  ")",
  "[",
  "]",
  "+",
  "-",
  "*",
  "/",
  "%",
];

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const at = i;
    if (/[0-9]/.test(c)) {
      const m = /^(0x[0-9a-fA-F]+|[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?)[uU]?/.exec(src.slice(i))!;
      out.push({ kind: "num", value: Number(m[1]), at });
      i += m[0].length;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      const raw = (m[0] === "r" || m[0] === "R") && (src[i + 1] === "'" || src[i + 1] === '"');
      if (raw) {
        const [value, next] = readString(src, i + 1, true);
        out.push({ kind: "str", value, at });
        i = next;
        continue;
      }
      out.push({ kind: "id", value: m[0], at });
      i += m[0].length;
      continue;
    }
    if (c === "'" || c === '"') {
      const [value, next] = readString(src, i, false);
      out.push({ kind: "str", value, at });
      i = next;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new CelError(`Unexpected character "${c}"`, at);
    out.push({ kind: "op", value: op, at });
    i += op.length;
  }
  out.push({ kind: "end", at: src.length });
  return out;
}

const ESCAPES: Record<string, string> = {
  n: "\n",
  t: "\t",
  r: "\r",
  "\\": "\\",
  "'": "'",
  '"': '"',
  "`": "`",
  "?": "?",
  a: "\x07",
  b: "\b",
  f: "\f",
  v: "\v",
};

function readString(src: string, start: number, raw: boolean): [string, number] {
  const quote = src[start];
  let i = start + 1;
  let out = "";
  while (i < src.length && src[i] !== quote) {
    if (src[i] === "\n") throw new CelError("Line break inside a string literal", i);
    if (src[i] === "\\" && !raw) {
      const e = ESCAPES[src[i + 1]];
      if (e === undefined) throw new CelError(`Unsupported escape "\\${src[i + 1]}"`, i);
      out += e;
      i += 2;
      continue;
    }
    out += src[i++];
  }
  if (i >= src.length) throw new CelError("Unterminated string literal", start);
  return [out, i + 1];
}

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

class Parser {
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

function tokenText(t: Token): string {
  return t.kind === "end" ? "end of expression" : String(t.value);
}

/** A field selection: extends an attribute path, or reads a map key (`request.headers.x`). */
function select(node: Node, field: string, at: number): Node {
  if (node.path !== undefined) return settle({ ...node, path: `${node.path}.${field}` }, at);
  return mapKey(node, () => field);
}

/**
 * Ends an attribute path: it must name a known attribute, and becomes a read of it.
 */
function settle(node: Node, at = node.offset): Node {
  if (node.path === undefined) return node;
  const name = node.path;
  if (!name.includes(".")) {
    throw new CelError(`${name} is not a value; name one of its attributes`, at);
  }
  if (!KNOWN.has(name)) throw new CelError(`Unknown attribute ${name}`, at);
  return {
    fn: (a) => {
      const v = a.attribute(name);
      if (v === undefined) throw new EvalError(`No attribute ${name}`);
      return v;
    },
    pure: false,
    offset: node.offset,
  };
}

function mapKey(map: Node, key: Fn): Node {
  const m = map.fn;
  return {
    fn: (a) => {
      const v = m(a);
      const k = key(a);
      if (isMap(v)) {
        const found = v.get(String(k).toLowerCase());
        if (found === undefined) throw new EvalError(`No key ${k}`);
        return found;
      }
      if (Array.isArray(v) && typeof k === "number" && k >= 0 && k < v.length) return v[k];
      throw new EvalError("Not a map");
    },
    pure: false,
    offset: map.offset,
  };
}

function index(target: Node, key: Node): Node {
  return mapKey(target, key.fn);
}

/** `has(x.f)`: presence of an attribute or a map key, never an error. */
function has(arg: Node, at: number): Node {
  const fn = settle(arg, at).fn;
  return {
    fn: (a) => {
      try {
        fn(a);
        return true;
      } catch (e) {
        if (e instanceof EvalError) return false;
        throw e;
      }
    },
    pure: false,
    offset: at,
  };
}

function conditional(test: Node, yes: Node, no: Node): Node {
  const [t, y, n] = [settle(test).fn, settle(yes).fn, settle(no).fn];
  return {
    fn: (a) => (asBool(t(a)) ? y(a) : n(a)),
    pure: test.pure && yes.pure && no.pure,
    offset: test.offset,
  };
}

function binary(op: string, left: Node, right: Node, at: number): Node {
  const l = left.fn;
  const r = right.fn;
  const pure = left.pure && right.pure;
  const make = (fn: Fn): Node => ({ fn, pure, offset: at });
  switch (op) {
    case "&&":
      // CEL's commutative logic: false wins over an error on either side.
      return make((a) => {
        const x = tryValue(l, a);
        if (x === false) return false;
        const y = asBool(r(a));
        if (!y) return false;
        return asBool(rethrow(x));
      });
    case "||":
      return make((a) => {
        const x = tryValue(l, a);
        if (x === true) return true;
        const y = asBool(r(a));
        if (y) return true;
        return asBool(rethrow(x));
      });
    case "==":
      return make((a) => equals(l(a), r(a)));
    case "!=":
      return make((a) => !equals(l(a), r(a)));
    case "<":
      return make((a) => compare(l(a), r(a)) < 0);
    case "<=":
      return make((a) => compare(l(a), r(a)) <= 0);
    case ">":
      return make((a) => compare(l(a), r(a)) > 0);
    case ">=":
      return make((a) => compare(l(a), r(a)) >= 0);
    case "in":
      return make((a) => contains(r(a), l(a)));
    case "+":
      return make((a) => plus(l(a), r(a)));
    default:
      return make((a) => arithmetic(op, asNumber(l(a)), asNumber(r(a))));
  }
}

const FAILED = Symbol("failed");

function tryValue(fn: Fn, a: CelAttributes): unknown {
  try {
    return fn(a);
  } catch (e) {
    if (e instanceof EvalError) return FAILED;
    throw e;
  }
}

function rethrow(v: unknown): unknown {
  if (v === FAILED) throw new EvalError("Operand failed");
  return v;
}

/** Global functions: `size`, `string`, `int`, `double`, `bool`, `timestamp` is not supported. */
function call(name: string, args: Node[], at: number): Node {
  const pure = args.every((n) => n.pure);
  const one = (f: (v: unknown) => unknown): Node => {
    if (args.length !== 1) throw new CelError(`${name}() takes one argument`, at);
    const x = args[0].fn;
    return { fn: (a) => f(x(a)), pure, offset: at };
  };
  switch (name) {
    case "size":
      return one(sizeOf);
    case "string":
      return one(toText);
    case "int":
      return one(toInt);
    case "double":
      return one((v) => asNumber(typeof v === "string" ? Number(v) : v));
    case "bool":
      return one((v) => (v === "true" ? true : v === "false" ? false : asBool(v)));
    default:
      throw new CelError(`Unknown function ${name}()`, at);
  }
}

/** Receiver-style functions. `matches` needs a literal pattern, compiled here. */
function method(target: Node, name: string, args: Node[], at: number): Node {
  const t = target.fn;
  const pure = target.pure && args.every((n) => n.pure);
  const arg = (): Fn => {
    if (args.length !== 1) throw new CelError(`${name}() takes one argument`, at);
    return args[0].fn;
  };
  switch (name) {
    case "startsWith": {
      const x = arg();
      return { fn: (a) => asText(t(a)).startsWith(asText(x(a))), pure, offset: at };
    }
    case "endsWith": {
      const x = arg();
      return { fn: (a) => asText(t(a)).endsWith(asText(x(a))), pure, offset: at };
    }
    case "contains": {
      const x = arg();
      return { fn: (a) => asText(t(a)).includes(asText(x(a))), pure, offset: at };
    }
    case "matches": {
      arg();
      if (!args[0].pure) throw new CelError("matches() needs a literal pattern", at);
      const pattern = String(args[0].fn(NO_ATTRIBUTES));
      let re: RegExp;
      try {
        re = new RegExp(pattern, "u");
      } catch (e) {
        throw new CelError(`Invalid matches() pattern: ${(e as Error).message}`, at);
      }
      return { fn: (a) => re.test(asText(t(a))), pure, offset: at };
    }
    case "size":
      if (args.length !== 0) throw new CelError("size() takes no argument here", at);
      return { fn: (a) => sizeOf(t(a)), pure, offset: at };
    default:
      throw new CelError(`Unknown function ${name}()`, at);
  }
}

function isMap(v: unknown): v is CelMap {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date) &&
    typeof (v as CelMap).get === "function";
}

function asBool(v: unknown): boolean {
  if (typeof v !== "boolean") throw new EvalError("Not a bool");
  return v;
}

function asNumber(v: unknown): number {
  if (typeof v !== "number") throw new EvalError("Not a number");
  return v;
}

function asText(v: unknown): string {
  if (typeof v !== "string") throw new EvalError("Not a string");
  return v;
}

function equals(x: unknown, y: unknown): boolean {
  if (typeof x !== typeof y && !(x === null || y === null)) {
    throw new EvalError("No matching overload for ==");
  }
  return x === y;
}

function compare(x: unknown, y: unknown): number {
  if (typeof x === "number" && typeof y === "number") return x - y;
  if (typeof x === "string" && typeof y === "string") return x < y ? -1 : x > y ? 1 : 0;
  throw new EvalError("No matching overload for comparison");
}

function contains(container: unknown, item: unknown): boolean {
  if (Array.isArray(container)) return container.some((v) => v === item);
  if (isMap(container)) return container.get(asText(item).toLowerCase()) !== undefined;
  throw new EvalError("No matching overload for in");
}

function plus(x: unknown, y: unknown): unknown {
  if (typeof x === "string" && typeof y === "string") return x + y;
  return asNumber(x) + asNumber(y);
}

function arithmetic(op: string, x: number, y: number): number {
  if ((op === "/" || op === "%") && y === 0) throw new EvalError("Division by zero");
  if (op === "-") return x - y;
  if (op === "*") return x * y;
  if (op === "/") return Math.trunc(x / y);
  return x % y;
}

function sizeOf(v: unknown): number {
  if (typeof v === "string") return [...v].length;
  if (Array.isArray(v)) return v.length;
  throw new EvalError("No matching overload for size");
}

function toText(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (v instanceof Date) return v.toISOString();
  throw new EvalError("No matching overload for string");
}

function toInt(v: unknown): number {
  if (typeof v === "number") return Math.trunc(v);
  if (typeof v === "string" && /^-?[0-9]+$/.test(v.trim())) return Number(v.trim());
  if (v instanceof Date) return Math.floor(v.getTime() / 1000);
  throw new EvalError("No matching overload for int");
}
