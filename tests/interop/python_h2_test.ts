/**
 * HBONE against a second, independent HTTP/2 and TLS stack: Debian's python3-h2 with Python's
 * ssl module (`h2_client.py`, `h2_server.py` beside this file). Loopback addresses 127.0.3.x
 * (pods, waypoints) and 127.10.3.x (VIPs) keep these tests apart from the other test files.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startWaypoint, type Waypoint } from "../../cli/run.ts";
import { startEcho } from "../fixtures/echo.ts";
import { makePki, type Pki, spiffe } from "../fixtures/pki.ts";
import { oneServiceMesh } from "../fixtures/mesh_yaml.ts";
import { concat, roundTrip } from "../fixtures/streams.ts";
import { DEFAULT_TUNNEL_CONFIG, HbonePool, serveDestination } from "../../tunnel/mod.ts";
import { type ConnectRecord, runClient, startPythonServer, whyNoPythonH2 } from "./_python_h2.ts";

const WAYPOINT_ID = spiffe("ns1", "waypoint");
const CLIENT_ID = spiffe("ns1", "client");
const ECHO_ID = spiffe("ns1", "echo");
const KIB = 1024;

const noPythonH2 = whyNoPythonH2();
if (noPythonH2) console.log(`Skipping python3-h2 interop tests: ${noPythonH2}`);
const ignore = noPythonH2 !== undefined;

/** Where the one pod of Service `ns1/echo` lives and how to reach its ztunnel. */
interface MeshShape {
  readonly waypointIp: string;
  readonly vip: string;
  readonly podIp: string;
  readonly targetPort: number;
  readonly ztunnelPort: number;
}

/** Namespace `ns1` bound to Gateway `ns1/waypoint`, Service `ns1/echo` on port 9000, one pod. */
function meshYaml(m: MeshShape): string {
  return oneServiceMesh({
    name: "echo",
    vip: m.vip,
    app: "echo",
    ports: [{ name: "tcp-echo", port: 9000, targetPort: m.targetPort }],
    pods: [{ name: "echo-1", ip: m.podIp, sa: "echo" }],
  });
}

/** Starts the waypoint over {@link meshYaml}; disposing it closes it and removes its folder. */
async function startMeshWaypoint(
  pki: Pki,
  m: MeshShape,
): Promise<{ waypoint: Waypoint; address: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "waypoint-interop-" });
  try {
    await Deno.writeTextFile(`${dir}/mesh.yaml`, meshYaml(m));
    const local = { hostname: m.waypointIp, port: 0 };
    const waypoint = await startWaypoint({
      config: [`${dir}/mesh.yaml`],
      certs: await pki.certs(WAYPOINT_ID),
      namespace: "ns1",
      name: "waypoint",
      trustDomain: "cluster.local",
      trustDomainAliases: [],
      hbone: local,
      readiness: local,
      metrics: local,
      admin: local,
      ztunnelPort: m.ztunnelPort,
    });
    return {
      waypoint,
      address: `${m.waypointIp}:${waypoint.hbone.port}`,
      [Symbol.asyncDispose]: async () => {
        await waypoint.close(200);
        await Deno.remove(dir, { recursive: true });
      },
    };
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
}

/** A PKI removed on dispose. */
async function testPki(): Promise<Pki & AsyncDisposable> {
  const pki = await makePki();
  return Object.assign(pki, { [Symbol.asyncDispose]: () => pki.remove() });
}

/** Lets `await using` run a cleanup function. */
function deferred(cleanup: () => Promise<void> | void): AsyncDisposable {
  return { [Symbol.asyncDispose]: async () => await cleanup() };
}

function header(record: ConnectRecord, name: string): string[] {
  return record.headers.filter(([k]) => k === name).map(([, v]) => v);
}

Deno.test({
  name: "a python3-h2 client gets its bytes through the waypoint over HBONE",
  ignore,
  async fn() {
    await using pki = await testPki();
    const echo = await startEcho("127.0.3.1");
    await using _echo = deferred(() => echo.close());
    const [dest] = await serveDestination([{ host: "127.0.3.1", port: 0 }], {
      identity: await pki.identity(ECHO_ID),
      config: DEFAULT_TUNNEL_CONFIG,
    });
    await using _dest = deferred(() => dest.close(200));
    await using mesh = await startMeshWaypoint(pki, {
      waypointIp: "127.0.3.100",
      vip: "127.10.3.1",
      podIp: "127.0.3.1",
      targetPort: echo.port,
      ztunnelPort: dest.port,
    });

    const { code, report, stderr } = await runClient({
      connect: mesh.address,
      authority: "127.10.3.1:9000",
      certs: await pki.certs(CLIENT_ID),
      expectIdentity: WAYPOINT_ID,
      streams: 10,
      payloadBytes: 64 * KIB,
    });

    assert.equal(code, 0, `${JSON.stringify(report)}\n${stderr}`);
    assert.deepEqual(report.statuses, Array(10).fill(200));
    assert.equal(report.ok_streams, 10);
    assert.equal(report.bytes, 10 * 64 * KIB);
    assert.deepEqual([report.tls?.version, report.tls?.alpn], ["TLSv1.3", "h2"]);
    assert.deepEqual(report.response_headers?.[0], [":status", "200"]);
    assert.equal(echo.accepted, 10);
    assert.equal(
      mesh.waypoint.pool.stats.opened,
      1,
      "the 10 upstream streams shared one connection",
    );
  },
});

