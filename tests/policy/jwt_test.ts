import assert from "node:assert/strict";
import { HeaderMap } from "../../http/types.ts";
import { authenticate, type JwksSource, type KeySet } from "../../policy/mod.ts";
import { fixture } from "./_fixtures.ts";
import {
  authnFor,
  bearer,
  type Call,
  COMMON_JWKS,
  ISSUER1,
  issuer1,
  issuer2,
  NO_KEYS,
  NOW,
  runAuthn as run,
  SAMPLES_JWKS,
  token,
} from "./_authn_fixtures.ts";

/** A case: rules, a request, and the status (200 = passes) plus principal or body. */
interface Case {
  name: string;
  rules: Record<string, unknown>[];
  call: Call;
  status: 200 | 401 | 403;
  principal?: string;
  body?: string;
}

const cases: Case[] = [
  {
    name: "authenticate() accepts Istio's TokenIssuer1 with the tests-common key set",
    rules: [issuer1()],
    call: { headers: [bearer(token("TokenIssuer1"))] },
    status: 200,
    principal: "test-issuer-1@istio.io/sub-1",
  },
  {
    name: "authenticate() accepts Istio's demo.jwt with the samples key set",
    rules: [{ issuer: "testing@secure.istio.io", jwks: SAMPLES_JWKS }],
    call: { headers: [bearer(fixture("samples/demo.jwt"))] },
    status: 200,
    principal: "testing@secure.istio.io/testing@secure.istio.io",
  },
  {
    name: "authenticate() refuses demo.jwt against the other key set (unknown kid)",
    rules: [{ issuer: "testing@secure.istio.io", jwks: COMMON_JWKS }],
    call: { headers: [bearer(fixture("samples/demo.jwt"))] },
    status: 401,
    body: "Jwks doesn't have key to match kid or alg from Jwt",
  },
  {
    name: "authenticate() refuses Istio's TokenExpired",
    rules: [issuer1()],
    call: { headers: [bearer(token("TokenExpired"))] },
    status: 401,
    body: "Jwt is expired",
  },
  {
    name: "authenticate() refuses Istio's TokenInvalid as malformed",
    rules: [issuer1()],
    call: { headers: [bearer(token("TokenInvalid"))] },
    status: 401,
    body: "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
  },
  {
    name: "authenticate() refuses a token of an issuer no rule names",
    rules: [issuer1()],
    call: { headers: [bearer(token("TokenIssuer2"))] },
    status: 401,
    body: "Jwt issuer is not configured",
  },
  {
    name: "authenticate() refuses a token whose audience is not allowed with 403",
    rules: [issuer1({ audiences: ["foo"] })],
    call: { headers: [bearer(token("TokenIssuer1"))] },
    status: 403,
    body: "Audiences in Jwt are not allowed",
  },
  {
    name: "authenticate() accepts a string aud that is allowed",
    rules: [issuer1({ audiences: ["foo"] })],
    call: { headers: [bearer(token("TokenIssuer1WithAud"))] },
    status: 200,
  },
  {
    name: "authenticate() compares audiences without scheme and trailing slash",
    rules: [issuer1({ audiences: ["https://buzz/"] })],
    call: { headers: [bearer(token("TokenIssuer1WithAudList"))] },
    status: 200,
  },
  {
    name:
      "authenticate() accepts a token any rule of its issuer accepts (Istio's combined policies)",
    rules: [issuer1({ audiences: ["foo"] }), issuer2({ audiences: ["bar"] }), issuer2()],
    call: { headers: [bearer(token("TokenIssuer2"))] },
    status: 200,
    principal: "test-issuer-2@istio.io/sub-2",
  },
  {
    name: "authenticate() refuses a tampered payload",
    rules: [issuer1()],
    call: { headers: [bearer(tamper(token("TokenIssuer1")))] },
    status: 401,
    body: "Jwt verification fails",
  },
  {
    name: "authenticate() passes a request without a token and without a principal",
    rules: [issuer1()],
    call: {},
    status: 200,
    principal: undefined,
  },
  {
    name: "authenticate() ignores an Authorization header without the Bearer prefix",
    rules: [issuer1()],
    call: { headers: [["authorization", `Basic ${token("TokenIssuer1")}`]] },
    status: 200,
    principal: undefined,
  },
  {
    name: "authenticate() reads the default access_token query parameter",
    rules: [issuer1()],
    call: { path: `/x?access_token=${token("TokenIssuer1")}` },
    status: 200,
    principal: "test-issuer-1@istio.io/sub-1",
  },
  {
    name: "authenticate() reads a configured header with its prefix",
    rules: [issuer1({ fromHeaders: [{ name: "x-jwt-token", prefix: "Value " }] })],
    call: { headers: [["X-Jwt-Token", `Value ${token("TokenIssuer1")}`]] },
    status: 200,
    principal: "test-issuer-1@istio.io/sub-1",
  },
  {
    name: "authenticate() stops reading Authorization once fromHeaders is set",
    rules: [issuer1({ fromHeaders: [{ name: "x-jwt-token" }] })],
    call: { headers: [bearer(token("TokenExpired"))] },
    status: 200,
    principal: undefined,
  },
  {
    name: "authenticate() reads a configured query parameter",
    rules: [issuer1({ fromParams: ["token", "secondary_token"] })],
    call: { path: `/valid-token?secondary_token=${token("TokenIssuer1")}` },
    status: 200,
    principal: "test-issuer-1@istio.io/sub-1",
  },
  {
    name: "authenticate() ignores a query parameter that is not configured",
    rules: [issuer1({ fromParams: ["token"] })],
    call: { path: `/valid-token?token_value=${token("TokenIssuer1")}` },
    status: 200,
    principal: undefined,
  },
  {
    name: "authenticate() needs every token to verify",
    rules: [issuer1({ fromParams: ["token", "secondary_token"] })],
    call: { path: `/v?token=${token("TokenIssuer1")}&secondary_token=${token("TokenExpired")}` },
    status: 401,
    body: "Jwt is expired",
  },
  {
    name: "authenticate() reads a configured cookie",
    rules: [issuer1({ fromCookies: ["session"] })],
    call: { headers: [["cookie", `theme=dark; session="${token("TokenIssuer1")}"`]] },
    status: 200,
    principal: "test-issuer-1@istio.io/sub-1",
  },
  {
    name: "authenticate() skips a CORS preflight even with an expired token",
    rules: [issuer1()],
    call: {
      method: "OPTIONS",
      headers: [bearer(token("TokenExpired")), ["origin", "https://istio.io"], [
        "access-control-request-method",
        "POST",
      ]],
    },
    status: 200,
  },
  {
    name: "authenticate() checks an OPTIONS request without Origin",
    rules: [issuer1()],
    call: {
      method: "OPTIONS",
      headers: [bearer(token("TokenExpired")), ["access-control-request-method", "POST"]],
    },
    status: 401,
    body: "Jwt is expired",
  },
  {
    name: "authenticate() refuses a remote issuer whose key set never arrived",
    rules: [{ issuer: ISSUER1, jwksUri: "http://127.0.6.1:1/jwks.json" }],
    call: { headers: [bearer(token("TokenIssuer1"))] },
    status: 401,
    body: "Jwt verification fails",
  },
  {
    name: "authenticate() checks expiry before the key set",
    rules: [{ issuer: ISSUER1, jwksUri: "http://127.0.6.1:1/jwks.json" }],
    call: { headers: [bearer(token("TokenExpired"))] },
    status: 401,
    body: "Jwt is expired",
  },
  {
    name: "authenticate() refuses every token of an issuer whose inline key set is unusable",
    rules: [issuer1({ jwks: '{"keys": [{"kty": "RSA"}]}' })],
    call: { headers: [bearer(token("TokenIssuer1"))] },
    status: 401,
    body: "Jwks doesn't have any valid public key",
  },
];

