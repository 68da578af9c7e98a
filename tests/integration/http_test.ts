/**
 * HTTP/1.1 through the waypoint end to end: HBONE client → waypoint (L7) → destination stand-in →
 * `node:http` backend, on loopback addresses 127.0.7.1-9 (pods), 127.10.7.1 (VIP) and
 * 127.0.7.200-209 (waypoints).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import { startMesh } from "../fixtures/mesh.ts";
import { text } from "../fixtures/streams.ts";
import {
  type Backends,
  type Echoed,
  header,
  Http1,
  json,
  pairs,
  request,
  startHttpBackends,
} from "./_l7.ts";

const VIP = "127.10.7.1";
const POD = { name: "echo-1", ip: "127.0.7.1" };

/** A mesh whose Service `ns1/echo` has port 80 `http` to the backends (and `extra` ports). */
function l7Mesh(
  waypointIp: string,
  backends: Backends,
  extra: { name: string; port: number; targetPort: number }[] = [],
) {
  return startMesh({
    waypointIp,
    vip: VIP,
    pods: [POD],
    ports: [{ name: "http", port: 80, targetPort: backends.port }, ...extra],
  });
}

function values(echoed: Echoed, name: string): string[] {
  return echoed.headers.filter(([n]) => n === name).map(([, v]) => v);
}

