/** Builders for RequestAuthentication tests: rules with Istio's key sets, a request runner, signing. */
import { exportJWK, generateKeyPair, generateSecret, type JWK, SignJWT } from "jose";
import { HeaderMap } from "../../http/types.ts";
import { authenticate, type AuthnResult, type JwksSource } from "../../policy/mod.ts";
import { authnPolicy, compileAuthn, fixture, SERVICE_A, TO_A } from "./_fixtures.ts";

export const NOW = Date.now();
export const COMMON_JWKS = fixture("tests-common/jwks.json");
export const SAMPLES_JWKS = fixture("samples/jwks.json");
export const ISSUER1 = "test-issuer-1@istio.io";
export const ISSUER2 = "test-issuer-2@istio.io";
export const token = (name: string) => fixture(`tests-common/${name}.jwt`);
export const NO_KEYS: JwksSource = { keys: () => Promise.resolve(undefined) };

/** A RequestAuthentication on Service mesh/a with these rules. */
export function authnFor(...jwtRules: Record<string, unknown>[]) {
  return compileAuthn([authnPolicy("jwt", { ...TO_A, jwtRules })]).authn;
}

export const issuer1 = (extra: Record<string, unknown> = {}) => ({
  issuer: ISSUER1,
  jwks: COMMON_JWKS,
  ...extra,
});
export const issuer2 = (extra: Record<string, unknown> = {}) => ({
  issuer: ISSUER2,
  jwks: COMMON_JWKS,
  ...extra,
});

export interface Call {
  headers?: [string, string][];
  path?: string;
  method?: string;
  now?: number;
}

export function runAuthn(
  authn: ReturnType<typeof authnFor>,
  call: Call,
  keys: JwksSource = NO_KEYS,
): Promise<AuthnResult> {
  return authenticate(
    authn,
    SERVICE_A,
    {
      headers: new HeaderMap(call.headers ?? []),
      path: call.path ?? "/x",
      method: call.method ?? "GET",
      authority: "a.mesh",
    },
    keys,
    call.now ?? NOW,
  );
}

export const bearer = (jwt: string): [string, string] => ["authorization", `Bearer ${jwt}`];

/** Signs claims with a new key of `alg`; returns the token and its public key set. */
export async function signed(
  alg: string,
  claims: Record<string, unknown>,
  kid = "k1",
): Promise<{ jwt: string; jwks: string }> {
  let publicJwk: JWK;
  let jwt: string;
  const body = new SignJWT(claims).setProtectedHeader({ alg, kid });
  if (alg.startsWith("HS")) {
    const secret = await generateSecret(alg, { extractable: true });
    publicJwk = await exportJWK(secret);
    jwt = await body.sign(secret);
  } else {
    const { publicKey, privateKey } = await generateKeyPair(alg, {
      extractable: true,
      ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
    });
    publicJwk = await exportJWK(publicKey);
    jwt = await body.sign(privateKey);
  }
  return { jwt, jwks: JSON.stringify({ keys: [{ ...publicJwk, kid }] }) };
}
