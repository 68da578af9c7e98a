/**
 * h2/ sessions against each other and against a raw-frame peer (for what a correct stack
 * never sends). Loopback 127.0.14.1.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import {
  encodeFrame,
  Flag,
  frameHeader,
  goawayFrame,
  pingFrame,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
} from "../../h2/frame.ts";
import { encodeInteger } from "../../h2/hpack.ts";
import { connectH2, type H2Session, serveH2 } from "../../h2/session.ts";
import type { H2Stream, H2StreamError } from "../../h2/stream.ts";
import {
  connectFields,
  connectHeaders,
  dial,
  ErrorCode,
  FrameType,
  listen,
  once,
  pair,
  pattern,
  rawClient,
  RawPeer,
  readAll,
  settle,
  until,
} from "./_helpers.ts";

const HOST = "127.0.14.1";
const MIB = 1 << 20;

/** Echoes every CONNECT; answers other methods 405. */
function echo(stream: H2Stream, headers: Record<string, string | string[]>): void {
  stream.on("error", () => {});
  if (headers[":method"] !== "CONNECT") {
    stream.respond(405, {}, { endStream: true });
    return;
  }
  stream.respond(200, { "x-echo": "1" });
  stream.pipe(stream);
}

/** A pair whose server answers every stream 200; `open()` gives both ends of a new tunnel. */
async function tunnels(serverOptions = {}) {
  const serverStreams: H2Stream[] = [];
  const p = await pair(HOST, (s) => {
    s.on("error", () => {});
    serverStreams.push(s);
    s.respond(200);
  }, serverOptions);
  let opened = 0;
  const open = async () => {
    const client = p.client.request(connectHeaders());
    await once(client, "response");
    return { client, server: serverStreams[opened++] };
  };
  const idle = () => until(() => p.client.activeStreams === 0 && p.servers[0].activeStreams === 0);
  return Object.assign(p, { open, idle });
}

Deno.test("CONNECT round trip: pseudo-headers, response headers, echo, settings exchanged", async () => {
  let seen: Record<string, string | string[]> = {};
  await using p = await pair(HOST, (s, h) => {
    seen = h;
    echo(s, h);
  });
  assert.deepEqual(p.client.remoteSettings, {
    headerTableSize: 4096,
    enablePush: true,
    maxConcurrentStreams: 100,
    initialWindowSize: 4 * MIB,
    maxFrameSize: MIB,
    maxHeaderListSize: 64 * 1024,
  });
  const s = p.client.request({
    ":method": "CONNECT",
    ":authority": "10.1.2.3:8080",
    "Forwarded": 'for="10.0.0.9:4000"',
  });
  const response = once<Record<string, string>>(s, "response");
  const body = readAll(s);
  s.end("hello through the tunnel");
  assert.equal((await response)[":status"], "200");
  assert.equal((await response)["x-echo"], "1");
  assert.equal((await body).toString(), "hello through the tunnel");
  assert.deepEqual({ ...seen }, {
    ":method": "CONNECT",
    ":authority": "10.1.2.3:8080",
    forwarded: 'for="10.0.0.9:4000"',
  });
  await until(() => p.client.activeStreams === 0 && p.servers[0].activeStreams === 0);
  assert.ok((await p.client.ping()) >= 0);
});

Deno.test("frames of one tick go out in one socket write", async () => {
  await using p = await pair(HOST, echo);
  await settle();
  const socket = p.client.socket as Socket;
  let writes = 0;
  const write = socket.write.bind(socket);
  socket.write = ((...args: Parameters<typeof write>) => {
    writes++;
    return write(...args);
  }) as typeof socket.write;
  const streams = Array.from({ length: 10 }, () => {
    const s = p.client.request(connectHeaders());
    s.write(pattern(100));
    return s;
  });
  await settle(0);
  assert.equal(writes, 1, "10 HEADERS and 10 DATA frames in one write");
  for (const s of streams) s.destroy();
});

