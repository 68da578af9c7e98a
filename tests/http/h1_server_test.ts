import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import {
  type Body,
  bytesBody,
  EMPTY_BODY,
  H1ClientConnection,
  HeaderMap,
  HttpCodecError,
  readAll,
  serveH1,
} from "../../http/mod.ts";
import {
  chunkedBody,
  delay,
  echo,
  RawClient,
  request,
  shout,
  splitResponses,
  startH1,
  text,
} from "./_helpers.ts";

function statusOf(response: string): number {
  return Number(response.slice(9, 12));
}

const GET = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: a\r\n${extra}\r\n`;

const REJECTED: [string, string, number][] = [
  [
    "both Content-Length and Transfer-Encoding",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    400,
  ],
  ["Content-Length: 1, 2", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\nab", 400],
  [
    "two differing Content-Length fields",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    400,
  ],
  [
    "Transfer-Encoding: gzip, chunked",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    501,
  ],
  [
    "Transfer-Encoding: chunked, chunked",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    400,
  ],
  [
    "a chunk size of 0x5",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
    400,
  ],
  [
    "a chunk size of -1",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nhello\r\n0\r\n\r\n",
    400,
  ],
  [
    "an overflowing chunk size",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
    400,
  ],
  [
    "chunk data without its CR LF",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloGET / HTTP/1.1\r\n\r\n",
    400,
  ],
  ["a bare LF in the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400],
  ["a bare LF in a header line", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400],
  ["obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400],
  ["a space before a colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400],
  ["a CTL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", 400],
  ["a DEL in a name", "GET / HTTP/1.1\r\nHost: a\r\nX\x7f: b\r\n\r\n", 400],
  ["a missing Host", "GET / HTTP/1.1\r\nX: a\r\n\r\n", 400],
  ["two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400],
  [
    "a 61 KiB header block",
    `GET / HTTP/1.1\r\nHost: a\r\nX: ${"a".repeat(61 * 1024)}\r\n\r\n`,
    431,
  ],
  [
    "more than 100 header fields",
    `GET / HTTP/1.1\r\nHost: a\r\n${"X: y\r\n".repeat(100)}\r\n`,
    431,
  ],
  ["HTTP/2.0 in a request line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505],
];

for (const [name, wire, status] of REJECTED) {
  Deno.test(`serveH1() answers ${name} with ${status} and closes`, async () => {
    await using server = await startH1(echo);
    using client = await RawClient.connect(server);
    client.write(wire);
    const received = await client.untilClosed();
    assert.equal(statusOf(received), status, received.slice(0, 200));
    assert.match(received, /\r\nconnection: close\r\n/);
    assert.equal(splitResponses(received).length, 1);
  });
}

Deno.test("serveH1() answers earlier pipelined requests before rejecting a bad one", async () => {
  await using server = await startH1(echo);
  using client = await RawClient.connect(server);
  client.write(GET("/ok") + "GET / HTTP/1.1\r\nHost : a\r\n\r\n");
  const [first, second] = splitResponses(await client.untilClosed());
  assert.match(first, /^HTTP\/1\.1 200 OK\r\n[\s\S]*GET \/ok: $/);
  assert.equal(statusOf(second), 400);
});

Deno.test("serveH1() keeps a connection alive across several requests", async () => {
  await using server = await startH1(echo);
  using client = await RawClient.connect(server);
  for (let i = 1; i <= 5; i++) {
    client.write(`POST /${i} HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi`);
    const all = splitResponses(await client.responses(i));
    assert.match(all[i - 1], new RegExp(`POST /${i}: hi$`));
  }
  assert.equal(server.sockets.length, 1);
  assert.equal(client.closed, false);
});

Deno.test("serveH1() answers pipelined requests in order when the first handler is slower", async () => {
  const started: string[] = [];
  await using server = await startH1(async (ex) => {
    started.push(ex.request.path);
    if (ex.request.path === "/slow") await delay(150);
    await ex.respond({ status: 200, headers: new HeaderMap() }, bytesBody(ex.request.path));
  });
  using client = await RawClient.connect(server);
  client.write(GET("/slow") + GET("/fast") + GET("/last", "Connection: close\r\n"));
  const responses = splitResponses(await client.untilClosed());
  assert.deepEqual(responses.map((r) => r.slice(r.indexOf("\r\n\r\n") + 4)), [
    "/slow",
    "/fast",
    "/last",
  ]);
  assert.deepEqual(started, ["/slow", "/fast", "/last"], "handlers ran without waiting");
  assert.match(responses[2], /connection: close/);
});

Deno.test("serveH1() reads a chunked request and writes a chunked response with trailers", async () => {
  await using server = await startH1(async (ex) => {
    const body = text(await readAll(ex.body, 1000));
    const trailer = ex.body.trailers?.get("x-checksum") ?? "none";
    await ex.respond(
      { status: 200, headers: new HeaderMap() },
      chunkedBody([body, "|", trailer], new HeaderMap([["x-count", "3"]])),
    );
  });
  using client = await RawClient.connect(server);
  client.write(
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Checksum: 42\r\n\r\n",
  );
  const [response] = splitResponses(await client.responses(1));
  assert.match(response, /\r\ntransfer-encoding: chunked\r\n/);
  assert.doesNotMatch(response, /content-length/);
  assert.ok(
    response.endsWith("\r\n\r\n5\r\nabcde\r\n1\r\n|\r\n2\r\n42\r\n0\r\nx-count: 3\r\n\r\n"),
  );
});

Deno.test("serveH1() sends 100 Continue when the handler reads the body, and hides Expect", async () => {
  let expect: string | undefined = "unset";
  await using server = await startH1(async (ex) => {
    expect = ex.request.headers.get("expect");
    await echo(ex);
  });
  using client = await RawClient.connect(server);
  client.write("PUT /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  assert.equal(await client.until((r) => r.endsWith("\r\n\r\n")), "HTTP/1.1 100 Continue\r\n\r\n");
  client.write("data");
  const responses = splitResponses(await client.responses(2));
  assert.match(responses[1], /^HTTP\/1\.1 200 OK[\s\S]*PUT \/up: data$/);
  assert.equal(expect, undefined);
});

Deno.test("serveH1() answers a 100-continue request without 100 and closes when the body is not read", async () => {
  await using server = await startH1((ex) =>
    ex.respond({ status: 413, headers: new HeaderMap() }, bytesBody("too big"))
  );
  using client = await RawClient.connect(server);
  client.write("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 9999\r\n\r\n");
  const received = await client.untilClosed();
  assert.match(received, /^HTTP\/1\.1 413 Content Too Large\r\n[\s\S]*connection: close/);
  assert.doesNotMatch(received, /100 Continue/);
});

Deno.test("serveH1() hands over the socket after a 101, bytes sent early first", async () => {
  let upgraded: Promise<void> | undefined;
  await using server = await startH1((ex) => {
    assert.ok(ex.upgradable);
    const raw = ex.upgrade({
      status: 101,
      headers: new HeaderMap([["connection", "upgrade"], ["upgrade", "websocket"]]),
    });
    upgraded = shout(raw);
    return Promise.resolve();
  });
  using client = await RawClient.connect(server);
  client.write(GET("/ws", "Connection: Upgrade\r\nUpgrade: websocket\r\n") + "early ");
  await client.until((r) => r.endsWith("EARLY "));
  client.write("ping");
  const received = await client.until((r) => r.endsWith("PING"));
  assert.equal(
    received,
    "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\nEARLY PING",
  );
  await server.served[0];
  client.socket.end();
  await upgraded;
});

Deno.test("serveH1() hands over the socket after a 200 to CONNECT", async () => {
  let tunnel: Promise<void> | undefined;
  await using server = await startH1((ex) => {
    tunnel = shout(ex.upgrade({ status: 200, headers: new HeaderMap() }));
    return Promise.resolve();
  });
  using client = await RawClient.connect(server);
  client.write("CONNECT 10.1.2.3:443 HTTP/1.1\r\nHost: 10.1.2.3:443\r\n\r\nhello");
  const received = await client.until((r) => r.endsWith("HELLO"));
  assert.equal(received, "HTTP/1.1 200 OK\r\n\r\nHELLO");
  client.socket.end();
  await tunnel;
});

Deno.test("serveH1() keeps serving when an upgrade request gets a normal response", async () => {
  await using server = await startH1(echo);
  using client = await RawClient.connect(server);
  client.write(GET("/ws", "Connection: upgrade\r\nUpgrade: h2c\r\n") + GET("/next"));
  const responses = splitResponses(await client.responses(2));
  assert.match(responses[1], /GET \/next: $/);
});

Deno.test("serveH1() closes after refusing a CONNECT", async () => {
  await using server = await startH1((ex) =>
    ex.respond({ status: 403, headers: new HeaderMap() }, EMPTY_BODY)
  );
  using client = await RawClient.connect(server);
  client.write("CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\ntunnel bytes");
  const received = await client.untilClosed();
  assert.match(received, /^HTTP\/1\.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close/);
});

Deno.test("serveH1() sends no body for HEAD, 204 and 304, and the connection stays in sync", async () => {
  await using server = await startH1((ex) => {
    const status = Number(ex.request.path.slice(1)) || 200;
    return ex.respond({ status, headers: new HeaderMap([["etag", "x"]]) }, bytesBody("hello"));
  });
  using client = await RawClient.connect(server);
  client.write("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n" + GET("/204") + GET("/304") + GET("/200"));
  assert.equal(
    await client.until((r) => r.endsWith("hello")),
    "HTTP/1.1 200 OK\r\netag: x\r\ncontent-length: 5\r\n\r\n" +
      "HTTP/1.1 204 No Content\r\netag: x\r\n\r\n" +
      "HTTP/1.1 304 Not Modified\r\netag: x\r\ncontent-length: 5\r\n\r\n" +
      "HTTP/1.1 200 OK\r\netag: x\r\ncontent-length: 5\r\n\r\nhello",
  );
});

Deno.test("serveH1() sets framing from the body and ignores stale framing fields", async () => {
  await using server = await startH1((ex) =>
    ex.respond({
      status: 200,
      headers: new HeaderMap([["content-length", "999"], ["transfer-encoding", "chunked"]]),
    }, bytesBody("hi"))
  );
  using client = await RawClient.connect(server);
  client.write(GET("/"));
  assert.equal(
    splitResponses(await client.responses(1))[0],
    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi",
  );
});

Deno.test("serveH1() answers HTTP/1.0 without keep-alive and closes after the body", async () => {
  await using server = await startH1((ex) =>
    ex.respond({ status: 200, headers: new HeaderMap() }, chunkedBody(["a", "b"]))
  );
  using client = await RawClient.connect(server);
  client.write("GET / HTTP/1.0\r\n\r\n");
  assert.equal(await client.untilClosed(), "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nab");
});

Deno.test("serveH1() keeps an HTTP/1.0 connection that asks for keep-alive", async () => {
  await using server = await startH1(echo);
  using client = await RawClient.connect(server);
  client.write("GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n");
  const responses = splitResponses(await client.untilClosed());
  assert.match(responses[0], /\r\nconnection: keep-alive\r\n[\s\S]*GET \/1: $/);
  assert.match(responses[1], /\r\nconnection: close\r\n[\s\S]*GET \/2: $/);
});

Deno.test("serveH1() answers 500 when a handler throws, and keeps the connection", async () => {
  await using server = await startH1((ex) => {
    if (ex.request.path === "/boom") throw new Error("boom");
    return echo(ex);
  });
  using client = await RawClient.connect(server);
  client.write(GET("/boom") + GET("/after"));
  const responses = splitResponses(await client.responses(2));
  assert.equal(statusOf(responses[0]), 500);
  assert.match(responses[1], /GET \/after: $/);
});

Deno.test("serveH1() answers 413 when a handler buffering the body goes over its bound", async () => {
  await using server = await startH1(async (ex) => {
    await readAll(ex.body, 4);
    await ex.respond({ status: 200, headers: new HeaderMap() }, EMPTY_BODY);
  });
  using client = await RawClient.connect(server);
  client.write("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789" + GET("/n"));
  const responses = splitResponses(await client.responses(2));
  assert.equal(statusOf(responses[0]), 413);
  assert.equal(statusOf(responses[1]), 200);
});

Deno.test("serveH1() aborts the connection when a body fails once the response started", async () => {
  let reads = 0;
  const failing: Body = {
    read: () =>
      reads++ === 0
        ? Promise.resolve(new Uint8Array(3))
        : delay(20).then(() => Promise.reject(new Error("upstream reset"))),
    trailers: undefined,
    length: 10,
    cancel: () => {},
  };
  await using server = await startH1((ex) =>
    ex.respond({ status: 200, headers: new HeaderMap() }, failing)
  );
  using client = await RawClient.connect(server);
  client.write(GET("/"));
  const received = await client.untilClosed();
  assert.equal(received, "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n\0\0\0");
});

Deno.test("serveH1() refuses a response head that would split the message", async () => {
  await using server = await startH1(async (ex) => {
    await ex.respond(
      { status: 200, headers: new HeaderMap([["x", "a\r\nset-cookie: b"]]) },
      EMPTY_BODY,
    )
      .catch((e) => ex.respond({ status: 502, headers: new HeaderMap() }, bytesBody(e.kind)));
  });
  using client = await RawClient.connect(server);
  client.write(GET("/"));
  const [response] = splitResponses(await client.responses(1));
  assert.match(response, /^HTTP\/1\.1 502 [\s\S]*bad_message$/);
});

Deno.test("serveH1() skips an unread small body to keep the connection", async () => {
  await using server = await startH1((ex) =>
    ex.respond({ status: 200, headers: new HeaderMap() }, bytesBody(ex.request.path))
  );
  using client = await RawClient.connect(server);
  client.write("POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" + GET("/b"));
  const responses = splitResponses(await client.responses(2));
  assert.ok(responses[1].endsWith("/b"));
});

Deno.test("serveH1() closes instead of skipping an unread body over its drain bound", async () => {
  await using server = await startH1(
    (ex) => ex.respond({ status: 200, headers: new HeaderMap() }, bytesBody("x")),
    { maxDrainBytes: 10 },
  );
  using client = await RawClient.connect(server);
  client.write(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999\r\n\r\n${"z".repeat(100)}`);
  const received = await client.untilClosed();
  assert.equal(splitResponses(received).length, 1);
});

