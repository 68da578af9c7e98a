import assert from "node:assert/strict";
import { backoffDelay, renewDelay } from "../../tunnel/cert_rotation.ts";

Deno.test("renewDelay() renews at half the remaining lifetime, spread by at most 1 %", () => {
  const cases: [string, number, number, number][] = [
    // [what, lifetime ms, random, expected ms]
    ["24 h certificate, no jitter drawn", 86_400_000, 0.5, 43_200_000],
    ["24 h certificate, earliest", 86_400_000, 0, 43_200_000 - 864_000],
    ["24 h certificate, latest", 86_400_000, 1, 43_200_000 + 864_000],
    ["an expired certificate renews now", -5_000, 0.5, 0],
  ];
  for (const [what, lifetime, random, want] of cases) {
    assert.equal(renewDelay(1_000 + lifetime, 1_000, random), want, what);
  }
});

Deno.test("renewDelay() counts from arrival, not from a backdated notBefore", () => {
  // Issued for 4 s with notBefore 5 min back: still renews 2 s after arrival.
  assert.equal(renewDelay(10_000 + 4_000, 10_000, 0.5), 2_000);
});

Deno.test("backoffDelay() doubles from the minimum up to the cap, within its upper half", () => {
  const options = { minBackoffMs: 1_000, maxBackoffMs: 150_000 };
  const cases: [number, number, number][] = [
    [1, 0, 500],
    [1, 1, 1_000],
    [2, 1, 2_000],
    [8, 1, 128_000],
    [9, 1, 150_000],
    [50, 0, 75_000],
  ];
  for (const [attempt, random, want] of cases) {
    assert.equal(backoffDelay(attempt, random, options), want, `attempt ${attempt}`);
  }
});
