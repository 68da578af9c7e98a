/**
 * The codecs' drain signal (`H1ServerOptions.drain`, `serveH2c`'s `drain`) over loopback sockets
 * on 127.0.31.x: what closes at once, what is still answered, and with what.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { connectH2, type H2Headers, type H2Session } from "../../h2/mod.ts";
import { serveH2c } from "../../http/h2c.ts";
import { bytesBody, type Exchange, HeaderMap } from "../../http/mod.ts";
import { RawClient, splitResponses, startH1 } from "./_helpers.ts";

const H1_HOST = "127.0.31.1";
const H2_HOST = "127.0.31.2";

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`;

/** Answers with the path; `/slow` waits for `release`; `seen` resolves once `/second` came. */
function gated() {
  let release!: () => void;
  let arrived!: () => void;
  let second!: () => void;
  const released = new Promise<void>((r) => release = r);
  const held = new Promise<void>((r) => arrived = r);
  const seen = new Promise<void>((r) => second = r);
  const handler = async (ex: Exchange) => {
    if (ex.request.path === "/second") second();
    if (ex.request.path === "/slow") {
      arrived();
      await released;
    }
    await ex.respond(
      { status: 200, headers: new HeaderMap([["content-type", "text/plain"]]) },
      bytesBody(`answer to ${ex.request.path}`),
    );
  };
  return { handler, held, seen, release };
}

Deno.test("serveH1() drained: pipelined requests already read are answered, the last with connection: close, then it closes", async () => {
  const drain = new AbortController();
  const { handler, held, seen, release } = gated();
  await using server = await startH1(handler, { drain: drain.signal }, H1_HOST);
  using client = await RawClient.connect(server);
  client.write(GET("/slow") + GET("/second"));
  await Promise.all([held, seen]);
  drain.abort();
  release();
  const responses = splitResponses(await client.untilClosed());
  assert.equal(responses.length, 2);
  assert.match(responses[0], /^HTTP\/1\.1 200 [^]*answer to \/slow$/);
  assert.doesNotMatch(responses[0], /connection: close/i, "a later request is answered after it");
  assert.match(responses[1], /connection: close\r\n[^]*answer to \/second$/i);
});

Deno.test("serveH1() opened after the drain answers its first request with connection: close", async () => {
  const drain = new AbortController();
  drain.abort();
  await using server = await startH1(gated().handler, { drain: drain.signal }, H1_HOST);
  using client = await RawClient.connect(server);
  client.write(GET("/first") + GET("/never"));
  const responses = splitResponses(await client.untilClosed());
  assert.equal(responses.length, 1, "no second request is read");
  assert.match(responses[0], /connection: close\r\n[^]*answer to \/first$/i);
});

/** An h2c server with the drain signal, and our client on it. */
async function h2cPair(drain: AbortSignal, handler: (ex: Exchange) => Promise<void>) {
  const served: Promise<void>[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    served.push(serveH2c(socket, handler, { drain }));
  });
  await new Promise<void>((r) => server.listen(0, H2_HOST, r));
  const { port } = server.address() as net.AddressInfo;
  const socket = net.connect({ host: H2_HOST, port });
  await new Promise((r) => socket.once("connect", r));
  const client = connectH2(socket, {});
  await client.ready;
  return {
    client,
    served,
    async [Symbol.asyncDispose]() {
      client.destroy();
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

function get(client: H2Session, path: string): Promise<{ status: number; body: string }> {
  const stream = client.request(
    { ":method": "GET", ":scheme": "http", ":path": path, ":authority": "a" },
    { endStream: true },
  );
  return new Promise((resolve, reject) => {
    let status = 0, body = "";
    stream.once("response", (h: H2Headers) => status = Number(h[":status"]));
    stream.on("data", (c: Uint8Array) => body += new TextDecoder().decode(c));
    stream.once("end", () => resolve({ status, body }));
    stream.once("error", reject);
  });
}

Deno.test("serveH2c() opened after the drain serves its first stream, GOAWAY names it the last", async () => {
  const drain = new AbortController();
  drain.abort();
  await using pair = await h2cPair(drain.signal, gated().handler);
  const goaway = new Promise<number>((r) => pair.client.once("goaway", (_c, last) => r(last)));
  assert.deepEqual(await get(pair.client, "/first"), { status: 200, body: "answer to /first" });
  assert.equal(await goaway, 1);
  await pair.served[0];
});

Deno.test("serveH2c() drained while idle sends GOAWAY and closes", async () => {
  const drain = new AbortController();
  await using pair = await h2cPair(drain.signal, gated().handler);
  assert.equal((await get(pair.client, "/before")).status, 200);
  const goaway = new Promise<number>((r) => pair.client.once("goaway", (_c, last) => r(last)));
  drain.abort();
  assert.equal(await goaway, 1);
  await pair.served[0];
});
