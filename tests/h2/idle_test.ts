/**
 * The stream idle timeout (h2/idle.ts) over a real socket: a request stream that never sends
 * its body is reset, a CONNECT tunnel is not. Loopback 127.0.30.2.
 */
import assert from "node:assert/strict";
import type { H2Stream, H2StreamError } from "../../h2/stream.ts";
import { connectFields, ErrorCode, FrameType, once, rawClient, until } from "./_helpers.ts";

const HOST = "127.0.30.2";

const POST: [string, string][] = [
  [":method", "POST"],
  [":scheme", "http"],
  [":path", "/upload"],
  [":authority", "svc:80"],
];

Deno.test("serveH2() resets a request stream idle for streamIdleTimeoutMs; CONNECT tunnels stay", async () => {
  const streams = new Map<number, H2Stream>();
  await using r = await rawClient(HOST, (s) => {
    streams.set(s.id, s);
    s.on("error", () => {});
    s.respond(200);
  }, { streamIdleTimeoutMs: 100 });
  r.peer.headers(1, POST); // HEADERS without END_STREAM, then no DATA ever
  r.peer.headers(3, connectFields());
  await until(() => streams.size === 2, 3_000, "both streams handled");
  const failed = once<H2StreamError>(streams.get(1)!, "error");
  assert.equal(await r.peer.reset(1), ErrorCode.CANCEL);
  assert.equal((await failed).code, "ERR_H2_STREAM_IDLE");
  assert.ok(streams.get(1)!.destroyed);
  // A second idle request, opened after the first was reset, goes too: by then the tunnel has
  // been idle for two timeouts, and it is still open.
  r.peer.headers(5, POST);
  assert.equal(await r.peer.reset(5), ErrorCode.CANCEL);
  assert.equal(
    r.peer.frames.some((f) => f.type === FrameType.RST_STREAM && f.streamId === 3),
    false,
  );
  assert.equal(streams.get(3)!.destroyed, false);
  assert.equal(r.sessions[0].stats.idleTimeouts, 2);
  assert.equal(r.sessions[0].closing, false);
});

Deno.test("serveH2() with streamIdleTimeoutMs 0 never resets an idle request", async () => {
  const streams: H2Stream[] = [];
  await using r = await rawClient(HOST, (s) => {
    streams.push(s);
    s.on("error", () => {});
    s.respond(200);
  }, { streamIdleTimeoutMs: 0 });
  r.peer.headers(1, POST);
  await until(() => streams.length === 1);
  // With a timeout, the reset of stream 3 below would come first (see the test above).
  const timed = await rawClient("127.0.30.3", (s) => {
    s.on("error", () => {});
    s.respond(200);
  }, { streamIdleTimeoutMs: 100 });
  try {
    timed.peer.headers(1, POST);
    await timed.peer.reset(1);
  } finally {
    await timed[Symbol.asyncDispose]();
  }
  assert.equal(r.peer.frames.some((f) => f.type === FrameType.RST_STREAM), false);
  assert.equal(streams[0].destroyed, false);
  assert.equal(r.sessions[0].stats.idleTimeouts, 0);
});
