/**
 * The node builders: each checks its operands at compile (known attributes, function names and
 * arities, literal `matches()` patterns) and returns the closure that evaluates it, marked pure
 * when it reads no attribute.
 */

import { type CelAttributes, KNOWN, NO_ATTRIBUTES } from "./attributes.ts";
import { CelError, EvalError } from "./errors.ts";
import {
  arithmetic,
  asBool,
  asNumber,
  asText,
  compare,
  contains,
  equals,
  isMap,
  plus,
  sizeOf,
  toInt,
  toText,
} from "./_values.ts";

export type Fn = (a: CelAttributes) => unknown;

/** A compiled sub-expression: its closure, whether it reads no attribute, an attribute path. */
export interface Node {
  readonly fn: Fn;
  readonly pure: boolean;
  /** Dotted path while the node is still a bare identifier chain (`request.headers`). */
  readonly path?: string;
  readonly offset: number;
}

/** A field selection: extends an attribute path, or reads a map key (`request.headers.x`). */
export function select(node: Node, field: string, at: number): Node {
  if (node.path !== undefined) return settle({ ...node, path: `${node.path}.${field}` }, at);
  return mapKey(node, () => field);
}

/**
 * Ends an attribute path: it must name a known attribute, and becomes a read of it.
 */
export function settle(node: Node, at = node.offset): Node {
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

export function index(target: Node, key: Node): Node {
  return mapKey(target, key.fn);
}

/** `has(x.f)`: presence of an attribute or a map key, never an error. */
export function has(arg: Node, at: number): Node {
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

export function conditional(test: Node, yes: Node, no: Node): Node {
  const [t, y, n] = [settle(test).fn, settle(yes).fn, settle(no).fn];
  return {
    fn: (a) => (asBool(t(a)) ? y(a) : n(a)),
    pure: test.pure && yes.pure && no.pure,
    offset: test.offset,
  };
}

export function binary(op: string, left: Node, right: Node, at: number): Node {
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
export function call(name: string, args: Node[], at: number): Node {
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
export function method(target: Node, name: string, args: Node[], at: number): Node {
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
