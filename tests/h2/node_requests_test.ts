/**
 * h2/ carrying ordinary requests against `node:http2` (nghttp2), both ways, in this process over
 * cleartext loopback 127.0.14.8: pseudo-headers as nghttp2 checks them, bodies, and trailers in
 * each direction. Teardown starts on the node side (see `_node_peers.ts`).
 */
import assert from "node:assert/strict";
import type { ClientHttp2Stream, IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { echoRequest, exchange, pattern, readAll, until } from "./_helpers.ts";
import { nodeServerOurClient, ourServerNodeClient } from "./_node_peers.ts";

const HOST = "127.0.14.8";

/** A node response: head, body and trailers. */
async function nodeExchange(req: ClientHttp2Stream) {
  req.on("error", () => {});
  const trailers = new Promise<IncomingHttpHeaders>((r) => req.once("trailers", r));
  const head = new Promise<IncomingHttpHeaders>((r) => req.once("response", r));
  const body = await readAll(req);
  return { head: await head, body, trailers: await trailers };
}

/** node's side of {@link echoRequest}: the request's details as headers, the body, trailers. */
function nodeEcho(s: ServerHttp2Stream, h: IncomingHttpHeaders): void {
  let trailer = "none";
  s.once("trailers", (t: IncomingHttpHeaders) => trailer = String(t["x-checksum"]));
  readAll(s).then((body) => {
    s.respond({
      ":status": 200,
      "x-method": h[":method"],
      "x-path": h[":path"],
      "x-scheme": h[":scheme"],
      "x-authority": h[":authority"],
    }, { waitForTrailers: true });
    s.once("wantTrailers", () => {
      s.sendTrailers({ "x-body-bytes": String(body.length), "x-request-trailer": trailer });
    });
    s.end(body);
  }, () => {});
}

Deno.test("serveH2() answers node:http2 requests with pseudo-headers, bodies and trailers", async () => {
  await using t = await ourServerNodeClient(HOST, echoRequest);
  const get = t.client.request({ ":path": "/get?x=1" }, { endStream: true });
  const g = await nodeExchange(get);
  assert.equal(g.head[":status"], 200);
  assert.deepEqual(
    [g.head["x-method"], g.head["x-path"], g.head["x-scheme"]],
    ["GET", "/get?x=1", "http"],
  );
  assert.equal(g.head["x-authority"], `${HOST}:${t.socket.remotePort}`);
  assert.equal(g.trailers["x-body-bytes"], "0");

  const data = pattern(200_000, 5);
  const post = t.client.request(
    { ":method": "POST", ":path": "/post", "content-length": String(data.length) },
    { waitForTrailers: true },
  );
  post.once("wantTrailers", () => post.sendTrailers({ "x-checksum": "c0ffee" }));
  post.end(data);
  const p = await nodeExchange(post);
  assert.equal(p.head["x-method"], "POST");
  assert.ok(p.body.equals(data));
  assert.equal(p.trailers["x-body-bytes"], String(data.length));
  assert.equal(p.trailers["x-request-trailer"], "c0ffee");
  await until(() => t.sessions[0].activeStreams === 0);
});

Deno.test("serveH2() sends a trailers-only response node:http2 reads without a body", async () => {
  await using t = await ourServerNodeClient(HOST, (s) => {
    s.respond(200, { "content-type": "application/grpc", "grpc-status": "5" }, {
      endStream: true,
    });
  });
  const req = t.client.request({ ":method": "POST", ":path": "/pkg.Svc/Get" });
  req.on("error", () => {});
  const head = new Promise<IncomingHttpHeaders>((r) => req.once("response", r));
  const body = readAll(req);
  req.end(new Uint8Array(5));
  assert.equal((await head)["grpc-status"], "5");
  assert.equal((await body).length, 0);
});

Deno.test("request() reaches a node:http2 server with pseudo-headers, bodies and trailers", async () => {
  const seen: IncomingHttpHeaders[] = [];
  await using t = await nodeServerOurClient(HOST, (s, h) => {
    seen.push(h);
    nodeEcho(s, h);
  });
  const get = t.client.request(
    { ":method": "GET", ":scheme": "http", ":path": "/get?x=1", ":authority": "svc.ns1:8080" },
    { endStream: true },
  );
  const g = await exchange(get);
  assert.equal(g.head[":status"], "200");
  assert.deepEqual(
    [g.head["x-method"], g.head["x-path"], g.head["x-scheme"], g.head["x-authority"]],
    ["GET", "/get?x=1", "http", "svc.ns1:8080"],
  );
  assert.deepEqual({ ...g.trailers }, { "x-body-bytes": "0", "x-request-trailer": "none" });

  const data = pattern(300_000, 9);
  const post = t.client.request({
    ":method": "POST",
    ":scheme": "https",
    ":path": "/post",
    ":authority": "svc.ns1:8080",
    "x-multi": ["a", "b"],
  });
  post.write(data);
  post.sendTrailers({ "x-checksum": "beef" });
  const p = await exchange(post);
  assert.ok(p.body.equals(data));
  assert.deepEqual({ ...p.trailers }, {
    "x-body-bytes": String(data.length),
    "x-request-trailer": "beef",
  });
  assert.equal(seen[1][":scheme"], "https");
  assert.equal(seen[1]["x-multi"], "a, b", "node joins a repeated field");
  await until(() => t.client.activeStreams === 0);
});
