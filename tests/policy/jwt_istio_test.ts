/**
 * Istio's own end-to-end JWT cases (`tests/integration/security/authz_test.go` `TestAuthz_JWT` and
 * `jwt_test.go` `TestRequestAuthentication`), re-created with Istio's test tokens and key set: the
 * policies are theirs with `selector` replaced by `targetRefs`, and the expected outcomes are
 * theirs.
 */
import assert from "node:assert/strict";
import {
  authenticate,
  authorize,
  type CompiledAuthn,
  type CompiledPolicies,
} from "../../policy/mod.ts";
import {
  authnPolicy,
  authzPolicy,
  compileAuthn,
  compileAuthz,
  request,
  SERVICE_A,
  TO_A,
} from "./_fixtures.ts";
import { HeaderMap } from "../../http/types.ts";
import { COMMON_JWKS, NO_KEYS, token } from "./_authn_fixtures.ts";

const JWKS = COMMON_JWKS;

/** Runs authentication then authorization like the waypoint chain; returns the HTTP status. */
async function status(
  authn: CompiledAuthn,
  policies: CompiledPolicies,
  call: { path: string; headers?: [string, string][] },
): Promise<number> {
  const headers = new HeaderMap(call.headers ?? []);
  const result = await authenticate(
    authn,
    SERVICE_A,
    { headers, path: call.path, method: "GET" },
    NO_KEYS,
    Date.now(),
  );
  if (!result.ok) return result.status;
  for (const edit of result.headerEdits) {
    if (edit.op === "remove") headers.delete(edit.name);
    else headers.add(edit.name, edit.value);
  }
  const path = result.path ?? call.path;
  const decision = authorize(policies, { ...request({ path, auth: result.auth }), headers });
  return decision.allow ? 200 : decision.status;
}

const op = (paths: string[], methods?: string[]) => ({
  to: [{ operation: { paths, ...(methods ? { methods } : {}) } }],
});
const cond = (key: string, values: string[]) => ({ when: [{ key, values }] });

/** `testdata/authz/jwt.yaml.tmpl` */
const JWT_AUTHZ = authzPolicy("jwt", {
  ...TO_A,
  rules: [
    {
      ...op(["/token1"], ["GET"]),
      from: [{ source: { requestPrincipals: ["test-issuer-1@istio.io/sub-1"] } }],
    },
    { ...op(["/token2"], ["GET"]), ...cond("request.auth.claims[groups]", ["group-2"]) },
    { ...op(["/tokenAny"], ["GET"]), from: [{ source: { requestPrincipals: ["*"] } }] },
    { ...op(["/scope"], ["GET"]), ...cond("request.auth.claims[scope]", ["append", "write"]) },
    { ...op(["/otherscope"], ["GET"]), ...cond("request.auth.claims[scope]", ["admin"]) },
    {
      ...op(["/permission"], ["GET"]),
      ...cond("request.auth.claims[permission]", ["write", "append"]),
    },
    {
      ...op(["/custom-scope-admin"], ["GET"]),
      ...cond("request.auth.claims[custom_scope]", ["admin"]),
    },
    {
      ...op(["/custom-scope-user"], ["GET"]),
      ...cond("request.auth.claims[custom_scope]", ["user"]),
    },
    { ...op(["/nested-key1"], ["GET"]), ...cond("request.auth.claims[nested][key1]", ["valueB"]) },
    {
      ...op(["/nested-non-exist"], ["GET"]),
      ...cond("request.auth.claims[nested][non-exist]", ["valueC"]),
    },
    { ...op(["/nested-key2"], ["GET"]), ...cond("request.auth.claims[nested][key2]", ["valueC"]) },
    {
      ...op(["/nested-2-key1"], ["GET"]),
      ...cond("request.auth.claims[nested][nested-2][key1]", ["valueA"]),
    },
    { ...op(["/valid-jwt"]), ...cond("request.auth.principal", ["*"]) },
    { ...op(["*/presenter"]), ...cond("request.auth.presenter", ["bar"]) },
    { ...op(["*/audiences"]), ...cond("request.auth.audiences", ["foo"]) },
    {
      ...op(["/token3"], ["GET"]),
      from: [{ source: { notRequestPrincipals: ["test-issuer-1@istio.io/sub-1"] } }],
    },
  ],
});
const JWT_AUTHN = authnPolicy("default", {
  ...TO_A,
  jwtRules: [
    { issuer: "test-issuer-1@istio.io", jwks: JWKS },
    {
      issuer: "test-issuer-2@istio.io",
      jwks: JWKS,
      spaceDelimitedClaims: ["custom_scope", "teams"],
    },
  ],
});