Deno.test("a 10 MiB stream to a reader that pauses never buffers more than the window", async () => {
  const window = 256 * 1024;
  const total = 10 * MIB;
  const data = pattern(total, 7);
  await using p = await pair(
    HOST,
    (s) => {
      s.on("error", () => {});
      s.respond(200);
      Readable.from(chunks(data, 100_000)).pipe(s);
    },
    {},
    { initialWindowSize: window, connectionWindowSize: 4 * window },
  );
  const s = p.client.request(connectHeaders());
  await once(s, "response");
  const got: Buffer[] = [];
  let received = 0;
  let maxBuffered = 0;
  const ended = once(s, "end");
  // Paused mode: read a little, pause 2 ms now and then, and watch the buffer.
  const reader = (async () => {
    while (received < total) {
      maxBuffered = Math.max(maxBuffered, s.readableLength);
      const c = s.read(48 * 1024) ?? s.read();
      if (c === null) {
        await once(s, "readable");
        continue;
      }
      got.push(c);
      received += c.length;
      if (got.length % 16 === 0) await new Promise((r) => setTimeout(r, 2));
    }
  })();
  await reader;
  s.read();
  await ended;
  assert.equal(received, total);
  assert.ok(Buffer.concat(got).equals(data), "bytes intact and in order");
  assert.ok(maxBuffered > 0 && maxBuffered <= window, `buffered at most ${maxBuffered}`);
  s.end();
});

function* chunks(data: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

Deno.test("a sender blocks on the peer's window: write callbacks wait until the reader drains", async () => {
  const window = 64 * 1024;
  await using p = await tunnels({ initialWindowSize: window });
  const { client, server } = await p.open();
  let done = false;
  client.write(pattern(3 * window), () => (done = true));
  await settle(50);
  assert.equal(done, false, "3 windows cannot be sent before the server reads");
  assert.ok(server.readableLength <= window);
  const all = readAll(server);
  await until(() => done, 3_000, "write callback");
  client.end();
  assert.equal((await all).length, 3 * window);
});

Deno.test("half-close both ways: each side keeps sending after the other ended", async () => {
  await using p = await tunnels();
  // Client ends first; server still sends.
  const a = await p.open();
  a.client.end("request");
  assert.equal((await readAll(a.server)).toString(), "request");
  const clientRead = readAll(a.client);
  a.server.write("late ");
  a.server.end("reply");
  assert.equal((await clientRead).toString(), "late reply");
  await p.idle();
  // Server ends first; client still sends.
  const b = await p.open();
  b.server.end("bye first");
  assert.equal((await readAll(b.client)).toString(), "bye first");
  const rest = readAll(b.server);
  b.client.end("still talking");
  assert.equal((await rest).toString(), "still talking");
  await p.idle();
});

Deno.test("destroy() sends RST_STREAM(CANCEL): the peer's readable ends cleanly", async () => {
  await using p = await tunnels();
  const { client, server } = await p.open();
  client.write("partial");
  await until(() => server.readableLength > 0);
  const errors: Error[] = [];
  server.on("error", (e) => errors.push(e));
  const read = readAll(server);
  client.destroy();
  assert.equal((await read).toString(), "partial");
  assert.equal(server.rstCode, ErrorCode.CANCEL);
  assert.deepEqual(errors, []);
  await new Promise<void>((r) => server.write("dropped", () => r()));
  assert.equal(p.servers[0].activeStreams, 0);
});

Deno.test("RST_STREAM with an error code errors the peer's stream", async () => {
  await using p = await tunnels();
  const { client, server } = await p.open();
  const err = once<H2StreamError>(server, "error");
  client.close(ErrorCode.INTERNAL_ERROR);
  const e = await err;
  assert.equal(e.code, "ERR_H2_STREAM_RESET");
  assert.equal(e.rstCode, ErrorCode.INTERNAL_ERROR);
  assert.equal(server.rstCode, ErrorCode.INTERNAL_ERROR);
});

Deno.test("non-CONNECT requests reach the handler, which can answer 405 with END_STREAM", async () => {
  const methods: string[] = [];
  await using p = await pair(HOST, (s, h) => {
    methods.push(String(h[":method"]));
    echo(s, h);
  });
  const s = p.client.request({
    ":method": "GET",
    ":scheme": "http",
    ":path": "/",
    ":authority": "a",
  });
  const [status, body] = await Promise.all([
    once<Record<string, string>>(s, "response"),
    readAll(s),
  ]);
  assert.equal(status[":status"], "405");
  assert.equal(body.length, 0);
  assert.deepEqual(methods, ["GET"]);
  s.end();
  await until(() => p.client.activeStreams === 0 && p.servers[0].activeStreams === 0);
});

Deno.test("the client refuses to exceed the peer's MAX_CONCURRENT_STREAMS", async () => {
  await using p = await pair(HOST, echo, { maxConcurrentStreams: 2 });
  assert.equal(p.client.remoteSettings.maxConcurrentStreams, 2);
  const a = p.client.request(connectHeaders());
  const b = p.client.request(connectHeaders());
  assert.throws(() => p.client.request(connectHeaders()), { code: "ERR_H2_STREAM_LIMIT" });
  a.destroy();
  await settle(0);
  const c = p.client.request(connectHeaders());
  b.destroy();
  c.destroy();
});

Deno.test("the server refuses streams beyond its limit with REFUSED_STREAM", async () => {
  await using r = await rawClient(HOST, echo, { maxConcurrentStreams: 2 });
  r.peer.headers(1, connectFields());
  r.peer.headers(3, connectFields());
  r.peer.headers(5, connectFields());
  assert.equal(await r.peer.reset(5), ErrorCode.REFUSED_STREAM);
  await r.peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === 3);
  r.peer.send(rstStreamFrame(1, ErrorCode.CANCEL));
  r.peer.headers(7, connectFields());
  await r.peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === 7);
  assert.equal(r.sessions[0].activeStreams, 2);
});

