/**
 * A CUSTOM AuthorizationPolicy with an `envoyExtAuthzGrpc` provider on live traffic over HBONE:
 * the waypoint calls `Authorization/Check` on a `node:http2` h2c server (decoding the request
 * with our own decoder) through the provider pod's destination-ztunnel stand-in, on loopback
 * addresses 127.0.16.x (pods), 127.10.16.x (VIPs) and 127.0.16.200+ (waypoints).
 */
import assert from "node:assert/strict";
import type { ServerHttp2Stream } from "node:http2";
import { CLIENT_ID } from "../fixtures/mesh.ts";
import { concat } from "../fixtures/streams.ts";
import {
  type CheckRequest,
  type CheckResponse,
  decodeCheckRequest,
  encodeCheckResponse,
} from "../../proxy/ext_authz_grpc.ts";
import { grpcFrame, grpcUnframe } from "../../grpc/mod.ts";
import { header, Http1, json, startH2Backends } from "./_l7.ts";
import { startAuthzMesh } from "./_authz_mesh.ts";

const VIP = "127.10.16.1";
const POD = { name: "echo-1", ip: "127.0.16.1" };
const AUTHZ_POD = "127.0.16.5";
const CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check";

const POLICIES = `
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext-grpc, namespace: ns1 }
spec:
  targetRefs: [{ kind: Service, group: "", name: echo }]
  action: CUSTOM
  provider: { name: authz-grpc }
  rules: [{ to: [{ operation: { paths: ["/ext/*"] } }] }]
`;

const MESH_CONFIG = `
extensionProviders:
  - name: authz-grpc
    envoyExtAuthzGrpc:
      service: ext-authz-grpc.ns1.svc.cluster.local
      port: 9000
      timeout: 5s
      statusOnError: 503
`;

const ALLOW: CheckResponse = {
  status: { code: 0, message: "" },
  ok: {
    headers: [{ key: "x-ext-user", value: "alice", append: false }],
    headersToRemove: [],
    responseHeadersToAdd: [],
  },
};

const DENY: CheckResponse = {
  status: { code: 7, message: "PERMISSION_DENIED" },
  denied: {
    status: 403,
    headers: [{ key: "x-ext-reason", value: "no allow header" }],
    body: "denied by grpc ext",
  },
};

/**
 * The Authorization service: allows with `x-ext-allow: yes` (adding `x-ext-user: alice`
 * upstream), fails with grpc-status 14 for `x-ext-fail: yes`, denies otherwise.
 */
function answer(stream: ServerHttp2Stream, path: string | undefined, seen: CheckRequest[]) {
  const chunks: Uint8Array[] = [];
  stream.on("data", (c: Uint8Array) => chunks.push(c));
  stream.on("end", () => {
    const [message] = grpcUnframe(concat(chunks));
    const check = decodeCheckRequest(message);
    seen.push(check);
    if (path !== CHECK_PATH || check.http.headers.get("x-ext-fail") === "yes") {
      // Trailers-only: the status rides on the only HEADERS frame.
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "14" }, {
        endStream: true,
      });
      return;
    }
    const response = check.http.headers.get("x-ext-allow") === "yes" ? ALLOW : DENY;
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
      waitForTrailers: true,
    });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(grpcFrame(encodeCheckResponse(response)));
  });
}

/** The mesh with an HTTP backend, the gRPC ext_authz server and the policy above. */
async function grpcAuthzMesh(waypointIp: string) {
  const seen: CheckRequest[] = [];
  const authz = await startH2Backends([AUTHZ_POD], (stream, headers) => {
    answer(stream, headers[":path"] as string | undefined, seen);
  });
  const p = await startAuthzMesh({
    waypointIp,
    vip: VIP,
    pod: POD,
    authzPod: AUTHZ_POD,
    authzService: { name: "ext-authz-grpc", vip: "127.10.16.5", port: 9000, portName: "grpc" },
    authz,
    yaml: POLICIES,
    meshConfig: MESH_CONFIG,
  });
  return Object.assign(p, { seen });
}

Deno.test("waypoint asks the ext_authz gRPC provider for CUSTOM paths and obeys its answer", async () => {
  await using p = await grpcAuthzMesh("127.0.16.200");
  const c = new Http1((await p.mesh.connect(`${VIP}:80`)).stream);
  const denied = await c.fetch("GET", "/ext/a");
  assert.equal(denied.status, 403);
  assert.equal(new TextDecoder().decode(denied.body), "denied by grpc ext");
  assert.equal(header(denied.headers, "x-ext-reason"), "no allow header");
  assert.equal(p.backends.total, 0, "a denied request never reaches the backend");

  const allowed = await c.fetch("POST", "/ext/b?q=1", [["x-ext-allow", "yes"]], "hi");
  assert.equal(allowed.status, 200);
  const seen = json(allowed).headers.find(([n]) => n === "x-ext-user")?.[1];
  assert.equal(seen, "alice", "ok_response headers reach the backend");

  await c.fetch("GET", "/not-ext");
  assert.equal(p.seen.length, 2, "paths outside the CUSTOM rule are not checked");
  assert.equal(p.backends.total, 2);
});

Deno.test("waypoint sends Envoy's CheckRequest attributes to the gRPC provider", async () => {
  await using p = await grpcAuthzMesh("127.0.16.201");
  const c = new Http1((await p.mesh.connect(`${VIP}:80`)).stream);
  await c.fetch("POST", "/ext/b?q=1", [["x-ext-allow", "yes"]], "hi");
  const [check] = p.seen;
  assert.equal(check.http.method, "POST");
  assert.equal(check.http.path, "/ext/b?q=1");
  assert.equal(check.http.host, "echo.ns1");
  assert.equal(check.http.protocol, "HTTP/1.1");
  assert.equal(check.http.headers.get(":path"), "/ext/b?q=1");
  assert.equal(check.http.headers.get("x-ext-allow"), "yes");
  assert.ok(check.http.id, "the request id is sent");
  assert.equal(check.source.principal, CLIENT_ID);
  assert.equal(check.source.address?.address, "127.0.0.1");
  assert.deepEqual(check.destination.address, { address: VIP, port: 80 });
});

Deno.test("waypoint answers statusOnError when the gRPC provider fails", async () => {
  await using p = await grpcAuthzMesh("127.0.16.202");
  const c = new Http1((await p.mesh.connect(`${VIP}:80`)).stream);
  const failed = await c.fetch("GET", "/ext/a", [["x-ext-fail", "yes"], ["x-ext-allow", "yes"]]);
  assert.equal(failed.status, 503, "grpc-status 14 is a provider error, not a denial");
  assert.equal(p.seen.length, 1);
  assert.equal(p.backends.total, 0);
});
