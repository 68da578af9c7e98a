import assert from "node:assert/strict";
import type net from "node:net";
import {
  type Body,
  bytesBody,
  EMPTY_BODY,
  HeaderMap,
  HttpCodecError,
  readAll,
} from "../../http/mod.ts";
import {
  chunkedBody,
  clientOf,
  delay,
  echo,
  request,
  shout,
  startH1,
  startRaw,
  text,
} from "./_helpers.ts";

async function bodyText(body: Body): Promise<string> {
  return text(await readAll(body, 1 << 20));
}

async function rejection(p: Promise<unknown>): Promise<HttpCodecError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof HttpCodecError, String(e));
    return e;
  }
  throw new assert.AssertionError({ message: "Expected an HttpCodecError" });
}

Deno.test("H1ClientConnection.request() reuses one connection for several requests", async () => {
  await using server = await startH1(echo);
  using client = await clientOf(server);
  for (let i = 0; i < 5; i++) {
    const res = await client.request(request("POST", `/${i}`), bytesBody("hi"));
    assert.equal(res.head.status, 200);
    assert.equal(client.reusable, false, "not reusable before the body is read");
    assert.equal(await bodyText(res.body), `POST /${i}: hi`);
    assert.equal(client.reusable, true);
  }
  assert.equal(server.sockets.length, 1);
});

Deno.test("H1ClientConnection.request() streams a chunked body with trailers both ways", async () => {
  await using server = await startH1(echo);
  using client = await clientOf(server);
  const res = await client.request(
    request("PUT", "/c"),
    chunkedBody(["ab", "cd"], new HeaderMap([["x-sum", "4"]])),
  );
  assert.equal(res.head.headers.get("transfer-encoding"), "chunked");
  assert.equal(res.body.length, undefined);
  assert.equal(await bodyText(res.body), "PUT /c: abcd");
  assert.deepEqual([...res.body.trailers ?? []], [["x-sum", "4"]]);
  assert.equal(client.reusable, true);
});

Deno.test("H1ClientConnection.request() sets framing from the body, not from stale fields", async () => {
  await using server = await startH1(echo);
  using client = await clientOf(server);
  const stale = request("POST", "/s", [["content-length", "99"], ["transfer-encoding", "chunked"]]);
  const res = await client.request(stale, bytesBody("xyz"));
  assert.equal(res.head.headers.get("x-length"), "3");
  assert.equal(await bodyText(res.body), "POST /s: xyz");
  const empty = await client.request(request("POST", "/e"), EMPTY_BODY);
  assert.equal(empty.head.headers.get("x-length"), "0");
  await bodyText(empty.body);
});

Deno.test("H1ClientConnection.request() rejects a second request while busy", async () => {
  await using server = await startH1(echo);
  using client = await clientOf(server);
  const res = await client.request(request("GET", "/"), EMPTY_BODY);
  const e = await rejection(client.request(request("GET", "/"), EMPTY_BODY));
  assert.equal(e.kind, "busy");
  await bodyText(res.body);
  assert.equal(client.reusable, true);
});

Deno.test("H1ClientConnection.request() reads HEAD and 204 responses without bodies", async () => {
  await using server = await startH1((ex) =>
    ex.respond(
      { status: ex.request.path === "/204" ? 204 : 200, headers: new HeaderMap() },
      bytesBody("hello"),
    )
  );
  using client = await clientOf(server);
  const head = await client.request(request("HEAD", "/"), EMPTY_BODY);
  assert.equal(head.head.headers.get("content-length"), "5");
  assert.equal(await bodyText(head.body), "");
  const noContent = await client.request(request("GET", "/204"), EMPTY_BODY);
  assert.equal(noContent.head.status, 204);
  assert.equal(await bodyText(noContent.body), "");
  const get = await client.request(request("GET", "/"), EMPTY_BODY);
  assert.equal(await bodyText(get.body), "hello");
  assert.equal(client.reusable, true);
});

Deno.test("H1ClientConnection.request() skips 1xx responses before the final one", async () => {
  await using server = await startRaw((socket) => {
    socket.once("data", () => {
      socket.write("HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n");
      socket.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    });
  });
  using client = await clientOf(server);
  const res = await client.request(request("GET", "/"), EMPTY_BODY);
  assert.equal(res.head.status, 200);
  assert.equal(await bodyText(res.body), "ok");
});

