/**
 * WasmPlugins through a real waypoint over HBONE: resources in the config YAML point at modules
 * built with the AssemblyScript SDK (`file://`), a third-party Go module, and an image in a real
 * registry (`oci://`); their effects are seen on the wire, on `/stats/prometheus`, and across a
 * config reload. Loopback 127.0.27.x: pods .1-.2, VIPs .101-.102, waypoints .200+, registry .250.
 */
import assert from "node:assert/strict";
import type { IncomingMessage, ServerResponse } from "node:http";
import { text } from "../fixtures/streams.ts";
import { buildPlugins, type PluginName } from "../wasm/plugins/build.ts";
import { pushImage, registryAvailable, startRegistry } from "../wasm/_registry.ts";
import { startAuthzMesh } from "./_authz_mesh.ts";
import { echoHandler, header, Http1, json, type RawResponse, startHttpBackends } from "./_l7.ts";

const ECHO_VIP = "127.0.27.101";
const ECHO_POD = { name: "echo-1", ip: "127.0.27.1" };
const APP_VIP = "127.0.27.102";
const APP_POD = "127.0.27.2";
const APP_HOST = "app.ns1.svc.cluster.local";
const REGISTRY_IP = "127.0.27.250";

const paths = await buildPlugins();
const GO_HEADERS = new URL(
  "../../../shared/fixtures/wasm/go-http-headers.wasm",
  import.meta.url,
);

/**
 * Service `ns1/app`: `/check` answers 200 `checked-ok` when `x-original-path` starts with
 * `/allowed`, else 403; other paths are echoed with a response header `x-upstream-secret`.
 */
function appHandler(req: IncomingMessage, res: ServerResponse, pod: string): void {
  if (req.url === "/check") {
    const allowed = String(req.headers["x-original-path"] ?? "").startsWith("/allowed");
    req.resume();
    res.writeHead(allowed ? 200 : 403, { "content-type": "text/plain" });
    return void res.end(allowed ? "checked-ok" : "no");
  }
  res.setHeader("x-upstream-secret", "hidden");
  echoHandler(req, res, pod);
}

/** A WasmPlugin document in `ns1`; `url` defaults to the built AS plugin `module`. */
function plugin(name: string, module: PluginName, spec: Record<string, unknown>): string {
  const full = {
    url: `file://${paths[module]}`,
    pluginName: module,
    pluginConfig: { unused: "x" },
    ...spec,
  };
  return `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: ${name}, namespace: ns1 }
spec: ${JSON.stringify(full)}
`;
}

const TO_APP = { targetRefs: [{ kind: "Service", group: "", name: "app" }] };
const TO_ECHO = { targetRefs: [{ kind: "Service", group: "", name: "echo" }] };
const TO_GATEWAY = {
  targetRefs: [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "waypoint" }],
};

/** An AuthorizationPolicy on Service `ns1/app` that denies `/denied`. */
const DENY_PATH = `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-path, namespace: ns1 }
spec:
  targetRefs: [{ kind: Service, group: "", name: app }]
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/denied"] } }] }]
`;

/**
 * The mesh: Service `ns1/echo` (port 80, plain echo) and Service `ns1/app` (port 8080,
 * {@link appHandler}), both behind the waypoint, with these WasmPlugins.
 */
async function wasmMesh(waypointIp: string, plugins: string) {
  const p = await startAuthzMesh({
    waypointIp,
    vip: ECHO_VIP,
    pod: ECHO_POD,
    authzPod: APP_POD,
    authzService: { name: "app", vip: APP_VIP, port: 8080, portName: "http" },
    authz: await startHttpBackends([APP_POD], appHandler),
    yaml: plugins,
    meshConfig: "",
  });
  const client = async (vip: string, port: number) =>
    new Http1((await p.mesh.connect(`${vip}:${port}`)).stream);
  return Object.assign(p, {
    app: () => client(APP_VIP, 8080),
    echo: () => client(ECHO_VIP, 80),
  });
}

/** Every value of a request header the backend saw. */
function seen(res: RawResponse, name: string): string[] {
  return json(res).headers.filter(([n]) => n === name).map(([, v]) => v);
}

function values(res: RawResponse, name: string): string[] {
  return res.headers.filter(([n]) => n === name).map(([, v]) => v);
}

Deno.test("the headers plugin edits what the backend and the client see", async () => {
  await using p = await wasmMesh(
    "127.0.27.200",
    plugin("headers", "headers", { ...TO_APP, pluginConfig: { request: "from-wasm" } }),
  );
  const c = await p.app();
  const res = await c.fetch("GET", "/page", [["x-strip-me", "1"], ["x-keep", "1"]]);
  assert.equal(res.status, 200);
  assert.deepEqual(seen(res, "x-wasm-request"), ["from-wasm"]);
  assert.deepEqual(seen(res, "x-strip-me"), []);
  assert.deepEqual(seen(res, "x-keep"), ["1"]);
  assert.equal(header(res.headers, "x-wasm-response"), "yes");
  assert.equal(header(res.headers, "x-upstream-secret"), undefined);
});

