/** HPACK against the examples of RFC 7541 Appendix C, plus the error cases. */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  decodeInteger,
  encodeInteger,
  type HeaderField,
  HpackDecoder,
  HpackEncoder,
  HpackError,
  huffmanDecode,
} from "../../h2/hpack.ts";

function hex(s: string): Uint8Array {
  return Buffer.from(s.replace(/\s+/g, ""), "hex");
}

function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

interface Step {
  readonly block: string;
  readonly fields: HeaderField[];
  /** Dynamic table after the step, newest first. */
  readonly table: HeaderField[];
  readonly size: number;
}

function runSeries(tableSize: number, steps: Step[]): void {
  const d = new HpackDecoder(tableSize);
  steps.forEach((step, i) => {
    const got = d.decode(hex(step.block));
    assert.equal(got.tooLarge, false);
    assert.deepEqual(got.fields, step.fields, `fields of step ${i + 1}`);
    assert.deepEqual(d.dynamicEntries, step.table, `table after step ${i + 1}`);
    assert.equal(d.tableSize, step.size, `table size after step ${i + 1}`);
  });
}

Deno.test("C.1 integer representation", () => {
  assert.equal(toHex(encodeInteger(10, 5)), "0a"); // C.1.1
  assert.equal(toHex(encodeInteger(1337, 5)), "1f9a0a"); // C.1.2
  assert.equal(toHex(encodeInteger(42, 8)), "2a"); // C.1.3
  assert.deepEqual(decodeInteger(hex("0a"), 5), [10, 1]);
  assert.deepEqual(decodeInteger(hex("1f9a0a"), 5), [1337, 3]);
  assert.deepEqual(decodeInteger(hex("ff9a0a"), 5), [1337, 3], "bits above the prefix ignored");
  assert.deepEqual(decodeInteger(hex("2a"), 8), [42, 1]);
  for (const [v, p] of [[0, 1], [30, 5], [31, 5], [127, 7], [128, 7], [2 ** 31 - 1, 4]]) {
    assert.deepEqual(decodeInteger(encodeInteger(v, p), p), [v, encodeInteger(v, p).length]);
  }
  assert.throws(() => decodeInteger(hex("1f9a"), 5), HpackError, "truncated");
  assert.throws(() => decodeInteger(hex("1fffffffffffff7f"), 5), HpackError, "overflow");
});

Deno.test("C.2 header field representations", () => {
  const d = new HpackDecoder();
  // C.2.1 literal with indexing
  assert.deepEqual(
    d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")).fields,
    [["custom-key", "custom-header"]],
  );
  assert.deepEqual(d.dynamicEntries, [["custom-key", "custom-header"]]);
  assert.equal(d.tableSize, 55);
  // C.2.2 literal without indexing
  const d2 = new HpackDecoder();
  assert.deepEqual(d2.decode(hex("040c 2f73 616d 706c 652f 7061 7468")).fields, [
    [":path", "/sample/path"],
  ]);
  assert.equal(d2.tableSize, 0);
  // C.2.3 literal never indexed
  assert.deepEqual(d2.decode(hex("1008 7061 7373 776f 7264 0673 6563 7265 74")).fields, [
    ["password", "secret"],
  ]);
  assert.equal(d2.tableSize, 0);
  // C.2.4 indexed
  assert.deepEqual(d2.decode(hex("82")).fields, [[":method", "GET"]]);
  assert.equal(d2.tableSize, 0);
});

const REQ1: HeaderField[] = [
  [":method", "GET"],
  [":scheme", "http"],
  [":path", "/"],
  [":authority", "www.example.com"],
];
const REQ2: HeaderField[] = [...REQ1, ["cache-control", "no-cache"]];
const REQ3: HeaderField[] = [
  [":method", "GET"],
  [":scheme", "https"],
  [":path", "/index.html"],
  [":authority", "www.example.com"],
  ["custom-key", "custom-value"],
];
const REQ_TABLES: HeaderField[][] = [
  [[":authority", "www.example.com"]],
  [["cache-control", "no-cache"], [":authority", "www.example.com"]],
  [["custom-key", "custom-value"], ["cache-control", "no-cache"], [
    ":authority",
    "www.example.com",
  ]],
];

Deno.test("C.3 requests without Huffman coding", () => {
  runSeries(4096, [
    {
      block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      fields: REQ1,
      table: REQ_TABLES[0],
      size: 57,
    },
    { block: "8286 84be 5808 6e6f 2d63 6163 6865", fields: REQ2, table: REQ_TABLES[1], size: 110 },
    {
      block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
      fields: REQ3,
      table: REQ_TABLES[2],
      size: 164,
    },
  ]);
});

Deno.test("C.4 requests with Huffman coding", () => {
  runSeries(4096, [
    {
      block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
      fields: REQ1,
      table: REQ_TABLES[0],
      size: 57,
    },
    { block: "8286 84be 5886 a8eb 1064 9cbf", fields: REQ2, table: REQ_TABLES[1], size: 110 },
    {
      block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
      fields: REQ3,
      table: REQ_TABLES[2],
      size: 164,
    },
  ]);
});

