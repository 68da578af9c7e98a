import assert from "node:assert/strict";
import { makePki, spiffe } from "../fixtures/pki.ts";
import { startEcho } from "../fixtures/echo.ts";
import { roundTrip, text } from "../fixtures/streams.ts";
import {
  DEFAULT_TUNNEL_CONFIG,
  HbonePool,
  IdentitySource,
  serveDestination,
  TunnelError,
} from "../../tunnel/mod.ts";

const POD = "127.0.11.1";
const DEST_ID = spiffe("ns1", "dest");

/** Awaits a promise that must reject with a TunnelError and returns the error. */
async function rejection(
  fn: () => Promise<unknown>,
  _type: typeof TunnelError,
): Promise<TunnelError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof TunnelError, String(e));
    return e;
  }
  throw new assert.AssertionError({ message: "Expected a TunnelError" });
}

async function setup() {
  const pki = await makePki();
  const destIdentity = await pki.identity(DEST_ID);
  const [dest] = await serveDestination([{ host: POD, port: 0 }], {
    identity: destIdentity,
    config: DEFAULT_TUNNEL_CONFIG,
  });
  const echo = await startEcho(POD);
  const client = await pki.identity(spiffe("ns1", "client"));
  const pool = new HbonePool(client, DEFAULT_TUNNEL_CONFIG);
  const target = {
    address: POD,
    port: dest.port,
    identity: DEST_ID,
    authority: `${POD}:${echo.port}`,
  };
  return {
    pki,
    dest,
    echo,
    pool,
    target,
    async [Symbol.asyncDispose]() {
      pool.close();
      await dest.close(100);
      await echo.close();
      await pki.remove();
    },
  };
}

Deno.test("HbonePool.open() carries bytes both ways through a destination stand-in", async () => {
  await using s = await setup();
  const tunnel = await s.pool.open(s.target);
  assert.deepEqual(text(await roundTrip(tunnel.stream, "hello")), "hello");
});

Deno.test("HbonePool.open() refuses a server whose identity is not the expected one", async () => {
  await using s = await setup();
  const e = await rejection(
    () => s.pool.open({ ...s.target, identity: spiffe("ns1", "other") }),
    TunnelError,
  );
  assert.deepEqual(e.kind, "tls");
});

Deno.test("HbonePool.open() accepts any identity of a trust domain given as a prefix", async () => {
  await using s = await setup();
  const tunnel = await s.pool.open({ ...s.target, identity: "spiffe://cluster.local/" });
  assert.deepEqual(text(await roundTrip(tunnel.stream, "x")), "x");
});

Deno.test("destination stand-in answers 400 when the authority IP is not the arrival IP", async () => {
  await using s = await setup();
  const e = await rejection(
    () => s.pool.open({ ...s.target, authority: `127.0.11.2:${s.echo.port}` }),
    TunnelError,
  );
  assert.deepEqual([e.kind, e.status], ["status", 400]);
});

Deno.test("destination stand-in answers 503 when the authority refuses the connection", async () => {
  await using s = await setup();
  const e = await rejection(
    () => s.pool.open({ ...s.target, authority: `${POD}:1` }),
    TunnelError,
  );
  assert.deepEqual([e.kind, e.status], ["status", 503]);
});

Deno.test("HbonePool.open() reports a connect failure when nothing listens", async () => {
  await using s = await setup();
  const e = await rejection(() => s.pool.open({ ...s.target, port: 1 }), TunnelError);
  assert.deepEqual(e.kind, "connect");
});

Deno.test("HbonePool opens a second connection past 100 streams and reuses it after", async () => {
  await using s = await setup();
  const tunnels = await Promise.all(
    Array.from({ length: 150 }, () => s.pool.open(s.target)),
  );
  assert.deepEqual(s.pool.stats.connections, 2);
  assert.deepEqual(s.pool.stats.streams, 150);
  const replies = await Promise.all(tunnels.map((t, i) => roundTrip(t.stream, `m${i}`)));
  replies.forEach((r, i) => assert.deepEqual(text(r), `m${i}`));
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(s.pool.stats.streams, 0);
  const again = await s.pool.open(s.target);
  assert.deepEqual(text(await roundTrip(again.stream, "z")), "z");
  assert.deepEqual(s.pool.stats.opened, 2);
});

Deno.test("HBONE server drops a client whose certificate comes from another CA", async () => {
  await using s = await setup();
  const stranger = await makePki();
  try {
    const own = await stranger.identity(spiffe("ns1", "client"));
    // The stranger trusts our destination's root, so only the server side can refuse.
    const root = await Deno.readTextFile(`${s.pki.caDir}/root-cert.pem`);
    const pool = new HbonePool(
      new IdentitySource({ ...own.current, root }),
      DEFAULT_TUNNEL_CONFIG,
    );
    const e = await rejection(() => pool.open(s.target), TunnelError);
    assert.ok(["tls", "reset"].includes(e.kind), e.message);
    assert.equal(s.echo.accepted, 0);
    pool.close();
  } finally {
    await stranger.remove();
  }
});
