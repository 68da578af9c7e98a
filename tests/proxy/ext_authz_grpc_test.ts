import assert from "node:assert/strict";
import { bytesBody, EMPTY_BODY, HeaderMap, type RequestHead } from "../../http/mod.ts";
import { grpcFrame, grpcUnframe, ProtoReader, ProtoWriter, varintBytes } from "../../grpc/mod.ts";
import {
  callCheck,
  CHECK_PATH,
  type CheckRequest,
  type CheckResponse,
  decodeCheckRequest,
  decodeCheckResponse,
  encodeCheckRequest,
  encodeCheckResponse,
  type SendFn,
} from "../../proxy/ext_authz_grpc.ts";

/** Bytes from numbers and ASCII strings, so expected encodings read like the wire. */
function wire(...parts: (number | string)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") out.push(p);
    else for (const c of p) out.push(c.charCodeAt(0));
  }
  return Uint8Array.from(out);
}

const REQUEST: CheckRequest = {
  source: { address: { address: "1.2.3.4", port: 80 }, principal: "p" },
  destination: { address: { address: "5.6.7.8", port: 8080 } },
  http: {
    id: "i",
    method: "GET",
    headers: new Map([[":path", "/"]]),
    path: "/",
    host: "h",
    scheme: "http",
    protocol: "HTTP/2",
  },
};

// Worked out by hand from the field numbers (tag = field << 3 | wire type).
// deno-fmt-ignore
const REQUEST_BYTES = wire(
  0x0a, 0x52, //                         CheckRequest.attributes (1), 82 bytes
  0x0a, 0x12, //                           AttributeContext.source (1), 18 bytes
  0x0a, 0x0d, //                             Peer.address (1), 13 bytes
  0x0a, 0x0b, //                               Address.socket_address (1), 11 bytes
  0x12, 0x07, "1.2.3.4", //                      SocketAddress.address (2)
  0x18, 0x50, //                                 SocketAddress.port_value (3) = 80
  0x22, 0x01, "p", //                        Peer.principal (4)
  0x12, 0x10, //                           AttributeContext.destination (2), 16 bytes
  0x0a, 0x0e, 0x0a, 0x0c, //                 address, socket_address
  0x12, 0x07, "5.6.7.8", //                    address
  0x18, 0x90, 0x3f, //                         port_value = 8080 (varint 0x1f90)
  0x22, 0x2a, //                           AttributeContext.request (4), 42 bytes
  0x12, 0x28, //                             Request.http (2), 40 bytes
  0x0a, 0x01, "i", //                          HttpRequest.id (1)
  0x12, 0x03, "GET", //                        method (2)
  0x1a, 0x0a, 0x0a, 0x05, ":path", 0x12, 0x01, "/", // headers (3): map entry {key 1, value 2}
  0x22, 0x01, "/", //                          path (4)
  0x2a, 0x01, "h", //                          host (5)
  0x32, 0x04, "http", //                       scheme (6)
  0x52, 0x06, "HTTP/2", //                     protocol (10): tag 10 << 3 | 2 = 0x52
);

const DENY: CheckResponse = {
  status: { code: 7, message: "" },
  denied: { status: 403, headers: [{ key: "x-r", value: "no" }], body: "denied" },
};

// deno-fmt-ignore
const DENY_BYTES = wire(
  0x0a, 0x02, 0x08, 0x07, //             CheckResponse.status (1): google.rpc.Status.code (1) = 7
  0x12, 0x1a, //                         denied_response (2), 26 bytes
  0x0a, 0x03, 0x08, 0x93, 0x03, //         DeniedHttpResponse.status (1): HttpStatus.code (1) = 403
  0x12, 0x0b, //                           headers (2): HeaderValueOption, 11 bytes
  0x0a, 0x09, //                             HeaderValueOption.header (1), 9 bytes
  0x0a, 0x03, "x-r", 0x12, 0x02, "no", //      HeaderValue.key (1), value (2)
  0x1a, 0x06, "denied", //                 body (3)
);

const ALLOW: CheckResponse = {
  status: { code: 0, message: "" },
  ok: {
    headers: [{ key: "x-ext-user", value: "alice", append: false }],
    headersToRemove: ["authorization"],
    responseHeadersToAdd: [],
  },
};

