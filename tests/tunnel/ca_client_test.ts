/**
 * The Istio CA client against a grpc-js CA (tests/tunnel/_ca_server.ts), and the waypoint renewing
 * its certificate from it while HBONE traffic flows, on loopback addresses 127.0.23.x (CA, pods,
 * waypoints) and 127.10.23.x (VIPs).
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { CLIENT_ID, startMesh, WAYPOINT_ID } from "../fixtures/mesh.ts";
import { makePki, type Pki } from "../fixtures/pki.ts";
import { CaError, type CaIdentity, IstioCaClient, startCaIdentity } from "../../tunnel/mod.ts";
import { CA_HOSTNAME, type CaServer, startCaServer } from "./_ca_server.ts";

const TOKEN = "projected-token-of-ns1-waypoint";

interface Setup extends AsyncDisposable {
  readonly pki: Pki;
  readonly ca: CaServer;
  readonly tokenFile: string;
  readonly rootFile: string;
}

async function setup(host: string, validityMs: number): Promise<Setup> {
  const pki = await makePki();
  const ca = await startCaServer({
    host,
    caDir: pki.caDir,
    tokens: { [TOKEN]: WAYPOINT_ID },
    validityMs,
  });
  const tokenFile = `${pki.dir}/istio-token`;
  await Deno.writeTextFile(tokenFile, TOKEN + "\n");
  return {
    pki,
    ca,
    tokenFile,
    rootFile: `${pki.caDir}/root-cert.pem`,
    async [Symbol.asyncDispose]() {
      await ca.stop();
      // A mesh given this PKI owns it and removes it first.
      await pki.remove().catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    },
  };
}

function caOptions(s: Setup, host: string) {
  return {
    address: `${host}:${s.ca.port}`,
    hostname: CA_HOSTNAME,
    tokenFile: s.tokenFile,
    rootFile: s.rootFile,
    identity: WAYPOINT_ID,
    clusterId: "cluster-23",
  };
}

/** A test mesh whose waypoint (127.0.23.10n) gets its certificate from the CA at 127.0.23.n. */
function startCaMesh(s: Setup, n: number) {
  return startMesh({
    waypointIp: `127.0.23.10${n}`,
    vip: `127.10.23.${n}`,
    pods: [{ name: "echo-1", ip: `127.0.23.1${n}` }],
    pki: s.pki,
    ca: { ...caOptions(s, `127.0.23.${n}`), minBackoffMs: 100, maxBackoffMs: 400 },
  });
}

