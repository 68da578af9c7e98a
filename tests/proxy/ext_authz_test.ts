import assert from "node:assert/strict";
import { grpcVerdict } from "../../proxy/ext_authz.ts";
import type { CheckResponse } from "../../proxy/ext_authz_grpc.ts";
import type { ExtAuthzGrpcProvider } from "../../proxy/mesh_config.ts";

const PROVIDER: ExtAuthzGrpcProvider = {
  kind: "grpc",
  name: "authz-grpc",
  service: "authz.ns1.svc.cluster.local",
  port: 9000,
  timeoutMs: 600_000,
  failOpen: false,
  statusOnError: 503,
};
const OK = { code: 0, message: "" };

Deno.test("grpcVerdict() reads a CheckResponse as Envoy's gRPC client does", () => {
  const cases: [string, CheckResponse, Partial<ReturnType<typeof grpcVerdict>>][] = [
    [
      "code 0 allows and turns ok_response into edits, keeping Host and pseudo-headers",
      {
        status: OK,
        ok: {
          headers: [
            { key: "X-User", value: "alice" },
            { key: "x-a", value: "1", append: true },
            { key: "x-b", value: "2", append: false },
            { key: "x-c", value: "3", appendAction: 1 },
            { key: "x-d", value: "4", appendAction: 2 },
            { key: "x-e", value: "5", appendAction: 3 },
          ],
          headersToRemove: ["Authorization", "host", ":path"],
          responseHeadersToAdd: [{ key: "x-r", value: "r", append: true }],
        },
      },
      {
        allow: true,
        upstreamHeaders: [
          { name: "x-user", value: "alice", action: "add" },
          { name: "x-a", value: "1", action: "append" },
          { name: "x-b", value: "2", action: "set" },
          { name: "x-c", value: "3", action: "addIfAbsent" },
          { name: "x-d", value: "4", action: "set" },
          { name: "x-e", value: "5", action: "overwriteIfExists" },
          { name: "authorization", value: "", action: "remove" },
        ],
        downstreamHeaders: [{ name: "x-r", value: "r", action: "add" }],
      },
    ],
    ["code 0 without ok_response allows as is", { status: OK }, {
      allow: true,
      upstreamHeaders: [],
    }],
    [
      "another code denies with denied_response",
      {
        status: { code: 7, message: "nope" },
        denied: { status: 401, headers: [{ key: "WWW-Authenticate", value: "x" }], body: "b" },
      },
      { allow: false, status: 401, body: "b", headers: [["www-authenticate", "x"]] },
    ],
    [
      "a denial without a status is 403",
      { status: { code: 16, message: "" } },
      { allow: false, status: 403, body: "", reason: "code 16" },
    ],
    [
      "error_response is a failure: statusOnError unless it names a status",
      { status: { code: 13, message: "" }, error: { status: 0, headers: [], body: "down" } },
      { allow: false, status: 503, body: "down" },
    ],
  ];
  for (const [what, response, want] of cases) {
    const verdict = grpcVerdict(PROVIDER, response);
    for (const [key, value] of Object.entries(want)) {
      assert.deepEqual(verdict[key as keyof typeof verdict], value, `${what}: ${key}`);
    }
  }
});

Deno.test("grpcVerdict() lets an error_response through when the provider fails open", () => {
  const verdict = grpcVerdict({ ...PROVIDER, failOpen: true }, {
    status: { code: 13, message: "" },
    error: { status: 500, headers: [], body: "down" },
  });
  assert.equal(verdict.allow, true);
  assert.match(verdict.reason, /failed open/);
});
