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

/** One point of a latency-percentile curve: `[percentile 0–100, milliseconds]`. */
export type CurvePoint = readonly [number, number];

/**
 * The percentiles a latency plot samples: q = 1 − 10^(−k) for k = 0, 0.1, … 4 (p0 … p99.99),
 * evenly spaced on the plot's log axis of 1 / (1 − q).
 *
 * @param count Latencies behind the curve: past k = log10(count) a point would only repeat the
 *   largest sample, so the grid stops there
 * @returns Percentiles from 0 to at most 99.99
 */
export function curveGrid(count = Infinity): number[] {
  const top = Math.min(4, Math.log10(Math.max(1, count)));
  const out: number[] = [];
  for (let i = 0; i / 10 <= top + 1e-9; i++) out.push(round(100 * (1 - 10 ** (-i / 10)), 4));
  return out;
}

/**
 * A latency-percentile curve of a list of milliseconds (nearest rank) on {@link curveGrid}.
 *
 * @returns Points in increasing percentile order; empty for an empty list
 */
export function percentileCurve(ms: readonly number[]): CurvePoint[] {
  if (ms.length === 0) return [];
  const s = Float64Array.from(ms).sort();
  return curveGrid(s.length).map((p) => {
    const v = s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))];
    return [p, round(v, 3)] as const;
  });
}
