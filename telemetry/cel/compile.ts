/**
 * {@link compileCel}: bounds the source, parses it into one closure, folds it when it reads no
 * attribute, and wraps it so evaluation never throws to the caller.
 */

import { type CelAttributes, NO_ATTRIBUTES } from "./attributes.ts";
import { CelError } from "./errors.ts";
import { tokenize } from "./_lexer.ts";
import { type Fn, settle } from "./_nodes.ts";
import { Parser } from "./_parser.ts";

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

/** Bound on the expression length, so load time and stack depth stay small. */
const MAX_SOURCE = 4096;

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
