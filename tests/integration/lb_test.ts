/**
 * DestinationRule load balancing over HBONE end to end: Service `ns1/echo` over three pods, with
 * a DestinationRule naming it by short host, on loopback addresses 127.0.15.1-3 (pods),
 * 127.10.15.1 (VIP) and 127.0.15.200 (waypoint).
 */
import assert from "node:assert/strict";
import { startMesh } from "../fixtures/mesh.ts";
import { Http1, json, startHttpBackends } from "./_l7.ts";

const VIP = "127.10.15.1";
const PODS = [1, 2, 3].map((i) => ({ name: `echo-${i}`, ip: `127.0.15.${i}` }));

const ROUND_ROBIN = `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo-lb, namespace: ns1 }
spec:
  host: echo
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
`;

Deno.test("a ROUND_ROBIN DestinationRule sends HTTP requests and TCP connections to each pod in turn", async () => {
  await using backends = await startHttpBackends(PODS.map((p) => p.ip));
  await using mesh = await startMesh({
    waypointIp: "127.0.15.200",
    vip: VIP,
    pods: PODS,
    ports: [
      { name: "http", port: 80, targetPort: backends.port },
      { name: "tcp-plain", port: 90, targetPort: backends.port },
    ],
    extraYaml: ROUND_ROBIN,
  });
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  for (let i = 0; i < 12; i++) assert.equal((await c.fetch("GET", `/item/${i}`)).status, 200);
  assert.deepEqual([...backends.calls.values()], [4, 4, 4]);

  // Port 90 is plain TCP: the balancer picks once per connection, in the same turn order.
  const pods: string[] = [];
  for (let i = 0; i < 6; i++) {
    const tunnel = await mesh.connect(`${VIP}:90`);
    const tcp = new Http1(tunnel.stream);
    pods.push(json(await tcp.fetch("GET", "/", [["connection", "close"]])).pod);
    tunnel.stream.end();
  }
  assert.deepEqual(pods.slice(3), pods.slice(0, 3));
  assert.deepEqual(new Set(pods), new Set(PODS.map((p) => p.ip)));
});
