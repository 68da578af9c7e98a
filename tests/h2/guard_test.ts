/**
 * h2/ against abusive peers (h2/guard.ts and the limits around it): each abusive pattern is sent
 * by a raw-frame peer over a real socket and must end that session with GOAWAY, while a
 * well-behaved client of the same server goes on. Loopback 127.0.30.1.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  encodeFrame,
  Flag,
  headersFrames,
  pingFrame,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
} from "../../h2/frame.ts";
import { CONTROL_BURST, type GoawayReason, RESET_BURST } from "../../h2/guard.ts";
import { encodeInteger, HpackEncoder } from "../../h2/hpack.ts";
import { connectH2, type H2Session, serveH2 } from "../../h2/session.ts";
import type { H2Stream } from "../../h2/stream.ts";
import {
  connectFields,
  connectHeaders,
  dial,
  ErrorCode,
  FrameType,
  listen,
  once,
  RawPeer,
  readAll,
  until,
} from "./_helpers.ts";

const HOST = "127.0.30.1";

/** Answers every request 200 and echoes its body. */
function echo(stream: H2Stream): void {
  stream.on("error", () => {});
  stream.respond(200);
  stream.pipe(stream);
}

/** One server, one well-behaved client of it, and attackers made on demand. */
async function arena() {
  const sessions: H2Session[] = [];
  const handled: H2Stream[] = [];
  const listener = await listen(HOST, (s) =>
    sessions.push(serveH2(s, {}, (stream) => {
      handled.push(stream);
      echo(stream);
    })));
  const good = connectH2(await dial(HOST, listener.port), { pingIntervalMs: 0 });
  await good.ready;
  const attackers: RawPeer[] = [];
  /** A raw client of the server, once our SETTINGS came, with its server session. */
  const attacker = async (settings: [number, number][] = []) => {
    const peer = new RawPeer(await dial(HOST, listener.port), "client", { settings });
    attackers.push(peer);
    await peer.waitFor((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK));
    await until(() => sessions.length === attackers.length + 1, 3_000, "the attacker's session");
    return { peer, session: sessions[sessions.length - 1] };
  };
  /** A CONNECT round trip on the good client. */
  const goodRoundTrip = async () => {
    const s = good.request(connectHeaders());
    s.on("error", () => {});
    await once(s, "response");
    s.end(Buffer.from("still here"));
    assert.equal((await readAll(s)).toString(), "still here");
  };
  return {
    handled,
    attacker,
    goodRoundTrip,
    good,
    [Symbol.asyncDispose]: async () => {
      for (const a of attackers) a.destroy();
      good.destroy();
      for (const s of sessions) s.destroy();
      await listener[Symbol.asyncDispose]();
    },
  };
}

/** `n` copies of `frame` in one buffer. */
function times(n: number, frame: (i: number) => Uint8Array): Buffer {
  return Buffer.concat(Array.from({ length: n }, (_, i) => frame(i)));
}

/** HEADERS opening CONNECT stream `id` (encoded once per peer encoder, static table only). */
function connectBlock(enc: HpackEncoder, id: number): Buffer {
  return headersFrames(id, enc.encode(connectFields()), false, 16_384);
}

const FLOOD = Math.max(RESET_BURST, CONTROL_BURST) + 500;

type Abuse = (peer: RawPeer) => void;

const floods: [string, Abuse, GoawayReason][] = [
  [
    "rapid reset: HEADERS then RST_STREAM(CANCEL), over and over",
    (p) =>
      p.send(times(FLOOD, (i) =>
        Buffer.concat([
          connectBlock(p.encoder, 2 * i + 1),
          rstStreamFrame(2 * i + 1, ErrorCode.CANCEL),
        ]))),
    "rapid_reset",
  ],
  [
    "PING flood",
    (p) => p.send(times(FLOOD, () => pingFrame(Buffer.alloc(8), false))),
    "control_flood",
  ],
  ["SETTINGS flood", (p) => p.send(times(FLOOD, () => settingsFrame([]))), "control_flood"],
  [
    "PRIORITY flood",
    (p) => p.send(times(FLOOD, () => encodeFrame(FrameType.PRIORITY, 0, 1, Buffer.alloc(5)))),
    "control_flood",
  ],
  [
    "empty DATA flood on an open stream",
    (p) => {
      p.send(connectBlock(p.encoder, 1));
      p.send(times(FLOOD, () => encodeFrame(FrameType.DATA, 0, 1)));
    },
    "control_flood",
  ],
  [
    "unknown frame type flood",
    (p) => p.send(times(FLOOD, () => encodeFrame(0x42, 0, 0))),
    "control_flood",
  ],
  [
    "zero-increment WINDOW_UPDATE on each new stream",
    (p) =>
      p.send(
        times(FLOOD, (i) =>
          Buffer.concat([connectBlock(p.encoder, 2 * i + 1), windowUpdateFrame(2 * i + 1, 0)])),
      ),
    "rapid_reset",
  ],
  [
    "streams beyond MAX_CONCURRENT_STREAMS, refused over and over",
    (p) => p.send(times(100 + FLOOD, (i) => connectBlock(p.encoder, 2 * i + 1))),
    "rapid_reset",
  ],
  [
    "malformed requests, reset over and over",
    (p) =>
      p.send(
        times(FLOOD, (i) =>
          headersFrames(2 * i + 1, p.encoder.encode([[":method", "CONNECT"]]), false, 16_384)),
      ),
    "rapid_reset",
  ],
  [
    "endless empty CONTINUATION frames",
    (p) => {
      p.send(encodeFrame(FrameType.HEADERS, 0, 1, p.encoder.encode(connectFields())));
      p.send(times(FLOOD, () => encodeFrame(FrameType.CONTINUATION, 0, 1)));
    },
    "continuation_flood",
  ],
  [
    "a header block beyond twice the header list size",
    (p) => {
      p.send(encodeFrame(FrameType.HEADERS, 0, 1, Buffer.alloc(16_384)));
      p.send(times(8, () => encodeFrame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(16_384))));
    },
    "header_block_too_large",
  ],
];

