import assert from "node:assert/strict";
import { LeastRequestBalancer } from "../../routes/lb.ts";

const EPS = [
  { address: "10.0.0.1", port: 80 },
  { address: "10.0.0.2", port: 80 },
  { address: "10.0.0.3", port: 80 },
];

Deno.test("LeastRequestBalancer.pick() returns undefined without endpoints", () => {
  assert.equal(new LeastRequestBalancer().pick([]), undefined);
});

Deno.test("LeastRequestBalancer.pick() sends to the idle endpoint of two", () => {
  const lb = new LeastRequestBalancer();
  const a = lb.pick(EPS.slice(0, 2))!;
  for (let i = 0; i < 20; i++) {
    const b = lb.pick(EPS.slice(0, 2))!;
    assert.notEqual(b.endpoint, a.endpoint);
    b.done();
  }
});

Deno.test("LeastRequestBalancer.pick() never chooses the busiest of three", () => {
  const lb = new LeastRequestBalancer();
  const busy = Array.from({ length: 5 }, () => lb.pick([EPS[0]])!);
  const counts = new Map<string, number>();
  for (let i = 0; i < 1000; i++) {
    const p = lb.pick(EPS)!;
    counts.set(p.endpoint.address, (counts.get(p.endpoint.address) ?? 0) + 1);
    p.done();
  }
  assert.equal(counts.get("10.0.0.1"), undefined);
  assert.ok(counts.get("10.0.0.2")! > 300 && counts.get("10.0.0.3")! > 300);
  busy.forEach((b) => b.done());
  assert.equal(lb.active(EPS[0]), 0);
});

Deno.test("LeastRequestBalancer pick's done() counts once even when called twice", () => {
  const lb = new LeastRequestBalancer();
  const a = lb.pick([EPS[0]])!;
  lb.pick([EPS[0]]);
  a.done();
  a.done();
  assert.equal(lb.active(EPS[0]), 1);
});

Deno.test("LeastRequestBalancer.pick() passes over an ejected endpoint until its time is up", () => {
  let now = 0;
  const lb = new LeastRequestBalancer(Math.random, () => now);
  lb.eject(EPS[0], 1000);
  for (let i = 0; i < 50; i++) {
    const p = lb.pick(EPS)!;
    assert.notEqual(p.endpoint, EPS[0]);
    p.done();
  }
  now = 1001;
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const p = lb.pick(EPS)!;
    seen.add(p.endpoint.address);
    p.done();
  }
  assert.ok(seen.has("10.0.0.1"));
});

Deno.test("LeastRequestBalancer.pick() uses every endpoint when all are ejected or avoided", () => {
  const lb = new LeastRequestBalancer();
  lb.eject(EPS[0], 10_000);
  assert.equal(lb.pick([EPS[0]])?.endpoint, EPS[0]);
  assert.equal(lb.pick(EPS.slice(0, 2), new Set([EPS[1]]))?.endpoint, EPS[0]);
});