// deno-fmt-ignore
const ALLOW_BYTES = wire(
  0x0a, 0x00, //                         status (1), present and empty: code 0
  0x1a, 0x28, //                         ok_response (3), 40 bytes
  0x12, 0x17, //                           OkHttpResponse.headers (2), 23 bytes
  0x0a, 0x13, //                             HeaderValueOption.header (1), 19 bytes
  0x0a, 0x0a, "x-ext-user", 0x12, 0x05, "alice",
  0x12, 0x00, //                             append (2): BoolValue with value false (not written)
  0x2a, 0x0d, "authorization", //          headers_to_remove (5)
);

Deno.test("encodeCheckRequest() writes Envoy's field numbers, byte for byte", () => {
  assert.deepEqual(encodeCheckRequest(REQUEST), REQUEST_BYTES);
  assert.deepEqual(decodeCheckRequest(REQUEST_BYTES), REQUEST);
});

Deno.test("encodeCheckResponse() and decodeCheckResponse() agree with hand-checked bytes", () => {
  const cases: [string, CheckResponse, Uint8Array][] = [
    ["a denial with status, header and body", DENY, DENY_BYTES],
    ["an allow with an upstream header and a removal", ALLOW, ALLOW_BYTES],
  ];
  for (const [what, message, bytes] of cases) {
    assert.deepEqual(encodeCheckResponse(message), bytes, what);
    assert.deepEqual(decodeCheckResponse(bytes), message, what);
  }
});

Deno.test("decodeCheckResponse() skips fields it does not know, of every wire type", () => {
  const unknown = new ProtoWriter()
    .message(4, new ProtoWriter().string(1, "dynamic_metadata"))
    .varint(99, 12345)
    .finish();
  const fixed = wire(0x49, 1, 2, 3, 4, 5, 6, 7, 8, 0x55, 1, 2, 3, 4); // field 9 i64, field 10 i32
  const bytes = new Uint8Array([...unknown, ...fixed, ...DENY_BYTES]);
  assert.deepEqual(decodeCheckResponse(bytes), DENY);
});

Deno.test("decodeCheckResponse() reads what newer Envoy servers send", () => {
  const option = (w: ProtoWriter) => new ProtoWriter().message(2, w);
  const cases: [string, Uint8Array, CheckResponse][] = [
    [
      "raw_value (3) when value is empty, append_action (3)",
      new ProtoWriter().message(
        3,
        option(
          new ProtoWriter().message(1, new ProtoWriter().string(1, "k").bytes(3, wire("raw")))
            .varint(3, 2),
        ),
      ).finish(),
      {
        status: { code: 0, message: "" },
        ok: {
          headers: [{ key: "k", value: "raw", appendAction: 2 }],
          headersToRemove: [],
          responseHeadersToAdd: [],
        },
      },
    ],
    [
      "error_response (5) and a status message",
      new ProtoWriter()
        .message(1, new ProtoWriter().varint(1, 14).string(2, "busy"))
        .message(5, new ProtoWriter().string(3, "try later"))
        .finish(),
      {
        status: { code: 14, message: "busy" },
        error: { status: 0, headers: [], body: "try later" },
      },
    ],
    ["nothing at all: code 0", new Uint8Array(0), { status: { code: 0, message: "" } }],
  ];
  for (const [what, bytes, want] of cases) assert.deepEqual(decodeCheckResponse(bytes), want, what);
});

Deno.test("ProtoWriter.varint() writes negatives as ten bytes and ProtoReader.int32() reads them back", () => {
  assert.deepEqual(varintBytes(-1), wire(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1));
  assert.deepEqual(varintBytes(300), wire(0xac, 0x02));
  assert.deepEqual(varintBytes(2 ** 32), wire(0x80, 0x80, 0x80, 0x80, 0x10));
  const r = new ProtoReader(new ProtoWriter().varint(1, -7).varint(2, 4_000_000_000).finish());
  assert.ok(r.next());
  assert.equal(r.int32(), -7);
  assert.ok(r.next());
  assert.equal(r.uint32(), 4_000_000_000);
  assert.ok(!r.next());
});