Deno.test("a plugin attached to one Service leaves another Service alone", async () => {
  await using p = await wasmMesh(
    "127.0.27.201",
    plugin("headers", "headers", { ...TO_APP, pluginConfig: { request: "app-only" } }),
  );
  const other = await (await p.echo()).fetch("GET", "/", [["x-strip-me", "1"]]);
  assert.equal(other.status, 200);
  assert.deepEqual(seen(other, "x-wasm-request"), []);
  assert.deepEqual(seen(other, "x-strip-me"), ["1"]);
  assert.equal(header(other.headers, "x-wasm-response"), undefined);
  const app = await (await p.app()).fetch("GET", "/");
  assert.deepEqual(seen(app, "x-wasm-request"), ["app-only"]);
});

Deno.test("the deny plugin answers 403 with its body and header, before the backend", async () => {
  await using p = await wasmMesh("127.0.27.202", plugin("deny", "deny", TO_APP));
  const c = await p.app();
  const denied = await c.fetch("GET", "/x", [["x-deny", "please"]]);
  assert.equal(denied.status, 403);
  assert.equal(text(denied.body), "denied by wasm\n");
  assert.equal(header(denied.headers, "x-wasm-denied"), "yes");
  assert.equal((await c.fetch("GET", "/x")).status, 200);
  assert.equal(p.authz.calls.get(APP_POD), 1);
});

Deno.test("the http_call plugin asks another Service of the mesh, whose answer decides", async () => {
  await using p = await wasmMesh(
    "127.0.27.203",
    plugin("gate", "http_call", { ...TO_ECHO, pluginConfig: { cluster: APP_HOST } }),
  );
  const c = await p.echo();
  const allowed = await c.fetch("GET", "/allowed/1");
  assert.equal(allowed.status, 200);
  assert.deepEqual(seen(allowed, "x-checked"), ["checked-ok"]);
  const refused = await c.fetch("GET", "/secret");
  assert.equal(refused.status, 403);
  assert.equal(text(refused.body), "refused: status 403\n");
  // Both checks reached `app` through its ztunnel; only the allowed request reached `echo`.
  assert.equal(p.authz.calls.get(APP_POD), 2);
  assert.equal(p.backends.total, 1);
});

Deno.test("plugins run by phase, then by priority, around the waypoint's own filters", async () => {
  const at = (name: string, spec: Record<string, unknown>) =>
    plugin(name, "headers", { ...TO_APP, pluginConfig: { request: name }, ...spec });
  await using p = await wasmMesh(
    "127.0.27.204",
    at("unspecified", {}) + at("stats-low", { phase: "STATS", priority: 1 }) +
      at("stats-high", { phase: "STATS", priority: 10 }) + at("authz", { phase: "AUTHZ" }) +
      at("authn", { phase: "AUTHN" }) + DENY_PATH,
  );
  const c = await p.app();
  const res = await c.fetch("GET", "/");
  assert.deepEqual(seen(res, "x-wasm-request"), [
    "authn",
    "authz",
    "stats-high",
    "stats-low",
    "unspecified",
  ]);
  assert.deepEqual(values(res, "x-wasm-response"), ["yes", "yes", "yes", "yes", "yes"]);
  // The AuthorizationPolicy denies after the AUTHN and AUTHZ plugins, before the others: only
  // those two see its 403 on the way back.
  const denied = await c.fetch("GET", "/denied");
  assert.equal(denied.status, 403);
  assert.equal(text(denied.body), "RBAC: access denied");
  assert.deepEqual(values(denied, "x-wasm-response"), ["yes", "yes"]);
});

Deno.test("a module that cannot be fetched denies under FAIL_CLOSE and is skipped under FAIL_OPEN", async () => {
  const missing = "file:///nonexistent/waypoint-test/missing.wasm";
  await using p = await wasmMesh(
    "127.0.27.205",
    plugin("closed", "headers", { ...TO_APP, url: missing, failStrategy: "FAIL_CLOSE" }) +
      plugin("open", "headers", { ...TO_ECHO, url: missing, failStrategy: "FAIL_OPEN" }),
  );
  const closed = await (await p.app()).fetch("GET", "/");
  assert.equal(closed.status, 403);
  assert.equal(text(closed.body), "RBAC: access denied");
  assert.equal(p.authz.total, 0);
  const open = await (await p.echo()).fetch("GET", "/");
  assert.equal(open.status, 200);
  assert.equal(p.backends.total, 1);
});

