/**
 * h2/ carrying ordinary requests against python3-h2 (`py_h2_requests.py`), both ways, over
 * cleartext loopback 127.0.14.6. python3-h2 validates the header blocks it gets from us, so a
 * pseudo-header or trailer our side gets wrong fails these tests.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { connectH2, type H2Session, serveH2 } from "../../h2/session.ts";
import { whyNoPythonH2 } from "../interop/_python_h2.ts";
import { dial, echoRequest, exchange, listen, pattern } from "./_helpers.ts";
import { runPyRequests, startPyRequestsServer } from "./_python_requests.ts";

const HOST = "127.0.14.6";

const noPythonH2 = whyNoPythonH2();
if (noPythonH2) console.log(`Skipping python3-h2 tests: ${noPythonH2}`);
const ignore = noPythonH2 !== undefined;

Deno.test({
  name: "serveH2() answers a python3-h2 POST with trailers and a GET, trailers back on both",
  ignore,
  fn: async () => {
    const sessions: H2Session[] = [];
    await using l = await listen(HOST, (s: Socket) => sessions.push(serveH2(s, {}, echoRequest)));
    const r = await runPyRequests(`${HOST}:${l.port}`, "--payload-bytes", "200000");
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.resets, []);
    const [post, get] = r.responses;
    assert.equal(post.status, 200);
    assert.ok(post.echo_ok, "the 200,000 bytes came back");
    assert.deepEqual(post.headers?.filter(([n]) => n.startsWith("x-")), [
      ["x-method", "POST"],
      ["x-path", "/post"],
      ["x-scheme", "http"],
      ["x-authority", "svc.ns1:8080"],
    ]);
    assert.deepEqual(post.trailers, [["x-body-bytes", "200000"], ["x-request-trailer", "200000"]]);
    assert.equal(get.status, 200);
    assert.deepEqual(get.headers?.find(([n]) => n === "x-path"), ["x-path", "/get?x=1"]);
    assert.deepEqual(get.trailers, [["x-body-bytes", "0"], ["x-request-trailer", "none"]]);
    for (const s of sessions) s.destroy();
  },
});

Deno.test({
  name: "request() reaches a python3-h2 server: pseudo-headers, body, trailers, trailers-only",
  ignore,
  fn: async () => {
    await using py = await startPyRequestsServer(HOST);
    const client = connectH2(await dial(HOST, py.port));
    await client.ready;
    const authority = "svc.ns1:8080";
    const get = await exchange(client.request(
      { ":method": "GET", ":scheme": "http", ":path": "/get?x=1", ":authority": authority },
      { endStream: true },
    ));
    assert.equal(get.head["x-path"], "/get?x=1");
    assert.equal(get.body.toString(), "ok");
    assert.deepEqual({ ...get.trailers }, { "x-body-bytes": "0", "x-request-trailer": "none" });

    const data = pattern(150_000, 4);
    const s = client.request({
      ":method": "PUT",
      ":scheme": "https",
      ":path": "/put",
      ":authority": authority,
      "content-length": String(data.length),
    });
    s.write(data);
    s.sendTrailers({ "x-checksum": "sum-1" });
    const put = await exchange(s);
    assert.ok(put.body.equals(data));
    assert.deepEqual({ ...put.trailers }, {
      "x-body-bytes": String(data.length),
      "x-request-trailer": "sum-1",
    });

    const only = client.request(
      { ":method": "POST", ":scheme": "http", ":path": "/trailers-only", ":authority": authority },
      { endStream: true },
    );
    only.on("error", () => {});
    const head = await new Promise<Record<string, unknown>>((r) => only.once("response", r));
    assert.equal(head["grpc-status"], "5");
    assert.equal(only.endAfterHeaders, true);

    const [g, p] = await py.recorded(3);
    assert.deepEqual(g.headers, [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/get?x=1"],
      [":authority", authority],
    ]);
    assert.deepEqual(p.headers.slice(0, 4), [
      [":method", "PUT"],
      [":scheme", "https"],
      [":path", "/put"],
      [":authority", authority],
    ]);
    assert.equal(p.body_bytes, data.length);
    assert.deepEqual(p.trailers, [["x-checksum", "sum-1"]]);
    await client.close();
    assert.equal(py.stderr(), "");
  },
});
