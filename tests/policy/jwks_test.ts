import assert from "node:assert/strict";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { HeaderMap } from "../../http/types.ts";
import {
  authenticate,
  type JwksRef,
  RemoteJwks,
  type RemoteJwksOptions,
} from "../../policy/mod.ts";
import { authnPolicy, compileAuthn, SERVICE_A, TO_A } from "./_fixtures.ts";

const HOST = "127.0.6.1";
const ISSUER = "jwks-test@istio.io";

/** A signing key with its public JWK. */
async function makeKey(kid: string) {
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: "ES256" };
  const sign = (claims: Record<string, unknown> = {}) =>
    new SignJWT({ iss: ISSUER, sub: "user", ...claims }).setProtectedHeader({ alg: "ES256", kid })
      .sign(privateKey);
  return { jwk, sign };
}

/** A JWKS server on 127.0.6.1 whose answer the test changes as it goes. */
function jwksServer() {
  const state = { body: "{}", status: 200, delayMs: 0, hits: 0, paths: [] as string[] };
  let base = "";
  const server = Deno.serve(
    { hostname: HOST, port: 0, onListen: () => {} },
    async (req): Promise<Response> => {
      state.hits++;
      const path = new URL(req.url).pathname;
      state.paths.push(path);
      if (state.delayMs > 0) await new Promise((r) => setTimeout(r, state.delayMs));
      if (path === "/.well-known/openid-configuration") {
        return Response.json({ issuer: base, jwks_uri: `${base}/keys` });
      }
      return new Response(state.body, { status: state.status });
    },
  );
  base = `http://${HOST}:${server.addr.port}`;
  let closed: Promise<void> | undefined;
  return { state, base, uri: `${base}/keys`, close: () => closed ??= server.shutdown() };
}

/** What a JWKS test gets: a server serving key `k1`, a source on a settable clock, its log. */
interface JwksTest {
  server: ReturnType<typeof jwksServer>;
  jwks: RemoteJwks;
  logs: string[];
  key: Awaited<ReturnType<typeof makeKey>>;
  clock: { now: number };
}

/**
 * Registers a test with a fresh server and source (no refetch rate limit unless `options` sets
 * one), and closes both afterwards.
 */
function jwksTest(
  name: string,
  options: RemoteJwksOptions,
  body: (t: JwksTest) => Promise<void>,
): void {
  Deno.test(name, async () => {
    const server = jwksServer();
    const logs: string[] = [];
    const clock = { now: 0 };
    const jwks = new RemoteJwks({
      minRefreshIntervalMs: 0,
      clock: () => clock.now,
      logger: { warn: (msg, fields) => logs.push(`${msg} ${JSON.stringify(fields)}`) },
      ...options,
    });
    const key = await makeKey("k1");
    server.state.body = keysOf(key.jwk);
    try {
      await body({ server, jwks, logs, key, clock });
    } finally {
      jwks.close();
      await server.close();
    }
  });
}

const ref = (uri: string, timeoutMs = 2000): JwksRef => ({ uri, issuer: ISSUER, timeoutMs });
const keysOf = (...jwks: unknown[]) => JSON.stringify({ keys: jwks });

/** Authenticates a bearer token against a RequestAuthentication using `jwksUri`. */
async function authStatus(jwks: RemoteJwks, uri: string, jwt: string): Promise<number | string> {
  const { authn } = compileAuthn([
    authnPolicy("remote", { ...TO_A, jwtRules: [{ issuer: ISSUER, jwksUri: uri }] }),
  ]);
  const result = await authenticate(
    authn,
    SERVICE_A,
    { headers: new HeaderMap([["authorization", `Bearer ${jwt}`]]), path: "/" },
    jwks,
    Date.now(),
  );
  return result.ok ? 200 : `${result.status} ${result.body}`;
}

jwksTest("RemoteJwks fetches a key set that authenticate() verifies with", {}, async (t) => {
  assert.equal(await authStatus(t.jwks, t.server.uri, await t.key.sign()), 200);
});

jwksTest("RemoteJwks serves the cached set without fetching again", {}, async (t) => {
  for (let i = 0; i < 3; i++) assert.ok(await t.jwks.keys(ref(t.server.uri), "k1"));
  assert.equal(t.server.state.hits, 1);
});

jwksTest("RemoteJwks refetches on an unknown kid and accepts a rotated key", {}, async (t) => {
  assert.equal(await authStatus(t.jwks, t.server.uri, await t.key.sign()), 200);
  const rotated = await makeKey("k2");
  t.server.state.body = keysOf(rotated.jwk);
  assert.equal(await authStatus(t.jwks, t.server.uri, await rotated.sign()), 200);
  assert.equal(t.server.state.hits, 2);
});