const DATE1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOC = "https://www.example.com";
const COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const RESP1: HeaderField[] = [
  [":status", "302"],
  ["cache-control", "private"],
  ["date", DATE1],
  ["location", LOC],
];
const RESP2: HeaderField[] = [[":status", "307"], ...RESP1.slice(1)];
const RESP3: HeaderField[] = [
  [":status", "200"],
  ["cache-control", "private"],
  ["date", DATE2],
  ["location", LOC],
  ["content-encoding", "gzip"],
  ["set-cookie", COOKIE],
];
const RESP_TABLES: HeaderField[][] = [
  [["location", LOC], ["date", DATE1], ["cache-control", "private"], [":status", "302"]],
  [[":status", "307"], ["location", LOC], ["date", DATE1], ["cache-control", "private"]],
  [["set-cookie", COOKIE], ["content-encoding", "gzip"], ["date", DATE2]],
];

Deno.test("C.5 responses without Huffman coding, 256-byte table with evictions", () => {
  runSeries(256, [
    {
      block: `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
        2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
        6c65 2e63 6f6d`,
      fields: RESP1,
      table: RESP_TABLES[0],
      size: 222,
    },
    { block: "4803 3330 37c1 c0bf", fields: RESP2, table: RESP_TABLES[1], size: 222 },
    {
      block: `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
        54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
        5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
      fields: RESP3,
      table: RESP_TABLES[2],
      size: 215,
    },
  ]);
});

Deno.test("C.6 responses with Huffman coding, 256-byte table with evictions", () => {
  runSeries(256, [
    {
      block: `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
        2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
      fields: RESP1,
      table: RESP_TABLES[0],
      size: 222,
    },
    { block: "4883 640e ffc1 c0bf", fields: RESP2, table: RESP_TABLES[1], size: 222 },
    {
      block: `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
        77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
        9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
      fields: RESP3,
      table: RESP_TABLES[2],
      size: 215,
    },
  ]);
});

Deno.test("Huffman strings of Appendix C decode; EOS and long or non-1 padding are errors", () => {
  const cases: [string, string][] = [
    ["f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"],
    ["a8eb 1064 9cbf", "no-cache"],
    ["25a8 49e9 5ba9 7d7f", "custom-key"],
    ["6402", "302"],
    ["9bd9 ab", "gzip"],
    ["", ""],
  ];
  for (const [h, want] of cases) assert.equal(huffmanDecode(hex(h)), want);
  assert.throws(() => huffmanDecode(hex("ffffffff")), HpackError, "EOS inside");
  assert.throws(() => huffmanDecode(hex("9bd9 abff")), HpackError, "8+ bits of padding");
  assert.equal(huffmanDecode(hex("07")), "0", "'0' is 00000, then 111 padding");
  assert.throws(() => huffmanDecode(hex("06")), HpackError, "padding 110 is not all ones");
  assert.throws(
    () => huffmanDecode(Buffer.from("00\x91\xff\xff\xff\xff\xc8", "latin1")),
    HpackError,
  );
});

Deno.test("decoder errors: bad index, size update over the limit or after a field, truncation", () => {
  assert.throws(() => new HpackDecoder().decode(hex("80")), HpackError, "index 0");
  assert.throws(() => new HpackDecoder().decode(hex("be")), HpackError, "empty dynamic table");
  assert.throws(() => new HpackDecoder(4096).decode(hex("3fe21f")), HpackError, "4097 > 4096");
  assert.throws(() => new HpackDecoder().decode(hex("82 20")), HpackError, "update after field");
  assert.throws(() => new HpackDecoder().decode(hex("400a 6375")), HpackError, "truncated");
  const d = new HpackDecoder();
  d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"));
  d.decode(hex("20")); // Size update to 0 evicts everything.
  assert.equal(d.tableSize, 0);
  assert.throws(() => d.decode(hex("be")), HpackError);
});

Deno.test("decoder marks lists over the size limit but keeps its table in step", () => {
  const d = new HpackDecoder();
  const block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
  const r = d.decode(block, 40);
  assert.equal(r.tooLarge, true);
  assert.deepEqual(r.fields, []);
  assert.equal(d.tableSize, 55);
  assert.deepEqual(d.decode(hex("be"), 100).fields, [["custom-key", "custom-header"]]);
});

Deno.test("encoder: static index, static name, literal name; size update 0 first", () => {
  const e = new HpackEncoder();
  const first = e.encode([[":status", "200"]]);
  assert.equal(toHex(first), "2088", "size update to 0, then index 8");
  assert.equal(toHex(e.encode([[":path", "/sample/path"]])), "040c2f73616d706c652f70617468");
  assert.equal(toHex(e.encode([["password", "secret"]])), "000870617373776f726406736563726574");
  e.tableSizeChanged();
  assert.equal(toHex(e.encode([[":method", "GET"]])), "2082");
});

Deno.test("encoder output decodes to the same fields", () => {
  const e = new HpackEncoder();
  const d = new HpackDecoder();
  const long = "x".repeat(70_000);
  const sets: HeaderField[][] = [
    [[":method", "CONNECT"], [":authority", "10.1.2.3:8080"], ["baggage", "k8s.cluster.name=c1"]],
    [[":status", "200"], ["x-latin1", "caf\xe9"], ["empty", ""]],
    [["long", long], ["forwarded", 'for="10.0.0.1:4000";host=svc.ns.svc.cluster.local']],
  ];
  for (const fields of sets) assert.deepEqual(d.decode(e.encode(fields)).fields, fields);
  assert.equal(d.tableSize, 0, "the encoder never indexes");
});
