/**
 * h2/ against a second, independent HTTP/2 stack: Debian's python3-h2 on loopback
 * 127.0.14.3. Our server takes `py_h2_client.py` (beside this file) over cleartext TCP; our client
 * talks to `tests/interop/h2_server.py` over mutual TLS, as it would to a ztunnel.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import tls from "node:tls";
import { makePki, spiffe } from "../fixtures/pki.ts";
import { runPythonJson, startPythonServer, whyNoPythonH2 } from "../interop/_python_h2.ts";
import { ErrorCode } from "../../h2/frame.ts";
import { connectH2, type H2Session, serveH2 } from "../../h2/session.ts";
import { connectHeaders, listen, once, pattern, readAll, until } from "./_helpers.ts";

const HOST = "127.0.14.3";
const SERVER_ID = spiffe("ns1", "server");
const CLIENT_ID = spiffe("ns1", "waypoint");
const HERE = decodeURIComponent(new URL(".", import.meta.url).pathname);
const MIB = 1 << 20;

const noPythonH2 = whyNoPythonH2();
if (noPythonH2) console.log(`Skipping python3-h2 tests: ${noPythonH2}`);
const ignore = noPythonH2 !== undefined;

interface ClientReport {
  rounds_ok: number;
  streams_ok: number;
  bytes: number;
  problems: string[];
  resets: [number, number][];
  goaway?: { error_code: number; last_stream_id: number };
  server_settings: Record<string, number>;
  eof_after_goaway: number;
}

function runPyClient(port: number, ...args: string[]): Promise<ClientReport> {
  return runPythonJson(`${HERE}py_h2_client.py`, ["--connect", `${HOST}:${port}`, ...args]);
}

/** Our echo server; counts sessions opened and closed. */
async function ourServer() {
  const sessions: H2Session[] = [];
  let closed = 0;
  const listener = await listen(HOST, (sock: Socket) => {
    const session = serveH2(sock, {}, (s, h) => {
      s.on("error", () => {});
      if (h[":method"] !== "CONNECT") return s.respond(405, {}, { endStream: true });
      s.respond(200);
      s.pipe(s);
    });
    session.on("close", () => closed++);
    sessions.push(session);
  });
  return {
    port: listener.port,
    sessions,
    closed: () => closed,
    [Symbol.asyncDispose]: async () => {
      for (const s of sessions) s.destroy();
      await listener[Symbol.asyncDispose]();
    },
  };
}

/** Our client over mutual TLS to `h2_server.py`, with the PKI and certificate folders. */
async function toPythonServer() {
  const pki = await makePki();
  const py = await startPythonServer(HOST, await pki.certs(SERVER_ID));
  const dir = await pki.certs(CLIENT_ID);
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  const socket = tls.connect({
    host: HOST,
    port: py.port,
    key: await read("key.pem"),
    cert: await read("cert-chain.pem"),
    ca: await read("root-cert.pem"),
    minVersion: "TLSv1.3",
    ALPNProtocols: ["h2"],
    checkServerIdentity: () => undefined,
  });
  const client = connectH2(socket, {});
  await client.ready;
  return {
    client,
    py,
    [Symbol.asyncDispose]: async () => {
      client.destroy();
      await py[Symbol.asyncDispose]();
      await pki.remove();
    },
  };
}

Deno.test({
  name: "python3-h2 client → our server: 10 streams, 1 MiB each way",
  ignore,
  fn: async () => {
    await using server = await ourServer();
    const r = await runPyClient(server.port, "--streams", "10", "--payload-bytes", String(MIB));
    assert.deepEqual(r.problems, []);
    assert.equal(r.streams_ok, 10);
    assert.equal(r.bytes, 10 * MIB);
    assert.deepEqual(r.resets, []);
    assert.deepEqual(r.server_settings, {
      MAX_CONCURRENT_STREAMS: 100,
      INITIAL_WINDOW_SIZE: 4 * MIB,
      MAX_FRAME_SIZE: MIB,
      MAX_HEADER_LIST_SIZE: 64 * 1024,
    });
  },
});

Deno.test({
  name: "python3-h2 client sends GOAWAY(NO_ERROR) right after its last stream, 50 rounds",
  ignore,
  fn: async () => {
    await using server = await ourServer();
    const r = await runPyClient(
      server.port,
      ...["--streams", "2", "--payload-bytes", "4096", "--rounds", "50", "--goaway"],
    );
    assert.deepEqual(r.problems, []);
    assert.equal(r.rounds_ok, 50);
    assert.equal(r.streams_ok, 100);
    // Odd rounds wait: we must close the connection once the GOAWAY came and no stream is open.
    assert.equal(r.eof_after_goaway, 25);
    await until(() => server.closed() === 50, 5_000, "50 sessions closed");
    assert.ok(server.sessions.every((s) => s.goawayReceived?.errorCode === ErrorCode.NO_ERROR));
  },
});

Deno.test({
  name: "our client → python3-h2 server (TLS): 10 streams, 256 KiB each way, then a clean GOAWAY",
  ignore,
  fn: async () => {
    await using t = await toPythonServer();
    const results = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      const s = t.client.request({ ...connectHeaders(`10.0.3.${i}:9000`), forwarded: 'for="x"' });
      s.on("error", () => {});
      const response = once<Record<string, string>>(s, "response");
      const body = readAll(s);
      const data = pattern(256 * 1024, i + 11);
      s.end(data);
      assert.equal((await response)[":status"], "200");
      return (await body).equals(data);
    }));
    assert.deepEqual(results, Array(10).fill(true));
    await t.client.close();
    const [summary] = await t.py.closedCount(1);
    const records = await t.py.recorded(10);
    for (const r of records) {
      assert.deepEqual(r.violations, []);
      assert.equal(r.peer_identity, CLIENT_ID);
    }
    assert.deepEqual(records[0].headers, [
      [":method", "CONNECT"],
      [":authority", "10.0.3.0:9000"],
      ["forwarded", 'for="x"'],
    ]);
    assert.deepEqual(summary.resets, [], "no RST_STREAM after streams that ended cleanly");
    assert.deepEqual(summary.goaway, { error_code: 0, last_stream_id: 0 });
    // The opening raise to 16 MiB; 2.5 MiB of echoes stay below the 4 MiB refill threshold.
    assert.equal(summary.connection_window_increment, 16 * MIB - 65_535);
    assert.deepEqual(summary.peer_settings, {
      MAX_CONCURRENT_STREAMS: 100,
      INITIAL_WINDOW_SIZE: 4 * MIB,
      MAX_FRAME_SIZE: MIB,
      MAX_HEADER_LIST_SIZE: 64 * 1024,
      ENABLE_PUSH: 0,
    });
    assert.equal(t.py.stderr(), "");
  },
});

Deno.test({
  name: "python3-h2 server refuses a GET with 400 + END_STREAM; PING answered",
  ignore,
  fn: async () => {
    await using t = await toPythonServer();
    const s = t.client.request({
      ":method": "GET",
      ":scheme": "https",
      ":path": "/",
      ":authority": "a",
    });
    s.on("error", () => {});
    const [h, body] = await Promise.all([once<Record<string, string>>(s, "response"), readAll(s)]);
    assert.equal(h[":status"], "400");
    assert.equal(body.length, 0);
    s.end();
    assert.ok((await t.client.ping()) >= 0);
    await t.client.close();
    const [summary] = await t.py.closedCount(1);
    assert.equal(summary.pings, 1, "our PING reached python3-h2");
    assert.deepEqual(summary.resets, []);
  },
});
