/** Frame encoding, decoding and the frame reader (RFC 9113 §4, §6). */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  dataHeader,
  decodeFrameHeader,
  encodeFrame,
  ErrorCode,
  Flag,
  type Frame,
  frameHeader,
  FrameReader,
  FrameType,
  goawayFrame,
  H2ProtocolError,
  headersFragment,
  headersFrames,
  parseGoaway,
  parseSettings,
  parseU32,
  pingFrame,
  rstStreamFrame,
  settingsAckFrame,
  settingsFrame,
  unpad,
  windowUpdateFrame,
} from "../../h2/frame.ts";
import { pattern } from "./_helpers.ts";

function readAllFrames(bytes: Uint8Array, max = 1 << 20): Frame[] {
  const out: Frame[] = [];
  new FrameReader(max, (f) => out.push(f)).push(bytes);
  return out;
}

Deno.test("frame header encodes and decodes every field, ignoring the reserved bit", () => {
  const cases = [
    [0, FrameType.DATA, 0, 1],
    [16_384, FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3],
    [(1 << 24) - 1, 0xfa, 0xff, 0x7fff_ffff],
    [4, FrameType.WINDOW_UPDATE, 0, 0],
  ] as const;
  for (const [length, type, flags, streamId] of cases) {
    const b = frameHeader(length, type, flags, streamId);
    assert.equal(b.length, 9);
    assert.deepEqual(decodeFrameHeader(b), { length, type, flags, streamId });
  }
  const reserved = frameHeader(0, 0, 0, 5);
  reserved[5] |= 0x80;
  assert.equal(decodeFrameHeader(reserved).streamId, 5);
});

Deno.test("control frames round-trip through the reader", () => {
  const bytes = Buffer.concat([
    settingsFrame([[4, 4 << 20], [5, 1 << 20], [3, 100], [0x99, 7]]),
    settingsAckFrame(),
    pingFrame(Buffer.from("12345678"), false),
    pingFrame(Buffer.from("abcdefgh"), true),
    goawayFrame(7, ErrorCode.PROTOCOL_ERROR, Buffer.from("bye")),
    rstStreamFrame(3, ErrorCode.CANCEL),
    windowUpdateFrame(0, 0x7fff_ffff),
    windowUpdateFrame(9, 1),
    headersFrames(1, Buffer.from("abc"), true, 16_384),
    Buffer.concat([dataHeader(1, 5, true), Buffer.from("hello")]),
  ]);
  const f = readAllFrames(bytes);
  assert.deepEqual(f.map((x) => x.type), [4, 4, 6, 6, 7, 3, 8, 8, 1, 0]);
  assert.deepEqual(parseSettings(f[0].payload), [[4, 4 << 20], [5, 1 << 20], [3, 100], [0x99, 7]]);
  assert.equal(f[1].flags, Flag.ACK);
  assert.equal(f[1].payload.length, 0);
  assert.equal(f[2].payload.toString(), "12345678");
  assert.equal(f[2].flags, 0);
  assert.equal(f[3].flags, Flag.ACK);
  const g = parseGoaway(f[4].payload);
  assert.deepEqual([g.lastStreamId, g.errorCode, g.debug.toString()], [7, 1, "bye"]);
  assert.equal(f[5].streamId, 3);
  assert.equal(parseU32(f[5].payload, false), ErrorCode.CANCEL);
  assert.equal(parseU32(f[6].payload, true), 0x7fff_ffff);
  assert.equal(f[7].streamId, 9);
  assert.equal(f[8].flags, Flag.END_HEADERS | Flag.END_STREAM);
  assert.equal(f[8].payload.toString(), "abc");
  assert.equal(f[9].flags, Flag.END_STREAM);
  assert.equal(f[9].payload.toString(), "hello");
});

Deno.test("headersFrames splits a block into HEADERS and CONTINUATION at the frame size", () => {
  const block = pattern(40_000);
  const frames = readAllFrames(headersFrames(5, block, true, 16_384));
  assert.deepEqual(frames.map((f) => [f.type, f.flags, f.payload.length, f.streamId]), [
    [FrameType.HEADERS, Flag.END_STREAM, 16_384, 5],
    [FrameType.CONTINUATION, 0, 16_384, 5],
    [FrameType.CONTINUATION, Flag.END_HEADERS, 40_000 - 32_768, 5],
  ]);
  assert.deepEqual(Buffer.concat(frames.map((f) => f.payload)), block);
  const empty = readAllFrames(headersFrames(1, Buffer.alloc(0), false, 16_384));
  assert.deepEqual(empty.map((f) => [f.type, f.flags, f.payload.length]), [[1, 4, 0]]);
});

