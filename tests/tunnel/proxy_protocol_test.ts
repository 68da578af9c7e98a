import assert from "node:assert/strict";
import { encodeProxyV2, parseProxyV2, TLV_PEER_IDENTITY } from "../../tunnel/mod.ts";

const ID = new TextEncoder().encode("spiffe://cluster.local/ns/a/sa/b");

Deno.test("parseProxyV2() reads IPv4 addresses, ports, the identity TLV and the rest", () => {
  const header = encodeProxyV2(
    { address: "10.0.0.1", port: 4321 },
    { address: "10.96.0.10", port: 80 },
    new Map([[TLV_PEER_IDENTITY, ID]]),
  );
  const bytes = new Uint8Array([...header, ...new TextEncoder().encode("GET /")]);
  const parsed = parseProxyV2(bytes);
  assert.equal(parsed.state, "done");
  if (parsed.state !== "done") return;
  assert.deepEqual(parsed.header.source, { address: "10.0.0.1", port: 4321 });
  assert.deepEqual(parsed.header.destination, { address: "10.96.0.10", port: 80 });
  assert.deepEqual(parsed.header.tlvs.get(TLV_PEER_IDENTITY), ID);
  assert.equal(new TextDecoder().decode(parsed.rest), "GET /");
});

Deno.test("parseProxyV2() reads IPv6 addresses in canonical form", () => {
  const parsed = parseProxyV2(
    encodeProxyV2({ address: "fd00::1", port: 1 }, { address: "fd00:0:0:1::a", port: 2 }),
  );
  assert.equal(parsed.state, "done");
  if (parsed.state !== "done") return;
  assert.equal(parsed.header.source?.address, "fd00::1");
  assert.equal(parsed.header.destination?.address, "fd00:0:0:1::a");
});

Deno.test("parseProxyV2() asks for more bytes at every split of a header", () => {
  const header = encodeProxyV2(
    { address: "10.0.0.1", port: 1 },
    { address: "10.0.0.2", port: 2 },
    new Map([[TLV_PEER_IDENTITY, ID]]),
  );
  for (let i = 0; i < header.length; i++) {
    assert.equal(parseProxyV2(header.subarray(0, i)).state, "more", `split at ${i}`);
  }
  assert.equal(parseProxyV2(header).state, "done");
});

Deno.test("parseProxyV2() refuses what is not a well-formed v2 header", () => {
  const good = encodeProxyV2({ address: "10.0.0.1", port: 1 }, { address: "10.0.0.2", port: 2 });
  const cases: [string, Uint8Array][] = [
    ["a PROXY v1 text line", new TextEncoder().encode("PROXY TCP4 1.1.1.1 2.2.2.2 1 2\r\n")],
    ["an HTTP request", new TextEncoder().encode("GET / HTTP/1.1\r\n")],
    ["version 1 in the version nibble", Uint8Array.from(good, (b, i) => i === 12 ? 0x11 : b)],
    ["an unknown family", Uint8Array.from(good, (b, i) => i === 13 ? 0x31 : b)],
    ["a body longer than the limit", Uint8Array.from(good, (b, i) => i === 14 ? 0xff : b)],
    [
      "a TLV running past the end",
      (() => {
        const h = encodeProxyV2(
          { address: "10.0.0.1", port: 1 },
          { address: "10.0.0.2", port: 2 },
          new Map([[TLV_PEER_IDENTITY, ID]]),
        );
        h[16 + 12 + 2] = 0xff;
        return h;
      })(),
    ],
  ];
  for (const [what, bytes] of cases) assert.equal(parseProxyV2(bytes).state, "error", what);
});
