/**
 * Policies enforced on live traffic over HBONE: AuthorizationPolicy (403 body, TCP refusal),
 * RequestAuthentication (401 and `www-authenticate`) and a CUSTOM ext_authz HTTP provider, on
 * loopback addresses 127.0.8.x (pods), 127.10.8.1 (VIP) and 127.0.8.200+ (waypoints).
 */
import assert from "node:assert/strict";
import { SHARED_FIXTURES } from "../policy/_fixtures.ts";
import { TunnelError } from "../../tunnel/mod.ts";
import { startAuthzMesh } from "./_authz_mesh.ts";
import { header, Http1, json, startHttpBackends } from "./_l7.ts";

const VIP = "127.10.8.1";
const POD = { name: "echo-1", ip: "127.0.8.1" };
const AUTHZ_POD = "127.0.8.5";
const JWKS = Deno.readTextFileSync(`${SHARED_FIXTURES}/jwt/samples/jwks.json`);
const DEMO_JWT = Deno.readTextFileSync(`${SHARED_FIXTURES}/jwt/samples/demo.jwt`).trim();

const POLICIES = `
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: ns1 }
spec:
  targetRefs: [{ kind: Service, group: "", name: echo }]
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-client, namespace: ns1 }
spec:
  targetRefs: [{ kind: Service, group: "", name: echo }]
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/ns1/sa/client"] } }]
      to: [{ operation: { methods: ["GET"], ports: ["80"] } }]
    - to: [{ operation: { ports: ["9000"] } }]
      when: [{ key: source.principal, values: ["cluster.local/ns/ns1/sa/nobody"] }]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: ns1 }
spec:
  targetRefs: [{ kind: Service, group: "", name: echo }]
  jwtRules:
    - issuer: testing@secure.istio.io
      jwks: '${JWKS.replaceAll("'", "''").trim()}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext, namespace: ns1 }
spec:
  targetRefs: [{ kind: Service, group: "", name: echo }]
  action: CUSTOM
  provider: { name: authz-http }
  rules: [{ to: [{ operation: { paths: ["/ext/*"] } }] }]
`;

const MESH_CONFIG = `
extensionProviders:
  - name: authz-http
    envoyExtAuthzHttp:
      service: ext-authz.ns1.svc.cluster.local
      port: 8000
      includeRequestHeadersInCheck: [x-ext-allow]
      headersToUpstreamOnAllow: [x-ext-user]
      headersToDownstreamOnDeny: [x-ext-reason]
`;

/** The mesh with HTTP backends, the ext_authz server and the policies above. */
async function policyMesh(waypointIp: string) {
  // The ext_authz server allows when the check carries `x-ext-allow: yes`.
  const authz = await startHttpBackends([AUTHZ_POD], (req, res) => {
    if (req.headers["x-ext-allow"] === "yes") {
      res.writeHead(200, { "x-ext-user": "alice" }).end();
    } else {
      res.writeHead(403, { "x-ext-reason": "no allow header", "x-other": "hidden" }).end(
        "denied by ext",
      );
    }
  });
  return await startAuthzMesh({
    waypointIp,
    vip: VIP,
    pod: POD,
    authzPod: AUTHZ_POD,
    authzService: { name: "ext-authz", vip: "127.10.8.5", port: 8000, portName: "http" },
    authz,
    yaml: POLICIES,
    meshConfig: MESH_CONFIG,
  });
}

Deno.test("waypoint answers 403 RBAC: access denied for a DENY match and lets allowed requests through", async () => {
  await using p = await policyMesh("127.0.8.200");
  const c = new Http1((await p.mesh.connect(`${VIP}:80`)).stream);
  const ok = await c.fetch("GET", "/reviews");
  assert.equal(ok.status, 200);
  const denied = await c.fetch("GET", "/admin/users");
  assert.equal(denied.status, 403);
  assert.equal(new TextDecoder().decode(denied.body), "RBAC: access denied");
  const notAllowed = await c.fetch("POST", "/reviews", [], "x");
  assert.equal(notAllowed.status, 403, "ALLOW matches GET only");
  assert.equal(p.backends.total, 1);
});

Deno.test("waypoint answers 401 with www-authenticate for a bad JWT and accepts Istio's demo token", async () => {
  await using p = await policyMesh("127.0.8.201");
  const c = new Http1((await p.mesh.connect(`${VIP}:80`)).stream);
  const bad = await c.fetch("GET", "/reviews", [["authorization", "Bearer not.a.jwt"]]);
  assert.equal(bad.status, 401);
  assert.match(header(bad.headers, "www-authenticate") ?? "", /^Bearer realm=/);
  const good = await c.fetch("GET", "/reviews", [["authorization", `Bearer ${DEMO_JWT}`]]);
  assert.equal(good.status, 200);
  assert.equal(p.backends.total, 1);
});

Deno.test("waypoint asks the ext_authz HTTP provider for CUSTOM paths and obeys its answer", async () => {
  await using p = await policyMesh("127.0.8.202");
  const c = new Http1((await p.mesh.connect(`${VIP}:80`)).stream);
  const denied = await c.fetch("GET", "/ext/a");
  assert.equal(denied.status, 403);
  assert.equal(new TextDecoder().decode(denied.body), "denied by ext");
  assert.equal(header(denied.headers, "x-ext-reason"), "no allow header");
  assert.equal(header(denied.headers, "x-other"), undefined, "only headersToDownstreamOnDeny pass");
  const allowed = await c.fetch("GET", "/ext/a", [["x-ext-allow", "yes"]]);
  assert.equal(allowed.status, 200);
  const seen = json(allowed).headers.find(([n]) => n === "x-ext-user")?.[1];
  assert.equal(seen, "alice", "headersToUpstreamOnAllow reach the backend");
  await c.fetch("GET", "/not-ext");
  assert.equal(p.authz.total, 2, "paths outside the CUSTOM rule are not checked");
});

Deno.test("waypoint refuses a TCP connection that AuthorizationPolicy does not allow with 401", async () => {
  await using p = await policyMesh("127.0.8.203");
  let status: number | string = 200;
  try {
    await p.mesh.connect(`${VIP}:9000`);
  } catch (e) {
    assert.ok(e instanceof TunnelError);
    status = e.status ?? e.kind;
  }
  assert.equal(status, 401);
  assert.equal(p.mesh.echo.accepted, 0);
});

Deno.test("a policy change applies to the next request of an open keep-alive connection", async () => {
  await using p = await policyMesh("127.0.8.207");
  const c = new Http1((await p.mesh.connect(`${VIP}:80`)).stream);
  assert.equal((await c.fetch("GET", "/reviews")).status, 200);
  const original = await Deno.readTextFile(p.mesh.configFile);
  const reloaded = new Promise<void>((resolve) => {
    const stop = p.mesh.waypoint.holder.subscribe(() => {
      stop();
      resolve();
    });
  });
  await Deno.writeTextFile(
    p.mesh.configFile,
    original.replace('paths: ["/admin*"]', 'paths: ["/admin*", "/reviews"]'),
  );
  await reloaded;
  const denied = await c.fetch("GET", "/reviews");
  assert.equal(denied.status, 403, "the same connection sees the new DENY rule");
  assert.equal(p.backends.total, 1);
});
