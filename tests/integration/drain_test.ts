/**
 * `Waypoint.close()` drains as Envoy does, in process: HTTP/1.1 inside a tunnel is answered with
 * `connection: close` and closed, idle keep-alives close at once, h2c gets GOAWAY and finishes
 * its stream, the sandwich and `--dev-http` listeners let requests in flight finish, TCP splices
 * are not cut, the HBONE listener keeps accepting during the accept window, and close() resolves
 * as soon as the last connection ended. Loopback addresses 127.0.32.x (waypoints 127.0.32.1xx,
 * pods 127.0.32.1-9) and VIPs 127.10.32.x.
 */
import assert from "node:assert/strict";
import net from "node:net";
import type { Duplex } from "node:stream";
import { connectH2, type H2Headers } from "../../h2/mod.ts";
import {
  DEFAULT_TUNNEL_CONFIG,
  encodeProxyV2,
  HbonePool,
  TLV_PEER_IDENTITY,
  TunnelError,
} from "../../tunnel/mod.ts";
import {
  CLIENT_ID,
  type MeshOptions,
  startMesh,
  type TestMesh,
  WAYPOINT_ID,
} from "../fixtures/mesh.ts";
import { concat, text } from "../fixtures/streams.ts";
import { header, Http1, startH2Backends, startHttpBackends } from "./_l7.ts";

const POD = { name: "echo-1", ip: "127.0.32.1" };
/** Far longer than any test here takes: close() must resolve on the last stream, not on this. */
const GRACE_MS = 30_000;

/** A gate the backends hold `/slow` requests on until {@link Gate.release}. */
class Gate {
  #arrived!: () => void;
  #release!: () => void;
  /** Resolves when a `/slow` request reached the backend. */
  readonly arrived = new Promise<void>((r) => this.#arrived = r);
  readonly released = new Promise<void>((r) => this.#release = r);
  hold(): Promise<void> {
    this.#arrived();
    return this.released;
  }
  release(): void {
    this.#release();
  }
}

/** HTTP/1.1 backends: `/slow` waits for the gate, anything else answers at once. */
function httpBackends(gate: Gate) {
  return startHttpBackends([POD.ip], async (req, res) => {
    req.resume();
    if (req.url === "/slow") await gate.hold();
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`answer to ${req.url}`);
  });
}

function httpMesh(waypointIp: string, port: number, extra: Partial<MeshOptions> = {}) {
  return startMesh({
    waypointIp,
    vip: "127.10.32.1",
    pods: [POD],
    ports: [{ name: "http", port: 80, targetPort: port }],
    ...extra,
  });
}

/** Resolves when the stream ended or closed, whichever first. */
function ended(stream: Duplex): Promise<void> {
  return new Promise((resolve) => {
    if (stream.readableEnded || stream.destroyed) return resolve();
    stream.once("end", resolve);
    stream.once("close", resolve);
    stream.on("error", () => {});
    stream.resume();
  });
}

/** close() resolved before a bound far below the grace: it waited for streams, not the timeout. */
async function assertClosesEarly(closing: Promise<void>, what: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), 10_000));
  const first = await Promise.race([closing.then(() => "closed" as const), late]);
  clearTimeout(timer);
  assert.equal(first, "closed", `${what}: close() waited for its ${GRACE_MS} ms grace`);
}

/** The readiness status of a waypoint, or `refused` when nothing listens. */
async function readiness(mesh: TestMesh): Promise<number | "refused"> {
  try {
    const res = await fetch(`http://${mesh.waypoint.admin[0].addr}/healthz/ready`);
    await res.body?.cancel();
    return res.status;
  } catch {
    return "refused";
  }
}

Deno.test("close() answers the in-flight HTTP/1.1 request with connection: close and closes an idle keep-alive at once", async () => {
  const gate = new Gate();
  await using backends = await httpBackends(gate);
  await using mesh = await httpMesh("127.0.32.101", backends.port);
  const busy = new Http1((await mesh.connect("127.10.32.1:80")).stream);
  const idle = new Http1((await mesh.connect("127.10.32.1:80")).stream);
  const first = await idle.fetch("GET", "/fast");
  assert.equal(first.status, 200);
  assert.equal(header(first.headers, "connection"), undefined, "keep-alive before the drain");
  busy.send("GET /slow HTTP/1.1\r\nhost: echo.ns1\r\n\r\n");
  await gate.arrived;

  const closing = mesh.waypoint.close(GRACE_MS);
  // The idle connection closes while the busy one is still held by the backend.
  await ended(idle.stream);
  assert.equal(await readiness(mesh), 503);
  gate.release();
  const res = await busy.next();
  assert.equal(res.status, 200);
  assert.equal(text(res.body), "answer to /slow");
  assert.equal(header(res.headers, "connection"), "close");
  await ended(busy.stream);
  await assertClosesEarly(closing, "HTTP/1.1");
});

