/**
 * The two faults of our CEL subset: {@link CelError} refuses an expression at compile and names
 * the place; {@link EvalError} marks an evaluation that failed (Envoy's error value), caught
 * inside the program and never seen by callers.
 */

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

/** The evaluation-time fault: caught at the top, never seen by callers. */
export class EvalError extends Error {}
