/**
 * Gateway API routing and upstream failures over HBONE end to end: an HTTPRoute attached to
 * Service `ns1/echo` (GAMMA) splits traffic over `echo-v1` and `echo-v2`, on loopback addresses
 * 127.0.7.10-19 (pods), 127.10.7.10-19 (VIPs) and 127.0.7.210-219 (waypoints).
 */
import assert from "node:assert/strict";
import { startMesh } from "../fixtures/mesh.ts";
import { text } from "../fixtures/streams.ts";
import {
  type Backends,
  echoHandler,
  header,
  Http1,
  json,
  request,
  startHttpBackends,
} from "./_l7.ts";

const VIP = "127.10.7.10";
const V1 = { name: "echo-1", ip: "127.0.7.10", labels: { version: "v1" } };
const V2 = { name: "echo-2", ip: "127.0.7.11", labels: { version: "v2" } };

/** One Service per version, and the route on port 80 of `ns1/echo`. */
function routesYaml(port: number): string {
  const version = (v: string, vip: string) =>
    `---
apiVersion: v1
kind: Service
metadata: { name: echo-${v}, namespace: ns1 }
spec:
  clusterIP: ${vip}
  selector: { app: echo, version: ${v} }
  ports: [{ name: http, port: 80, targetPort: ${port} }]
`;
  const to = (v: string) => `[{ name: echo-${v}, port: 80 }]`;
  const prefix = (p: string) => `[{ path: { type: PathPrefix, value: ${p} } }]`;
  return version("v1", "127.10.7.11") + version("v2", "127.10.7.12") + `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: echo-routes, namespace: ns1 }
spec:
  parentRefs: [{ group: "", kind: Service, name: echo, port: 80 }]
  rules:
    - matches: [{ headers: [{ name: x-version, value: v2 }] }]
      backendRefs: ${to("v2")}
    - matches: ${prefix("/v1")}
      backendRefs: ${to("v1")}
    - matches: ${prefix("/edit")}
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{ name: x-set, value: by-route }]
            add: [{ name: x-added, value: also }]
            remove: [x-remove]
        - type: URLRewrite
          urlRewrite:
            hostname: rewritten.example
            path: { type: ReplacePrefixMatch, replacePrefixMatch: /rewritten }
      backendRefs: ${to("v1")}
    - matches: ${prefix("/old")}
      filters:
        - type: RequestRedirect
          requestRedirect:
            hostname: new.example
            path: { type: ReplaceFullPath, replaceFullPath: /new }
            statusCode: 302
    - matches: ${prefix("/split")}
      backendRefs:
        - { name: echo-v1, port: 80, weight: 80 }
        - { name: echo-v2, port: 80, weight: 20 }
    - matches: ${prefix("/missing")}
      backendRefs: [{ name: nowhere, port: 80 }]
    - matches: ${prefix("/hang")}
      timeouts: { request: 200ms }
      backendRefs: ${to("v1")}
    - matches: ${prefix("/flaky")}
      retry: { attempts: 2, codes: [503], backoff: 1ms }
      backendRefs: ${to("v1")}
`;
}

/** The echo backend, except that `/hang` never answers and `/flaky` fails its first call. */
function routedBackends(): Promise<Backends & { flaky: number }> {
  let flaky = 0;
  return startHttpBackends([V1.ip, V2.ip], (req, res, pod) => {
    if (req.url?.startsWith("/hang")) return void req.resume();
    if (req.url?.startsWith("/flaky") && flaky++ === 0) {
      req.resume();
      res.writeHead(503, { "content-type": "text/plain" });
      return void res.end("first call fails");
    }
    echoHandler(req, res, pod);
  }).then((b) =>
    Object.defineProperty(b, "flaky", { get: () => flaky }) as Backends & { flaky: number }
  );
}

async function routedMesh(waypointIp: string, backends: Backends) {
  return await startMesh({
    waypointIp,
    vip: VIP,
    pods: [V1, V2],
    ports: [{ name: "http", port: 80, targetPort: backends.port }],
    extraYaml: routesYaml(backends.port),
  });
}