Deno.test("malformed requests are reset with PROTOCOL_ERROR, the connection lives on", async () => {
  const handled: string[] = [];
  await using r = await rawClient(HOST, (s, h) => {
    handled.push(String(h[":authority"]));
    echo(s, h);
  });
  const bad: [string, string][][] = [
    [[":method", "CONNECT"], [":authority", "a:1"], [":path", "/"]],
    [[":method", "CONNECT"], [":authority", "a:1"], [":scheme", "https"]],
    [[":method", "CONNECT"]],
    [[":method", "CONNECT"], [":authority", "a:1"], ["Upper", "x"]],
    [[":method", "CONNECT"], [":authority", "a:1"], ["connection", "close"]],
    [[":method", "CONNECT"], [":authority", "a:1"], ["te", "gzip"]],
    [[":method", "CONNECT"], ["x", "1"], [":authority", "a:1"]],
    [[":method", "CONNECT"], [":authority", "a:1"], [":method", "CONNECT"]],
    [[":method", "CONNECT"], [":authority", "a:1"], [":protocol", "websocket"]],
    [[":method", "GET"], [":authority", "a:1"]],
    [[":method", "CONNECT"], [":authority", "a:1"], ["x", "bad\r\nvalue"]],
  ];
  let id = 1;
  for (const fields of bad) {
    r.peer.headers(id, fields);
    assert.equal(await r.peer.reset(id), ErrorCode.PROTOCOL_ERROR, JSON.stringify(fields));
    id += 2;
  }
  r.peer.headers(id, connectFields("good:1"));
  await r.peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === id);
  assert.deepEqual(handled, ["good:1"]);
});

