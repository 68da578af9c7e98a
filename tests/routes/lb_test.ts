import assert from "node:assert/strict";
import { Balancer } from "../../routes/lb.ts";
import { seededRandom } from "./_fixtures.ts";

const EPS = [
  { address: "10.0.0.1", port: 80 },
  { address: "10.0.0.2", port: 80 },
  { address: "10.0.0.3", port: 80 },
];

Deno.test("Balancer.pick() returns undefined without endpoints", () => {
  assert.equal(new Balancer().pick([]), undefined);
});

Deno.test("Balancer.pick() sends to the idle endpoint of two", () => {
  const lb = new Balancer();
  const a = lb.pick(EPS.slice(0, 2))!;
  for (let i = 0; i < 20; i++) {
    const b = lb.pick(EPS.slice(0, 2))!;
    assert.notEqual(b.endpoint, a.endpoint);
    b.done();
  }
});

Deno.test("Balancer.pick() never chooses the busiest of three", () => {
  const lb = new Balancer();
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

Deno.test("Balancer pick's done() counts once even when called twice", () => {
  const lb = new Balancer();
  const a = lb.pick([EPS[0]])!;
  lb.pick([EPS[0]]);
  a.done();
  a.done();
  assert.equal(lb.active(EPS[0]), 1);
});

Deno.test("Balancer.pick() passes over an ejected endpoint until its time is up", () => {
  let now = 0;
  const lb = new Balancer(Math.random, () => now);
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

Deno.test("Balancer.pick() uses every endpoint when all are ejected or avoided", () => {
  const lb = new Balancer();
  lb.eject(EPS[0], 10_000);
  assert.equal(lb.pick([EPS[0]])?.endpoint, EPS[0]);
  assert.equal(lb.pick(EPS.slice(0, 2), new Set([EPS[1]]))?.endpoint, EPS[0]);
});

Deno.test("Balancer.pick() by LEAST_REQUEST picks exactly as without a policy", () => {
  const picks = (policy?: "LEAST_REQUEST") => {
    const lb = new Balancer(seededRandom(7));
    lb.eject(EPS[2], 10_000);
    const busy = lb.pick([EPS[1]])!;
    const out: string[] = [];
    for (let i = 0; i < 50; i++) {
      const p = lb.pick(EPS, undefined, policy)!;
      out.push(p.endpoint.address);
      if (i % 3) p.done();
    }
    busy.done();
    return out;
  };
  assert.deepEqual(picks("LEAST_REQUEST"), picks());
  assert.ok(!picks().includes("10.0.0.3"));
});

Deno.test("Balancer.pick() by round robin visits each endpoint once per cycle", () => {
  const lb = new Balancer(seededRandom(1));
  const order: string[] = [];
  for (let i = 0; i < 9; i++) {
    const p = lb.pick(EPS, undefined, "ROUND_ROBIN")!;
    order.push(p.endpoint.address);
    p.done();
  }
  for (let cycle = 0; cycle < 3; cycle++) {
    assert.deepEqual(new Set(order.slice(cycle * 3, cycle * 3 + 3)).size, 3);
  }
  assert.deepEqual(order.slice(3), [...order.slice(0, 3), ...order.slice(0, 3)]);
});

Deno.test("Balancer.pick() by round robin ignores load, unlike least request", () => {
  const lb = new Balancer();
  const held = Array.from({ length: 6 }, () => lb.pick(EPS, undefined, "ROUND_ROBIN")!);
  const counts = new Map<string, number>();
  for (const p of held) counts.set(p.endpoint.address, (counts.get(p.endpoint.address) ?? 0) + 1);
  assert.deepEqual([...counts.values()], [2, 2, 2]);
  held.forEach((p) => p.done());
});

Deno.test("Balancer.pick() by round robin skips an ejected endpoint and takes it back later", () => {
  let now = 0;
  const lb = new Balancer(seededRandom(2), () => now);
  lb.eject(EPS[1], 1000);
  const seen: string[] = [];
  for (let i = 0; i < 6; i++) seen.push(lb.pick(EPS, undefined, "ROUND_ROBIN")!.endpoint.address);
  assert.ok(!seen.includes("10.0.0.2"));
  for (let cycle = 0; cycle < 3; cycle++) {
    assert.deepEqual(
      new Set(seen.slice(cycle * 2, cycle * 2 + 2)),
      new Set(["10.0.0.1", "10.0.0.3"]),
    );
  }
  now = 1001;
  const back = new Set<string>();
  for (let i = 0; i < 3; i++) back.add(lb.pick(EPS, undefined, "ROUND_ROBIN")!.endpoint.address);
  assert.equal(back.size, 3);
});

Deno.test("Balancer.pick() by round robin keeps one cursor per candidate list", () => {
  const lb = new Balancer(() => 0);
  const other = [...EPS];
  assert.equal(lb.pick(EPS, undefined, "ROUND_ROBIN")!.endpoint, EPS[0]);
  assert.equal(lb.pick(EPS, undefined, "ROUND_ROBIN")!.endpoint, EPS[1]);
  assert.equal(lb.pick(other, undefined, "ROUND_ROBIN")!.endpoint, EPS[0]);
  assert.equal(lb.pick(EPS, undefined, "ROUND_ROBIN")!.endpoint, EPS[2]);
});

Deno.test("Balancer.pick() by round robin moves on past endpoints a retry already tried", () => {
  const lb = new Balancer(() => 0);
  const tried = new Set([EPS[0], EPS[1]]);
  assert.equal(lb.pick(EPS, tried, "ROUND_ROBIN")!.endpoint, EPS[2]);
  assert.equal(lb.pick(EPS, new Set(EPS), "ROUND_ROBIN")!.endpoint, EPS[0]);
});

Deno.test("Balancer.pick() at random spreads 10,000 picks evenly over 4 endpoints", () => {
  const four = [...EPS, { address: "10.0.0.4", port: 80 }];
  const lb = new Balancer(seededRandom(42));
  const counts = new Map<string, number>();
  for (let i = 0; i < 10_000; i++) {
    const p = lb.pick(four, undefined, "RANDOM")!;
    counts.set(p.endpoint.address, (counts.get(p.endpoint.address) ?? 0) + 1);
    p.done();
  }
  assert.equal(counts.size, 4);
  for (const [address, n] of counts) {
    assert.ok(Math.abs(n / 100 - 25) <= 2, `${address} got ${n / 100}% of picks`);
  }
});

Deno.test("Balancer.pick() at random passes over ejected and tried endpoints", () => {
  const lb = new Balancer(seededRandom(3));
  lb.eject(EPS[0], 10_000);
  for (let i = 0; i < 100; i++) {
    const p = lb.pick(EPS, new Set([EPS[2]]), "RANDOM")!;
    assert.equal(p.endpoint, EPS[1]);
    p.done();
  }
  assert.equal(lb.pick([EPS[0], EPS[2]], new Set([EPS[2]]), "RANDOM")!.endpoint, EPS[0]);
});