Deno.test("serveH2() ends a flooding peer's session with GOAWAY(ENHANCE_YOUR_CALM); a good client goes on", async (t) => {
  await using a = await arena();
  for (const [name, abuse, reason] of floods) {
    await t.step(name, async () => {
      const { peer, session } = await a.attacker();
      const closed = once(session, "close");
      abuse(peer);
      const g = await peer.goaway();
      assert.equal(g.errorCode, ErrorCode.ENHANCE_YOUR_CALM);
      assert.equal(session.stats.goawayReason, reason);
      await closed;
      await peer.closed;
      await a.goodRoundTrip();
      assert.equal(a.good.closing, false);
    });
  }
});

Deno.test("serveH2() lets a burst of resets within the budget pass: the session stays", async () => {
  await using a = await arena();
  const { peer, session } = await a.attacker();
  const n = RESET_BURST / 2;
  peer.send(times(n, (i) =>
    Buffer.concat([
      connectBlock(peer.encoder, 2 * i + 1),
      rstStreamFrame(2 * i + 1, ErrorCode.CANCEL),
    ])));
  peer.send(connectBlock(peer.encoder, 2 * n + 1));
  await peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === 2 * n + 1);
  assert.equal(session.closing, false);
  assert.equal(session.stats.peerResets, n);
  assert.equal(peer.frames.some((f) => f.type === FrameType.GOAWAY), false);
});

Deno.test("a stream the peer resets before our response ends is aborted and destroyed", async () => {
  await using a = await arena();
  const { peer } = await a.attacker();
  const aborted: H2Stream[] = [];
  peer.send(connectBlock(peer.encoder, 1));
  await peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === 1);
  const stream = a.handled[a.handled.length - 1];
  stream.on("aborted", () => aborted.push(stream));
  peer.send(rstStreamFrame(1, ErrorCode.CANCEL));
  await until(() => stream.destroyed, 3_000, "the handler's stream destroyed");
  assert.deepEqual(aborted, [stream]);
  await a.goodRoundTrip();
});

const hpackAbuse: [string, (enc: HpackEncoder) => Buffer][] = [
  [
    "a dynamic table size update above our SETTINGS_HEADER_TABLE_SIZE",
    () => Buffer.concat([encodeInteger(8192, 5, 0x20), Buffer.from([0x82])]),
  ],
  [
    "Huffman data holding EOS",
    () => Buffer.from([0x00, 0x84, 0xff, 0xff, 0xff, 0xff, 0x01, 0x61]),
  ],
  ["Huffman padding of zero bits", () => Buffer.from([0x00, 0x81, 0x00, 0x01, 0x61])],
  ["a string longer than the block", () => Buffer.from([0x00, 0x7f, 0x10, 0x61])],
  ["an index beyond the dynamic table", () => Buffer.from([0xff, 0x10])],
];

Deno.test("bad HPACK ends the session with COMPRESSION_ERROR; a good client goes on", async (t) => {
  await using a = await arena();
  for (const [name, block] of hpackAbuse) {
    await t.step(name, async () => {
      const { peer, session } = await a.attacker();
      peer.send(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, block(peer.encoder)));
      assert.equal((await peer.goaway()).errorCode, ErrorCode.COMPRESSION_ERROR);
      assert.equal(session.stats.goawayReason, "compression_error");
      await peer.closed;
      await a.goodRoundTrip();
    });
  }
});

Deno.test("a peer that never opens its window holds our writer at a bounded queue", async () => {
  await using a = await arena();
  // Stream windows of 0: nothing may be sent until a WINDOW_UPDATE that never comes.
  const { peer, session } = await a.attacker([[0x4, 0]]);
  peer.send(connectBlock(peer.encoder, 1));
  await peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === 1);
  const stream = a.handled[a.handled.length - 1];
  stream.unpipe();
  const chunk = Buffer.alloc(64 << 10);
  let accepted = 0;
  while (stream.write(chunk)) accepted += chunk.length;
  accepted += chunk.length;
  // Node's writable buffer took one write beyond its high-water mark, and no more: a producer
  // waiting for `drain` is held there, and the session queued no DATA at all.
  assert.ok(accepted <= stream.writableHighWaterMark + chunk.length, `${accepted} accepted`);
  assert.ok(stream.writableLength <= accepted);
  assert.ok(session.socket.writableLength < chunk.length);
  assert.equal(peer.frames.some((f) => f.type === FrameType.DATA), false);
  await a.goodRoundTrip();
});
