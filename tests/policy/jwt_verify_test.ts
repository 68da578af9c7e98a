import assert from "node:assert/strict";
import type { JWK } from "jose";
import { authnFor, bearer, issuer1, NOW, runAuthn as run, signed } from "./_authn_fixtures.ts";

const nowSeconds = Math.floor(NOW / 1000);
const claims = { iss: "issuer.example", sub: "user", exp: nowSeconds + 3600 };

for (
  const alg of "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 HS256 HS384 HS512 EdDSA"
    .split(" ")
) {
  Deno.test(`authenticate() verifies a ${alg} token`, async () => {
    const { jwt, jwks } = await signed(alg, claims);
    const result = await run(authnFor({ issuer: "issuer.example", jwks }), {
      headers: [bearer(jwt)],
    });
    assert.equal(
      result.ok && result.auth?.principal,
      "issuer.example/user",
      JSON.stringify(result),
    );
  });
}

const timeCases: { name: string; claims: Record<string, unknown>; body?: string }[] = [
  {
    name: "authenticate() refuses a token not yet valid beyond the 60 s skew",
    claims: { ...claims, nbf: nowSeconds + 120 },
    body: "Jwt not yet valid",
  },
  {
    name: "authenticate() accepts a token not yet valid within the 60 s skew",
    claims: { ...claims, nbf: nowSeconds + 30 },
  },
  {
    name: "authenticate() accepts a token expired within the 60 s skew",
    claims: { ...claims, exp: nowSeconds - 30 },
  },
  {
    name: "authenticate() refuses a token expired beyond the 60 s skew",
    claims: { ...claims, exp: nowSeconds - 61 },
    body: "Jwt is expired",
  },
  {
    name: "authenticate() accepts a token without exp",
    claims: { iss: "issuer.example", sub: "user" },
  },
  {
    name: "authenticate() refuses an exp that is not a number",
    claims: { ...claims, exp: "soon" },
    body: "Jwt payload [exp] field is not an integer",
  },
  {
    name: "authenticate() refuses an aud that is not a string list",
    claims: { ...claims, aud: [1] },
    body: "Jwt payload [aud] field is not a string or string list",
  },
];

for (const c of timeCases) {
  Deno.test(c.name, async () => {
    const { jwt, jwks } = await signed("ES256", c.claims);
    const result = await run(authnFor({ issuer: "issuer.example", jwks }), {
      headers: [bearer(jwt)],
    });
    assert.equal(result.ok ? undefined : result.body, c.body, JSON.stringify(result));
  });
}

Deno.test("authenticate() refuses alg none as not supported", async () => {
  const header = btoa(JSON.stringify({ alg: "none" })).replace(/=+$/, "");
  const body = btoa(JSON.stringify(claims)).replace(/=+$/, "");
  const result = await run(authnFor(issuer1()), { headers: [bearer(`${header}.${body}.c2ln`)] });
  assert.equal(!result.ok && result.body, "Jwt header [alg] is not supported");
});

Deno.test("authenticate() refuses a key that pins another algorithm", async () => {
  const { jwt, jwks } = await signed("RS256", claims);
  const pinned = JSON.stringify({
    keys: JSON.parse(jwks).keys.map((k: JWK) => ({ ...k, alg: "RS384" })),
  });
  const result = await run(authnFor({ issuer: "issuer.example", jwks: pinned }), {
    headers: [bearer(jwt)],
  });
  assert.equal(!result.ok && result.body, "Jwks doesn't have key to match kid or alg from Jwt");
});

Deno.test("authenticate() tries a key without kid for a token with one", async () => {
  const { jwt, jwks } = await signed("RS256", claims);
  const bare = JSON.stringify({ keys: JSON.parse(jwks).keys.map(({ kid: _, ...k }: JWK) => k) });
  const result = await run(authnFor({ issuer: "issuer.example", jwks: bare }), {
    headers: [bearer(jwt)],
  });
  assert.equal(result.ok, true);
});
