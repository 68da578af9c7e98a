/**
 * Gateway API durations (GEP-2257): one to four `<1–5 digits><unit>` parts, units `h`, `m`, `s`,
 * `ms`, validated by `^([0-9]{1,5}(h|m|s|ms)){1,4}$` as the CRDs do. `0s` means "no timeout".
 */

const DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const PART = /([0-9]{1,5})(ms|h|m|s)/g;
const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/**
 * Parses a GEP-2257 duration.
 *
 * @example
 * ```ts
 * parseDuration("1h30m"); // 5_400_000
 * parseDuration("500ms"); // 500
 * parseDuration("1.5s"); // undefined
 * ```
 * @param text The duration as written
 * @returns Milliseconds, or undefined when the text is not a GEP-2257 duration
 */
export function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let total = 0;
  for (const [, digits, unit] of text.matchAll(PART)) total += Number(digits) * UNIT_MS[unit];
  return total;
}
