/**
 * h2/ against `node:http2` (nghttp2) in the same process, cleartext over loopback
 * 127.0.14.2. Teardown always starts on the node side: these tests never send GOAWAY to
 * nghttp2, which is where denoland/deno#36788 aborts the process.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import type { ClientHttp2Session, ServerHttp2Stream } from "node:http2";
import { ErrorCode } from "../../h2/frame.ts";
import type { StreamHandler } from "../../h2/session.ts";
import type { H2Stream, H2StreamError } from "../../h2/stream.ts";
import { connectHeaders, once, pattern, readAll, until } from "./_helpers.ts";
import { nodeServerOurClient, ourServerNodeClient } from "./_node_peers.ts";

const HOST = "127.0.14.2";
const KIB = 1024;

/** Echoes every CONNECT, naming its authority. */
const connectEcho: StreamHandler = (s, h) => {
  s.respond(200, { "x-authority": String(h[":authority"]) });
  s.pipe(s);
};

function nodeConnect(client: ClientHttp2Session, authority = "10.0.0.1:80") {
  return client.request({ ":method": "CONNECT", ":authority": authority });
}

Deno.test("node:http2 client → our server: 100 concurrent CONNECT streams echo 64 KiB", async () => {
  await using t = await ourServerNodeClient(HOST, connectEcho);
  assert.equal(t.client.remoteSettings.maxConcurrentStreams, 100);
  assert.equal(t.client.remoteSettings.initialWindowSize, 4 << 20);
  assert.equal(t.client.remoteSettings.maxFrameSize, 1 << 20);
  assert.equal(t.client.remoteSettings.maxHeaderListSize, 64 * KIB);
  const results = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
    const s = nodeConnect(t.client, `10.0.0.${i}:80`);
    const response = once<Record<string, string>>(s, "response");
    const body = readAll(s);
    const data = pattern(64 * KIB, i + 1);
    s.end(data);
    const h = await response;
    assert.equal(h[":status"], 200);
    assert.equal(h["x-authority"], `10.0.0.${i}:80`);
    return (await body).equals(data);
  }));
  assert.deepEqual(results, Array(100).fill(true));
  await until(() => t.sessions[0].activeStreams === 0);
});

Deno.test("our client → node:http2 server: 100 concurrent CONNECT streams echo 64 KiB", async () => {
  const authorities: string[] = [];
  await using t = await nodeServerOurClient(HOST, (s, h) => {
    authorities.push(`${h[":method"]} ${h[":authority"]} ${h[":path"]} ${h[":scheme"]}`);
    s.respond({ ":status": 200 });
    s.pipe(s);
  });
  assert.equal(t.client.remoteSettings.initialWindowSize, 4 << 20);
  const results = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
    const s = t.client.request(connectHeaders(`10.0.1.${i}:80`));
    s.on("error", () => {});
    const response = once<Record<string, string>>(s, "response");
    const body = readAll(s);
    const data = pattern(64 * KIB, i + 7);
    s.end(data);
    assert.equal((await response)[":status"], "200");
    return (await body).equals(data);
  }));
  assert.deepEqual(results, Array(100).fill(true));
  assert.equal(t.client.activeStreams, 0);
  assert.equal(authorities[0], "CONNECT 10.0.1.0:80 undefined undefined");
});

Deno.test("half-close both ways with node:http2 as server", async () => {
  const nodeGot: Promise<Buffer>[] = [];
  await using t = await nodeServerOurClient(HOST, (s) => {
    s.respond({ ":status": 200 });
    // Node ends its side first, then keeps reading ours.
    s.end("node first");
    nodeGot.push(readAll(s));
  });
  const s = t.client.request(connectHeaders());
  s.on("error", () => {});
  assert.equal((await readAll(s)).toString(), "node first");
  s.write("we keep ");
  s.end("talking");
  assert.equal((await nodeGot[0]).toString(), "we keep talking");
  await until(() => t.client.activeStreams === 0);

  // And the other way: we end first, node answers after our END_STREAM.
  await using t2 = await nodeServerOurClient(HOST, (ns) => {
    ns.respond({ ":status": 200 });
    readAll(ns).then((b) => ns.end(`got ${b.length} bytes`));
  });
  const s2 = t2.client.request(connectHeaders());
  s2.on("error", () => {});
  const back = readAll(s2);
  s2.end(pattern(1000));
  assert.equal((await back).toString(), "got 1000 bytes");
});

