/**
 * Copies bytes both ways between two duplex streams until both directions are done.
 *
 * Invariants:
 * - Half-close travels: when one side ends its writing, the other side's write end is ended, and
 *   the opposite direction keeps flowing.
 * - Backpressure is end to end: a side is only read while the other side accepts writes, so the
 *   memory held is bounded by the streams' high-water marks and the HTTP/2 windows.
 * - An abort on either side (error, reset, close before end) destroys the other side.
 */
import type { Duplex } from "node:stream";

/** What one splice carried and how it ended. */
export interface SpliceResult {
  /** Bytes read from `a` and written to `b`. */
  readonly aToB: number;
  /** Bytes read from `b` and written to `a`. */
  readonly bToA: number;
  /** The first error seen, when the splice was aborted. */
  readonly error?: Error;
}

/**
 * Splices two streams together.
 *
 * @param a One side (for example the downstream CONNECT stream)
 * @param b The other side (for example the upstream tunnel or socket)
 * @returns Resolves once both sides have closed
 */
export function splice(a: Duplex, b: Duplex): Promise<SpliceResult> {
  let aToB = 0, bToA = 0;
  let error: Error | undefined;
  let open = 2;
  return new Promise((resolve) => {
    const wire = (from: Duplex, to: Duplex, count: (n: number) => void) => {
      from.on("data", (chunk: Uint8Array) => count(chunk.length));
      from.pipe(to);
      from.on("error", (e: Error) => {
        error ??= e;
        to.destroy();
      });
      from.once("close", () => {
        if (!from.readableEnded || !from.writableFinished) {
          error ??= new Error("Peer closed before finishing");
          to.destroy();
        }
        if (--open === 0) resolve({ aToB, bToA, error });
      });
    };
    wire(a, b, (n) => aToB += n);
    wire(b, a, (n) => bToA += n);
  });
}