Deno.test({
  name: "a python3-h2 client is refused with 404 for a target not bound to the waypoint",
  ignore,
  async fn() {
    await using pki = await testPki();
    await using mesh = await startMeshWaypoint(pki, {
      waypointIp: "127.0.3.101",
      vip: "127.10.3.1",
      podIp: "127.0.3.1",
      targetPort: 9,
      ztunnelPort: 15008,
    });

    const { code, report, stderr } = await runClient({
      connect: mesh.address,
      authority: "127.10.3.99:80",
      certs: await pki.certs(CLIENT_ID),
      expectIdentity: WAYPOINT_ID,
      streams: 2,
      payloadBytes: 0,
      expectStatus: 404,
    });

    assert.equal(code, 0, `${JSON.stringify(report)}\n${stderr}`);
    assert.deepEqual(report.statuses, [404, 404]);
    assert.equal(report.ok_streams, 2);
    assert.equal(report.bytes, 0);
    assert.equal(mesh.waypoint.pool.stats.opened, 0, "no upstream was dialed");
  },
});

Deno.test({
  name:
    "a python3-h2 server acting as destination ztunnel receives the waypoint's CONNECT with the pod authority and the waypoint identity",
  ignore,
  async fn() {
    await using pki = await testPki();
    await using server = await startPythonServer("127.0.3.2", await pki.certs(ECHO_ID));
    await using mesh = await startMeshWaypoint(pki, {
      waypointIp: "127.0.3.102",
      vip: "127.10.3.2",
      podIp: "127.0.3.2",
      targetPort: 7777,
      ztunnelPort: server.port,
    });

    // 100 000 bytes per stream exceed h2's default 65 535-byte windows, so the waypoint must
    // wait for the Python side's WINDOW_UPDATEs on both of its legs.
    const { code, report, stderr } = await runClient({
      connect: mesh.address,
      authority: "127.10.3.2:9000",
      certs: await pki.certs(CLIENT_ID),
      expectIdentity: WAYPOINT_ID,
      streams: 3,
      payloadBytes: 100_000,
    });
    const records = await server.recorded(3);

    assert.equal(code, 0, `${JSON.stringify(report)}\n${stderr}\n${server.stderr()}`);
    assert.equal(report.ok_streams, 3);
    assert.equal(report.bytes, 300_000);
    assert.equal(records.length, 3);
    for (const r of records) {
      assert.equal(r.method, "CONNECT");
      assert.equal(r.authority, "127.0.3.2:7777");
      assert.equal(r.peer_identity, WAYPOINT_ID);
      assert.deepEqual(r.violations, []);
      assert.deepEqual([r.tls.version, r.tls.alpn], ["TLSv1.3", "h2"]);
      const forwarded = header(r, "forwarded");
      assert.equal(forwarded.length, 1, JSON.stringify(r.headers));
      assert.match(forwarded[0], /^for="[^"]+:\d+"/);
    }
    assert.deepEqual(records.map((r) => r.connection), [1, 1, 1], "one pooled connection");
    assert.equal(server.stderr(), "");
  },
});

Deno.test({
  name: "HbonePool talks to a python3-h2 server",
  ignore,
  async fn() {
    await using pki = await testPki();
    const destId = spiffe("ns1", "dest");
    await using server = await startPythonServer("127.0.3.3", await pki.certs(destId));
    const pool = new HbonePool(await pki.identity(CLIENT_ID), DEFAULT_TUNNEL_CONFIG);
    await using _pool = deferred(() => pool.close());
    const target = {
      address: "127.0.3.3",
      port: server.port,
      identity: destId,
      authority: "127.0.3.3:7777",
      headers: { forwarded: 'for="127.0.3.9:40000"' },
    };

    // 256 KiB per stream, four times the Python side's default stream window.
    const payloads = [0, 1, 2].map(() => new Uint8Array(randomBytes(256 * KIB)));
    const tunnels = await Promise.all(payloads.map(() => pool.open(target)));
    const echoed = await Promise.all(tunnels.map((t, i) => roundTrip(t.stream, payloads[i])));
    const records = await server.recorded(3);

    assert.deepEqual(tunnels.map((t) => Number(t.headers[":status"])), [200, 200, 200]);
    assert.deepEqual(echoed.map((e) => e.length), [256 * KIB, 256 * KIB, 256 * KIB]);
    assert.deepEqual(concat(echoed), concat(payloads));
    assert.equal(pool.stats.opened, 1);
    for (const r of records) {
      assert.deepEqual(r.headers, [
        [":method", "CONNECT"],
        [":authority", "127.0.3.3:7777"],
        ["forwarded", 'for="127.0.3.9:40000"'],
      ]);
      assert.equal(r.peer_identity, CLIENT_ID);
      assert.deepEqual(r.violations, []);
    }
    assert.deepEqual(records.map((r) => r.connection), [1, 1, 1]);

    pool.close();
    const [summary] = await server.closedCount(1);
    assert.deepEqual(summary.resets, [], "no RST_STREAM after streams that ended cleanly");
    assert.deepEqual(summary.goaway, { error_code: 0, last_stream_id: 0 });
    assert.equal(summary.connection_window_increment, (16 << 20) - 65_535);
    assert.equal(server.stderr(), "");
  },
});