Deno.test("close() sends GOAWAY to an h2c client inside a tunnel and its in-flight stream completes", async () => {
  const gate = new Gate();
  await using backends = await startH2Backends([POD.ip], async (stream, headers) => {
    if (headers[":path"] === "/slow") await gate.hold();
    stream.respond({ ":status": 200 });
    stream.end(`answer to ${headers[":path"]}`);
  });
  await using mesh = await startMesh({
    waypointIp: "127.0.32.102",
    vip: "127.10.32.1",
    pods: [POD],
    ports: [{ name: "http2", port: 8080, targetPort: backends.port }],
  });
  const session = connectH2((await mesh.connect("127.10.32.1:8080")).stream, {});
  await session.ready;
  const goaway = new Promise<number>((r) => session.once("goaway", (_code, last) => r(last)));
  const stream = session.request(
    { ":method": "GET", ":scheme": "http", ":path": "/slow", ":authority": "echo.ns1" },
    { endStream: true },
  );
  stream.on("error", () => {});
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let status = 0;
    stream.once("response", (h: H2Headers) => status = Number(h[":status"]));
    stream.on("data", (c: Uint8Array) => chunks.push(c));
    stream.once("end", () => resolve({ status, body: text(concat(chunks)) }));
    stream.once("error", reject);
  });
  await gate.arrived;

  const closing = mesh.waypoint.close(GRACE_MS);
  assert.equal(await goaway, 1, "GOAWAY names the in-flight stream as the last one served");
  gate.release();
  assert.deepEqual(await response, { status: 200, body: "answer to /slow" });
  await assertClosesEarly(closing, "h2c");
});

/**
 * Sends `GET /slow` on `socket`, closes the waypoint while the backend holds it, and checks that
 * the answer still comes, with `connection: close`, and that close() resolves on it.
 */
async function assertSlowRequestFinishes(
  mesh: TestMesh,
  gate: Gate,
  socket: net.Socket,
  what: string,
): Promise<void> {
  const client = new Http1(socket);
  client.send("GET /slow HTTP/1.1\r\nhost: echo.ns1\r\n\r\n");
  await gate.arrived;
  const closing = mesh.waypoint.close(GRACE_MS);
  gate.release();
  const res = await client.next();
  assert.equal(res.status, 200, what);
  assert.equal(text(res.body), "answer to /slow", what);
  assert.equal(header(res.headers, "connection"), "close", what);
  await ended(socket);
  await assertClosesEarly(closing, what);
}

/** The plain listeners, each with how a client reaches `echo.ns1:80` through it. */
const PLAIN_LISTENERS: {
  what: string;
  ip: string;
  options: Partial<MeshOptions>;
  open(mesh: TestMesh): net.Socket;
}[] = [
  {
    what: "sandwich",
    ip: "127.0.32.103",
    options: { sandwich: true },
    open: ({ waypoint }) => {
      const socket = net.connect({
        host: waypoint.sandwich!.address,
        port: waypoint.sandwich!.port,
      });
      socket.write(encodeProxyV2(
        { address: "127.0.32.200", port: 5555 },
        { address: "127.10.32.1", port: 80 },
        new Map([[TLV_PEER_IDENTITY, new TextEncoder().encode(CLIENT_ID)]]),
      ));
      return socket;
    },
  },
  {
    what: "--dev-http",
    ip: "127.0.32.104",
    options: { devHttp: true },
    open: ({ waypoint }) =>
      net.connect({ host: waypoint.devHttp!.address, port: waypoint.devHttp!.port }),
  },
];

for (const listener of PLAIN_LISTENERS) {
  Deno.test(`close() lets a ${listener.what} request in flight finish with connection: close`, async () => {
    const gate = new Gate();
    await using backends = await httpBackends(gate);
    await using mesh = await httpMesh(listener.ip, backends.port, {
      ...listener.options,
      plainUpstreams: true,
    });
    await assertSlowRequestFinishes(mesh, gate, listener.open(mesh), listener.what);
  });
}

Deno.test("close() does not cut a TCP splice: bytes still flow until the client ends it", async () => {
  await using mesh = await startMesh({
    waypointIp: "127.0.32.105",
    vip: "127.10.32.1",
    pods: [POD],
  });
  const { stream } = await mesh.connect("127.10.32.1:9000");
  const received: Uint8Array[] = [];
  stream.on("data", (c: Uint8Array) => received.push(c));
  const echoed = async (want: string) => {
    while (text(concat(received)) !== want) await new Promise((r) => setTimeout(r, 10));
  };
  stream.write("before ");
  await echoed("before ");

  const closing = mesh.waypoint.close(GRACE_MS);
  stream.write("during the drain");
  await echoed("before during the drain");
  stream.end();
  await ended(stream);
  await assertClosesEarly(closing, "TCP");
});

Deno.test("during the accept window readiness is 503, a new HBONE connection is served and told to go, then refused", async () => {
  const gate = new Gate();
  await using backends = await httpBackends(gate);
  await using mesh = await httpMesh("127.0.32.106", backends.port);
  const target = {
    address: mesh.waypoint.hbone.address,
    port: mesh.waypoint.hbone.port,
    identity: WAYPOINT_ID,
    authority: "127.10.32.1:80",
  };
  const closing = mesh.waypoint.close(GRACE_MS, { acceptMs: 5_000 });
  assert.equal(await readiness(mesh), 503);

  const late = new HbonePool(await mesh.pki.identity(CLIENT_ID), DEFAULT_TUNNEL_CONFIG);
  try {
    const client = new Http1((await late.open(target)).stream);
    const res = await client.fetch("GET", "/fast");
    assert.equal(res.status, 200);
    assert.equal(header(res.headers, "connection"), "close", "the drain applies to it too");
    await ended(client.stream);
    // The session got GOAWAY after its first stream: the next CONNECT needs a new connection.
    await closing;
    const refused = await late.open(target).then(() => undefined, (e) => e);
    assert.ok(refused instanceof TunnelError && refused.kind === "connect", String(refused));
  } finally {
    late.close();
  }
});