/** `TestAuthz_JWT` cases: [token or "", path, allowed]. */
const authzJwtCases: [string, string, boolean][] = [
  ["", "/token1", false],
  ["", "/token2", false],
  ["TokenIssuer1", "/token1", true],
  ["TokenIssuer1", "/token2", false],
  ["TokenIssuer2", "/token1", false],
  ["TokenIssuer2", "/token2", true],
  ["TokenIssuer1", "/token3", false],
  ["TokenIssuer2", "/token3", true],
  ["TokenIssuer1", "/tokenAny", true],
  ["TokenIssuer2", "/tokenAny", true],
  ["TokenIssuer1", "/permission", false],
  ["TokenIssuer2", "/permission", false],
  ["TokenIssuer2WithSpaceDelimitedPermission", "/permission", true],
  ["TokenIssuer2WithSpaceDelimitedScope", "/scope", true],
  ["TokenIssuer2WithSpaceDelimitedScope", "/otherscope", false],
  ["TokenIssuer2WithCustomScopeSpaceDelimitedScope", "/custom-scope-admin", true],
  ["TokenIssuer2WithCustomScopeSpaceDelimitedScope", "/custom-scope-user", true],
  ["", "/custom-scope-admin", false],
  ["", "/custom-scope-user", false],
  ["TokenIssuer1", "/custom-scope-admin", false],
  ["TokenIssuer1", "/custom-scope-user", false],
  ["TokenIssuer1WithNestedClaims1", "/nested-key1", true],
  ["TokenIssuer1WithNestedClaims2", "/nested-key1", false],
  ["TokenIssuer1WithNestedClaims1", "/nested-key2", false],
  ["TokenIssuer1WithNestedClaims2", "/nested-key2", true],
  ["TokenIssuer1WithNestedClaims1", "/nested-2-key1", true],
  ["TokenIssuer1WithNestedClaims2", "/nested-2-key1", false],
  ["TokenIssuer1WithNestedClaims1", "/nested-non-exist", false],
  ["TokenIssuer1WithNestedClaims2", "/nested-non-exist", false],
  ["", "/tokenAny", false],
  ["TokenIssuer1WithAud", "/audiences", true],
  ["TokenIssuer1WithAudList", "/audiences", true],
  ["TokenIssuer1WithAzp", "/presenter", true],
  ["TokenIssuer1", "/valid-jwt", true],
  ["", "/valid-jwt", false],
];

const jwtCompiled = () => ({
  authn: compileAuthn([JWT_AUTHN]).authn,
  policies: compileAuthz([JWT_AUTHZ]).policies,
});

for (const [name, path, allowed] of authzJwtCases) {
  Deno.test(`authorize() with Istio's TestAuthz_JWT ${allowed ? "allows" : "denies"} ${name || "no token"} on ${path}`, async () => {
    const { authn, policies } = jwtCompiled();
    const headers: [string, string][] = name === ""
      ? []
      : [["authorization", `Bearer ${token(name)}`]];
    const got = await status(authn, policies, { path, headers });
    assert.equal(got === 200, allowed, `status ${got}`);
  });
}

/** `testdata/requestauthn/headers-params.yaml.tmpl` and `authn-authz.yaml.tmpl` policies. */
const HEADERS_PARAMS = authnPolicy("hp", {
  ...TO_A,
  jwtRules: [{
    issuer: "test-issuer-1@istio.io",
    jwks: JWKS,
    fromHeaders: [{ name: "x-jwt-token", prefix: "Value " }, {
      name: "auth-token",
      prefix: "Token ",
    }],
    fromParams: ["token", "secondary_token"],
  }],
});
const AUTHN_AUTHZ = authnPolicy("aa", {
  ...TO_A,
  jwtRules: [{ issuer: "test-issuer-1@istio.io", jwks: JWKS }],
});
const GET_FROM_SUB1 = authzPolicy("get", {
  ...TO_A,
  rules: [{
    to: [{ operation: { methods: ["GET"] } }],
    from: [{ source: { requestPrincipals: ["test-issuer-1@istio.io/sub-1"] } }],
  }],
});
const AUD = [
  authnPolicy("aud-1", {
    ...TO_A,
    jwtRules: [
      { issuer: "test-issuer-1@istio.io", jwks: JWKS, audiences: ["foo"] },
      { issuer: "test-issuer-2@istio.io", jwks: JWKS, audiences: ["bar"] },
    ],
  }),
  authnPolicy("aud-2", { ...TO_A, jwtRules: [{ issuer: "test-issuer-2@istio.io", jwks: JWKS }] }),
];

