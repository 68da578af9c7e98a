import assert from "node:assert/strict";
import net from "node:net";
import { connectH2 } from "../../h2/mod.ts";
import { HttpCodecError } from "../../http/errors.ts";
import { H2cClientConnection, serveH2c } from "../../http/h2c.ts";
import {
  type Body,
  bytesBody,
  EMPTY_BODY,
  type Exchange,
  HeaderMap,
  readAll,
} from "../../http/types.ts";
import { exchange, pattern } from "../h2/_helpers.ts";
import { runPyRequests } from "../h2/_python_requests.ts";
import { whyNoPythonH2 } from "../interop/_python_h2.ts";

const HOST = "127.0.13.1";

/** An h2c server on a loopback port; `served` holds each connection's `serveH2c` promise. */
async function listenH2c(handler: (ex: Exchange) => Promise<void>) {
  const served: Promise<void>[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    served.push(serveH2c(socket, handler));
  });
  await new Promise<void>((r) => server.listen(0, HOST, r));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    served,
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** An h2c server on a loopback socket whose handler is given; returns a connected client. */
async function pair(handler: (ex: Exchange) => Promise<void>) {
  const server = await listenH2c(handler);
  const socket = net.connect({ host: HOST, port: server.port });
  await new Promise((r) => socket.once("connect", r));
  const client = new H2cClientConnection(socket);
  return {
    client,
    async [Symbol.asyncDispose]() {
      client.close();
      socket.destroy();
      await server[Symbol.asyncDispose]();
    },
  };
}

/** Echoes the body (`ok` when empty) with trailers saying its size and its `x-checksum` trailer. */
async function echo(ex: Exchange): Promise<void> {
  const body = await readAll(ex.body, 1 << 20);
  const trailers = new HeaderMap([
    ["x-body-bytes", String(body.length)],
    ["x-request-trailer", ex.body.trailers?.get("x-checksum") ?? "none"],
  ]);
  await ex.respond(
    { status: 200, headers: new HeaderMap([["x-path", ex.request.path]]) },
    bytesBody(body.length > 0 ? body : "ok", trailers),
  );
}

/** A body of `total` bytes made as it is read; says how much was read and whether it was cancelled. */
function generated(total: number) {
  let read = 0;
  let cancelled = false;
  const body: Body = {
    read() {
      if (cancelled) return Promise.reject(new Error("cancelled"));
      if (read >= total) return Promise.resolve(null);
      read += 64 << 10;
      return Promise.resolve(new Uint8Array(64 << 10));
    },
    trailers: undefined,
    length: undefined,
    cancel: () => cancelled = true,
  };
  return { body, read: () => read, cancelled: () => cancelled };
}

const head = (path: string, headers: [string, string][] = []) => ({
  method: "POST",
  path,
  authority: "svc.ns:80",
  scheme: "http",
  version: "2" as const,
  headers: new HeaderMap(headers),
});

Deno.test("serveH2c() and H2cClientConnection carry a request and response with bodies", async () => {
  await using p = await pair(async (ex) => {
    const got = new TextDecoder().decode(await readAll(ex.body, 1 << 20));
    const reply = `${ex.request.method} ${ex.request.path} ${ex.request.authority} ${got}`;
    await ex.respond(
      { status: 201, headers: new HeaderMap([["x-seen", ex.request.headers.get("x-in") ?? ""]]) },
      bytesBody(reply),
    );
  });
  const res = await p.client.request(
    head("/a?b=1", [["x-in", "v"], ["connection", "x"]]),
    bytesBody("hi"),
  );
  assert.equal(res.head.status, 201);
  assert.equal(res.head.headers.get("x-seen"), "v");
  assert.equal(
    new TextDecoder().decode(await readAll(res.body, 1 << 20)),
    "POST /a?b=1 svc.ns:80 hi",
  );
});

Deno.test("serveH2c() keeps gRPC trailers and sends trailers-only responses", async () => {
  await using p = await pair(async (ex) => {
    await readAll(ex.body, 1 << 20);
    const grpc = new HeaderMap([["content-type", "application/grpc"]]);
    if (ex.request.path.endsWith("/Fail")) {
      grpc.set("grpc-status", "5");
      await ex.respond({ status: 200, headers: grpc }, EMPTY_BODY);
      return;
    }
    await ex.respond(
      { status: 200, headers: grpc },
      bytesBody(
        new Uint8Array([0, 0, 0, 0, 1, 42]),
        new HeaderMap([["grpc-status", "0"], ["grpc-message", "ok"]]),
      ),
    );
  });
  const ok = await p.client.request(
    head("/pkg.Svc/Get", [["content-type", "application/grpc"], ["te", "trailers"]]),
    bytesBody(new Uint8Array([0, 0, 0, 0, 0])),
  );
  assert.deepEqual([...await readAll(ok.body, 100)], [0, 0, 0, 0, 1, 42]);
  assert.equal(ok.body.trailers?.get("grpc-status"), "0");
  assert.equal(ok.body.trailers?.get("grpc-message"), "ok");
  const fail = await p.client.request(
    head("/pkg.Svc/Fail", [["content-type", "application/grpc"]]),
    EMPTY_BODY,
  );
  assert.equal(fail.head.headers.get("grpc-status"), "5");
  assert.equal(await fail.body.read(), null);
});

