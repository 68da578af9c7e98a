import assert from "node:assert/strict";
import { type ParsedRequest, parseRequestHead, parseResponseHead } from "../../http/mod.ts";
import { head, latin1, rejection } from "./_helpers.ts";

const enc = new TextEncoder();

/** A POST / with Host and the given field lines. */
const post = (...fields: string[]) => head("POST / HTTP/1.1", "Host: a", ...fields);
/** A GET / with Host and the given field lines. */
const get = (...fields: string[]) => head("GET / HTTP/1.1", "Host: a", ...fields);

function parse(bytes: Uint8Array): ParsedRequest {
  const parsed = parseRequestHead(bytes);
  assert.ok(parsed !== null, "head is complete");
  return parsed;
}

const VALID: [string, Uint8Array, Partial<Record<string, unknown>>][] = [
  ["a GET with Host", head("GET /a?b=1 HTTP/1.1", "Host: example.com"), {
    method: "GET",
    path: "/a?b=1",
    authority: "example.com",
    version: "1.1",
    framing: 0,
    keepAlive: true,
    upgrade: false,
  }],
  ["a POST with Content-Length", post("Content-Length: 5"), {
    framing: 5,
  }],
  [
    "identical repeated Content-Length values as one",
    post("Content-Length: 5, 5", "content-length: 5"),
    { framing: 5 },
  ],
  ["a chunked POST", post("Transfer-Encoding: chunked"), {
    framing: "chunked",
  }],
  [
    "Transfer-Encoding in any case",
    post("Transfer-Encoding: Chunked"),
    {
      framing: "chunked",
    },
  ],
  ["HTTP/1.0 without Host and without keep-alive", head("GET / HTTP/1.0"), {
    version: "1.0",
    authority: "",
    keepAlive: false,
  }],
  ["HTTP/1.0 asking for keep-alive", head("GET / HTTP/1.0", "Connection: Keep-Alive"), {
    keepAlive: true,
  }],
  ["Connection: close", get("Connection: close"), {
    keepAlive: false,
  }],
  [
    "an absolute-form target, whose authority replaces Host",
    head("GET http://b.example:8080/x?y HTTP/1.1", "Host: a"),
    {
      authority: "b.example:8080",
      path: "/x?y",
      scheme: "http",
    },
  ],
  [
    "an absolute-form target without a path",
    head("GET HTTPS://b.example HTTP/1.1", "Host: b.example"),
    {
      authority: "b.example",
      path: "/",
      scheme: "https",
    },
  ],
  ["an absolute-form target with only a query", head("GET http://b?q HTTP/1.1", "Host: b"), {
    path: "/?q",
  }],
  ["CONNECT in authority form", head("CONNECT 10.0.0.1:443 HTTP/1.1", "Host: 10.0.0.1:443"), {
    path: "10.0.0.1:443",
    authority: "10.0.0.1:443",
    upgrade: true,
  }],
  ["CONNECT to an IPv6 literal", head("CONNECT [::1]:80 HTTP/1.1", "Host: [::1]:80"), {
    authority: "[::1]:80",
  }],
  ["OPTIONS *", head("OPTIONS * HTTP/1.1", "Host: a"), { path: "*" }],
  [
    "Expect: 100-continue",
    head("PUT / HTTP/1.1", "Host: a", "Expect: 100-Continue", "Content-Length: 1"),
    {
      expectContinue: true,
    },
  ],
  [
    "a WebSocket upgrade",
    head("GET /ws HTTP/1.1", "Host: a", "Connection: keep-alive, Upgrade", "Upgrade: websocket"),
    { upgrade: true },
  ],
  [
    "Upgrade without Connection: upgrade as no upgrade",
    get("Upgrade: websocket"),
    { upgrade: false },
  ],
  ["empty lines before the request line", latin1("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), {
    path: "/",
  }],
  ["an empty Host", head("GET / HTTP/1.1", "Host:"), { authority: "" }],
  ["a lower-case method token as it is", head("get / HTTP/1.1", "Host: a"), { method: "get" }],
];

