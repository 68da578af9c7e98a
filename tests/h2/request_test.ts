/**
 * h2/ carrying ordinary requests (RFC 9113 §8.1, §8.3): pseudo-header rules on both sides,
 * bodies checked against content-length, trailers both ways, resets before a response. Our
 * sessions against each other and against a raw-frame peer. Loopback 127.0.14.7.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import { connectH2, serveH2 } from "../../h2/session.ts";
import type { H2Stream, H2StreamError } from "../../h2/stream.ts";
import type { H2Headers } from "../../h2/fields.ts";
import {
  dial,
  echoRequest,
  ErrorCode,
  exchange,
  exchangeHead,
  FrameType,
  listen,
  once,
  pair,
  pattern,
  rawClient,
  RawPeer,
  until,
} from "./_helpers.ts";

const HOST = "127.0.14.7";

const GET = { ":method": "GET", ":scheme": "http", ":path": "/", ":authority": "svc.ns:80" };

Deno.test("request() refuses requests that RFC 9113 §8.3.1 calls malformed", async () => {
  await using p = await pair(HOST, echoRequest);
  const cases: [string, Record<string, string>][] = [
    ["GET without :path", { ":method": "GET", ":scheme": "http", ":authority": "a" }],
    ["GET without :scheme", { ":method": "GET", ":path": "/", ":authority": "a" }],
    ["an empty :path", { ...GET, ":path": "" }],
    ["an http :path not starting with /", { ...GET, ":path": "index.html" }],
    ["* for a method other than OPTIONS", { ...GET, ":path": "*" }],
    ["a space in :path", { ...GET, ":path": "/a b" }],
    ["userinfo in :authority", { ...GET, ":authority": "user@svc.ns" }],
    ["an empty :authority", { ...GET, ":authority": "" }],
    ["a method that is not a token", { ...GET, ":method": "GE T" }],
    ["a bad :scheme", { ...GET, ":scheme": "1http" }],
    ["host differing from :authority", { ...GET, host: "other.ns" }],
    ["an unknown pseudo-header", { ...GET, ":protocol": "websocket" }],
    ["a connection-specific field", { ...GET, connection: "close" }],
    ["te other than trailers", { ...GET, te: "gzip" }],
    ["a repeated content-length", { ...GET, "content-length": "1, 1" }],
    ["CONNECT with :path", { ":method": "CONNECT", ":authority": "a:1", ":path": "/" }],
  ];
  for (const [what, headers] of cases) {
    assert.throws(() => p.client.request(headers), TypeError, what);
  }
  assert.equal(p.client.activeStreams, 0);
  const ok = p.client.request(
    { ...GET, ":method": "OPTIONS", ":path": "*", host: "SVC.ns:80" },
    { endStream: true },
  );
  assert.equal((await exchange(ok)).head[":status"], "200");
});

Deno.test("serveH2() resets malformed non-CONNECT requests with PROTOCOL_ERROR", async () => {
  const handled: string[] = [];
  await using r = await rawClient(HOST, (s, h) => {
    handled.push(String(h[":path"]));
    echoRequest(s, h);
  });
  const get: [string, string][] = [[":method", "GET"], [":scheme", "http"], [":path", "/"]];
  const bad: [string, string][][] = [
    [[":method", "GET"], [":scheme", "http"]],
    [[":method", "GET"], [":path", "/"]],
    [[":method", "GET"], [":scheme", "http"], [":path", "nope"]],
    [[":method", "GET"], [":scheme", "http"], [":path", "/a\x7fb"]],
    [...get, [":authority", "u@h"]],
    [...get, [":authority", "a"], ["host", "b"]],
    [...get, ["transfer-encoding", "chunked"]],
    [...get, ["te", "deflate"]],
    [...get, ["content-length", "abc"]],
    [...get, ["content-length", "1"], ["content-length", "1"]],
    [...get, [":status", "200"]],
  ];
  let id = 1;
  for (const fields of bad) {
    r.peer.headers(id, fields, true);
    assert.equal(await r.peer.reset(id), ErrorCode.PROTOCOL_ERROR, JSON.stringify(fields));
    id += 2;
  }
  r.peer.headers(id, [...get.slice(0, 2), [":path", "/good"]], true);
  await r.peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === id);
  assert.deepEqual(handled, ["/good"]);
});

Deno.test("a POST with a body and trailers gets the echo and trailers back", async () => {
  await using p = await pair(HOST, echoRequest);
  const data = pattern(300_000, 3);
  const s = p.client.request({ ...GET, ":method": "POST", ":path": "/up?x=1" });
  s.write(data);
  s.sendTrailers({ "x-checksum": "abc" });
  const { head, body, trailers } = await exchange(s);
  assert.equal(head[":status"], "200");
  assert.deepEqual(
    [head["x-method"], head["x-path"], head["x-scheme"], head["x-authority"]],
    ["POST", "/up?x=1", "http", "svc.ns:80"],
  );
  assert.ok(body.equals(data));
  assert.equal(trailers["x-body-bytes"], String(data.length));
  assert.equal(trailers["x-request-trailer"], "abc");
  assert.deepEqual(s.trailers, trailers);
  await until(() => p.client.activeStreams === 0 && p.servers[0].activeStreams === 0);
});

Deno.test("endAfterHeaders is set for a request and a response without body", async () => {
  const seen: boolean[] = [];
  await using p = await pair(HOST, (s) => {
    seen.push(s.endAfterHeaders);
    s.respond(204, {}, { endStream: true });
  });
  const s = p.client.request(GET, { endStream: true });
  const head = await once<H2Headers>(s, "response");
  assert.equal(head[":status"], "204");
  assert.equal(s.endAfterHeaders, true);
  assert.deepEqual(seen, [true]);
});

Deno.test("sendTrailers() and respond() refuse what cannot be sent", async () => {
  const errors: string[] = [];
  await using p = await pair(HOST, (s) => {
    s.on("error", () => {});
    for (const f of [() => s.sendTrailers({ a: "1" }), () => s.respond(100)]) {
      try {
        f();
      } catch (e) {
        errors.push((e as Error).name);
      }
    }
    s.respond(200);
    for (const t of [{ ":status": "200" }, { connection: "x" }]) {
      try {
        s.sendTrailers(t);
      } catch (e) {
        errors.push((e as Error).name);
      }
    }
    s.end();
    try {
      s.sendTrailers({ a: "1" });
    } catch (e) {
      errors.push((e as Error).name);
    }
  });
  const s = p.client.request(GET, { endStream: true });
  await once(s, "response");
  assert.deepEqual(errors, ["Error", "RangeError", "TypeError", "TypeError", "Error"]);
});

Deno.test("DATA that differs from content-length resets the stream with PROTOCOL_ERROR", async () => {
  const errors: string[] = [];
  const ended: number[] = [];
  await using r = await rawClient(HOST, (s) => {
    s.on("error", (e: H2StreamError) => errors.push(e.code));
    s.on("end", () => ended.push(s.id));
    s.resume();
  });
  const post: [string, string][] = [[":method", "POST"], [":scheme", "http"], [":path", "/"]];
  r.peer.headers(1, [...post, ["content-length", "5"]]);
  r.peer.data(1, Buffer.from("abc"), true);
  assert.equal(await r.peer.reset(1), ErrorCode.PROTOCOL_ERROR, "short body");
  r.peer.headers(3, [...post, ["content-length", "2"]]);
  r.peer.data(3, Buffer.from("abc"));
  assert.equal(await r.peer.reset(3), ErrorCode.PROTOCOL_ERROR, "long body");
  r.peer.headers(5, [...post, ["content-length", "5"]], true);
  assert.equal(await r.peer.reset(5), ErrorCode.PROTOCOL_ERROR, "no body at all");
  r.peer.headers(7, [...post, ["content-length", "3"]]);
  r.peer.data(7, Buffer.from("abc"));
  r.peer.headers(7, [["x-t", "1"]], true);
  await until(() => ended.length === 1);
  assert.deepEqual(ended, [7], "the body matching its length, then trailers, ends cleanly");
  assert.deepEqual(errors, ["ERR_H2_STREAM_RESET", "ERR_H2_STREAM_RESET"]);
});

Deno.test("a response shorter than its content-length errors; after HEAD it is fine", async () => {
  const sockets: Socket[] = [];
  await using l = await listen(HOST, (s) => sockets.push(s));
  const client = connectH2(await dial(HOST, l.port));
  await until(() => sockets.length === 1);
  const server = new RawPeer(sockets[0], "server");
  await client.ready;
  const short = client.request(GET, { endStream: true });
  const err = once<H2StreamError>(short, "error");
  const head = client.request({ ...GET, ":method": "HEAD" }, { endStream: true });
  const headResponse = exchangeHead(head);
  server.headers(1, [[":status", "200"], ["content-length", "4"]]);
  server.data(1, Buffer.from("ab"), true);
  server.headers(3, [[":status", "200"], ["content-length", "4"]], true);
  assert.equal((await err).rstCode, ErrorCode.PROTOCOL_ERROR);
  const [h, body] = await headResponse;
  assert.equal(h["content-length"], "4");
  assert.equal(body.length, 0);
  client.destroy();
});

Deno.test("a reset before the response errors the client stream, whatever the code", async () => {
  await using p = await pair(HOST, (s) => s.close(ErrorCode.CANCEL));
  const s = p.client.request(GET, { endStream: true });
  const e = await once<H2StreamError>(s, "error");
  assert.equal(e.code, "ERR_H2_STREAM_RESET");
  assert.equal(e.rstCode, ErrorCode.CANCEL);
});

Deno.test("serveH2() reads a socket paused with bytes put back by a sniffer", async () => {
  const got: string[] = [];
  await using l = await listen(HOST, (sock) => {
    sock.once("data", (first: Buffer) => {
      sock.pause();
      sock.unshift(first);
      const onStream = (s: H2Stream, h: H2Headers) => {
        got.push(String(h[":path"]));
        echoRequest(s, h);
      };
      setTimeout(() => serveH2(sock, {}, onStream), 10);
    });
  });
  const client = connectH2(await dial(HOST, l.port));
  const { head } = await exchange(
    client.request({ ...GET, ":path": "/sniffed" }, { endStream: true }),
  );
  assert.equal(head[":status"], "200");
  assert.deepEqual(got, ["/sniffed"]);
  client.destroy();
});