for (const c of cases) {
  Deno.test(c.name, async () => {
    const result = await run(authnFor(...c.rules), c.call);
    const status = result.ok ? 200 : result.status;
    assert.equal(status, c.status, JSON.stringify(result));
    if (c.body !== undefined) assert.equal(!result.ok && result.body, c.body);
    if ("principal" in c) assert.equal(result.ok ? result.auth?.principal : undefined, c.principal);
  });
}

/** Changes the subject in the payload, keeping header and signature. */
function tamper(jwt: string): string {
  const [h, p, s] = jwt.split(".");
  const payload = JSON.parse(atob(p.replaceAll("-", "+").replaceAll("_", "/")));
  const forged = btoa(JSON.stringify({ ...payload, sub: "admin" })).replace(/=+$/, "").replaceAll(
    "+",
    "-",
  ).replaceAll("/", "_");
  return `${h}.${forged}.${s}`;
}

Deno.test("authenticate() answers with Envoy's WWW-Authenticate realm", async () => {
  const result = await run(authnFor(issuer1()), {
    headers: [bearer(token("TokenExpired"))],
    path: "/expired?x=1",
  });
  assert.deepEqual(result, {
    ok: false,
    status: 401,
    body: "Jwt is expired",
    headers: {
      "www-authenticate": 'Bearer realm="http://a.mesh/expired?x=1", error="invalid_token"',
    },
  });
});

