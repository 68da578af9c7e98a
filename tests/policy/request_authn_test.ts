import assert from "node:assert/strict";
import { authnPolicy, compileAuthn, fixture, SERVICE_A, TO_A, TO_GATEWAY } from "./_fixtures.ts";

const JWKS = fixture("tests-common/jwks.json");

const problemCases: { name: string; rule: Record<string, unknown>; expect: string[] }[] = [
  {
    name: "compileRequestAuthentications() reports nothing for a valid rule",
    rule: { issuer: "a", jwks: JWKS },
    expect: [],
  },
  {
    name: "compileRequestAuthentications() reports a rule without issuer and jwksUri",
    rule: { audiences: ["x"] },
    expect: ["error: Invalid policy: spec.jwtRules[0]: issuer or jwksUri must be non-empty string"],
  },
  {
    name: "compileRequestAuthentications() reports an inline JWKS without a usable key",
    rule: { issuer: "a", jwks: "{not json" },
    expect: [
      "error: Invalid policy: spec.jwtRules[0].jwks: jwks parse error: Jwks is an invalid JSON",
    ],
  },
  {
    name: "compileRequestAuthentications() reports a jwksUri that is not http(s)",
    rule: { issuer: "a", jwksUri: "file:///etc/jwks.json" },
    expect: ["error: Invalid policy: spec.jwtRules[0].jwksUri: URI scheme must be http or https"],
  },
  {
    name: "compileRequestAuthentications() reports jwksUri beside jwks",
    rule: { issuer: "a", jwksUri: "https://x/jwks", jwks: JWKS },
    expect: ["error: Invalid policy: spec.jwtRules[0]: only one of jwksUri or jwks can be set"],
  },
  {
    name: "compileRequestAuthentications() reports an output header name Envoy refuses",
    rule: { issuer: "a", jwks: JWKS, outputClaimToHeaders: [{ header: "x jwt", claim: "sub" }] },
    expect: [
      "error: Invalid policy: spec.jwtRules[0].outputClaimToHeaders[0].header: invalid header name x jwt",
    ],
  },
  {
    name: "compileRequestAuthentications() reports a timeout that is not a duration",
    rule: { issuer: "a", jwksUri: "https://x/jwks", timeout: "soon" },
    expect: ['error: Invalid policy: spec.jwtRules[0].timeout: invalid duration "soon"; using 5s'],
  },
  {
    name: "compileRequestAuthentications() reports an empty audience",
    rule: { issuer: "a", jwks: JWKS, audiences: [""] },
    expect: [
      "error: Invalid policy: spec.jwtRules[0].audiences: audience must be non-empty string",
    ],
  },
  {
    name: "compileRequestAuthentications() warns about an unknown rule field",
    rule: { issuer: "a", jwks: JWKS, fromHeader: [{ name: "x" }] },
    expect: ["warning: Unknown field: spec.jwtRules[0].fromHeader is ignored"],
  },
];

for (const c of problemCases) {
  Deno.test(c.name, () => {
    const { problems } = compileAuthn([authnPolicy("p", { ...TO_A, jwtRules: [c.rule] })]);
    const got = problems.map((p) => `${p.severity}: ${p.message}`);
    assert.equal(got.length, c.expect.length, got.join("\n"));
    for (const piece of c.expect) {
      assert.ok(got.some((g) => g.startsWith(piece)), `missing "${piece}" in\n${got.join("\n")}`);
    }
  });
}

Deno.test("compileRequestAuthentications() sorts the rules of every applicable policy by issuer", () => {
  const { authn } = compileAuthn([
    authnPolicy("svc", {
      ...TO_A,
      jwtRules: [{ issuer: "c", jwks: JWKS }, { issuer: "a", jwks: JWKS }],
    }),
    authnPolicy("gw", { ...TO_GATEWAY, jwtRules: [{ issuer: "b", jwks: JWKS }] }),
    authnPolicy("sel", {
      selector: { matchLabels: { app: "a" } },
      jwtRules: [{ issuer: "z", jwks: JWKS }],
    }),
  ]);
  assert.deepEqual(authn.index.lookup(SERVICE_A).rules.map((r) => r.issuer), ["a", "b", "c"]);
  assert.deepEqual(authn.index.lookup({ kind: "workload" }).rules.map((r) => r.issuer), ["b"]);
  assert.equal(authn.count, 2);
});

Deno.test("compileRequestAuthentications() defaults to the Authorization header and access_token", () => {
  const { authn } = compileAuthn([
    authnPolicy("p", { ...TO_A, jwtRules: [{ issuer: "a", jwks: JWKS }] }),
  ]);
  const rule = authn.index.lookup(SERVICE_A).rules[0];
  assert.deepEqual(rule.locations, [
    { kind: "header", name: "authorization", prefix: "Bearer " },
    { kind: "param", name: "access_token" },
  ]);
  assert.deepEqual(rule.spaceDelimitedClaims, ["permission", "scope"]);
  assert.equal(rule.forwardOriginalToken, false);
});

Deno.test("compileRequestAuthentications() reads the rule timeout for the JWKS fetch", () => {
  const { authn } = compileAuthn([authnPolicy("p", {
    ...TO_A,
    jwtRules: [{ issuer: "a", jwksUri: "https://x/jwks", timeout: "1.5s" }, {
      issuer: "b",
      jwksUri: "https://y/jwks",
    }],
  })]);
  assert.deepEqual(authn.remotes, [
    { uri: "https://x/jwks", issuer: "a", timeoutMs: 1500 },
    { uri: "https://y/jwks", issuer: "b", timeoutMs: 5000 },
  ]);
});