Deno.test("half-close both ways with node:http2 as client", async () => {
  let ours!: H2Stream;
  await using t = await ourServerNodeClient(HOST, (s) => {
    ours = s;
    s.respond(200);
  });
  const s = nodeConnect(t.client);
  await once(s, "response");
  await until(() => ours !== undefined);
  ours.end("server first");
  assert.equal((await readAll(s)).toString(), "server first");
  const got = readAll(ours);
  s.end("client after");
  assert.equal((await got).toString(), "client after");
  await until(() => t.sessions[0].activeStreams === 0);
});

Deno.test("RST_STREAM from node:http2: CANCEL ends our readable, INTERNAL_ERROR errors it", async () => {
  const ours: H2Stream[] = [];
  await using t = await ourServerNodeClient(HOST, (s) => {
    ours.push(s);
    s.respond(200);
  });
  const a = nodeConnect(t.client);
  await once(a, "response");
  a.write("before cancel");
  await until(() => ours[0]?.readableLength > 0);
  const errors: Error[] = [];
  ours[0].on("error", (e) => errors.push(e));
  const read = readAll(ours[0]);
  a.close(http2.constants.NGHTTP2_CANCEL);
  assert.equal((await read).toString(), "before cancel");
  assert.equal(ours[0].rstCode, ErrorCode.CANCEL);

  const b = nodeConnect(t.client);
  b.on("error", () => {});
  await once(b, "response");
  await until(() => ours.length === 2);
  const err = once<H2StreamError>(ours[1], "error");
  b.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  assert.equal((await err).rstCode, ErrorCode.INTERNAL_ERROR);
  assert.deepEqual(errors, []);
});

Deno.test("RST_STREAM to node:http2: destroy() is CANCEL, close(code) sends that code", async () => {
  const codes: Promise<number>[] = [];
  await using t = await nodeServerOurClient(HOST, (s) => {
    s.respond({ ":status": 200 });
    codes.push(new Promise((r) => s.once("close", () => r(s.rstCode))));
  });
  const a = t.client.request(connectHeaders());
  await once(a, "response");
  a.destroy();
  assert.equal(await codes[0], http2.constants.NGHTTP2_CANCEL);
  const b = t.client.request(connectHeaders());
  await once(b, "response");
  b.close(ErrorCode.CONNECT_ERROR);
  assert.equal(await codes[1], http2.constants.NGHTTP2_CONNECT_ERROR);
  assert.equal(t.client.activeStreams, 0);
});

Deno.test("PING both ways with node:http2", async () => {
  await using t = await ourServerNodeClient(HOST, connectEcho);
  const ok = await new Promise<boolean>((r) => t.client.ping((err) => r(!err)));
  assert.equal(ok, true);
  assert.ok((await t.sessions[0].ping()) >= 0);
  await using t2 = await nodeServerOurClient(HOST, (s) => s.respond({ ":status": 200 }));
  assert.ok((await t2.client.ping()) >= 0);
});

Deno.test("GOAWAY from node:http2 server: open stream finishes, new requests refused", async () => {
  let nodeStream!: ServerHttp2Stream;
  await using t = await nodeServerOurClient(HOST, (s) => {
    nodeStream = s;
    s.respond({ ":status": 200 });
  });
  const s = t.client.request(connectHeaders());
  s.on("error", () => {});
  await once(s, "response");
  const goaway = once<number>(t.client, "goaway");
  t.nodeSessions[0].close();
  assert.equal(await goaway, ErrorCode.NO_ERROR);
  assert.throws(() => t.client.request(connectHeaders()), { code: "ERR_H2_SESSION_CLOSED" });
  const back = readAll(s);
  const got = readAll(nodeStream);
  s.end("still here");
  nodeStream.end("bye");
  assert.equal((await got).toString(), "still here");
  assert.equal((await back).toString(), "bye");
  await until(() => t.client.destroyed, 3_000, "session to close");
});

Deno.test("large response headers reach node:http2 in HEADERS + CONTINUATION", async () => {
  const big = "b".repeat(40 * KIB);
  await using t = await ourServerNodeClient(HOST, (s) => s.respond(200, { big }));
  const s = nodeConnect(t.client);
  const h = await once<Record<string, string>>(s, "response");
  assert.equal(h.big, big);
  s.close(http2.constants.NGHTTP2_CANCEL);
});

Deno.test("a node:http2 client closing its socket mid-stream fails only that session", async () => {
  const errors: string[] = [];
  await using t = await ourServerNodeClient(HOST, (s) => {
    s.on("error", (e: H2StreamError) => errors.push(e.code));
    s.respond(200);
  });
  const s = nodeConnect(t.client);
  s.on("error", () => {});
  await once(s, "response");
  t.socket.destroy();
  await until(() => t.sessions[0].destroyed, 3_000, "session to end");
  assert.deepEqual(errors, ["ERR_H2_SESSION_CLOSED"]);
});
