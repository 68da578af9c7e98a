/**
 * h2c and gRPC through the waypoint end to end: a `node:http2` client inside one HBONE CONNECT
 * stream → waypoint (h2c codec, router) → destination stand-in → `node:http2` h2c backend, on
 * loopback addresses 127.0.7.20-29 (pods), 127.10.7.20-29 (VIPs) and 127.0.7.220-229 (waypoints).
 * gRPC messages are framed by hand (1 flag byte, 4-byte big-endian length), no gRPC library.
 */
import assert from "node:assert/strict";
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from "node:http2";
import type { Duplex } from "node:stream";
import { startMesh } from "../fixtures/mesh.ts";
import { concat, text } from "../fixtures/streams.ts";
import { type H2Backends, type H2Handler, startH2Backends } from "./_l7.ts";

const VIP = "127.10.7.20";
const POD = { name: "echo-1", ip: "127.0.7.20" };

/** A gRPC length-prefixed message. */
function frame(message: string): Uint8Array {
  const payload = new TextEncoder().encode(message);
  const out = new Uint8Array(5 + payload.length);
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, 5);
  return out;
}

/** The messages of a gRPC body. */
function unframe(bytes: Uint8Array): string[] {
  const out: string[] = [];
  for (let off = 0; off < bytes.length;) {
    const n = new DataView(bytes.buffer, bytes.byteOffset + off).getUint32(1);
    out.push(text(bytes.subarray(off + 5, off + 5 + n)));
    off += 5 + n;
  }
  return out;
}

/** An h2c client session inside a tunnel stream. */
function h2cOver(stream: Duplex): ClientHttp2Session {
  const session = http2.connect("http://echo.ns1", { createConnection: () => stream });
  session.on("error", () => {});
  return session;
}

/** What a client saw of one stream, in the order it happened. */
interface Exchange {
  readonly headers: IncomingHttpHeaders;
  readonly data: Uint8Array[];
  readonly trailers?: IncomingHttpHeaders;
  /** `data` and `trailers` events in order. */
  readonly events: string[];
}

function call(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body: Uint8Array | undefined,
  onData: (n: number) => void = () => {},
): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    const data: Uint8Array[] = [];
    const events: string[] = [];
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    req.on("response", (h) => head = h);
    req.on("data", (c: Uint8Array) => {
      data.push(c);
      events.push("data");
      onData(data.length);
    });
    req.on("trailers", (t) => {
      trailers = t;
      events.push("trailers");
    });
    req.on("end", () => resolve({ headers: head, data, trailers, events }));
    req.on("error", reject);
    if (body !== undefined) req.end(body);
  });
}

function grpcHeaders(path: string): Record<string, string> {
  return {
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    "te": "trailers",
  };
}

/** Reads a whole request stream. */
function readAll(stream: Duplex): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  return new Promise((resolve) => {
    stream.on("data", (c: Uint8Array) => parts.push(c));
    stream.on("end", () => resolve(concat(parts)));
  });
}

/** Echoes plain h2 bodies; answers gRPC unary calls with `<pod> <path> <message>`. */
const echo: H2Handler = async (stream, headers, pod) => {
  const body = await readAll(stream);
  const path = String(headers[":path"]);
  if (headers["content-type"] !== "application/grpc") {
    stream.respond({ ":status": 200, "x-pod": pod, "x-path": path });
    return void stream.end(body);
  }
  const [message] = unframe(body);
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
    waitForTrailers: true,
  });
  stream.once("wantTrailers", () => {
    stream.sendTrailers({ "grpc-status": "0", "grpc-message": "all good" });
  });
  stream.end(frame(`${pod} ${path} ${message}`));
};

function h2Mesh(waypointIp: string, backends: H2Backends) {
  return startMesh({
    waypointIp,
    vip: VIP,
    pods: [POD],
    ports: [
      { name: "http2", port: 8080, targetPort: backends.port },
      { name: "grpc", port: 50051, targetPort: backends.port },
    ],
  });
}

Deno.test("h2c carries 20 concurrent requests with bodies over one client connection in one CONNECT", async () => {
  await using backends = await startH2Backends([POD.ip], echo);
  await using mesh = await h2Mesh("127.0.7.220", backends);
  const session = h2cOver((await mesh.connect(`${VIP}:8080`)).stream);
  const bodies = Array.from({ length: 20 }, (_, i) => new Uint8Array(1000 * (i + 1)).fill(i));
  const results = await Promise.all(
    bodies.map((b, i) =>
      call(session, { ":method": "POST", ":path": `/h2/${i}`, "x-index": String(i) }, b)
    ),
  );
  session.close();
  results.forEach((r, i) => {
    assert.equal(r.headers[":status"], 200);
    assert.equal(r.headers["x-pod"], POD.ip);
    assert.equal(r.headers["x-path"], `/h2/${i}`);
    assert.deepEqual(concat(r.data), bodies[i]);
  });
  assert.equal(mesh.client.stats.streams, 1, "one CONNECT stream carried them all");
  assert.equal(backends.calls.get(POD.ip), 20);
  assert.equal(backends.sessions.get(POD.ip), 1, "the upstream h2c connection was shared");
});

