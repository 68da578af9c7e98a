/**
 * Every token of Istio's JWT fixtures against both key sets, driven by the fixtures' `index.json`:
 * a token verifies with its own set (at a time inside its validity, so an expired token's
 * signature is checked too) and fails with the other set for want of its `kid`.
 */
import assert from "node:assert/strict";
import { authnFor, bearer, NO_KEYS, runAuthn } from "./_authn_fixtures.ts";
import { fixture, JWT_FIXTURES } from "./_fixtures.ts";

interface TokenEntry {
  claims?: { iss: string; sub: string; iat: number; exp: number };
  verifies_with?: string[];
}

const index = JSON.parse(Deno.readTextFileSync(`${JWT_FIXTURES}/index.json`)) as {
  tokens: Record<string, TokenEntry>;
};
const SETS = ["samples/jwks.json", "tests-common/jwks.json"];

for (const [file, entry] of Object.entries(index.tokens)) {
  const jwt = fixture(file);
  if (!entry.claims || !entry.verifies_with) {
    Deno.test(`authenticate() refuses fixture ${file} as malformed`, async () => {
      const result = await runAuthn(authnFor({ issuer: "x", jwks: fixture(SETS[0]) }), {
        headers: [bearer(jwt)],
      });
      assert.equal(result.ok, false);
    });
    continue;
  }
  const { iss, sub, iat } = entry.claims;
  for (const set of SETS) {
    const own = entry.verifies_with.includes(set);
    Deno.test(`authenticate() ${own ? "accepts" : "refuses"} fixture ${file} with ${set}`, async () => {
      const authn = authnFor({ issuer: iss, jwks: fixture(set) });
      const result = await runAuthn(
        authn,
        { headers: [bearer(jwt)], now: (iat + 1) * 1000 },
        NO_KEYS,
      );
      if (own) assert.equal(result.ok && result.auth?.principal, `${iss}/${sub}`);
      else {assert.equal(
          !result.ok && result.body,
          "Jwks doesn't have key to match kid or alg from Jwt",
        );}
    });
  }
}
