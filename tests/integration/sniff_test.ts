/**
 * Ports of unknown protocol through the waypoint: the first client bytes decide between the HTTP
 * chain and a TCP splice. Loopback addresses 127.0.7.30-39 (pods), 127.10.7.30 (VIP) and
 * 127.0.7.230-239 (waypoints).
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import { startEcho } from "../fixtures/echo.ts";
import { startMesh } from "../fixtures/mesh.ts";
import { roundTrip, text } from "../fixtures/streams.ts";
import { header, Http1, json, startH2Backends, startHttpBackends } from "./_l7.ts";

const VIP = "127.10.7.30";
const POD = { name: "echo-1", ip: "127.0.7.30" };

Deno.test("a port named web carries HTTP/1.1 through the HTTP chain", async () => {
  await using backends = await startHttpBackends([POD.ip]);
  await using mesh = await startMesh({
    waypointIp: "127.0.7.230",
    vip: VIP,
    pods: [POD],
    ports: [{ name: "web", port: 8000, targetPort: backends.port }],
  });
  const c = new Http1((await mesh.connect(`${VIP}:8000`)).stream);
  for (let i = 0; i < 2; i++) {
    const res = await c.fetch("GET", `/sniffed/${i}`, [["connection", "x-hop"], ["x-hop", "1"]]);
    assert.equal(res.status, 200);
    assert.equal(header(res.headers, "server"), `pod-${POD.ip}`);
    const echoed = json(res);
    assert.equal(echoed.path, `/sniffed/${i}`);
    // Only the L7 path adds x-request-id and drops the hop-by-hop field the client named.
    assert.equal(echoed.headers.filter(([n]) => n === "x-request-id").length, 1);
    assert.equal(echoed.headers.filter(([n]) => n === "x-hop").length, 0);
  }
  assert.equal(backends.total, 2);
});

Deno.test("a port named web carries bytes that are not HTTP as TCP", async () => {
  await using echo = await startTcpEcho(POD.ip);
  await using mesh = await startMesh({
    waypointIp: "127.0.7.231",
    vip: VIP,
    pods: [POD],
    ports: [{ name: "web", port: 8000, targetPort: echo.port }],
  });
  const cases = [
    "SSH-2.0-OpenSSH_9.6\r\nand more bytes after the banner",
    "\u0000\u0001\u0002 binary first",
    "get / http/1.1 is not a request line in lower case",
  ];
  for (const bytes of cases) {
    const t = await mesh.connect(`${VIP}:8000`);
    assert.equal(text(await roundTrip(t.stream, bytes)), bytes);
  }
  assert.equal(echo.accepted, cases.length);
});

Deno.test("a port named web carries h2c with prior knowledge as HTTP/2 to an h2c backend", async () => {
  await using backends = await startH2Backends([POD.ip], (stream, headers, pod) => {
    stream.respond({
      ":status": 200,
      "x-pod": pod,
      "x-request-id": String(headers["x-request-id"] ?? ""),
    });
    stream.end(String(headers[":path"]));
  });
  await using mesh = await startMesh({
    waypointIp: "127.0.7.232",
    vip: VIP,
    pods: [POD],
    ports: [{ name: "web", port: 8000, targetPort: backends.port }],
  });
  const { stream } = await mesh.connect(`${VIP}:8000`);
  const session = http2.connect("http://echo.ns1", { createConnection: () => stream });
  session.on("error", () => {});
  const reply = await new Promise<{ pod: string; id: string; body: string }>((resolve, reject) => {
    const req = session.request({ ":path": "/over-h2" });
    let body = "", pod = "", id = "";
    req.setEncoding("utf8");
    req.on("response", (h) => {
      pod = String(h["x-pod"]);
      id = String(h["x-request-id"]);
    });
    req.on("data", (c: string) => body += c);
    req.on("end", () => resolve({ pod, id, body }));
    req.on("error", reject);
  });
  session.close();
  assert.deepEqual([reply.pod, reply.body], [POD.ip, "/over-h2"]);
  assert.match(reply.id, /^[0-9a-f-]{36}$/, "x-request-id shows the L7 path ran");
  assert.equal(backends.sessions.get(POD.ip), 1);
});

async function startTcpEcho(host: string) {
  const echo = await startEcho(host);
  return Object.assign(echo, { [Symbol.asyncDispose]: () => echo.close() });
}