Deno.test("a port with appProtocol kubernetes.io/h2c and an unrelated name is served as h2c", async () => {
  await using backends = await startH2Backends([POD.ip], echo);
  await using mesh = await startMesh({
    waypointIp: "127.0.7.221",
    vip: VIP,
    pods: [POD],
    ports: [{
      name: "web",
      port: 8081,
      targetPort: backends.port,
      appProtocol: "kubernetes.io/h2c",
    }],
  });
  const session = h2cOver((await mesh.connect(`${VIP}:8081`)).stream);
  const r = await call(session, { ":method": "PUT", ":path": "/app" }, new Uint8Array([1, 2, 3]));
  session.close();
  assert.equal(r.headers[":status"], 200);
  assert.deepEqual(concat(r.data), new Uint8Array([1, 2, 3]));
  assert.equal(backends.calls.get(POD.ip), 1);
});

Deno.test("a gRPC unary call gets its message and the trailers grpc-status 0 and grpc-message", async () => {
  await using backends = await startH2Backends([POD.ip], echo);
  await using mesh = await h2Mesh("127.0.7.222", backends);
  const session = h2cOver((await mesh.connect(`${VIP}:50051`)).stream);
  const r = await call(session, grpcHeaders("/echo.Echo/Unary"), frame("hello"));
  session.close();
  assert.equal(r.headers[":status"], 200);
  assert.equal(r.headers["content-type"], "application/grpc");
  assert.deepEqual(unframe(concat(r.data)), [`${POD.ip} /echo.Echo/Unary hello`]);
  assert.equal(r.trailers?.["grpc-status"], "0");
  assert.equal(r.trailers?.["grpc-message"], "all good");
  assert.deepEqual(r.events.at(-1), "trailers");
});

Deno.test("a gRPC server stream delivers 10 messages as separate DATA frames before the trailers", async () => {
  // The backend sends message i+1 only once the client has message i, so each message must have
  // crossed the waypoint on its own: nothing waits for the end of the stream.
  const got: (() => void)[] = [];
  const clientHas = (n: number) => new Promise<void>((r) => got[n] = r);
  await using backends = await startH2Backends([POD.ip], async (stream) => {
    await readAll(stream);
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
      waitForTrailers: true,
    });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    for (let i = 1; i <= 10; i++) {
      const delivered = clientHas(i);
      stream.write(frame(`message ${i}`));
      await delivered;
    }
    stream.end();
  });
  await using mesh = await h2Mesh("127.0.7.223", backends);
  const session = h2cOver((await mesh.connect(`${VIP}:50051`)).stream);
  const r = await call(
    session,
    grpcHeaders("/echo.Echo/Stream"),
    frame("start"),
    (n) => got[n]?.(),
  );
  session.close();
  assert.equal(r.data.length, 10);
  assert.deepEqual(
    r.data.map((d) => unframe(d)),
    Array.from({ length: 10 }, (_, i) => [`message ${i + 1}`]),
  );
  assert.deepEqual(r.events, [...Array(10).fill("data"), "trailers"]);
  assert.equal(r.trailers?.["grpc-status"], "0");
});

Deno.test("a GRPCRoute sends a matching service and method to a second backend", async () => {
  const v1 = { name: "echo-1", ip: "127.0.7.21", labels: { version: "v1" } };
  const v2 = { name: "echo-2", ip: "127.0.7.22", labels: { version: "v2" } };
  await using backends = await startH2Backends([v1.ip, v2.ip], echo);
  const version = (v: string, vip: string) =>
    `---
apiVersion: v1
kind: Service
metadata: { name: echo-${v}, namespace: ns1 }
spec:
  clusterIP: ${vip}
  selector: { app: echo, version: ${v} }
  ports: [{ name: grpc, port: 50051, targetPort: ${backends.port} }]
`;
  await using mesh = await startMesh({
    waypointIp: "127.0.7.224",
    vip: "127.10.7.21",
    pods: [v1, v2],
    ports: [{ name: "grpc", port: 50051, targetPort: backends.port }],
    extraYaml: version("v1", "127.10.7.22") + version("v2", "127.10.7.23") + `---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: echo-grpc, namespace: ns1 }
spec:
  parentRefs: [{ group: "", kind: Service, name: echo, port: 50051 }]
  rules:
    - matches: [{ method: { service: echo.Echo, method: Other } }]
      backendRefs: [{ name: echo-v2, port: 50051 }]
    - backendRefs: [{ name: echo-v1, port: 50051 }]
`,
  });
  const session = h2cOver((await mesh.connect("127.10.7.21:50051")).stream);
  const pods = [];
  for (const method of ["Unary", "Other", "Unary", "Other"]) {
    const r = await call(session, grpcHeaders(`/echo.Echo/${method}`), frame("hi"));
    assert.equal(r.trailers?.["grpc-status"], "0");
    pods.push(unframe(concat(r.data))[0].split(" ")[0]);
  }
  session.close();
  assert.deepEqual(pods, [v1.ip, v2.ip, v1.ip, v2.ip]);
  assert.deepEqual([...backends.calls.values()], [2, 2]);
});

Deno.test("a gRPC call to an endpoint whose ztunnel is down ends with grpc-status 14", async () => {
  await using backends = await startH2Backends([POD.ip], echo);
  await using mesh = await h2Mesh("127.0.7.225", backends);
  await mesh.destinations[0].close(0);
  const session = h2cOver((await mesh.connect(`${VIP}:50051`)).stream);
  const r = await call(session, grpcHeaders("/echo.Echo/Unary"), frame("hello"));
  session.close();
  // A local reply to gRPC is trailers-only: HTTP 200, status in the one HEADERS frame.
  assert.equal(r.headers[":status"], 200);
  assert.equal(r.headers["grpc-status"], "14");
  assert.match(decodeURIComponent(String(r.headers["grpc-message"])), /^upstream connect error/);
  assert.equal(r.data.length, 0);
  assert.equal(backends.calls.get(POD.ip), 0);
});
