import assert from "node:assert/strict";
import {
  DEFAULT_RETRY,
  type HasBackends,
  pickBackend,
  type RetryPolicy,
  shouldRetry,
  type TryOutcome,
} from "../../routes/mod.ts";
import {
  backend,
  backendName,
  compile,
  doc,
  httpRoute,
  parent,
  seededRandom,
} from "./_fixtures.ts";

const PICKS = 10_000;
/** Allowed distance from the expected share, in percentage points. */
const TOLERANCE = 2;

/** Shares (in percent) of each backend name over {@link PICKS} seeded picks. */
function shares(rule: HasBackends, seed = 42): Map<string, number> {
  const random = seededRandom(seed);
  const counts = new Map<string, number>();
  for (let i = 0; i < PICKS; i++) {
    const name = backendName(pickBackend(rule, random));
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return new Map([...counts].map(([name, n]) => [name, (100 * n) / PICKS]));
}

function httpRule(backendRefs: unknown[]): HasBackends {
  const { table } = compile([httpRoute("w", [{ backendRefs }])]);
  return table.httpRoutesFor("ns1/echo", 80)!.entries[0].rule;
}

function assertShares(
  actual: Map<string, number>,
  expected: Record<string, number>,
  name: string,
): void {
  assert.deepEqual(
    [...actual.keys()].sort(),
    Object.keys(expected).sort(),
    `${name}: exactly these backends get traffic`,
  );
  for (const [backendKey, share] of Object.entries(expected)) {
    const got = actual.get(backendKey)!;
    assert.ok(
      Math.abs(got - share) <= TOLERANCE,
      `${name}: ${backendKey} got ${got}% (want ${share}% ± ${TOLERANCE})`,
    );
  }
}

Deno.test("pickBackend() splits traffic by weight within 2 points over 10,000 picks", () => {
  const cases: [string, unknown[], Record<string, number>][] = [
    ["70/30 as in MeshHTTPRouteWeight", [backend("echo-v1", 80, 70), backend("echo-v2", 80, 30)], {
      "ns1/echo-v1:80": 70,
      "ns1/echo-v2:80": 30,
    }],
    ["the default weight is 1", [backend("echo-v1"), backend("echo-v2")], {
      "ns1/echo-v1:80": 50,
      "ns1/echo-v2:80": 50,
    }],
    [
      "weight 0 is never picked",
      [backend("echo-v1", 80, 70), backend("echo-v2", 80, 30), backend("echo-v3", 80, 0)],
      { "ns1/echo-v1:80": 70, "ns1/echo-v2:80": 30 },
    ],
    ["a single non-zero backend takes everything", [
      backend("echo-v1", 80, 0),
      backend("echo-v2", 80, 5),
    ], { "ns1/echo-v2:80": 100 }],
    [
      "a missing Service keeps its share as 500s",
      [backend("echo-v1", 80, 1), backend("missing", 80, 1)],
      { "ns1/echo-v1:80": 50, "500": 50 },
    ],
    ["three-way uneven", [
      backend("echo-v1", 80, 1),
      backend("echo-v2", 80, 2),
      backend("echo-v3", 80, 7),
    ], {
      "ns1/echo-v1:80": 10,
      "ns1/echo-v2:80": 20,
      "ns1/echo-v3:80": 70,
    }],
  ];
  for (const [name, refs, expected] of cases) assertShares(shares(httpRule(refs)), expected, name);
});

Deno.test("pickBackend() answers 500 when no backend can be picked", () => {
  const cases: [string, unknown[], string][] = [
    ["no backendRefs", [], "The rule has no backendRefs"],
    [
      "every weight 0",
      [backend("echo-v1", 80, 0), backend("echo-v2", 80, 0)],
      "Every backendRef of the rule has weight 0",
    ],
  ];
  for (const [name, refs, reason] of cases) {
    assert.deepEqual(pickBackend(httpRule(refs), seededRandom(1)), {
      kind: "error",
      status: 500,
      reason,
    }, name);
  }
  const missing = pickBackend(httpRule([backend("missing")]), seededRandom(1));
  assert.equal(missing.kind === "error" && missing.status, 500, "a lone missing Service");
});

Deno.test("pickBackend() splits TCPRoute connections by weight", () => {
  const { table, problems } = compile([doc("TCPRoute", "tcp", {
    parentRefs: [parent("echo", 9090)],
    rules: [{
      backendRefs: [
        backend("echo-v1", 9090, 80),
        backend("echo-v2", 9090, 20),
        backend("echo-v3", 9090, 0),
      ],
    }],
  }, { apiVersion: "gateway.networking.k8s.io/v1alpha2" })]);
  assert.deepEqual(problems, []);
  const route = table.tcpRoutesFor("ns1/echo", 9090)!;
  assertShares(shares(route, 7), { "ns1/echo-v1:9090": 80, "ns1/echo-v2:9090": 20 }, "80/20/0");
  const zero = compile([
    doc("TCPRoute", "z", {
      parentRefs: [parent("echo", 9090)],
      rules: [{ backendRefs: [backend("echo-v1", 9090, 0)] }],
    }),
  ]);
  assert.equal(
    pickBackend(zero.table.tcpRoutesFor("ns1/echo", 9090)!, Math.random).kind,
    "error",
    "all-zero TCP is refused",
  );
});

Deno.test("pickBackend() picks the same backends for the same seed", () => {
  const rule = httpRule([backend("echo-v1", 80, 3), backend("echo-v2", 80, 1)]);
  const run = () => {
    const random = seededRandom(99);
    return Array.from({ length: 20 }, () => backendName(pickBackend(rule, random)));
  };
  assert.deepEqual(run(), run());
});

Deno.test("shouldRetry() follows Istio's default and configured policies", () => {
  const configured: RetryPolicy = { attempts: 2, codes: [500, 502, 503, 504], backoffMs: 100 };
  const only500: RetryPolicy = { attempts: 3, codes: [500], backoffMs: 25 };
  const none: RetryPolicy = { attempts: 0, codes: [503], backoffMs: 25 };
  const cases: [string, RetryPolicy, TryOutcome, number, boolean][] = [
    ["the default retries a connect failure", DEFAULT_RETRY, { connectFailure: true }, 1, true],
    ["the default retries a refused stream", DEFAULT_RETRY, { reset: true }, 2, true],
    ["the default allows two retries only", DEFAULT_RETRY, { connectFailure: true }, 3, false],
    ["the default does not retry a 503", DEFAULT_RETRY, { status: 503 }, 1, false],
    [
      "the default retries gRPC unavailable",
      DEFAULT_RETRY,
      { status: 200, grpcStatus: 14 },
      1,
      true,
    ],
    ["the default retries gRPC cancelled", DEFAULT_RETRY, { status: 200, grpcStatus: 1 }, 1, true],
    [
      "the default does not retry other gRPC errors",
      DEFAULT_RETRY,
      { status: 200, grpcStatus: 13 },
      1,
      false,
    ],
    ["a success is not retried", configured, { status: 200 }, 1, false],
    ["a listed code is retried", configured, { status: 503 }, 1, true],
    ["the last allowed retry", configured, { status: 502 }, 2, true],
    ["attempts are exhausted", configured, { status: 500 }, 3, false],
    ["an unlisted code is not retried", only500, { status: 503 }, 1, false],
    ["a per-try timeout counts as 504", configured, { timeout: true }, 1, true],
    ["a per-try timeout is not retried without 504", only500, { timeout: true }, 1, false],
    ["connection errors are retried with any codes", only500, { connectFailure: true }, 3, true],
    ["zero attempts never retry", none, { connectFailure: true }, 1, false],
  ];
  for (const [name, policy, outcome, attempt, want] of cases) {
    assert.equal(shouldRetry(policy, outcome, attempt), want, name);
  }
});
