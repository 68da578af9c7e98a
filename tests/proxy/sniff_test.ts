import assert from "node:assert/strict";
import { classify } from "../../proxy/sniff.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("classify() tells HTTP/2, HTTP/1.1 and other protocols apart", () => {
  const cases: [string, string, boolean, string | undefined][] = [
    ["the full HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false, "h2c"],
    ["half of the preface", "PRI * HTTP/2", false, undefined],
    ["half of the preface and then nothing", "PRI * HTTP/2", true, "tcp"],
    ["a GET request line", "GET / HTTP/1.1\r\n", false, "http1"],
    ["a long method token", "PROPFIND /x HTTP/1.1\r\n", false, "http1"],
    ["two letters of a method", "PO", false, undefined],
    ["two letters and then nothing", "PO", true, "tcp"],
    ["a TLS ClientHello", "\x16\x03\x01\x02\x00\x01", false, "tcp"],
    ["lower-case text", "hello world", false, "tcp"],
    ["nothing at all when the time is up", "", true, "tcp"],
  ];
  for (const [what, input, ended, want] of cases) {
    assert.equal(classify(bytes(input), ended), want, what);
  }
});