for (const [name, bytes, want] of VALID) {
  Deno.test(`parseRequestHead() accepts ${name}`, () => {
    const parsed = parse(bytes);
    const got: Record<string, unknown> = { ...parsed, ...parsed.head };
    for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k], v, k);
    assert.equal(parsed.size, bytes.length);
  });
}

Deno.test("parseRequestHead() keeps field order, repeats, obs-text, and trims OWS", () => {
  const parsed = parse(get("X-A:  1 \t", "x-b: caf\xe9", "X-A: 2"));
  assert.deepEqual([...parsed.head.headers], [
    ["host", "a"],
    ["x-a", "1"],
    ["x-b", "café"],
    ["x-a", "2"],
  ]);
});

Deno.test("parseRequestHead() leaves the bytes after the head unread", () => {
  const bytes = enc.encode("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET");
  assert.equal(parse(bytes).size, bytes.length - 6);
});

const INVALID: [string, Uint8Array, number][] = [
  [
    "both Content-Length and Transfer-Encoding",
    post("Content-Length: 3", "Transfer-Encoding: chunked"),
    400,
  ],
  ["Content-Length: 1, 2", post("Content-Length: 1, 2"), 400],
  ["two differing Content-Length fields", post("Content-Length: 1", "Content-Length: 2"), 400],
  ["a negative Content-Length", post("Content-Length: -1"), 400],
  ["a signed Content-Length", post("Content-Length: +1"), 400],
  ["a hex Content-Length", post("Content-Length: 0x5"), 400],
  ["an empty Content-Length", post("Content-Length:"), 400],
  ["an overflowing Content-Length", post("Content-Length: 99999999999999999999"), 400],
  [
    "Transfer-Encoding: gzip, chunked (not implemented)",
    post("Transfer-Encoding: gzip, chunked"),
    501,
  ],
  [
    "Transfer-Encoding: chunked, gzip (chunked not final)",
    post("Transfer-Encoding: chunked, gzip"),
    400,
  ],
  ["Transfer-Encoding: gzip alone", post("Transfer-Encoding: gzip"), 400],
  ["Transfer-Encoding: chunked, chunked", post("Transfer-Encoding: chunked, chunked"), 400],
  [
    "chunked in two Transfer-Encoding fields",
    post("Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),
    400,
  ],
  ["an empty Transfer-Encoding", post("Transfer-Encoding: ,"), 400],
  ["Transfer-Encoding in HTTP/1.0", head("POST / HTTP/1.0", "Transfer-Encoding: chunked"), 400],
  ["a bare LF ending the request line", latin1("GET / HTTP/1.1\nHost: a\r\n\r\n"), 400],
  ["a bare LF ending a header line", latin1("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"), 400],
  ["a bare LF blank line", latin1("GET / HTTP/1.1\r\nHost: a\r\n\n"), 400],
  ["bare LF lines only", latin1("GET / HTTP/1.1\nHost: a\n\n"), 400],
  ["a bare CR inside a value", get("X: a\rb"), 400],
  ["obs-fold with a space", get("X: a", " b"), 400],
  ["obs-fold with a tab", get("X: a", "\tb"), 400],
  ["a space before the colon", head("GET / HTTP/1.1", "Host : a"), 400],
  ["a tab before the colon", get("X\t: b"), 400],
  ["an empty field name", get(": b"), 400],
  ["a line without a colon", get("X b"), 400],
  ["a CTL in a value", get("X: a\x01b"), 400],
  ["a NUL in a value", get("X: a\x00b"), 400],
  ["a DEL in a value", get("X: a\x7fb"), 400],
  ["a DEL in a name", get("X\x7f: b"), 400],
  ["a separator in a name", get("X(y): b"), 400],
  ["a non-ASCII byte in a name", get("X\xe9: b"), 400],
  ["a missing Host in HTTP/1.1", head("GET / HTTP/1.1", "X: a"), 400],
  ["two Host fields", get("Host: a"), 400],
  ["two Host fields in HTTP/1.0", head("GET / HTTP/1.0", "Host: a", "Host: b"), 400],
  ["a Host with a space", head("GET / HTTP/1.1", "Host: a b"), 400],
  ["a Host with a slash", head("GET / HTTP/1.1", "Host: a/b"), 400],
  ["a Host with userinfo", head("GET / HTTP/1.1", "Host: u@a"), 400],
  ["a method with a separator", head("G(T / HTTP/1.1", "Host: a"), 400],
  ["two spaces after the method", head("GET  / HTTP/1.1", "Host: a"), 400],
  ["a space inside the target", head("GET /a b HTTP/1.1", "Host: a"), 400],
  ["a fragment in the target", head("GET /a#b HTTP/1.1", "Host: a"), 400],
  ["a non-ASCII target", head("GET /caf\xe9 HTTP/1.1", "Host: a"), 400],
  ["a CTL in the target", head("GET /a\x01 HTTP/1.1", "Host: a"), 400],
  ["a relative target", head("GET a/b HTTP/1.1", "Host: a"), 400],
  ["* with GET", head("GET * HTTP/1.1", "Host: a"), 400],
  ["CONNECT without a port", head("CONNECT example.com HTTP/1.1", "Host: example.com"), 400],
  ["CONNECT with a path", head("CONNECT /x HTTP/1.1", "Host: a"), 400],
  ["CONNECT with a port over 65535", head("CONNECT a:65536 HTTP/1.1", "Host: a"), 400],
  ["CONNECT with a body", head("CONNECT a:1 HTTP/1.1", "Host: a:1", "Content-Length: 4"), 400],
  ["an absolute-form target with userinfo", head("GET http://u@a/ HTTP/1.1", "Host: a"), 400],
  ["an absolute-form target of another scheme", head("GET ftp://a/ HTTP/1.1", "Host: a"), 400],
  ["an absolute-form target without authority", head("GET http:///x HTTP/1.1", "Host: a"), 400],
  ["a lower-case version", head("GET / http/1.1", "Host: a"), 400],
  ["a space after the version", head("GET / HTTP/1.1 ", "Host: a"), 400],
  ["a missing version", head("GET /", "Host: a"), 400],
  ["HTTP/2.0 (version not supported)", head("GET / HTTP/2.0", "Host: a"), 505],
  ["HTTP/1.2 (version not supported)", head("GET / HTTP/1.2", "Host: a"), 505],
  ["a 61 KiB header block", get(`X: ${"a".repeat(61 * 1024)}`), 431],
  ["101 header fields", get(...Array.from({ length: 100 }, (_, i) => `X-${i}: v`)), 431],
];

for (const [name, bytes, status] of INVALID) {
  Deno.test(`parseRequestHead() rejects ${name} with ${status}`, () => {
    assert.equal(rejection(() => parseRequestHead(bytes)).status, status);
  });
}

Deno.test("parseRequestHead() accepts exactly 100 header fields", () => {
  const fields = Array.from({ length: 99 }, (_, i) => `X-${i}: v`);
  assert.equal(parse(get(...fields)).head.headers.size, 100);
});

Deno.test("parseRequestHead() answers 431 before the end of an endless head", () => {
  const bytes = enc.encode(`GET / HTTP/1.1\r\nHost: a\r\nX: ${"a".repeat(61 * 1024)}`);
  assert.equal(rejection(() => parseRequestHead(bytes)).kind, "headers_too_large");
  assert.equal(parseRequestHead(bytes.subarray(0, 1000)), null);
});

Deno.test("parseRequestHead() honours smaller limits", () => {
  const bytes = get("X: 1", "Y: 2");
  assert.equal(rejection(() => parseRequestHead(bytes, { maxHeaders: 2 })).status, 431);
  assert.equal(rejection(() => parseRequestHead(bytes, { maxHeaderBytes: 20 })).status, 431);
});

Deno.test("parseRequestHead() finds a head fed one byte at a time, resuming its scan", () => {
  const bytes = head("POST /x HTTP/1.1", "Host: a", "Content-Length: 0", "X: y");
  let scanFrom = 0;
  for (let n = 1; n < bytes.length; n++) {
    assert.equal(parseRequestHead(bytes.subarray(0, n), { scanFrom }), null, `at ${n}`);
    scanFrom = Math.max(0, n - 2);
  }
  assert.equal(parseRequestHead(bytes, { scanFrom })?.head.path, "/x");
});

Deno.test("HttpCodecError names the kind, the place and the reason", () => {
  const e = rejection(() => parseRequestHead(post("Content-Length: 1, 2")));
  assert.equal(e.kind, "bad_request");
  assert.equal(e.where, "header content-length");
  assert.match(e.message, /^Bad request at header content-length: Differing values/);
});

const RESPONSES: [string, Uint8Array, string | undefined, Record<string, unknown>][] = [
  ["a 200 with Content-Length", head("HTTP/1.1 200 OK", "Content-Length: 5"), undefined, {
    status: 200,
    reason: "OK",
    framing: 5,
    keepAlive: true,
  }],
  ["a chunked 200", head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), undefined, {
    framing: "chunked",
  }],
  ["a 200 delimited by the close", head("HTTP/1.1 200 OK"), undefined, {
    framing: "close",
    keepAlive: false,
  }],
  ["a response to HEAD as bodiless", head("HTTP/1.1 200 OK", "Content-Length: 5"), "HEAD", {
    framing: 0,
  }],
  ["a 204 as bodiless", head("HTTP/1.1 204 No Content"), undefined, { framing: 0 }],
  ["a 304 as bodiless", head("HTTP/1.1 304 Not Modified", "Content-Length: 9"), undefined, {
    framing: 0,
  }],
  ["a 100 as bodiless", head("HTTP/1.1 100 Continue"), undefined, { framing: 0, status: 100 }],
  ["a 200 to CONNECT as a tunnel", head("HTTP/1.1 200 Connection established"), "CONNECT", {
    framing: 0,
    keepAlive: true,
  }],
  ["a status line without a reason", head("HTTP/1.1 200", "Content-Length: 0"), undefined, {
    reason: "",
    framing: 0,
  }],
  [
    "an HTTP/1.0 keep-alive response",
    head("HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 1"),
    undefined,
    { version: "1.0", keepAlive: true },
  ],
  [
    "an HTTP/1.0 response without keep-alive",
    head("HTTP/1.0 200 OK", "Content-Length: 1"),
    undefined,
    { keepAlive: false },
  ],
  [
    "Connection: close",
    head("HTTP/1.1 200 OK", "Connection: close", "Content-Length: 1"),
    undefined,
    { keepAlive: false },
  ],
];