Deno.test("authenticate() removes a verified Authorization header and sanitizes output headers", async () => {
  const rules = issuer1({
    outputPayloadToHeader: "x-test-payload",
    outputClaimToHeaders: [
      { header: "x-jwt-iss", claim: "iss" },
      { header: "x-jwt-iat", claim: "iat" },
      { header: "x-jwt-nested-claim", claim: "nested.nested-2.key2" },
    ],
  });
  const jwt = token("TokenIssuer1WithNestedClaims2");
  const result = await run(authnFor(rules), {
    headers: [bearer(jwt), ["x-jwt-nested-claim", "value_to_be_replaced"]],
  });
  assert.ok(result.ok);
  assert.deepEqual(result.headerEdits, [
    { op: "remove", name: "x-jwt-nested-claim" },
    { op: "add", name: "x-test-payload", value: jwt.split(".")[1] },
    { op: "add", name: "x-jwt-iss", value: ISSUER1 },
    { op: "add", name: "x-jwt-iat", value: "1604008018" },
    { op: "add", name: "x-jwt-nested-claim", value: "valueC" },
    { op: "remove", name: "authorization" },
  ]);
});

Deno.test("authenticate() keeps the token with forwardOriginalToken", async () => {
  const result = await run(authnFor(issuer1({ forwardOriginalToken: true })), {
    headers: [bearer(token("TokenIssuer1"))],
  });
  assert.ok(result.ok);
  assert.deepEqual(result.headerEdits, []);
});

Deno.test("authenticate() takes a verified token out of the query", async () => {
  const result = await run(authnFor(issuer1({ fromParams: ["token"] })), {
    path: `/p?a=1&token=${token("TokenIssuer1")}&b=2`,
  });
  assert.ok(result.ok);
  assert.equal(result.path, "/p?a=1&b=2");
});

Deno.test("authenticate() splits space-delimited claims for authorization", async () => {
  const scope = await run(authnFor(issuer2()), {
    headers: [bearer(token("TokenIssuer2WithSpaceDelimitedScope"))],
  });
  assert.deepEqual(scope.ok && scope.auth?.claims.scope, ["write", "read"]);
  const custom = token("TokenIssuer2WithCustomScopeSpaceDelimitedScope");
  const plain = await run(authnFor(issuer2()), { headers: [bearer(custom)] });
  assert.equal(plain.ok && plain.auth?.claims.custom_scope, "admin user");
  const split = await run(authnFor(issuer2({ spaceDelimitedClaims: ["custom_scope"] })), {
    headers: [bearer(custom)],
  });
  assert.deepEqual(split.ok && split.auth?.claims.custom_scope, ["admin", "user"]);
});

Deno.test("authenticate() keeps a scope that is already a list", async () => {
  const result = await run(authnFor({ issuer: "testing@secure.istio.io", jwks: SAMPLES_JWKS }), {
    headers: [bearer(fixture("samples/groups-scope.jwt"))],
  });
  assert.ok(result.ok);
  assert.deepEqual(result.auth?.claims.scope, ["scope1", "scope2"]);
  assert.deepEqual(result.auth?.claims.groups, ["group1", "group2"]);
});

Deno.test("authenticate() exposes audiences and presenter", async () => {
  const list = await run(authnFor(issuer1()), {
    headers: [bearer(token("TokenIssuer1WithAudList"))],
  });
  assert.deepEqual(list.ok && list.auth?.audiences, ["foo", "buzz"]);
  const azp = await run(authnFor(issuer1()), { headers: [bearer(token("TokenIssuer1WithAzp"))] });
  assert.equal(azp.ok && azp.auth?.presenter, "bar");
});

Deno.test("authenticate() passes any token for a target without RequestAuthentication", async () => {
  const authn = authnFor(issuer1());
  const result = await authenticate(
    authn,
    { kind: "Service", namespace: "mesh", name: "b" },
    { headers: new HeaderMap([bearer(token("TokenInvalid"))]), path: "/" },
    NO_KEYS,
    NOW,
  );
  assert.deepEqual(result, { ok: true, headerEdits: [] });
});

Deno.test("authenticate() asks the key source with the token's kid", async () => {
  const asked: (string | undefined)[] = [];
  const keys: JwksSource = {
    keys(ref, kid) {
      asked.push(`${ref.uri} ${ref.timeoutMs} ${kid}`);
      return Promise.resolve(undefined as KeySet | undefined);
    },
  };
  await run(authnFor({ issuer: ISSUER1, jwksUri: "https://keys.example/jwks", timeout: "250ms" }), {
    headers: [bearer(token("TokenIssuer1"))],
  }, keys);
  assert.deepEqual(asked, [
    "https://keys.example/jwks 250 tT_w9LRNrY7wJalGsTYSt7rutZi86Gvyc0EKR4CaQAw",
  ]);
});
