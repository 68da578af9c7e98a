import assert from "node:assert/strict";
import { acceptWindowMs } from "../../cli/shutdown.ts";
import { UsageError } from "../../cli/flags.ts";

const CASES: [string, string | undefined, number, number][] = [
  ["Istio's 5 s by default", undefined, 30_000, 5_000],
  ["MINIMUM_DRAIN_DURATION in seconds", "2s", 30_000, 2_000],
  ["MINIMUM_DRAIN_DURATION in milliseconds", "750ms", 30_000, 750],
  ["0s stops accepting at once", "0s", 30_000, 0],
  ["at most half the default 5 s drain timeout", undefined, 5_000, 2_500],
  ["at most half a short drain timeout", "20s", 1_000, 500],
];

for (const [name, env, drainMs, want] of CASES) {
  Deno.test(`acceptWindowMs(): ${name}`, () => {
    assert.equal(acceptWindowMs(drainMs, () => env), want);
  });
}

Deno.test("acceptWindowMs() refuses a MINIMUM_DRAIN_DURATION that is not a duration, naming it", () => {
  assert.throws(
    () => acceptWindowMs(5_000, () => "5 minutes"),
    (e) => e instanceof UsageError && /MINIMUM_DRAIN_DURATION.*"5 minutes"/.test(e.message),
  );
});