Deno.test("connection errors end the session with GOAWAY and the right code", async (t) => {
  const cases: [string, (peer: RawPeer) => void, number][] = [
    ["DATA on stream 0", (p) => p.send(encodeFrame(FrameType.DATA, 0, 0, Buffer.from("x"))), 1],
    ["DATA on an idle stream", (p) => p.data(9, Buffer.from("x")), 1],
    ["frame above our maximum", (p) => p.send(frameHeader(MIB + 1, FrameType.DATA, 0, 1)), 6],
    [
      "SETTINGS of bad length",
      (p) => p.send(encodeFrame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5))),
      6,
    ],
    ["MAX_FRAME_SIZE below 16384", (p) => p.send(settingsFrame([[5, 100]])), 1],
    ["INITIAL_WINDOW_SIZE above 2^31-1", (p) => p.send(settingsFrame([[4, 2 ** 31]])), 3],
    ["WINDOW_UPDATE of 0 on the connection", (p) => p.send(windowUpdateFrame(0, 0)), 1],
    ["connection window overflow", (p) => p.send(windowUpdateFrame(0, 0x7fff_ffff)), 3],
    ["PING of 7 bytes", (p) => p.send(encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(7))), 6],
    ["PUSH_PROMISE", (p) => p.send(encodeFrame(FrameType.PUSH_PROMISE, 4, 1, Buffer.alloc(4))), 1],
    ["bad HPACK", (p) => p.send(encodeFrame(FrameType.HEADERS, 4, 1, Buffer.from([0x80]))), 9],
    ["even stream id", (p) => p.headers(2, connectFields()), 1],
    [
      "HEADERS then something other than CONTINUATION",
      (p) => {
        p.send(encodeFrame(FrameType.HEADERS, 0, 1, Buffer.from([0x82])));
        p.send(pingFrame(Buffer.alloc(8), false));
      },
      1,
    ],
    ["CONTINUATION without HEADERS", (p) => p.send(encodeFrame(FrameType.CONTINUATION, 4, 1)), 1],
    [
      "header block beyond twice the 64 KiB header list size",
      (p) => {
        p.send(encodeFrame(FrameType.HEADERS, 0, 1, Buffer.alloc(16_000)));
        for (let i = 0; i < 9; i++) {
          p.send(encodeFrame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(16_000)));
        }
      },
      ErrorCode.ENHANCE_YOUR_CALM,
    ],
    ["GOAWAY on a stream", (p) => p.send(encodeFrame(FrameType.GOAWAY, 0, 1, Buffer.alloc(8))), 1],
  ];
  for (const [name, send, code] of cases) {
    await t.step(name, async () => {
      await using r = await rawClient(HOST, echo);
      r.peer.headers(1, connectFields()); // one good stream first
      await r.peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === 1);
      const closed = once(r.sessions[0], "close");
      send(r.peer);
      const g = await r.peer.goaway();
      assert.equal(g.errorCode, code);
      await closed;
      await r.peer.closed;
    });
  }
});

Deno.test("a bad preface or a first frame other than SETTINGS ends the connection", async () => {
  const sessions: H2Session[] = [];
  await using l = await listen(HOST, (s) => sessions.push(serveH2(s, {}, echo)));
  const a = await dial(HOST, l.port);
  a.on("error", () => {});
  a.resume();
  a.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
  await new Promise((r) => a.once("close", r));
  const b = await dial(HOST, l.port);
  b.on("error", () => {});
  b.resume();
  b.write(
    Buffer.concat([
      Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
      pingFrame(Buffer.alloc(8), false),
    ]),
  );
  await new Promise((r) => b.once("close", r));
  await until(() => sessions.every((s) => s.destroyed));
});

Deno.test("stream errors reset one stream: window overflow, DATA beyond the window", async () => {
  const errors: string[] = [];
  await using r = await rawClient(HOST, (s) => {
    s.on("error", (e: H2StreamError) => errors.push(e.code));
    s.respond(200);
  }, { initialWindowSize: 16_384 });
  r.peer.headers(1, connectFields());
  r.peer.headers(3, connectFields());
  await r.peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === 3);
  r.peer.send(windowUpdateFrame(1, 0x7fff_ffff));
  assert.equal(await r.peer.reset(1), ErrorCode.FLOW_CONTROL_ERROR);
  r.peer.data(3, Buffer.alloc(16_385));
  assert.equal(await r.peer.reset(3), ErrorCode.FLOW_CONTROL_ERROR);
  r.peer.send(pingFrame(Buffer.from("stillup!"), false));
  await r.peer.waitFor((f) => f.type === FrameType.PING && f.payload.toString() === "stillup!");
  assert.deepEqual(errors, ["ERR_H2_STREAM_RESET", "ERR_H2_STREAM_RESET"]);
});