for (const [name, bytes, method, want] of RESPONSES) {
  Deno.test(`parseResponseHead() reads ${name}`, () => {
    const parsed = parseResponseHead(bytes, { method });
    assert.ok(parsed !== null);
    const got: Record<string, unknown> = { ...parsed, ...parsed.head };
    for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k], v, k);
  });
}

const BAD_RESPONSES: [string, Uint8Array][] = [
  [
    "both Content-Length and Transfer-Encoding",
    head("HTTP/1.1 200 OK", "Content-Length: 1", "Transfer-Encoding: chunked"),
  ],
  [
    "differing Content-Length fields",
    head("HTTP/1.1 200 OK", "Content-Length: 1", "Content-Length: 2"),
  ],
  ["a Transfer-Encoding other than chunked", head("HTTP/1.1 200 OK", "Transfer-Encoding: gzip")],
  ["a four-digit status", head("HTTP/1.1 2000 OK")],
  ["a two-digit status", head("HTTP/1.1 20 OK")],
  ["a status over 599", head("HTTP/1.1 600 X")],
  ["an HTTP/2 status line", head("HTTP/2 200")],
  ["obs-fold", head("HTTP/1.1 200 OK", "X: a", " b")],
  ["a bare LF", latin1("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n")],
  ["a CTL in the reason", head("HTTP/1.1 200 O\x01K")],
];

for (const [name, bytes] of BAD_RESPONSES) {
  Deno.test(`parseResponseHead() rejects ${name} as a bad response`, () => {
    const e = rejection(() => parseResponseHead(bytes));
    assert.equal(e.kind, "bad_response");
    assert.equal(e.status, 502);
  });
}
