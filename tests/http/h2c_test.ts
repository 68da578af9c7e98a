import assert from "node:assert/strict";
import net from "node:net";
import { H2cClientConnection, serveH2c } from "../../http/h2c.ts";
import { bytesBody, EMPTY_BODY, type Exchange, HeaderMap, readAll } from "../../http/types.ts";

const HOST = "127.0.13.1";

/** An h2c server on a loopback socket whose handler is given; returns a connected client. */
async function pair(handler: (ex: Exchange) => Promise<void>) {
  const server = net.createServer((socket) => void serveH2c(socket, handler));
  await new Promise<void>((r) => server.listen(0, HOST, r));
  const { port } = server.address() as net.AddressInfo;
  const socket = net.connect({ host: HOST, port });
  await new Promise((r) => socket.once("connect", r));
  const client = new H2cClientConnection(socket);
  return {
    client,
    async [Symbol.asyncDispose]() {
      client.close();
      socket.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const head = (path: string, headers: [string, string][] = []) => ({
  method: "POST",
  path,
  authority: "svc.ns:80",
  scheme: "http",
  version: "2" as const,
  headers: new HeaderMap(headers),
});

Deno.test("serveH2c() and H2cClientConnection carry a request and response with bodies", async () => {
  await using p = await pair(async (ex) => {
    const got = new TextDecoder().decode(await readAll(ex.body, 1 << 20));
    const reply = `${ex.request.method} ${ex.request.path} ${ex.request.authority} ${got}`;
    await ex.respond(
      { status: 201, headers: new HeaderMap([["x-seen", ex.request.headers.get("x-in") ?? ""]]) },
      bytesBody(reply),
    );
  });
  const res = await p.client.request(
    head("/a?b=1", [["x-in", "v"], ["connection", "x"]]),
    bytesBody("hi"),
  );
  assert.equal(res.head.status, 201);
  assert.equal(res.head.headers.get("x-seen"), "v");
  assert.equal(
    new TextDecoder().decode(await readAll(res.body, 1 << 20)),
    "POST /a?b=1 svc.ns:80 hi",
  );
});

Deno.test("serveH2c() keeps gRPC trailers and sends trailers-only responses", async () => {
  await using p = await pair(async (ex) => {
    await readAll(ex.body, 1 << 20);
    const grpc = new HeaderMap([["content-type", "application/grpc"]]);
    if (ex.request.path.endsWith("/Fail")) {
      grpc.set("grpc-status", "5");
      await ex.respond({ status: 200, headers: grpc }, EMPTY_BODY);
      return;
    }
    await ex.respond(
      { status: 200, headers: grpc },
      bytesBody(
        new Uint8Array([0, 0, 0, 0, 1, 42]),
        new HeaderMap([["grpc-status", "0"], ["grpc-message", "ok"]]),
      ),
    );
  });
  const ok = await p.client.request(
    head("/pkg.Svc/Get", [["content-type", "application/grpc"], ["te", "trailers"]]),
    bytesBody(new Uint8Array([0, 0, 0, 0, 0])),
  );
  assert.deepEqual([...await readAll(ok.body, 100)], [0, 0, 0, 0, 1, 42]);
  assert.equal(ok.body.trailers?.get("grpc-status"), "0");
  assert.equal(ok.body.trailers?.get("grpc-message"), "ok");
  const fail = await p.client.request(
    head("/pkg.Svc/Fail", [["content-type", "application/grpc"]]),
    EMPTY_BODY,
  );
  assert.equal(fail.head.headers.get("grpc-status"), "5");
  assert.equal(await fail.body.read(), null);
});

Deno.test("H2cClientConnection runs 50 requests concurrently over one connection", async () => {
  let concurrent = 0, peak = 0;
  await using p = await pair(async (ex) => {
    peak = Math.max(peak, ++concurrent);
    await new Promise((r) => setTimeout(r, 20));
    concurrent--;
    await ex.respond({ status: 200, headers: new HeaderMap() }, bytesBody(ex.request.path));
  });
  const replies = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const res = await p.client.request({ ...head(`/${i}`), method: "GET" }, EMPTY_BODY);
      return new TextDecoder().decode(await readAll(res.body, 100));
    }),
  );
  replies.forEach((r, i) => assert.equal(r, `/${i}`));
  assert.ok(peak > 1, `requests overlapped (peak ${peak})`);
});
