/**
 * The waypoint end to end over real sockets: HBONE client → waypoint → destination stand-in →
 * echo server, on loopback addresses 127.0.4.x (pods) and 127.10.4.x (VIPs).
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { CLIENT_ID, startMesh, WAYPOINT_ID } from "../fixtures/mesh.ts";
import { concat, roundTrip, text } from "../fixtures/streams.ts";
import { encodeProxyV2, TLV_PEER_IDENTITY, TunnelError } from "../../tunnel/mod.ts";

const VIP = "127.10.4.1";
const PODS = [
  { name: "echo-1", ip: "127.0.4.1" },
  { name: "echo-2", ip: "127.0.4.2" },
];

async function statusOf(p: Promise<unknown>): Promise<number | string> {
  try {
    await p;
    return 200;
  } catch (e) {
    assert.ok(e instanceof TunnelError, String(e));
    return e.status ?? e.kind;
  }
}

Deno.test("waypoint carries bytes to a bound service VIP and balances by requests in flight", async () => {
  await using mesh = await startMesh({ waypointIp: "127.0.4.100", vip: VIP, pods: PODS });
  // Two connections held open at once: least-request sends the second to the idle pod.
  const first = await mesh.connect(`${VIP}:9000`);
  const second = await mesh.connect(`${VIP}:9000`);
  assert.deepEqual(mesh.destinations.map((d) => d.sessions), [1, 1]);
  assert.equal(text(await roundTrip(first.stream, "one")), "one");
  assert.equal(text(await roundTrip(second.stream, "two")), "two");
  assert.equal(mesh.echo.accepted, 2);
});

Deno.test("waypoint carries bytes to a bound pod IP at its target port", async () => {
  await using mesh = await startMesh({ waypointIp: "127.0.4.101", vip: VIP, pods: PODS });
  const t = await mesh.connect(`127.0.4.2:${mesh.echo.port}`);
  assert.equal(text(await roundTrip(t.stream, "to the pod")), "to the pod");
  assert.deepEqual(mesh.destinations.map((d) => d.sessions), [0, 1]);
});

Deno.test("waypoint refuses targets it cannot serve, before any data", async () => {
  await using mesh = await startMesh({ waypointIp: "127.0.4.102", vip: VIP, pods: PODS });
  const cases: [string, string, number | string][] = [
    ["an address no service or pod has", "127.10.4.99:9000", 404],
    ["a VIP port the service does not have", `${VIP}:1234`, 404],
    ["an authority that is not ip:port", "echo.ns1:9000", 400],
  ];
  for (const [what, authority, want] of cases) {
    assert.equal(await statusOf(mesh.connect(authority)), want, what);
  }
  assert.equal(mesh.echo.accepted, 0);
});

Deno.test("waypoint answers 405 to a method other than CONNECT", async () => {
  await using mesh = await startMesh({ waypointIp: "127.0.4.103", vip: VIP, pods: PODS });
  const certs = await mesh.pki.certs("spiffe://cluster.local/ns/ns1/sa/client");
  const status = await new Promise<number>((resolve, reject) => {
    const session = http2.connect(`https://127.0.4.103:${mesh.waypoint.hbone.port}`, {
      createConnection: () =>
        tls.connect(clientTls(certs, mesh.waypoint.hbone.port, "127.0.4.103")),
    });
    session.on("error", reject);
    const req = session.request({ ":method": "GET", ":path": "/", ":authority": `${VIP}:9000` });
    req.on("response", (h) => {
      resolve(Number(h[":status"]));
      session.close();
    });
    req.on("error", reject);
    req.end();
  });
  assert.equal(status, 405);
});

Deno.test("waypoint refuses a handshake without a client certificate", async () => {
  await using mesh = await startMesh({ waypointIp: "127.0.4.104", vip: VIP, pods: PODS });
  const ca = await Deno.readTextFile(`${mesh.pki.caDir}/root-cert.pem`);
  const outcome = await new Promise<string>((resolve) => {
    const socket = tls.connect({
      host: "127.0.4.104",
      port: mesh.waypoint.hbone.port,
      ca,
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
    });
    socket.on("error", () => resolve("error"));
    socket.on("close", () => resolve("closed"));
    socket.on("data", () => resolve("data"));
  });
  assert.notEqual(outcome, "data");
  assert.equal(mesh.waypoint.hbone.sessions, 0);
});

Deno.test("waypoint answers 503 when the destination presents the wrong identity", async () => {
  await using mesh = await startMesh({
    waypointIp: "127.0.4.105",
    vip: VIP,
    pods: [{
      name: "echo-1",
      ip: "127.0.4.5",
      presents: "spiffe://cluster.local/ns/ns1/sa/impostor",
    }],
  });
  assert.equal(await statusOf(mesh.connect(`${VIP}:9000`)), 503);
  assert.equal(mesh.echo.accepted, 0);
});

Deno.test("waypoint answers 503 when the destination ztunnel is not there", async () => {
  await using mesh = await startMesh({ waypointIp: "127.0.4.106", vip: VIP, pods: [PODS[0]] });
  await mesh.destinations[0].close(0);
  assert.equal(await statusOf(mesh.connect(`${VIP}:9000`)), 503);
});

Deno.test("waypoint carries 200 concurrent streams over one client connection", async () => {
  await using mesh = await startMesh({ waypointIp: "127.0.4.107", vip: VIP, pods: PODS });
  // The client pool splits at 100 streams a connection, as ztunnel does.
  const tunnels = await Promise.all(
    Array.from({ length: 200 }, () => mesh.connect(`${VIP}:9000`)),
  );
  assert.equal(mesh.client.stats.connections, 2);
  const replies = await Promise.all(tunnels.map((t, i) => roundTrip(t.stream, `stream ${i}`)));
  replies.forEach((r, i) => assert.equal(text(r), `stream ${i}`));
  assert.equal(mesh.echo.accepted, 200);
});

Deno.test("waypoint carries 100 MiB both ways with matching checksums", async () => {
  await using mesh = await startMesh({ waypointIp: "127.0.4.108", vip: VIP, pods: [PODS[0]] });
  const t = await mesh.connect(`${VIP}:9000`);
  const chunk = randomBytes(1 << 20);
  const sent = createHash("sha256");
  const got = createHash("sha256");
  let received = 0;
  const done = new Promise<void>((resolve, reject) => {
    t.stream.on("data", (c: Uint8Array) => {
      got.update(c);
      received += c.length;
    });
    t.stream.once("end", resolve);
    t.stream.once("error", reject);
  });
  for (let i = 0; i < 100; i++) {
    // A written buffer belongs to the stream until it is sent: each write gets its own copy.
    const piece = Uint8Array.from(chunk);
    piece[0] = i;
    sent.update(piece);
    if (!t.stream.write(piece)) await new Promise((r) => t.stream.once("drain", r));
  }
  t.stream.end();
  await done;
  assert.equal(received, 100 << 20);
  assert.equal(got.digest("hex"), sent.digest("hex"));
});

function clientTls(certs: string, port: number, host: string): tls.ConnectionOptions {
  return {
    host,
    port,
    key: Deno.readTextFileSync(`${certs}/key.pem`),
    cert: Deno.readTextFileSync(`${certs}/cert-chain.pem`),
    ca: Deno.readTextFileSync(`${certs}/root-cert.pem`),
    ALPNProtocols: ["h2"],
    checkServerIdentity: (_h, cert) =>
      cert.subjectaltname?.includes(WAYPOINT_ID) ? undefined : new Error("Wrong waypoint"),
  };
}

Deno.test("waypoint serves the sandwich binding: PROXY v2 in, plain TCP to the pod out", async () => {
  await using mesh = await startMesh({
    waypointIp: "127.0.4.109",
    vip: VIP,
    pods: [PODS[0]],
    sandwich: true,
    plainUpstreams: true,
  });
  const sandwich = mesh.waypoint.sandwich!;
  const talk = (dst: string, port: number) =>
    new Promise<string>((resolve) => {
      const socket = net.connect({ host: sandwich.address, port: sandwich.port });
      const chunks: Uint8Array[] = [];
      socket.on("data", (c: Uint8Array) => chunks.push(c));
      socket.on("error", () => resolve("error"));
      socket.on("close", () => resolve(text(concat(chunks))));
      socket.write(encodeProxyV2(
        { address: "127.0.4.200", port: 5555 },
        { address: dst, port },
        new Map([[TLV_PEER_IDENTITY, new TextEncoder().encode(CLIENT_ID)]]),
      ));
      socket.end("through the sandwich");
    });
  assert.equal(await talk(VIP, 9000), "through the sandwich");
  assert.equal(await talk("127.10.4.99", 9000), "", "an unbound target is closed");
  assert.equal(mesh.echo.accepted, 1);
  assert.deepEqual(mesh.destinations.map((d) => d.sessions), [0], "no HBONE upstream was used");
});
