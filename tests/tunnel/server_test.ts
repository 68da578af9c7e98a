import assert from "node:assert/strict";
import tls from "node:tls";
import { issueCert } from "../../tunnel/dev_ca.ts";
import {
  DEFAULT_TUNNEL_CONFIG,
  HbonePool,
  IdentitySource,
  serveDestination,
} from "../../tunnel/mod.ts";
import { startEcho } from "../fixtures/echo.ts";
import { makePki, spiffe } from "../fixtures/pki.ts";
import { roundTrip, text } from "../fixtures/streams.ts";

const POD = "127.0.12.1";
const DEST_ID = spiffe("ns1", "dest");

/** The serial number of the certificate a TLS server presents right now. */
function servedSerial(port: number, certs: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: POD,
      port,
      key: Deno.readTextFileSync(`${certs}/key.pem`),
      cert: Deno.readTextFileSync(`${certs}/cert-chain.pem`),
      ca: Deno.readTextFileSync(`${certs}/root-cert.pem`),
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
    }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.on("error", reject);
  });
}

Deno.test("HBONE server presents reloaded certificates to new handshakes and keeps live streams", async () => {
  const pki = await makePki();
  const destDir = await pki.certs(DEST_ID);
  const identity = await IdentitySource.fromDir(destDir);
  identity.watch(destDir, 20);
  const [dest] = await serveDestination([{ host: POD, port: 0 }], {
    identity,
    config: DEFAULT_TUNNEL_CONFIG,
  });
  const echo = await startEcho(POD);
  const clientCerts = await pki.certs(spiffe("ns1", "client"));
  const pool = new HbonePool(await IdentitySource.fromDir(clientCerts), DEFAULT_TUNNEL_CONFIG);
  try {
    const before = await servedSerial(dest.port, clientCerts);
    const live = await pool.open({
      address: POD,
      port: dest.port,
      identity: DEST_ID,
      authority: `${POD}:${echo.port}`,
    });
    await issueCert(pki.caDir, DEST_ID, destDir);
    for (let i = 0; i < 200; i++) {
      if (await servedSerial(dest.port, clientCerts) !== before) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const after = await servedSerial(dest.port, clientCerts);
    assert.notEqual(after, before, "a new handshake sees the new certificate");
    assert.equal(text(await roundTrip(live.stream, "still here")), "still here");
  } finally {
    identity.close();
    pool.close();
    await dest.close(100);
    await echo.close();
    await pki.remove();
  }
});

Deno.test("HbonePool opens a fresh connection after the server sent GOAWAY", async () => {
  const pki = await makePki();
  const destIdentity = await pki.identity(DEST_ID);
  const echo = await startEcho(POD);
  const [first] = await serveDestination([{ host: POD, port: 0 }], {
    identity: destIdentity,
    config: DEFAULT_TUNNEL_CONFIG,
  });
  const pool = new HbonePool(await pki.identity(spiffe("ns1", "client")), DEFAULT_TUNNEL_CONFIG);
  const target = {
    address: POD,
    port: first.port,
    identity: DEST_ID,
    authority: `${POD}:${echo.port}`,
  };
  try {
    const t1 = await pool.open(target);
    assert.equal(text(await roundTrip(t1.stream, "a")), "a");
    await first.close(100);
    const [second] = await serveDestination([{ host: POD, port: first.port }], {
      identity: destIdentity,
      config: DEFAULT_TUNNEL_CONFIG,
    });
    try {
      const t2 = await pool.open(target);
      assert.equal(text(await roundTrip(t2.stream, "b")), "b");
      assert.equal(pool.stats.opened, 2);
      assert.equal(pool.stats.connections, 1);
    } finally {
      await second.close(100);
    }
  } finally {
    pool.close();
    await echo.close();
    await pki.remove();
  }
});