Deno.test("H2cClientConnection runs 50 requests concurrently over one connection", async () => {
  let concurrent = 0, peak = 0;
  await using p = await pair(async (ex) => {
    peak = Math.max(peak, ++concurrent);
    await new Promise((r) => setTimeout(r, 20));
    concurrent--;
    await ex.respond({ status: 200, headers: new HeaderMap() }, bytesBody(ex.request.path));
  });
  const replies = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const res = await p.client.request({ ...head(`/${i}`), method: "GET" }, EMPTY_BODY);
      return new TextDecoder().decode(await readAll(res.body, 100));
    }),
  );
  replies.forEach((r, i) => assert.equal(r, `/${i}`));
  assert.ok(peak > 1, `requests overlapped (peak ${peak})`);
});

Deno.test("H2cClientConnection sends request trailers and gets response trailers on any body", async () => {
  await using p = await pair(echo);
  const res = await p.client.request(
    head("/t", [["content-type", "text/plain"]]),
    bytesBody("payload", new HeaderMap([["x-checksum", "abc"], ["connection", "x"]])),
  );
  assert.equal(res.head.status, 200);
  assert.equal(new TextDecoder().decode(await readAll(res.body, 100)), "payload");
  assert.deepEqual([...res.body.trailers!], [["x-body-bytes", "7"], ["x-request-trailer", "abc"]]);
});

Deno.test("serveH2c() delivers a local reply to a request whose body it cancelled, and stops the upload", async () => {
  await using p = await pair(async (ex) => {
    ex.body.cancel(new Error("denied before reading"));
    await ex.respond({ status: 403, headers: new HeaderMap() }, bytesBody("denied"));
  });
  const upload = generated(64 << 20);
  const res = await p.client.request(head("/upload"), upload.body);
  assert.equal(res.head.status, 403);
  assert.equal(new TextDecoder().decode(await readAll(res.body, 100)), "denied");
  // The complete reply is followed by RST_STREAM(NO_ERROR): the client stops sending.
  const deadline = Date.now() + 3_000;
  while (!upload.cancelled() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.ok(upload.cancelled(), "the request body was cancelled");
  assert.ok(upload.read() < 64 << 20, `stopped after ${upload.read()} bytes`);
  assert.equal(p.client.active, 0);
});

Deno.test("H2cClientConnection takes no request once closed", async () => {
  await using p = await pair(echo);
  assert.equal(p.client.available, true);
  p.client.close();
  assert.equal(p.client.available, false);
  await assert.rejects(
    p.client.request(head("/late"), EMPTY_BODY),
    (e) => e instanceof HttpCodecError && e.kind === "closed",
  );
});

Deno.test("serveH2c() stays up when our h2/ client sends GOAWAY right after its request, 50 times", async () => {
  await using server = await listenH2c(echo);
  for (let i = 0; i < 50; i++) {
    const socket = net.connect({ host: HOST, port: server.port });
    const client = connectH2(socket, { pingIntervalMs: 0 });
    const s = client.request({
      ":method": "POST",
      ":scheme": "http",
      ":path": `/round/${i}`,
      ":authority": "svc.ns:80",
    });
    const closed = client.close(); // GOAWAY right behind the HEADERS, before any DATA.
    const data = pattern(100_000, i + 1);
    s.end(data);
    const { head: h, body, trailers } = await exchange(s);
    assert.equal(h["x-path"], `/round/${i}`);
    assert.ok(body.equals(data));
    assert.equal(trailers["x-body-bytes"], "100000");
    await closed;
  }
  await Promise.all(server.served);
  assert.equal(server.served.length, 50);
});

const noPythonH2 = whyNoPythonH2();
Deno.test({
  name:
    "serveH2c() stays up when a python3-h2 client sends GOAWAY right after its last request, 50 times",
  ignore: noPythonH2 !== undefined,
  fn: async () => {
    await using server = await listenH2c(echo);
    const r = await runPyRequests(
      `${HOST}:${server.port}`,
      ...["--rounds", "50", "--goaway", "--payload-bytes", "100000"],
    );
    assert.deepEqual(r.problems, []);
    assert.equal(r.rounds_ok, 50);
    assert.equal(r.eof_after_goaway, 50, "each connection closed once its streams were done");
    assert.deepEqual(r.resets, []);
    const [post, get] = r.responses;
    assert.ok(post.echo_ok);
    assert.deepEqual(post.trailers, [["x-body-bytes", "100000"], ["x-request-trailer", "100000"]]);
    assert.deepEqual(get.headers?.find(([n]) => n === "x-path"), ["x-path", "/get?x=1"]);
    assert.deepEqual(get.trailers, [["x-body-bytes", "0"], ["x-request-trailer", "none"]]);
    await Promise.all(server.served);
  },
});