/** Waits until `done()` holds, checking every 20 ms; fails after `limitMs` naming `what`. */
async function until(what: string, done: () => boolean, limitMs = 20_000): Promise<void> {
  for (const end = Date.now() + limitMs; !done();) {
    if (Date.now() > end) throw new Error(`Gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Writes `line` on a tunnel to the echo server and reads it back, leaving the stream open. */
function echo(stream: Duplex, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const onData = (c: Uint8Array) => {
      got += new TextDecoder().decode(c);
      if (got.length >= line.length) {
        stream.off("data", onData);
        stream.off("error", reject);
        resolve(got);
      }
    };
    stream.on("data", onData);
    stream.once("error", reject);
    stream.write(line);
  });
}

/** The serial of the certificate the waypoint presents to a new handshake. */
async function presentedSerial(address: string, port: number, certs: string): Promise<string> {
  const read = (name: string) => Deno.readTextFile(`${certs}/${name}`);
  const socket = tls.connect({
    host: address,
    port,
    key: await read("key.pem"),
    cert: await read("cert-chain.pem"),
    ca: await read("root-cert.pem"),
    ALPNProtocols: ["h2"],
    checkServerIdentity: () => undefined,
  });
  try {
    await new Promise((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    return socket.getPeerCertificate().serialNumber;
  } finally {
    socket.destroy();
  }
}

function serialOf(ca: CaIdentity): string {
  return new X509Certificate(ca.identity.current.certChain).serialNumber;
}

Deno.test("IstioCaClient.fetch() gets a certificate for its key, with the token, cluster id and lifetime", async () => {
  await using s = await setup("127.0.23.1", 3_600_000);
  const client = new IstioCaClient({ ...caOptions(s, "127.0.23.1"), ttlSeconds: 7200 });
  const material = await client.fetch();
  assert.equal(material.identity, WAYPOINT_ID);
  assert.equal(material.root, await Deno.readTextFile(s.rootFile));
  assert.ok(material.key.includes("BEGIN PRIVATE KEY"));
  assert.deepEqual(s.ca.calls, [{
    token: TOKEN,
    clusterId: "cluster-23",
    metadataClusterId: "cluster-23",
    validitySeconds: 7200,
  }]);
});

Deno.test("IstioCaClient.fetch() fails clearly on a refused token, a missing token file and a wrong CA name", async () => {
  await using s = await setup("127.0.23.2", 3_600_000);
  await Deno.writeTextFile(`${s.pki.dir}/bad-token`, "not-a-token");
  const cases: [string, Record<string, string>, string, RegExp][] = [
    [
      "a token the CA refuses",
      { tokenFile: `${s.pki.dir}/bad-token` },
      "unauthenticated",
      /UNAUTHENTICATED: authenticate failed/,
    ],
    [
      "a token file that is not there",
      { tokenFile: `${s.pki.dir}/none` },
      "token",
      /cannot read the token file/,
    ],
    [
      "a CA whose certificate is for another name",
      { hostname: "istiod.other.svc" },
      "unreachable",
      /istiod\.other\.svc/,
    ],
  ];
  for (const [what, override, kind, reason] of cases) {
    const client = new IstioCaClient({ ...caOptions(s, "127.0.23.2"), ...override });
    const e = await client.fetch().then(() => undefined, (e) => e);
    assert.ok(e instanceof CaError, `${what}: ${e}`);
    assert.equal(e.kind, kind, what);
    assert.match(e.message, new RegExp(`CA 127\\.0\\.23\\.2:${s.ca.port}`), what);
    assert.match(e.message, reason, what);
  }
});

Deno.test("startCaIdentity() fails at once, without retrying, when the CA refuses the token", async () => {
  await using s = await setup("127.0.23.3", 3_600_000);
  await Deno.writeTextFile(s.tokenFile, "stale-token");
  await assert.rejects(
    startCaIdentity(caOptions(s, "127.0.23.3")),
    (e) => e instanceof CaError && e.kind === "unauthenticated",
  );
  assert.equal(s.ca.calls.length, 1);
});

Deno.test("waypoint renews its certificate while HBONE streams flow, and drops none", async () => {
  await using s = await setup("127.0.23.4", 4_000);
  await using mesh = await startCaMesh(s, 4);
  const ca = mesh.waypoint.ca!;
  const first = serialOf(ca);
  const streams = await Promise.all([1, 2, 3].map(() => mesh.connect("127.10.23.4:9000")));
  let round = 0;
  while (ca.rotation.stats.renewals < 2) {
    round++;
    for (const [i, t] of streams.entries()) {
      const line = `stream ${i} round ${round}\n`;
      assert.equal(await echo(t.stream, line), line);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.notEqual(serialOf(ca), first);
  // The streams opened under the first certificate still carry bytes.
  for (const t of streams) assert.equal(await echo(t.stream, "after\n"), "after\n");
  // New handshakes get the newest certificate; new tunnels work.
  const certs = await mesh.pki.certs(CLIENT_ID);
  const hbone = mesh.waypoint.hbone;
  assert.equal(await presentedSerial(hbone.address, hbone.port, certs), serialOf(ca));
  const late = await mesh.connect("127.10.23.4:9000");
  assert.equal(await echo(late.stream, "late\n"), "late\n");
  assert.equal(ca.rotation.stats.failures, 0);
  for (const t of [...streams, late]) t.stream.destroy();
});

Deno.test("waypoint keeps serving while the CA is down and renews once it is back", async () => {
  await using s = await setup("127.0.23.5", 6_000);
  await using mesh = await startCaMesh(s, 5);
  const ca = mesh.waypoint.ca!;
  const first = serialOf(ca);
  await s.ca.stop();
  await until("two failed renewals", () => ca.rotation.stats.failures >= 2);
  assert.match(ca.rotation.stats.lastError ?? "", /CA 127\.0\.23\.5:\d+ failed \(unreachable\)/);
  assert.equal(serialOf(ca), first);
  const during = await mesh.connect("127.10.23.5:9000");
  assert.equal(await echo(during.stream, "ca down\n"), "ca down\n");
  await s.ca.start();
  await until("a renewal after the CA returned", () => ca.rotation.stats.renewals >= 1);
  assert.notEqual(serialOf(ca), first);
  assert.equal(ca.rotation.stats.lastError, undefined);
  assert.equal(await echo(during.stream, "ca back\n"), "ca back\n");
  during.stream.destroy();
});
