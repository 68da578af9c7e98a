/**
 * The `--dev-http` listener end to end: plain HTTP on the waypoint IP, Host header → Service,
 * plain TCP to the pod (`plainUpstreams`). Loopback addresses 127.0.7.40-49 (pods), 127.10.7.40
 * (VIP) and 127.0.7.250 (waypoint).
 */
import assert from "node:assert/strict";
import http from "node:http";
import { startMesh } from "../fixtures/mesh.ts";
import { type Echoed, startHttpBackends } from "./_l7.ts";

const POD = { name: "echo-1", ip: "127.0.7.40" };

Deno.test("--dev-http sends a request to the Service its Host header names, and 404 for an unknown host", async () => {
  await using backends = await startHttpBackends([POD.ip]);
  await using mesh = await startMesh({
    waypointIp: "127.0.7.250",
    vip: "127.10.7.40",
    pods: [POD],
    ports: [{ name: "http", port: 80, targetPort: backends.port }],
    devHttp: true,
    devIdentity: "spiffe://cluster.local/ns/ns1/sa/developer",
    plainUpstreams: true,
  });
  const dev = mesh.waypoint.devHttp!;
  for (const host of ["echo", "echo.ns1", "echo.ns1.svc.cluster.local:80"]) {
    const res = await get(dev, `/dev?host=${host}`, host);
    assert.equal(res.status, 200, host);
    const echoed: Echoed = JSON.parse(res.body);
    assert.equal(echoed.pod, POD.ip);
    assert.equal(echoed.path, `/dev?host=${host}`);
  }
  assert.equal((await get(dev, "/", "nobody.ns1")).status, 404);
  assert.equal(backends.total, 3);
  assert.deepEqual(mesh.destinations.map((d) => d.sessions), [0], "no HBONE upstream was used");
});

/**
 * A GET with a chosen Host header. `fetch` cannot do it: Deno drops `host` as a forbidden request
 * header and sends the URL's authority instead.
 */
function get(
  to: { address: string; port: number },
  path: string,
  host: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: to.address, port: to.port, path, headers: { host }, agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => body += c);
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
  });
}
