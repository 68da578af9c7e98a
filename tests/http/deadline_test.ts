import assert from "node:assert/strict";
import { Deadline } from "../../http/mod.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A deadline whose expiries are counted; stopped at the end so no timer outlives the test. */
function counted(): { deadline: Deadline; fired: () => number } {
  let n = 0;
  return { deadline: new Deadline(() => n++), fired: () => n };
}

Deno.test("Deadline fires once after set()", async () => {
  const { deadline, fired } = counted();
  deadline.set(5);
  assert.equal(deadline.armed, true);
  await sleep(40);
  assert.equal(fired(), 1);
  assert.equal(deadline.armed, false);
  deadline.stop();
});

Deno.test("Deadline never fires after cancel(), and set() arms it again", async () => {
  const { deadline, fired } = counted();
  deadline.set(5);
  deadline.cancel();
  await sleep(40);
  assert.equal(fired(), 0);
  deadline.set(5);
  await sleep(40);
  assert.equal(fired(), 1);
  deadline.stop();
});

Deno.test("Deadline moved later by set() does not fire at the earlier time", async () => {
  const { deadline, fired } = counted();
  deadline.set(5);
  deadline.set(60_000); // The timer for 5 ms stays scheduled and must re-arm, not fire.
  await sleep(40);
  assert.equal(fired(), 0);
  assert.equal(deadline.armed, true);
  deadline.stop();
});

Deno.test("Deadline moved earlier by set() fires at the earlier time", async () => {
  const { deadline, fired } = counted();
  deadline.set(60_000);
  deadline.set(5);
  await sleep(40);
  assert.equal(fired(), 1);
  deadline.stop();
});

Deno.test("Deadline.stop() leaves no timer behind", () => {
  // Deno's test sanitizer fails this test if a timer is still scheduled when it ends.
  const { deadline, fired } = counted();
  deadline.set(60_000);
  deadline.cancel();
  deadline.set(60_000);
  deadline.stop();
  assert.equal(fired(), 0);
  assert.equal(deadline.armed, false);
});
