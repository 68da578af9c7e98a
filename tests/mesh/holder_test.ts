import assert from "node:assert/strict";
import { Logger } from "../../log/mod.ts";
import { emptySnapshot, type Snapshot, SnapshotHolder } from "../../mesh/mod.ts";
import { snapshotFromYaml, WAYPOINT } from "../fixtures/mesh/builders.ts";

const next = (): Snapshot => snapshotFromYaml("", { version: 1 }).snapshot;

Deno.test("SnapshotHolder serves the initial snapshot until replaced", () => {
  const initial = emptySnapshot(WAYPOINT);
  const holder = new SnapshotHolder(initial);
  assert.equal(holder.current, initial);
  const replacement = next();
  holder.replace(replacement);
  assert.equal(holder.current, replacement);
});

Deno.test("SnapshotHolder tells subscribers the new and previous snapshot until they unsubscribe", () => {
  const initial = emptySnapshot(WAYPOINT);
  const holder = new SnapshotHolder(initial);
  const seen: [number, number][] = [];
  const unsubscribe = holder.subscribe((s, previous) => seen.push([s.version, previous.version]));
  const first = next();
  holder.replace(first);
  unsubscribe();
  holder.replace(next());
  assert.deepEqual(seen, [[1, 0]]);
});

Deno.test("SnapshotHolder keeps notifying and logs after a subscriber throws", async () => {
  const logged: string[] = [];
  const sink = {
    write(chunk: Uint8Array) {
      logged.push(new TextDecoder().decode(chunk));
      return Promise.resolve(chunk.length);
    },
  };
  const logger = new Logger({ sink });
  const holder = new SnapshotHolder(emptySnapshot(WAYPOINT), { logger });
  let called = 0;
  holder.subscribe(() => {
    throw new Error("boom");
  });
  holder.subscribe(() => called++);
  holder.replace(next());
  await logger.drain();
  assert.equal(called, 1);
  assert.match(logged.join(""), /"msg":"Snapshot subscriber failed".*"error":"boom"/);
});

Deno.test("emptySnapshot() is version 0 with nothing bound and the default trust domain", () => {
  const empty = emptySnapshot(WAYPOINT);
  assert.equal(empty.version, 0);
  assert.equal(empty.gatewayFound, false);
  assert.equal(empty.servicesByAddress.size + empty.workloadsByAddress.size, 0);
  assert.deepEqual(empty.self, {
    ...WAYPOINT,
    trustDomain: "cluster.local",
    trustDomains: ["cluster.local"],
  });
});
