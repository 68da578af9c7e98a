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

/** Byte counts of a running splice, updated as chunks pass (for reports while it runs). */
export interface SpliceProgress {
  aToB: number;
  bToA: number;
}

/**
 * Splices two streams together.
 *
 * @param a One side (for example the downstream CONNECT stream)
 * @param b The other side (for example the upstream tunnel or socket)
 * @param progress Where the counts are kept as bytes flow. @default a private object
 * @returns Resolves once both sides have closed
 */
export function splice(
  a: Duplex,
  b: Duplex,
  progress: SpliceProgress = { aToB: 0, bToA: 0 },
): Promise<SpliceResult> {
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
        if (--open === 0) resolve({ aToB: progress.aToB, bToA: progress.bToA, error });
      });
    };
    wire(a, b, (n) => progress.aToB += n);
    wire(b, a, (n) => progress.bToA += n);
  });
}