const t1 = () => token("TokenIssuer1");
const requestAuthnCases: {
  name: string;
  authn: string[];
  authz: string[];
  path: string;
  headers?: [string, string][];
  status: number;
}[] = [
  {
    name: "valid-params",
    authn: [HEADERS_PARAMS],
    authz: [GET_FROM_SUB1],
    path: `/valid-token?token=${t1()}`,
    status: 200,
  },
  {
    name: "valid-params-secondary",
    authn: [HEADERS_PARAMS],
    authz: [GET_FROM_SUB1],
    path: `/valid-token?secondary_token=${t1()}`,
    status: 200,
  },
  {
    name: "invalid-params",
    authn: [HEADERS_PARAMS],
    authz: [GET_FROM_SUB1],
    path: `/valid-token?token_value=${t1()}`,
    status: 403,
  },
  {
    name: "valid-token-set",
    authn: [HEADERS_PARAMS],
    authz: [GET_FROM_SUB1],
    path: `/valid-token?token=${t1()}&secondary_token=${t1()}`,
    status: 200,
  },
  {
    name: "invalid-token-set",
    authn: [HEADERS_PARAMS],
    authz: [GET_FROM_SUB1],
    path: `/valid-token?token=${t1()}&secondary_token=${token("TokenExpired")}`,
    status: 401,
  },
  {
    name: "valid-header",
    authn: [HEADERS_PARAMS],
    authz: [GET_FROM_SUB1],
    path: "/",
    headers: [["X-Jwt-Token", `Value ${t1()}`]],
    status: 200,
  },
  {
    name: "valid-header-secondary",
    authn: [HEADERS_PARAMS],
    authz: [GET_FROM_SUB1],
    path: "/",
    headers: [["Auth-Token", `Token ${t1()}`]],
    status: 200,
  },
  {
    name: "invalid-header",
    authn: [HEADERS_PARAMS],
    authz: [GET_FROM_SUB1],
    path: "/",
    headers: [["Auth-Header-Param", `Bearer ${t1()}`]],
    status: 403,
  },
  {
    name: "valid-token",
    authn: [AUTHN_AUTHZ],
    authz: [GET_FROM_SUB1],
    path: "/valid-token",
    headers: [["Authorization", `Bearer ${t1()}`]],
    status: 200,
  },
  {
    name: "expired-token",
    authn: [AUTHN_AUTHZ],
    authz: [GET_FROM_SUB1],
    path: "/expired-token",
    headers: [["Authorization", `Bearer ${token("TokenExpired")}`]],
    status: 401,
  },
  {
    name: "no-token",
    authn: [AUTHN_AUTHZ],
    authz: [GET_FROM_SUB1],
    path: "/no-token",
    status: 403,
  },
  {
    name: "invalid-aud",
    authn: AUD,
    authz: [],
    path: "/valid-aud",
    headers: [["Authorization", `Bearer ${t1()}`]],
    status: 403,
  },
  {
    name: "valid-aud",
    authn: AUD,
    authz: [],
    path: "/valid-aud",
    headers: [["Authorization", `Bearer ${token("TokenIssuer1WithAud")}`]],
    status: 200,
  },
  {
    name: "verify-policies-are-combined",
    authn: AUD,
    authz: [],
    path: "/verify-policies-are-combined",
    headers: [["Authorization", `Bearer ${token("TokenIssuer2")}`]],
    status: 200,
  },
  {
    name: "no-token-noauthz",
    authn: [AUTHN_AUTHZ],
    authz: [],
    path: "/no-token-noauthz",
    status: 200,
  },
];

for (const c of requestAuthnCases) {
  Deno.test(`authenticate() with Istio's TestRequestAuthentication case ${c.name} answers ${c.status}`, async () => {
    const got = await status(compileAuthn(c.authn).authn, compileAuthz(c.authz).policies, {
      path: c.path,
      headers: c.headers,
    });
    assert.equal(got, c.status);
  });
}
