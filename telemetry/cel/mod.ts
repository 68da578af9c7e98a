/**
 * @module
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
export { ATTRIBUTES, type CelAttributes, type CelMap } from "./attributes.ts";
export { CelError } from "./errors.ts";
export { type CelProgram, compileCel } from "./compile.ts";
