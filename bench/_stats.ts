/** Small number helpers shared by the harness and its load client. */

/**
 * Latency percentiles of a list of milliseconds (nearest rank).
 *
 * @param ms Latencies in milliseconds, in any order
 * @returns `p50`, `p90`, `p99` and `max` in milliseconds, rounded to the microsecond; empty for
 *   an empty list
 */
export function percentiles(ms: readonly number[]): Record<string, number> {
  if (ms.length === 0) return {};
  const s = Float64Array.from(ms).sort();
  const at = (q: number) => round(s[Math.min(s.length - 1, Math.floor(q * s.length))], 3);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) };
}

/** Rounds to `digits` decimals. */
export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