Deno.test("decodeCheckResponse() refuses malformed messages", () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ["a length past the end", wire(0x0a, 0x05, 0x08), /field 1 is truncated/],
    ["a varint cut off", wire(0x48, 0x80), /varint is truncated/],
    ["an eleven-byte varint", wire(0x48, ...new Array(10).fill(0xff), 1), /longer than 10/],
    ["a group (wire type 3)", wire(0x4b), /field 9 has unsupported wire type 3/],
    ["status as a varint", wire(0x08, 0x01), /field 1 has wire type 0, expected 2/],
    ["field number 0", wire(0x02, 0x00), /field number 0/],
  ];
  for (const [what, bytes, error] of cases) {
    assert.throws(() => decodeCheckResponse(bytes), error, what);
  }
});

Deno.test("grpcFrame() and grpcUnframe() use the 5-byte prefix", () => {
  const framed = grpcFrame(wire("abc"));
  assert.deepEqual(framed, wire(0, 0, 0, 0, 3, "abc"));
  assert.deepEqual(grpcUnframe(new Uint8Array([...framed, ...grpcFrame(wire())])), [
    wire("abc"),
    wire(),
  ]);
  assert.throws(() => grpcUnframe(wire(1, 0, 0, 0, 0)), /compressed/);
  assert.throws(() => grpcUnframe(wire(0, 0, 0, 0, 9, "ab")), /truncated/);
  assert.throws(() => grpcUnframe(wire(0, 0)), /prefix is truncated/);
});

/** A send function answering with fixed parts, and the request it was given. */
function fakeSend(
  status: number,
  headers: [string, string][],
  body: Uint8Array,
  trailers?: [string, string][],
): { send: SendFn; sent: { head?: RequestHead; body?: Uint8Array } } {
  const sent: { head?: RequestHead; body?: Uint8Array } = {};
  const send: SendFn = async (head, b) => {
    sent.head = head;
    sent.body = (await b.read()) ?? undefined;
    return {
      head: { status, headers: new HeaderMap(headers) },
      body: body.length || trailers
        ? bytesBody(body, trailers && new HeaderMap(trailers))
        : EMPTY_BODY,
    };
  };
  return { send, sent };
}

const GRPC = ["content-type", "application/grpc"] as [string, string];
const OPTIONS = { authority: "authz.ns1.svc.cluster.local", timeoutMs: 600_000 };

Deno.test("callCheck() posts a framed CheckRequest and reads the answer when grpc-status is 0", async () => {
  const { send, sent } = fakeSend(200, [GRPC], grpcFrame(DENY_BYTES), [["grpc-status", "0"]]);
  assert.deepEqual(await callCheck(send, REQUEST, OPTIONS), DENY);
  assert.equal(sent.head?.method, "POST");
  assert.equal(sent.head?.path, CHECK_PATH);
  assert.equal(sent.head?.authority, OPTIONS.authority);
  assert.deepEqual([...sent.head!.headers], [
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ["grpc-timeout", "600000m"],
  ]);
  assert.deepEqual(sent.body, grpcFrame(REQUEST_BYTES));
});

Deno.test("callCheck() fails on transport and gRPC errors", async () => {
  const cases: [string, ReturnType<typeof fakeSend>, RegExp][] = [
    [
      "a trailers-only error",
      fakeSend(200, [GRPC, ["grpc-status", "7"], ["grpc-message", "no%20way"]], wire()),
      /grpc-status 7: no way/,
    ],
    [
      "an error in the trailers",
      fakeSend(200, [GRPC], wire(), [["grpc-status", "14"]]),
      /grpc-status 14$/,
    ],
    ["no grpc-status", fakeSend(200, [GRPC], grpcFrame(DENY_BYTES), []), /no grpc-status/],
    ["an HTTP error", fakeSend(503, [], wire("x")), /HTTP 503/],
    ["not gRPC", fakeSend(200, [["content-type", "text/plain"]], wire("x")), /text\/plain/],
    [
      "two messages",
      fakeSend(200, [GRPC], new Uint8Array([...grpcFrame(wire()), ...grpcFrame(wire())]), [
        ["grpc-status", "0"],
      ]),
      /2 response messages/,
    ],
  ];
  for (const [what, { send }, error] of cases) {
    await assert.rejects(callCheck(send, REQUEST, OPTIONS), error, what);
  }
});