/** A raw server that answers `100 Continue` only after it saw no body for a while. */
function continueServer(received: string[]) {
  return startRaw((socket) => {
    let data = "";
    socket.setEncoding("latin1");
    socket.on("data", async (d: string) => {
      data += d;
      if (!data.endsWith("\r\n\r\n") || data.includes("100-continue\r\n\r\nbody")) {
        if (data.endsWith("body")) {
          received.push(data);
          socket.write("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        }
        return;
      }
      await delay(30);
      received.push(data);
      socket.write("HTTP/1.1 100 Continue\r\n\r\n");
    });
  });
}

Deno.test("H1ClientConnection.request() sends an Expect: 100-continue body after the 100", async () => {
  const received: string[] = [];
  await using server = await continueServer(received);
  using client = await clientOf(server, { expectTimeout: 10_000 });
  const res = await client.request(
    request("PUT", "/", [["expect", "100-continue"]]),
    bytesBody("body"),
  );
  assert.equal(res.head.status, 200);
  assert.ok(received[0].endsWith("\r\n\r\n"), "the head came alone first");
  assert.ok(received[1].endsWith("\r\n\r\nbody"));
});

Deno.test("H1ClientConnection.request() keeps the body when the final response comes first", async () => {
  let cancelled = false;
  const body: Body = { ...bytesBody("never"), cancel: () => cancelled = true };
  await using server = await startH1((ex) =>
    ex.respond({ status: 401, headers: new HeaderMap() }, EMPTY_BODY)
  );
  using client = await clientOf(server, { expectTimeout: 10_000 });
  const res = await client.request(request("PUT", "/", [["expect", "100-continue"]]), body);
  assert.equal(res.head.status, 401);
  await delay(10);
  assert.ok(cancelled);
  assert.equal(client.reusable, false);
});

Deno.test("H1ClientConnection.request() hands over the connection after a 101", async () => {
  let served: Promise<void> | undefined;
  await using server = await startH1((ex) => {
    served = shout(ex.upgrade({ status: 101, headers: new HeaderMap([["upgrade", "x"]]) }));
    return Promise.resolve();
  });
  using client = await clientOf(server);
  const res = await client.request(
    request("GET", "/ws", [["connection", "upgrade"], ["upgrade", "x"]]),
    EMPTY_BODY,
  );
  assert.equal(res.head.status, 101);
  assert.ok(res.upgraded);
  assert.equal(text(await roundTrip(res.upgraded, "ping")), "PING");
  await served;
  assert.equal(client.reusable, false);
});

Deno.test("H1ClientConnection.request() hands over the connection after a 200 to CONNECT", async () => {
  await using server = await startH1((ex) => {
    void shout(ex.upgrade({ status: 200, headers: new HeaderMap() }));
    return Promise.resolve();
  });
  using client = await clientOf(server);
  const res = await client.request(request("CONNECT", "", [], "10.0.0.1:80"), EMPTY_BODY);
  assert.ok(res.upgraded);
  assert.equal(text(await roundTrip(res.upgraded, "tunnel")), "TUNNEL");
});

/** Writes, ends, and reads until the end. */
function roundTrip(stream: net.Socket | import("node:stream").Duplex, data: string) {
  const chunks: Uint8Array[] = [];
  return new Promise<Uint8Array>((resolve, reject) => {
    stream.on("data", (c: Uint8Array) => chunks.push(c));
    stream.once("end", () => resolve(new Uint8Array(chunks.flatMap((c) => [...c]))));
    stream.once("error", reject);
    stream.end(data);
  });
}

Deno.test("H1ClientConnection.request() reads a body delimited by the close", async () => {
  await using server = await startRaw((socket) => {
    socket.once("data", () => socket.end("HTTP/1.1 200 OK\r\n\r\nuntil the end"));
  });
  using client = await clientOf(server);
  const res = await client.request(request("GET", "/"), EMPTY_BODY);
  assert.equal(res.body.length, undefined);
  assert.equal(await bodyText(res.body), "until the end");
  assert.equal(client.reusable, false);
});

Deno.test("H1ClientConnection is not reusable after a connection: close response", async () => {
  await using server = await startH1((ex) =>
    ex.respond({ status: 200, headers: new HeaderMap([["connection", "close"]]) }, bytesBody("x"))
  );
  using client = await clientOf(server);
  const res = await client.request(request("GET", "/"), EMPTY_BODY);
  await bodyText(res.body);
  assert.equal(client.reusable, false);
  assert.equal((await rejection(client.request(request("GET", "/"), EMPTY_BODY))).kind, "closed");
});

const BAD: [string, string][] = [
  [
    "both Content-Length and Transfer-Encoding",
    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n",
  ],
  ["a 101 to a request without Upgrade", "HTTP/1.1 101 Switching Protocols\r\n\r\n"],
  ["garbage", "SSH-2.0-OpenSSH\r\n\r\n"],
];

for (const [name, reply] of BAD) {
  Deno.test(`H1ClientConnection.request() rejects ${name} as a bad response`, async () => {
    await using server = await startRaw((socket) => socket.once("data", () => socket.write(reply)));
    using client = await clientOf(server);
    const e = await rejection(client.request(request("GET", "/"), EMPTY_BODY));
    assert.equal(e.kind, "bad_response");
    assert.equal(client.reusable, false);
  });
}

Deno.test("H1ClientConnection.request() rejects with closed when the server goes away", async () => {
  await using server = await startRaw((socket) => socket.once("data", () => socket.destroy()));
  using client = await clientOf(server);
  assert.equal((await rejection(client.request(request("GET", "/"), EMPTY_BODY))).kind, "closed");
});

Deno.test("H1ClientConnection.request() fails a body cut short by the server", async () => {
  await using server = await startRaw((socket) => {
    socket.once("data", () => socket.end("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"));
  });
  using client = await clientOf(server);
  const res = await client.request(request("GET", "/"), EMPTY_BODY);
  assert.equal((await rejection(readAll(res.body, 100))).kind, "closed");
  assert.equal(client.reusable, false);
});

Deno.test("H1ClientConnection.request() works against Deno.serve", async () => {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.5.2", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/stream") {
        return new Response(req.body, { headers: { "x-method": req.method } });
      }
      const body = await req.text();
      return new Response(`${req.method} ${url.pathname} ${body}`, {
        headers: { "x-host": req.headers.get("host") ?? "" },
      });
    },
  );
  try {
    using client = await clientOf({ host: "127.0.5.2", port: server.addr.port });
    for (const path of ["/a", "/b", "/c"]) {
      const res = await client.request(request("POST", path, [], "deno.test"), bytesBody("x"));
      assert.equal(res.head.status, 200);
      assert.equal(res.head.headers.get("x-host"), "deno.test");
      assert.equal(await bodyText(res.body), `POST ${path} x`);
      assert.equal(client.reusable, true);
    }
    const streamed = await client.request(request("PUT", "/stream"), chunkedBody(["12", "34"]));
    assert.equal(streamed.head.headers.get("x-method"), "PUT");
    assert.equal(await bodyText(streamed.body), "1234");
    const head = await client.request(request("HEAD", "/a"), EMPTY_BODY);
    assert.equal(await bodyText(head.body), "");
    const after = await client.request(request("GET", "/after"), EMPTY_BODY);
    assert.equal(await bodyText(after.body), "GET /after ");
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test("serveH1() holds a bounded amount for a slow reader of a 50 MiB body", async () => {
  const total = 50 * 1024 * 1024;
  const chunk = new Uint8Array(64 * 1024);
  let maxQueued = 0;
  await using server = await startH1((ex) => {
    // The server's buffered bytes peak right after a write: record them there.
    const socket = server.sockets[0];
    const write = socket.write.bind(socket) as (chunk: Uint8Array) => boolean;
    socket.write = ((chunk: Uint8Array) => {
      const ok = write(chunk);
      maxQueued = Math.max(maxQueued, socket.writableLength);
      return ok;
    }) as typeof socket.write;
    let sent = 0;
    const big: Body = {
      read() {
        if (sent >= total) return Promise.resolve(null);
        sent += chunk.length;
        return Promise.resolve(chunk);
      },
      trailers: undefined,
      length: total,
      cancel: () => {},
    };
    return ex.respond({ status: 200, headers: new HeaderMap() }, big);
  });
  using client = await clientOf(server);
  const res = await client.request(request("GET", "/big"), EMPTY_BODY);
  let received = 0, nextPause = 0;
  for (let c = await res.body.read(); c !== null; c = await res.body.read()) {
    received += c.length;
    if (received >= nextPause) {
      nextPause += 256 * 1024;
      await delay(3);
    }
  }
  assert.equal(received, total);
  assert.ok(maxQueued <= 512 * 1024, `server queued up to ${maxQueued} bytes`);
  assert.ok(maxQueued > 0, "the reader was slow enough to make the server wait");
  assert.equal(client.reusable, true);
});
