import assert from "node:assert/strict";
import fc from "fast-check";
import { ChunkedDecoder, HeaderMap } from "../../http/mod.ts";
import { concat } from "../fixtures/streams.ts";
import { rejection, text } from "./_helpers.ts";

const enc = new TextEncoder();

interface Decoded {
  data: Uint8Array;
  trailers: (readonly [string, string])[];
  /** Bytes used from all pieces; the rest follows the body. */
  used: number;
}

/** Feeds the pieces in order until the decoder is done. */
function decode(pieces: Uint8Array[]): Decoded {
  const d = new ChunkedDecoder();
  const out: number[] = [];
  let used = 0;
  for (const piece of pieces) {
    let i = 0;
    while (i < piece.length && !d.done) {
      i += d.push(piece.subarray(i));
      if (d.data !== null) out.push(...d.data);
    }
    used += i;
    if (d.done) break;
  }
  assert.ok(d.done, "decoder reached the end");
  return { data: Uint8Array.from(out), trailers: [...d.trailers ?? new HeaderMap()], used };
}

/** Splits bytes at every byte boundary. */
function bytewise(bytes: Uint8Array): Uint8Array[] {
  return Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
}

const VALID: [string, string, string, [string, string][]][] = [
  ["one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", []],
  ["two chunks", "2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n", "hello", []],
  ["upper-case hex and leading zeros", "00A\r\n0123456789\r\n000\r\n\r\n", "0123456789", []],
  ["chunk extensions", '5;name=value;x="q s"\r\nhello\r\n0;last\r\n\r\n', "hello", []],
  ["whitespace before an extension", "5 ;a\r\nhello\r\n0\r\n\r\n", "hello", []],
  ["trailers", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nGrpc-Status:  0 \r\n\r\n", "hello", [
    ["x-sum", "1"],
    ["grpc-status", "0"],
  ]],
  ["an empty body", "0\r\n\r\n", "", []],
];

for (const [name, wire, body, trailers] of VALID) {
  Deno.test(`ChunkedDecoder decodes ${name}, split at every byte`, () => {
    const bytes = enc.encode(`${wire}NEXT`);
    for (const pieces of [[bytes], bytewise(bytes)]) {
      const got = decode(pieces);
      assert.equal(text(got.data), body);
      assert.deepEqual(got.trailers, trailers);
      assert.equal(got.used, wire.length);
    }
  });
}

const INVALID: [string, string, number][] = [
  ["a 0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", 400],
  ["a negative size", "-1\r\nx\r\n0\r\n\r\n", 400],
  ["an overflowing size", "fffffffffffffffff\r\n", 400],
  ["an empty size line", "\r\nhello\r\n0\r\n\r\n", 400],
  ["a space before the size", " 5\r\nhello\r\n0\r\n\r\n", 400],
  ["junk after the size", "5x\r\nhello\r\n0\r\n\r\n", 400],
  ["trailing whitespace without an extension", "5 \r\nhello\r\n0\r\n\r\n", 400],
  ["a CTL in an extension", "5;a\x01\r\nhello\r\n0\r\n\r\n", 400],
  ["a bare LF after the size", "5\nhello\r\n0\r\n\r\n", 400],
  ["data not followed by CR LF", "5\r\nhelloX\r\n0\r\n\r\n", 400],
  ["data followed by a bare LF", "5\r\nhello\n0\r\n\r\n", 400],
  ["data longer than its size", "3\r\nhello\r\n0\r\n\r\n", 400],
  ["obs-fold in the trailers", "0\r\nX: a\r\n b\r\n\r\n", 400],
  ["a bare LF ending the trailers", "0\r\nX: a\r\n\n", 400],
  ["a space before a trailer colon", "0\r\nX : a\r\n\r\n", 400],
  ["a size line over 4 KiB", `5;${"a".repeat(5000)}\r\nhello\r\n0\r\n\r\n`, 400],
  ["a trailer section over 60 KiB", `0\r\nX: ${"a".repeat(61 * 1024)}\r\n\r\n`, 431],
];

for (const [name, wire, status] of INVALID) {
  Deno.test(`ChunkedDecoder rejects ${name} with ${status}, however split`, () => {
    const bytes = enc.encode(wire);
    for (const pieces of [[bytes], bytewise(bytes)]) {
      assert.equal(rejection(() => decode(pieces)).status, status);
    }
  });
}

Deno.test("ChunkedDecoder reports bad_response when decoding a response", () => {
  const d = new ChunkedDecoder({ errorKind: "bad_response" });
  assert.equal(rejection(() => d.push(enc.encode("zz\r\n"))).kind, "bad_response");
});

/** Chunked encoding of `body` cut into chunks of the given sizes, with extensions and trailers. */
function encodeChunked(
  body: Uint8Array,
  sizes: number[],
  trailers: [string, string][],
  ext: boolean,
): Uint8Array {
  const parts: Uint8Array[] = [];
  let off = 0;
  let k = 0;
  while (off < body.length) {
    const n = Math.min(sizes[k++ % sizes.length], body.length - off);
    parts.push(enc.encode(`${n.toString(16)}${ext ? ";k=v" : ""}\r\n`));
    parts.push(body.subarray(off, off + n), enc.encode("\r\n"));
    off += n;
  }
  parts.push(enc.encode(`0\r\n${trailers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`));
  return concat(parts);
}

/** Cuts bytes at the given offsets (taken modulo the length, sorted). */
function cut(bytes: Uint8Array, offsets: number[]): Uint8Array[] {
  const at = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let prev = 0;
  for (const o of [...at, bytes.length]) {
    pieces.push(bytes.subarray(prev, o));
    prev = o;
  }
  return pieces;
}

const trailerField = fc.tuple(
  fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/),
  fc.stringMatching(/^[!-~]([ -~]{0,20}[!-~])?$/),
);

/** A random body, chunk sizes and trailers, encoded chunked. */
function chunkedCase(maxBody: number, maxChunk: number) {
  return fc.record({
    body: fc.uint8Array({ maxLength: maxBody }),
    sizes: fc.array(fc.integer({ min: 1, max: maxChunk }), { minLength: 1, maxLength: 20 }),
    trailers: fc.array(trailerField, { maxLength: 4 }),
    ext: fc.boolean(),
  });
}

/** Decodes `pieces` and checks the result against the case they were encoded from. */
function assertDecodes(
  c: { body: Uint8Array; trailers: [string, string][] },
  wire: Uint8Array,
  pieces: Uint8Array[],
): void {
  const got = decode(pieces);
  assert.deepEqual(got.data, c.body);
  assert.deepEqual(got.trailers, c.trailers);
  assert.equal(got.used, wire.length);
}

Deno.test("ChunkedDecoder decodes any chunking of any body, split anywhere", () => {
  fc.assert(
    fc.property(chunkedCase(3000, 700), fc.array(fc.nat(), { maxLength: 30 }), (c, offsets) => {
      const wire = encodeChunked(c.body, c.sizes, c.trailers, c.ext);
      assertDecodes(c, wire, cut(concat([wire, enc.encode("GET")]), offsets));
    }),
    { numRuns: 300 },
  );
});

Deno.test("ChunkedDecoder decodes any chunking fed one byte at a time", () => {
  fc.assert(
    fc.property(chunkedCase(400, 64), (c) => {
      const wire = encodeChunked(c.body, c.sizes, c.trailers, c.ext);
      assertDecodes(c, wire, bytewise(wire));
    }),
    { numRuns: 100 },
  );
});