Deno.test("PRIORITY, unknown frame types and unknown settings are ignored", async () => {
  await using r = await rawClient(HOST, echo);
  r.peer.send(settingsFrame([[0x99, 1], [0x8, 1]]));
  r.peer.send(encodeFrame(FrameType.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 16])));
  r.peer.send(encodeFrame(0xfa, 0xff, 0, Buffer.from("extension")));
  r.peer.headers(1, connectFields());
  r.peer.send(encodeFrame(0xfb, 0, 1, Buffer.from("on a stream")));
  r.peer.data(1, Buffer.from("ping?"), true);
  await r.peer.waitFor((f) => f.type === FrameType.DATA && f.payload.toString() === "ping?");
  await r.peer.waitFor((f) => f.type === FrameType.DATA && (f.flags & Flag.END_STREAM) !== 0);
});

Deno.test("PINGs are answered with the same payload; ping() resolves", async () => {
  await using r = await rawClient(HOST, echo);
  r.peer.send(pingFrame(Buffer.from("01234567"), false));
  const ack = await r.peer.waitFor((f) => f.type === FrameType.PING);
  assert.equal(ack.flags, Flag.ACK);
  assert.equal(ack.payload.toString(), "01234567");
  const rtt = await r.sessions[0].ping();
  assert.ok(rtt >= 0);
});

Deno.test("keepalive: an unanswered PING drops the session; answered ones keep it", async () => {
  const opts = { pingIntervalMs: 30, pingTimeoutMs: 80 };
  {
    await using r = await rawClient(HOST, echo, opts, { autoPong: false });
    const closed = once<Error>(r.sessions[0], "close");
    const err = await closed;
    assert.equal((err as H2StreamError).code, "ERR_H2_PING_TIMEOUT");
    assert.ok(r.peer.frames.some((f) => f.type === FrameType.PING));
  }
  {
    await using p = await pair(HOST, echo, opts, opts);
    await settle(300);
    assert.equal(p.client.destroyed, false);
    assert.equal(p.servers[0].destroyed, false);
  }
});

Deno.test("graceful close: GOAWAY, open streams finish, new ones are refused, then close", async () => {
  await using p = await tunnels();
  const { client, server } = await p.open();
  const goaway = new Promise<[number, number]>((r) => p.client.once("goaway", (c, l) => r([c, l])));
  const closing = p.servers[0].close();
  assert.deepEqual(await goaway, [ErrorCode.NO_ERROR, 1]);
  assert.throws(() => p.client.request(connectHeaders()), { code: "ERR_H2_SESSION_CLOSED" });
  const back = readAll(client);
  server.end("after goaway");
  client.end("client data");
  assert.equal((await readAll(server)).toString(), "client data");
  assert.equal((await back).toString(), "after goaway");
  await closing;
  await until(() => p.client.destroyed, 3_000, "client session to close");
});

Deno.test("client close(): GOAWAY to the server, streams finish, the socket closes", async () => {
  await using p = await pair(HOST, echo);
  const s = p.client.request(connectHeaders());
  const body = readAll(s);
  const closed = p.client.close();
  s.end("last words");
  assert.equal((await body).toString(), "last words");
  await closed;
  await until(() => p.servers[0].destroyed, 3_000, "server session to close");
});

Deno.test("a GOAWAY from the server refuses our streams above its last stream id", async () => {
  const sessions: H2Session[] = [];
  const peers: RawPeer[] = [];
  await using l = await listen(HOST, (s) => peers.push(new RawPeer(s, "server")));
  const client = connectH2(await dial(HOST, l.port), {});
  sessions.push(client);
  await client.ready;
  const a = client.request(connectHeaders());
  const b = client.request(connectHeaders());
  const bErr = once<H2StreamError>(b, "error");
  a.on("error", () => {});
  await until(() => peers[0]?.frames.filter((f) => f.type === FrameType.HEADERS).length === 2);
  peers[0].send(goawayFrame(1, ErrorCode.NO_ERROR));
  const e = await bErr;
  assert.equal(e.code, "ERR_H2_REFUSED_STREAM");
  assert.equal(client.activeStreams, 1);
  assert.throws(() => client.request(connectHeaders()));
  // Stream 1 still works: the server answers it and ends it.
  peers[0].headers(1, [[":status", "200"]]);
  peers[0].data(1, Buffer.from("ok"), true);
  const got = readAll(a);
  a.end();
  assert.equal((await got).toString(), "ok");
  await until(() => client.destroyed, 3_000, "client to close after the last stream");
});