Deno.test("serveH1() closes when an unread body stalls while it is skipped", async () => {
  await using server = await startH1(
    (ex) => ex.respond({ status: 200, headers: new HeaderMap() }, bytesBody("x")),
    { headersTimeout: 50 },
  );
  using client = await RawClient.connect(server);
  client.write("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
  const received = await client.untilClosed();
  assert.equal(splitResponses(received).length, 1);
});

Deno.test("serveH1() answers 408 and closes when a head does not arrive in time", async () => {
  await using server = await startH1(echo, { headersTimeout: 50 });
  using client = await RawClient.connect(server);
  client.write("GET / HTTP/1.1\r\nHost: a\r\n");
  assert.match(await client.untilClosed(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
});

Deno.test("serveH1() closes an idle connection silently", async () => {
  await using server = await startH1(echo, { idleTimeout: 50 });
  using client = await RawClient.connect(server);
  client.write(GET("/"));
  const received = await client.untilClosed();
  assert.equal(splitResponses(received).length, 1);
  await server.served[0];
});

Deno.test("serveH1() resolves once the client ends the connection", async () => {
  await using server = await startH1(echo);
  using client = await RawClient.connect(server);
  client.write(GET("/"));
  client.socket.end();
  const received = await client.untilClosed();
  assert.equal(splitResponses(received).length, 1);
  await server.served[0];
});

Deno.test("serveH1() and H1ClientConnection work over an HTTP/2 CONNECT stream", async () => {
  const served: Promise<void>[] = [];
  const h2 = http2.createServer();
  h2.on("stream", (stream: http2.ServerHttp2Stream) => {
    stream.respond({ ":status": 200 });
    served.push(serveH1(stream, echo));
  });
  const tcp = net.createServer((socket) => h2.emit("connection", socket));
  await new Promise<void>((resolve) => tcp.listen(0, "127.0.5.1", resolve));
  const session = http2.connect(`http://127.0.5.1:${(tcp.address() as net.AddressInfo).port}`);
  try {
    const stream = session.request({ ":method": "CONNECT", ":authority": "10.0.0.1:80" });
    await new Promise((resolve) => stream.once("response", resolve));
    const client = new H1ClientConnection(stream);
    for (const size of [0, 10, 100_000, 1_000_000]) {
      const res = await client.request(request("POST", `/${size}`), bytesBody("x".repeat(size)));
      assert.equal((await readAll(res.body, 2 << 20)).length, `POST /${size}: `.length + size);
      assert.equal(client.reusable, true);
    }
    client.close();
    await Promise.all(served);
  } finally {
    session.destroy();
    await new Promise((resolve) => tcp.close(resolve));
  }
});

Deno.test("serveH1() parses a head and body that arrive a few bytes at a time", async () => {
  await using server = await startH1(echo);
  using client = await RawClient.connect(server);
  client.socket.setNoDelay(true);
  const wire =
    "POST /slow HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  for (let i = 0; i < wire.length; i += 3) {
    client.write(wire.slice(i, i + 3));
    await delay(1);
  }
  const [response] = splitResponses(await client.responses(1));
  assert.match(response, /POST \/slow: abc\r\n0\r\n/);
});

Deno.test("serveH1() aborts the signal of a pending exchange when the client goes away", async () => {
  let aborted: (reason: unknown) => void;
  const reason = new Promise((resolve) => aborted = resolve);
  await using server = await startH1((ex) =>
    new Promise<void>((resolve) => {
      ex.signal.addEventListener("abort", () => {
        aborted(ex.signal.reason);
        resolve();
      });
    })
  );
  using client = await RawClient.connect(server);
  client.write(GET("/hang"));
  await delay(20);
  client.socket.destroy();
  assert.ok(await reason instanceof HttpCodecError);
  await server.served[0];
});