Deno.test("an HTTPRoute on the Service sends by header to v2 and by path prefix to v1", async () => {
  await using backends = await routedBackends();
  await using mesh = await routedMesh("127.0.7.210", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  for (let i = 0; i < 4; i++) {
    assert.equal(json(await c.fetch("GET", "/", [["x-version", "v2"]])).pod, V2.ip);
    assert.equal(json(await c.fetch("GET", `/v1/item/${i}`)).pod, V1.ip);
  }
  assert.deepEqual([...backends.calls.values()], [4, 4]);
});

Deno.test("a Service with routes answers 404 when no rule matches", async () => {
  await using backends = await routedBackends();
  await using mesh = await routedMesh("127.0.7.211", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  assert.equal((await c.fetch("GET", "/nothing/here")).status, 404);
  assert.equal((await c.fetch("GET", "/v10")).status, 404, "PathPrefix matches whole segments");
  assert.equal(
    (await c.fetch("POST", "/nothing", [], "a body the reply leaves unread")).status,
    404,
  );
  assert.equal(backends.total, 0);
});

Deno.test("RequestHeaderModifier and URLRewrite edits reach the backend", async () => {
  await using backends = await routedBackends();
  await using mesh = await routedMesh("127.0.7.212", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  const echoed = json(
    await c.fetch("GET", "/edit/a/b?q=1", [["x-set", "client"], ["x-remove", "gone"], [
      "x-added",
      "first",
    ]]),
  );
  const all = (name: string) => echoed.headers.filter(([n]) => n === name).map(([, v]) => v);
  assert.equal(echoed.pod, V1.ip);
  assert.equal(echoed.path, "/rewritten/a/b?q=1");
  assert.deepEqual(all("host"), ["rewritten.example"]);
  assert.deepEqual(all("x-set"), ["by-route"]);
  assert.deepEqual(all("x-added"), ["first", "also"]);
  assert.deepEqual(all("x-remove"), []);
});

Deno.test("RequestRedirect answers 302 with Location and reaches no backend", async () => {
  await using backends = await routedBackends();
  await using mesh = await routedMesh("127.0.7.213", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  const res = await c.fetch("GET", "/old/page?x=1", [["host", "echo.ns1.svc.cluster.local"]]);
  assert.equal(res.status, 302);
  assert.equal(header(res.headers, "location"), "http://new.example/new?x=1");
  assert.equal(backends.total, 0);
});

Deno.test("weights 80/20 split 500 requests within 7 points", async () => {
  await using backends = await routedBackends();
  await using mesh = await routedMesh("127.0.7.214", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  const n = 500;
  c.send(Array.from({ length: n }, (_, i) => request("GET", `/split/${i}`)).join(""));
  let v1 = 0;
  for (let i = 0; i < n; i++) if (json(await c.next()).pod === V1.ip) v1++;
  // The waypoint's randomness cannot be seeded end to end. v1's count is Binomial(500, 0.8):
  // sd = sqrt(500 * 0.8 * 0.2) ≈ 8.9 requests ≈ 1.8 points, so ±7 points is ±3.9 sd, which a
  // correct split misses in about 1 run in 10,000 (two-sided), well under 0.1%.
  const share = (100 * v1) / n;
  assert.ok(Math.abs(share - 80) <= 7, `v1 got ${share}% of ${n} requests`);
  assert.equal(backends.total, n);
});

Deno.test("a backendRef to a missing Service answers 500", async () => {
  await using backends = await routedBackends();
  await using mesh = await routedMesh("127.0.7.215", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  assert.equal((await c.fetch("GET", "/missing")).status, 500);
  assert.equal(backends.total, 0);
});

Deno.test("timeouts.request of 200ms answers 504 for a backend that never answers", async () => {
  await using backends = await routedBackends();
  await using mesh = await routedMesh("127.0.7.216", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  const res = await c.fetch("GET", "/hang");
  assert.equal(res.status, 504);
  assert.match(text(res.body), /upstream request timeout/);
  assert.equal(backends.calls.get(V1.ip), 1);
  // The connection stays usable after the timeout.
  assert.equal((await c.fetch("GET", "/v1")).status, 200);
});

Deno.test("a retry on 503 turns a backend's first failure into a 200 after two calls", async () => {
  await using backends = await routedBackends();
  await using mesh = await routedMesh("127.0.7.217", backends);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  const res = await c.fetch("GET", "/flaky");
  assert.equal(res.status, 200);
  assert.equal(json(res).path, "/flaky");
  assert.equal(backends.flaky, 2);
});

Deno.test("the only endpoint's ztunnel being down answers 503 with an upstream connect error", async () => {
  await using backends = await startHttpBackends([V1.ip]);
  await using mesh = await startMesh({
    waypointIp: "127.0.7.218",
    vip: VIP,
    pods: [V1],
    ports: [{ name: "http", port: 80, targetPort: backends.port }],
  });
  await mesh.destinations[0].close(0);
  const c = new Http1((await mesh.connect(`${VIP}:80`)).stream);
  const res = await c.fetch("GET", "/");
  assert.equal(res.status, 503);
  assert.match(text(res.body), /^upstream connect error or disconnect\/reset before headers/);
  assert.equal(backends.total, 0);
});