Deno.test("a trapping plugin fails the stream with an empty 503 under FAIL_CLOSE, and is skipped under FAIL_OPEN", async () => {
  await using p = await wasmMesh(
    "127.0.27.206",
    plugin("closed", "trap", { ...TO_APP, failStrategy: "FAIL_CLOSE" }) +
      plugin("open", "trap", { ...TO_ECHO, failStrategy: "FAIL_OPEN" }),
  );
  const closed = await (await p.app()).fetch("GET", "/", [["x-trap", "1"]]);
  assert.equal(closed.status, 503);
  assert.equal(closed.body.length, 0);
  assert.equal(p.authz.total, 0);
  const open = await (await p.echo()).fetch("GET", "/", [["x-trap", "1"]]);
  assert.equal(open.status, 200);
  assert.equal(p.backends.total, 1);
});

Deno.test("the counter plugin's metric is on /stats/prometheus beside istio_requests_total", async () => {
  await using p = await wasmMesh("127.0.27.207", plugin("counter", "counter", TO_GATEWAY));
  const app = await p.app();
  const echo = await p.echo();
  for (const c of [app, echo, app]) assert.equal((await c.fetch("GET", "/")).status, 200);
  const res = await fetch(`http://${p.mesh.waypoint.admin[1].addr}/stats/prometheus`);
  const lines = (await res.text()).split("\n");
  assert.ok(lines.includes("wasm_test_requests 3"), lines.join("\n"));
  assert.ok(lines.some((l) => l.startsWith("istio_requests_total{")), "istio metrics too");
});

/** Resolves on the waypoint's next config snapshot (bounded at 10 s). */
function nextConfig(p: Awaited<ReturnType<typeof wasmMesh>>): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error("No config reload in 10 s"));
    }, 10_000);
    const stop = p.mesh.waypoint.holder.subscribe(() => {
      clearTimeout(timer);
      stop();
      resolve();
    });
  });
}

Deno.test("a config reload adds and removes a plugin while the waypoint runs", async () => {
  await using p = await wasmMesh("127.0.27.208", "");
  const original = await Deno.readTextFile(p.mesh.configFile);
  // One keep-alive connection throughout: each request sees the config in force when it starts.
  const connection = await p.app();
  const request = async () => seen(await connection.fetch("GET", "/"), "x-wasm-request");
  assert.deepEqual(await request(), []);
  const added = nextConfig(p);
  await Deno.writeTextFile(
    p.mesh.configFile,
    original + plugin("late", "headers", { ...TO_APP, pluginConfig: { request: "late" } }),
  );
  await added;
  assert.deepEqual(await request(), ["late"]);
  const removed = nextConfig(p);
  await Deno.writeTextFile(p.mesh.configFile, original);
  await removed;
  assert.deepEqual(await request(), []);
});

Deno.test("a third-party Go SDK module runs through a WasmPlugin", async () => {
  await using p = await wasmMesh(
    "127.0.27.209",
    plugin("go", "headers", {
      ...TO_APP,
      url: GO_HEADERS.href,
      pluginName: "",
      pluginConfig: { header: "x-wasm-header", value: "x-value" },
    }),
  );
  const c = await p.app();
  const res = await c.fetch("GET", "/", [["test", "foo"]]);
  assert.equal(res.status, 200);
  assert.deepEqual(seen(res, "test"), ["best"]);
  assert.equal(header(res.headers, "x-proxy-wasm-go-sdk-example"), "http_headers");
  assert.equal(header(res.headers, "x-wasm-header"), "x-value");
  assert.equal(header(res.headers, "x-proxy-wasm-counter"), "1");
  const again = await c.fetch("GET", "/");
  assert.equal(header(again.headers, "x-proxy-wasm-counter"), "2");
});

Deno.test("a plugin image pushed to a registry is pulled by the running waypoint", async () => {
  if (!registryAvailable()) {
    console.warn("SKIP: docker-registry is not installed (apt-get install docker-registry)");
    return;
  }
  const registry = await startRegistry(REGISTRY_IP);
  try {
    const module = await Deno.readFile(paths.deny);
    await pushImage(registry.host, "wasm/deny", "v1", "oci", module);
    await using p = await wasmMesh(
      "127.0.27.210",
      plugin("deny", "deny", { ...TO_APP, url: `oci://${registry.host}/wasm/deny:v1` }),
    );
    const c = await p.app();
    const denied = await c.fetch("GET", "/", [["x-deny", "1"]]);
    assert.equal(denied.status, 403);
    assert.equal(text(denied.body), "denied by wasm\n");
    assert.equal((await c.fetch("GET", "/")).status, 200);
  } finally {
    await registry.stop();
  }
});
