/**
 * The two-step graceful close: a shutdown notice (GOAWAY naming 2^31-1) still takes the streams a
 * peer sent before it saw the notice; the final GOAWAY names the real last stream. Loopback
 * 127.0.30.4.
 */
import assert from "node:assert/strict";
import { Flag, parseGoaway } from "../../h2/frame.ts";
import { type H2Session, serveH2 } from "../../h2/session.ts";
import { connectFields, dial, ErrorCode, FrameType, listen, RawPeer, until } from "./_helpers.ts";

const HOST = "127.0.30.4";

Deno.test("shutdownNotice() keeps taking streams; close() then names the real last stream", async () => {
  const sessions: H2Session[] = [];
  await using listener = await listen(HOST, (s) =>
    sessions.push(serveH2(s, {}, (stream) => {
      stream.on("error", () => {});
      stream.respond(200, {}, { endStream: true });
    })));
  const peer = new RawPeer(await dial(HOST, listener.port), "client");
  try {
    await peer.waitFor((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK));
    await until(() => sessions.length === 1, 3_000, "the session");
    const [session] = sessions;
    peer.headers(1, connectFields(), true);
    await peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === 1);

    session.shutdownNotice();
    const notice = await peer.goaway();
    assert.deepEqual(notice, { errorCode: ErrorCode.NO_ERROR, lastStreamId: 0x7fffffff });

    // A stream the peer sent before it read the notice is still served.
    peer.headers(3, connectFields(), true);
    const answered = await peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === 3);
    assert.ok(answered);
    assert.ok(!peer.frames.some((f) => f.type === FrameType.RST_STREAM), "nothing refused");

    void session.close();
    const final = await peer.waitFor(
      (f) => f.type === FrameType.GOAWAY && parseGoaway(f.payload).lastStreamId !== 0x7fffffff,
    );
    assert.equal(parseGoaway(final.payload).lastStreamId, 3);
  } finally {
    peer.socket.destroy();
    for (const s of sessions) s.destroy();
  }
});