jwksTest(
  "RemoteJwks rate-limits refetches for unknown kids",
  { minRefreshIntervalMs: 60_000 },
  async (t) => {
    await t.jwks.keys(ref(t.server.uri), "k1");
    t.clock.now = 1_000;
    await t.jwks.keys(ref(t.server.uri), "unknown-1");
    await t.jwks.keys(ref(t.server.uri), "unknown-2");
    assert.equal(t.server.state.hits, 1);
    t.clock.now = 61_000;
    await t.jwks.keys(ref(t.server.uri), "unknown-3");
    assert.equal(t.server.state.hits, 2);
  },
);

jwksTest("RemoteJwks fails closed and logs when the JWKS server is down", {}, async (t) => {
  await t.server.close();
  const status = await authStatus(t.jwks, t.server.uri, await t.key.sign());
  assert.equal(status, "401 Jwt verification fails");
  assert.equal(t.logs.length, 1);
  assert.match(t.logs[0], /JWKS fetch failed/);
  assert.match(t.logs[0], new RegExp(ISSUER));
});

jwksTest("RemoteJwks keeps the last good set when a refresh fails", {}, async (t) => {
  assert.ok(await t.jwks.keys(ref(t.server.uri), "k1"));
  t.server.state.status = 500;
  t.clock.now = 21 * 60_000;
  assert.ok(await t.jwks.keys(ref(t.server.uri), "k1"));
  await t.jwks.keys(ref(t.server.uri), "other-kid");
  assert.equal(await authStatus(t.jwks, t.server.uri, await t.key.sign()), 200);
  assert.ok(t.logs.some((l) => l.includes("HTTP status 500") && l.includes('"keptOldKeys":true')));
});

jwksTest("RemoteJwks gives up after the rule's timeout", {}, async (t) => {
  t.server.state.delayMs = 300;
  const started = performance.now();
  assert.equal(await t.jwks.keys(ref(t.server.uri, 20), "k1"), undefined);
  assert.ok(performance.now() - started < 250);
  assert.match(t.logs[0], /JWKS fetch timed out/);
  await new Promise((r) => setTimeout(r, 350));
});

jwksTest("RemoteJwks refuses a body without a usable key", {}, async (t) => {
  t.server.state.body = '{"keys": [{"kty": "EC", "crv": "P-256"}]}';
  assert.equal(await t.jwks.keys(ref(t.server.uri), "k1"), undefined);
  assert.match(t.logs[0], /JWKS is not usable.*Jwks doesn't have any valid public key/);
});

jwksTest(
  "RemoteJwks refreshes a 20-minute-old set in the background without waiting",
  {},
  async (t) => {
    const before = await t.jwks.keys(ref(t.server.uri), "k1");
    const second = await makeKey("k2");
    t.server.state.body = keysOf(t.key.jwk, second.jwk);
    t.server.state.delayMs = 100;
    t.clock.now = 20 * 60_000;
    const started = performance.now();
    assert.equal(await t.jwks.keys(ref(t.server.uri), "k1"), before, "the old set serves at once");
    assert.ok(performance.now() - started < 50);
    await new Promise((r) => setTimeout(r, 200));
    const after = await t.jwks.keys(ref(t.server.uri), "k2");
    assert.notEqual(after, before);
    assert.ok(after?.hasKid("k2"));
    assert.equal(t.server.state.hits, 2);
  },
);

jwksTest("RemoteJwks finds the key set through OpenID discovery", {}, async (t) => {
  const set = await t.jwks.keys({ issuer: t.server.base, timeoutMs: 2000 }, "k1");
  assert.ok(set?.hasKid("k1"));
  assert.deepEqual(t.server.state.paths, ["/.well-known/openid-configuration", "/keys"]);
});

jwksTest("RemoteJwks shares one fetch between concurrent first requests", {}, async (t) => {
  t.server.state.delayMs = 50;
  const sets = await Promise.all([1, 2, 3].map(() => t.jwks.keys(ref(t.server.uri), "k1")));
  assert.ok(sets.every((s) => s === sets[0] && s !== undefined));
  assert.equal(t.server.state.hits, 1);
});

jwksTest("RemoteJwks.prefetch() loads the key sets a compile names", {}, async (t) => {
  const { authn } = compileAuthn([
    authnPolicy("remote", { ...TO_A, jwtRules: [{ issuer: ISSUER, jwksUri: t.server.uri }] }),
  ]);
  await t.jwks.prefetch(authn.remotes);
  assert.equal(t.server.state.hits, 1);
  assert.equal(await authStatus(t.jwks, t.server.uri, await t.key.sign()), 200);
  assert.equal(t.server.state.hits, 1);
});
