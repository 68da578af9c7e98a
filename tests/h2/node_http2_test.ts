/**
 * h2/ against `node:http2` (nghttp2) in the same process, cleartext over loopback
 * 127.0.14.2. Teardown always starts on the node side: these tests never send GOAWAY to
 * nghttp2, which is where denoland/deno#36788 aborts the process.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import type { ClientHttp2Session, ServerHttp2Stream } from "node:http2";
import net, { type Socket } from "node:net";
import { ErrorCode } from "../../h2/frame.ts";
import { connectH2, type H2Session, serveH2 } from "../../h2/session.ts";
import type { H2Stream, H2StreamError } from "../../h2/stream.ts";
import { connectHeaders, dial, listen, once, pattern, readAll, settle, until } from "./_helpers.ts";

const HOST = "127.0.14.2";
const KIB = 1024;
const NODE_SETTINGS = {
  initialWindowSize: 4 << 20,
  maxFrameSize: 1 << 20,
  maxHeaderListSize: 64 * KIB,
};

/** Our server with an echo handler, and a node:http2 client connected to it. */
async function ourServerNodeClient(onStream?: (s: H2Stream) => void) {
  const sessions: H2Session[] = [];
  const listener = await listen(HOST, (sock) => {
    sessions.push(serveH2(sock, {}, (s, h) => {
      s.on("error", () => {});
      if (onStream) return onStream(s);
      s.respond(200, { "x-authority": String(h[":authority"]) });
      s.pipe(s);
    }));
  });
  let socket!: Socket;
  const client = http2.connect(`http://${HOST}:${listener.port}`, {
    settings: NODE_SETTINGS,
    createConnection: () => (socket = net.connect(listener.port, HOST)),
  });
  client.on("error", () => {});
  await once(client, "remoteSettings");
  return {
    client,
    sessions,
    socket,
    [Symbol.asyncDispose]: async () => {
      if (!client.destroyed) await new Promise<void>((r) => client.close(() => r()));
      await until(() => sessions.every((s) => s.destroyed), 3_000, "our sessions to close");
      await listener[Symbol.asyncDispose]();
      await settle();
    },
  };
}

/** A node:http2 server (fed by a net listener) and our client connected to it. */
async function nodeServerOurClient(
  onStream: (s: ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
) {
  const h2 = http2.createServer({ settings: NODE_SETTINGS });
  const nodeSessions: http2.ServerHttp2Session[] = [];
  h2.on("session", (s) => {
    nodeSessions.push(s);
    s.on("error", () => {});
  });
  h2.on("stream", (s, headers) => {
    s.on("error", () => {});
    onStream(s, headers);
  });
  const listener = await listen(HOST, (sock) => h2.emit("connection", sock));
  const client = connectH2(await dial(HOST, listener.port), {});
  await client.ready;
  return {
    client,
    nodeSessions,
    [Symbol.asyncDispose]: async () => {
      for (const s of nodeSessions) s.close();
      await until(() => client.destroyed, 3_000, "our client to close after node's GOAWAY");
      await listener[Symbol.asyncDispose]();
      await settle();
    },
  };
}

function nodeConnect(client: ClientHttp2Session, authority = "10.0.0.1:80") {
  return client.request({ ":method": "CONNECT", ":authority": authority });
}

Deno.test("node:http2 client → our server: 100 concurrent CONNECT streams echo 64 KiB", async () => {
  await using t = await ourServerNodeClient();
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
  await using t = await nodeServerOurClient((s, h) => {
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
  await using t = await nodeServerOurClient((s) => {
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
  await using t2 = await nodeServerOurClient((ns) => {
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
  await using t = await ourServerNodeClient((s) => {
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
  await using t = await ourServerNodeClient((s) => {
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
  await using t = await nodeServerOurClient((s) => {
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
  await using t = await ourServerNodeClient();
  const ok = await new Promise<boolean>((r) => t.client.ping((err) => r(!err)));
  assert.equal(ok, true);
  assert.ok((await t.sessions[0].ping()) >= 0);
  await using t2 = await nodeServerOurClient((s) => s.respond({ ":status": 200 }));
  assert.ok((await t2.client.ping()) >= 0);
});

Deno.test("GOAWAY from node:http2 server: open stream finishes, new requests refused", async () => {
  let nodeStream!: ServerHttp2Stream;
  await using t = await nodeServerOurClient((s) => {
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
  await using t = await ourServerNodeClient((s) => s.respond(200, { big }));
  const s = nodeConnect(t.client);
  const h = await once<Record<string, string>>(s, "response");
  assert.equal(h.big, big);
  s.close(http2.constants.NGHTTP2_CANCEL);
});

Deno.test("a node:http2 client closing its socket mid-stream fails only that session", async () => {
  const errors: string[] = [];
  await using t = await ourServerNodeClient((s) => {
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