Deno.test("the reader delivers the same frames whatever the split points", () => {
  const bytes = Buffer.concat([
    settingsFrame([[3, 100]]),
    encodeFrame(FrameType.DATA, 0, 1, pattern(300)),
    encodeFrame(FrameType.DATA, Flag.END_STREAM, 1), // empty payload
    pingFrame(Buffer.from("pingpong"), false),
    encodeFrame(0xfa, 0, 0, pattern(20, 3)),
    encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 3, pattern(50, 4)),
  ]);
  const expected = readAllFrames(bytes).map((
    f,
  ) => [f.type, f.flags, f.streamId, f.payload.toString("hex")]);
  assert.equal(expected.length, 6);
  const shape = (fs: Frame[]) =>
    fs.map((f) => [f.type, f.flags, f.streamId, f.payload.toString("hex")]);
  // Two pieces at every point.
  for (let i = 0; i <= bytes.length; i++) {
    const got: Frame[] = [];
    const r = new FrameReader(1 << 20, (f) => got.push(f));
    r.push(bytes.subarray(0, i));
    r.push(bytes.subarray(i));
    assert.deepEqual(shape(got), expected, `split at ${i}`);
    assert.equal(r.buffered, 0);
  }
  // Three pieces at every pair of points (step 7 for the second to keep it quick).
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j += 7) {
      const got: Frame[] = [];
      const r = new FrameReader(1 << 20, (f) => got.push(f));
      r.push(bytes.subarray(0, i));
      r.push(bytes.subarray(i, j));
      r.push(bytes.subarray(j));
      assert.deepEqual(shape(got), expected, `split at ${i}, ${j}`);
    }
  }
  // Byte by byte.
  const got: Frame[] = [];
  const r = new FrameReader(1 << 20, (f) => got.push(f));
  for (let i = 0; i < bytes.length; i++) r.push(bytes.subarray(i, i + 1));
  assert.deepEqual(shape(got), expected);
});

Deno.test("the reader refuses a frame over its maximum from the header, before the payload", () => {
  const got: Frame[] = [];
  const r = new FrameReader(16_384, (f) => got.push(f));
  r.push(encodeFrame(FrameType.DATA, 0, 1, pattern(16_384)));
  assert.equal(got.length, 1);
  assert.throws(
    () => r.push(frameHeader(16_385, FrameType.DATA, 0, 1)),
    (e: unknown) => e instanceof H2ProtocolError && e.code === ErrorCode.FRAME_SIZE_ERROR,
  );
  assert.equal(r.buffered, 0);
  r.push(encodeFrame(FrameType.PING, 0, 0, pattern(8))); // Stopped for good.
  assert.equal(got.length, 1);
});

Deno.test("the reader holds at most one incomplete frame", () => {
  const got: Frame[] = [];
  const r = new FrameReader(1 << 20, (f) => got.push(f));
  const big = encodeFrame(FrameType.DATA, 0, 1, pattern(1 << 20));
  for (let at = 0; at < big.length; at += 65_536) {
    r.push(big.subarray(at, at + 65_536));
    assert.ok(r.buffered <= (1 << 20) + 9);
  }
  assert.equal(got.length, 1);
  assert.deepEqual(got[0].payload, pattern(1 << 20));
});

Deno.test("padding and priority fields are removed; bad padding is a PROTOCOL_ERROR", () => {
  const padded = Buffer.concat([Buffer.from([3]), Buffer.from("data"), Buffer.alloc(3)]);
  const [d] = readAllFrames(encodeFrame(FrameType.DATA, Flag.PADDED, 1, padded));
  assert.equal(unpad(d).toString(), "data");
  const hp = Buffer.concat([
    Buffer.from([2]),
    Buffer.from([0, 0, 0, 1, 16]),
    Buffer.from("blk"),
    Buffer.alloc(2),
  ]);
  const [h] = readAllFrames(
    encodeFrame(FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY | Flag.END_HEADERS, 3, hp),
  );
  assert.equal(headersFragment(h).toString(), "blk");
  const [bad] = readAllFrames(encodeFrame(FrameType.DATA, Flag.PADDED, 1, Buffer.from([5, 1, 2])));
  assert.throws(
    () => unpad(bad),
    (e: unknown) => (e as H2ProtocolError).code === ErrorCode.PROTOCOL_ERROR,
  );
  const [short] = readAllFrames(
    encodeFrame(FrameType.HEADERS, Flag.PRIORITY, 1, Buffer.from([1, 2])),
  );
  assert.throws(() => headersFragment(short), H2ProtocolError);
});

Deno.test("payload parsers check lengths", () => {
  assert.throws(
    () => parseSettings(Buffer.alloc(5)),
    (e: unknown) => (e as H2ProtocolError).code === ErrorCode.FRAME_SIZE_ERROR,
  );
  assert.throws(() => parseGoaway(Buffer.alloc(7)), H2ProtocolError);
  assert.throws(() => parseU32(Buffer.alloc(3), false), H2ProtocolError);
  assert.throws(() => pingFrame(Buffer.alloc(7), false), RangeError);
});
