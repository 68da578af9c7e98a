/**
 * h2/ over mutual TLS 1.3 with the repo's dev certificates, as HBONE runs it: a
 * `tls.createServer` with `requestCert` and ALPN h2 hands each socket to `serveH2`. Loopback
 * 127.0.14.4.
 */
import assert from "node:assert/strict";
import tls from "node:tls";
import { CIPHERS } from "../../tunnel/config.ts";
import { spiffeIdOf } from "../../tunnel/identity.ts";
import { connectH2, type H2Session, serveH2 } from "../../h2/session.ts";
import { makePki, spiffe } from "../fixtures/pki.ts";
import { runClient, whyNoPythonH2 } from "../interop/_python_h2.ts";
import { connectHeaders, once, pattern, readAll, settle, until } from "./_helpers.ts";

const HOST = "127.0.14.4";
const SERVER_ID = spiffe("ns1", "waypoint");
const CLIENT_ID = spiffe("ns1", "client");
const KIB = 1024;

async function files(dir: string) {
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  return {
    key: await read("key.pem"),
    cert: await read("cert-chain.pem"),
    ca: await read("root-cert.pem"),
  };
}

/** A TLS 1.3 HBONE-style listener whose sockets go to serveH2; echo on every CONNECT. */
async function tlsServer(certDir: string) {
  const sessions: H2Session[] = [];
  const peers: (string | undefined)[] = [];
  const server = tls.createServer({
    ...(await files(certDir)),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
    ciphers: CIPHERS,
    ALPNProtocols: ["h2"],
  });
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    peers.push(spiffeIdOf(socket.getPeerCertificate()?.subjectaltname));
    if (socket.alpnProtocol !== "h2") return socket.destroy();
    sessions.push(serveH2(socket, {}, (s, h) => {
      s.on("error", () => {});
      s.respond(200, { "x-peer": peers.at(-1) ?? "", "x-authority": String(h[":authority"]) });
      s.pipe(s);
    }));
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((r) => server.listen(0, HOST, r));
  return {
    port: (server.address() as { port: number }).port,
    sessions,
    peers,
    [Symbol.asyncDispose]: async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await settle();
    },
  };
}

Deno.test("our client → our server over mutual TLS 1.3 with ALPN h2", async () => {
  const pki = await makePki();
  try {
    await using server = await tlsServer(await pki.certs(SERVER_ID));
    const socket = tls.connect({
      host: HOST,
      port: server.port,
      ...(await files(await pki.certs(CLIENT_ID))),
      minVersion: "TLSv1.3",
      ciphers: CIPHERS,
      ALPNProtocols: ["h2"],
      checkServerIdentity: (_host, cert) =>
        spiffeIdOf(cert.subjectaltname) === SERVER_ID ? undefined : new Error("wrong identity"),
    });
    const client = connectH2(socket, {});
    await client.ready;
    assert.equal(socket.alpnProtocol, "h2");
    assert.equal(socket.getProtocol(), "TLSv1.3");
    const results = await Promise.all(Array.from({ length: 5 }, async (_, i) => {
      const s = client.request(connectHeaders(`10.0.4.${i}:443`));
      s.on("error", () => {});
      const response = once<Record<string, string>>(s, "response");
      const body = readAll(s);
      const data = pattern(1 << 20, i + 3);
      s.end(data);
      const h = await response;
      assert.equal(h["x-peer"], CLIENT_ID);
      assert.equal(h["x-authority"], `10.0.4.${i}:443`);
      return (await body).equals(data);
    }));
    assert.deepEqual(results, Array(5).fill(true));
    await client.close();
    await until(() => server.sessions.every((s) => s.destroyed), 3_000, "server session closed");
    assert.deepEqual(server.peers, [CLIENT_ID]);
  } finally {
    await pki.remove();
  }
});

const noPythonH2 = whyNoPythonH2();

Deno.test({
  name: "python3-h2 over TLS (tests/interop/h2_client.py) → our TLS server, 5 connections",
  ignore: noPythonH2 !== undefined,
  fn: async () => {
    const pki = await makePki();
    try {
      await using server = await tlsServer(await pki.certs(SERVER_ID));
      // h2_client.py ends each connection with GOAWAY and an immediate close: the pattern that
      // aborted Deno inside nghttp2 (denoland/deno#36788).
      for (let i = 0; i < 5; i++) {
        const { code, report, stderr } = await runClient({
          connect: `${HOST}:${server.port}`,
          authority: "10.0.4.9:8080",
          certs: await pki.certs(CLIENT_ID),
          expectIdentity: SERVER_ID,
          streams: 10,
          payloadBytes: 256 * KIB,
        });
        assert.equal(code, 0, `${JSON.stringify(report)} ${stderr}`);
        assert.equal(report.ok_streams, 10);
        assert.equal(report.tls?.alpn, "h2");
        assert.equal(report.server_settings?.MAX_CONCURRENT_STREAMS, 100);
      }
      await until(() => server.sessions.every((s) => s.destroyed), 3_000, "sessions closed");
      assert.equal(server.sessions.length, 5);
    } finally {
      await pki.remove();
    }
  },
});