Deno.test("a GOAWAY right after the last stream ends, then a close, is handled 50 times", async () => {
  let closes = 0;
  const sessions: H2Session[] = [];
  await using l = await listen(HOST, (s) => {
    const session = serveH2(s, {}, echo);
    sessions.push(session);
    session.on("close", () => closes++);
  });
  for (let round = 0; round < 50; round++) {
    const peer = new RawPeer(await dial(HOST, l.port), "client");
    peer.headers(1, connectFields());
    peer.data(1, Buffer.from("x"), true);
    await peer.waitFor((f) => f.type === FrameType.DATA && (f.flags & Flag.END_STREAM) !== 0);
    peer.send(goawayFrame(0, ErrorCode.NO_ERROR));
    if (round % 2) peer.destroy();
    await peer.closed;
  }
  await until(() => closes === 50, 5_000, "50 sessions closed");
});

Deno.test("the peer closing the socket fails open streams, and the session closes", async () => {
  await using p = await tunnels();
  const { client } = await p.open();
  const err = once<H2StreamError>(client, "error");
  const closed = once(p.client, "close");
  p.servers[0].socket.destroy();
  assert.equal((await err).code, "ERR_H2_SESSION_CLOSED");
  await closed;
  assert.equal(p.client.activeStreams, 0);
});

Deno.test("too large request headers get 431; large response headers use CONTINUATION", async () => {
  await using r = await rawClient(HOST, (s) => {
    s.on("error", () => {});
    s.respond(200, { big: "v".repeat(40_000) });
  });
  // 3 KB literal added to the table, then referenced 25 times: ~75 KB decoded from ~3 KB.
  const literal = Buffer.concat([
    Buffer.from([0x40, 0x05]),
    Buffer.from("x-big"),
    encodeInteger(3000, 7),
    Buffer.alloc(3000, 0x79),
  ]);
  const block = Buffer.concat([
    Buffer.from([0x02, 0x07]),
    Buffer.from("CONNECT"),
    Buffer.from([0x01, 0x03]),
    Buffer.from("a:1"),
    literal,
    Buffer.alloc(25, 0xbe),
  ]);
  r.peer.send(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, block));
  const h = await r.peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === 1);
  assert.equal(h.flags & Flag.END_STREAM, Flag.END_STREAM);
  assert.equal(await r.peer.reset(1), ErrorCode.NO_ERROR);
  r.peer.headers(3, connectFields());
  await r.peer.waitFor((f) => f.type === FrameType.CONTINUATION && f.streamId === 3);
});

Deno.test("random frames after a valid preface never throw out of the session", async () => {
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) >>> 0;
    return seed % n;
  };
  const sessions: H2Session[] = [];
  await using l = await listen(HOST, (s) => sessions.push(serveH2(s, {}, echo)));
  for (let round = 0; round < 40; round++) {
    const peer = new RawPeer(await dial(HOST, l.port), "client");
    peer.headers(1, connectFields());
    for (let i = 0; i < 30; i++) {
      const type = rand(12);
      const flags = rand(256);
      const id = [0, 1, 2, 3, 5, 0x7fff_ffff][rand(6)];
      const payload = pattern(rand(3) === 0 ? 0 : rand(40), round * 100 + i);
      peer.send(encodeFrame(type, flags, id, payload));
    }
    await settle(5);
    peer.destroy();
    await peer.closed;
  }
  await until(() => sessions.length === 40 && sessions.every((s) => s.destroyed));
});