Deno.test("waypoint keeps one CONNECT stream and one upstream connection alive for several requests", async () => {
  await using backends = await startHttpBackends([POD.ip]);
  await using mesh = await l7Mesh("127.0.7.200", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  for (let i = 0; i < 5; i++) {
    const res = await c.fetch("GET", `/ka/${i}`);
    assert.equal(res.status, 200);
    assert.equal(json(res).path, `/ka/${i}`);
  }
  assert.equal(backends.total, 5);
  assert.equal(backends.connections.get(POD.ip), 1, "the upstream connection was reused");
  assert.equal(mesh.client.stats.streams, 1);
});

Deno.test("waypoint answers pipelined requests in order even when the backend answers out of order", async () => {
  // The backend answers /second at once and holds /first until /second was answered.
  let releaseFirst!: () => void;
  const secondAnswered = new Promise<void>((r) => releaseFirst = r);
  await using backends = await startHttpBackends([POD.ip], (req, res, pod) => {
    const reply = () => res.end(JSON.stringify({ pod, path: req.url }));
    req.resume();
    if (req.url === "/first") void secondAnswered.then(reply);
    else {
      res.once("finish", releaseFirst);
      reply();
    }
  });
  await using mesh = await l7Mesh("127.0.7.201", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  c.send(request("GET", "/first") + request("GET", "/second") + request("GET", "/third"));
  const paths = [];
  for (let i = 0; i < 3; i++) paths.push(json<{ path: string }>(await c.next()).path);
  assert.deepEqual(paths, ["/first", "/second", "/third"]);
});

Deno.test("waypoint carries a chunked request with trailers and a chunked response with trailers", async () => {
  await using backends = await startHttpBackends([POD.ip], (req, res) => {
    let n = 0;
    req.on("data", (c: Uint8Array) => n += c.length);
    req.on("end", () => {
      res.writeHead(200, { "trailer": "x-total" });
      res.write(`got ${n} bytes;`);
      res.write(`request trailer ${req.trailers["x-checksum"]};`);
      res.addTrailers({ "x-total": String(n) });
      res.end("done");
    });
  });
  await using mesh = await l7Mesh("127.0.7.202", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  c.send(
    "POST /upload HTTP/1.1\r\nhost: echo.ns1\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n" +
      "5\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc123\r\n\r\n",
  );
  const res = await c.next("POST");
  assert.equal(res.status, 200);
  assert.equal(header(res.headers, "transfer-encoding"), "chunked");
  assert.equal(text(res.body), "got 11 bytes;request trailer abc123;done");
  assert.deepEqual(res.trailers, [["x-total", "11"]]);
});

Deno.test("waypoint carries a 10 MiB POST body with a matching checksum", async () => {
  await using backends = await startHttpBackends([POD.ip]);
  await using mesh = await l7Mesh("127.0.7.203", backends);
  const { stream } = await mesh.connect(`${VIP}:80`);
  const c = new Http1(stream);
  const chunk = randomBytes(1 << 20);
  const sent = createHash("sha256");
  c.send(request("POST", "/big", [["content-length", String(10 << 20)]]));
  for (let i = 0; i < 10; i++) {
    chunk[0] = i;
    sent.update(chunk);
    if (!stream.write(Uint8Array.from(chunk))) await new Promise((r) => stream.once("drain", r));
  }
  const echoed = json(await c.next("POST"));
  assert.equal(echoed.bodyLength, 10 << 20);
  assert.equal(echoed.sha256, sent.digest("hex"));
});

Deno.test("waypoint adds x-request-id when absent and keeps the one the client sent", async () => {
  await using backends = await startHttpBackends([POD.ip]);
  await using mesh = await l7Mesh("127.0.7.204", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  const generated = values(json(await c.fetch("GET", "/")), "x-request-id");
  assert.equal(generated.length, 1);
  assert.match(generated[0], /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  const kept = values(
    json(await c.fetch("GET", "/", [["x-request-id", "client-id-7"]])),
    "x-request-id",
  );
  assert.deepEqual(kept, ["client-id-7"]);
});

Deno.test("waypoint removes hop-by-hop fields, adds no x-forwarded-for and passes the backend's server header", async () => {
  await using backends = await startHttpBackends([POD.ip]);
  await using mesh = await l7Mesh("127.0.7.205", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  const res = await c.fetch("GET", "/hop", [
    ["connection", "x-foo"],
    ["x-foo", "dropped"],
    ["keep-alive", "timeout=5"],
    ["proxy-connection", "keep-alive"],
    ["x-kept", "yes"],
  ]);
  const echoed = json(res);
  assert.deepEqual(values(echoed, "x-foo"), []);
  assert.deepEqual(values(echoed, "keep-alive"), []);
  assert.deepEqual(values(echoed, "proxy-connection"), []);
  assert.ok(!values(echoed, "connection").some((v) => /x-foo/i.test(v)));
  assert.deepEqual(values(echoed, "x-kept"), ["yes"]);
  assert.deepEqual(values(echoed, "x-forwarded-for"), []);
  assert.equal(header(res.headers, "server"), `pod-${POD.ip}`);
  // node:http answers with `keep-alive: timeout=5`, which is hop-by-hop on the way back too.
  assert.equal(header(res.headers, "keep-alive"), undefined);
});

Deno.test("waypoint splices a WebSocket-style upgrade both ways after the backend's 101", async () => {
  await using backends = await startHttpBackends([POD.ip]);
  await using ws = await startUpgradeServer(POD.ip);
  await using mesh = await l7Mesh("127.0.7.206", backends, [
    { name: "http-ws", port: 81, targetPort: ws.port },
  ]);
  const { stream } = await mesh.connect(`${VIP}:81`);
  const c = new Http1(stream);
  const res = await c.fetch("GET", "/chat", [
    ["connection", "upgrade"],
    ["upgrade", "websocket"],
    ["sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="],
    ["sec-websocket-version", "13"],
  ]);
  assert.equal(res.status, 101);
  assert.equal(header(res.headers, "upgrade"), "websocket");
  const seen = ws.heads[0];
  assert.equal(header(seen, "upgrade"), "websocket");
  assert.match(header(seen, "connection") ?? "", /upgrade/i);
  c.send("ping over the upgrade");
  assert.equal(text(await c.reader.exactly(21)), "ping over the upgrade");
  const big = randomBytes(1 << 20);
  c.send(Uint8Array.from(big));
  const back = await c.reader.exactly(1 << 20);
  assert.equal(Buffer.compare(Buffer.from(back), big), 0);
  stream.end();
  assert.equal((await c.reader.rest()).length, 0, "the backend's half-close reaches the client");
  assert.equal(ws.heads.length, 1);
});

/** A raw TCP server that answers one head with a hand-made 101, then echoes bytes. */
async function startUpgradeServer(host: string) {
  const heads: [string, string][][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    let buf = "";
    const onData = (c: Uint8Array) => {
      buf += new TextDecoder("latin1").decode(c);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      const lines = buf.slice(0, end).split("\r\n").slice(1);
      heads.push(
        pairs(
          lines.flatMap((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]),
        ),
      );
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
      );
      const rest = buf.slice(end + 4);
      if (rest) socket.write(Uint8Array.from(rest, (ch) => ch.charCodeAt(0)));
      socket.pipe(socket);
    };
    socket.on("data", onData);
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, host, () => resolve((server.address() as net.AddressInfo).port))
  );
  return {
    port,
    heads,
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

Deno.test("waypoint does not buffer a 64 MiB response for a client that stopped reading", async () => {
  const total = 64 << 20;
  const piece = new Uint8Array(64 << 10);
  // Bytes `res.write` took: what the backend's socket sent plus its `writableLength`.
  let accepted = 0;
  await using backends = await startHttpBackends([POD.ip], (req, res) => {
    req.resume();
    res.writeHead(200, { "content-length": String(total) });
    const pump = () => {
      while (accepted < total) {
        accepted += piece.length;
        if (!res.write(piece)) return void res.once("drain", pump);
      }
      res.end();
    };
    pump();
  });
  await using mesh = await l7Mesh("127.0.7.207", backends);
  const { stream } = await mesh.connect(`${VIP}:80`);
  const c = new Http1(stream);
  c.send(request("GET", "/huge"));
  await c.reader.until("\r\n\r\n");
  await c.reader.exactly(1 << 20);
  stream.pause();
  // Wait until the backend stops making progress, then count what the path holds.
  await settled(() => accepted, () => accepted >= total);
  assert.ok(
    accepted < 32 << 20,
    `the backend got ${accepted} bytes out while the client read 1 MiB`,
  );
  // Once the client reads again, the rest of the body arrives.
  stream.resume();
  assert.equal((await c.reader.exactly(total - (1 << 20))).length, total - (1 << 20));
});

/**
 * Resolves once `value()` stayed the same for 5 polls 50 ms apart, or `done()` holds. Only the
 * settling waits on time; the test asserts on bytes.
 */
async function settled(value: () => number, done: () => boolean): Promise<void> {
  let last = -1, same = 0;
  while (same < 5 && !done()) {
    await new Promise((r) => setTimeout(r, 50));
    const now = value();
    same = now === last ? same + 1 : 0;
    last = now;
  }
}

Deno.test("waypoint answers HEAD, 204 and 304 without bodies on a kept connection", async () => {
  await using backends = await startHttpBackends([POD.ip], (req, res) => {
    req.resume();
    if (req.url === "/204") return void res.writeHead(204).end();
    if (req.url === "/304") return void res.writeHead(304, { etag: '"v1"' }).end();
    res.writeHead(200, { "content-type": "text/plain", "content-length": "11" });
    res.end(req.method === "HEAD" ? undefined : "hello world");
  });
  await using mesh = await l7Mesh("127.0.7.208", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  const head = await c.fetch("HEAD", "/");
  assert.equal(head.status, 200);
  assert.equal(header(head.headers, "content-length"), "11");
  assert.equal((await c.fetch("GET", "/204")).status, 204);
  assert.equal((await c.fetch("GET", "/304", [["if-none-match", '"v1"']])).status, 304);
  const last = await c.fetch("GET", "/");
  assert.equal(text(last.body), "hello world");
  assert.equal(backends.total, 4);
});

Deno.test("waypoint answers Expect: 100-continue with a 100 before the client sends its body", async () => {
  await using backends = await startHttpBackends([POD.ip]);
  await using mesh = await l7Mesh("127.0.7.209", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  c.send(request("PUT", "/continue", [["expect", "100-continue"], ["content-length", "5"]]));
  const interim = await c.next("PUT");
  assert.equal(interim.status, 100);
  c.send("12345");
  const res = await c.next("PUT");
  assert.equal(res.status, 200);
  assert.equal(json(res).bodyLength, 5);
});
