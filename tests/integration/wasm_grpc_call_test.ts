/**
 * A WasmPlugin's unary `proxy_grpc_call` through a real waypoint (`_wasm_grpc.ts`): the call goes
 * to a mesh service over the waypoint's own pools, and its answer decides on the request.
 * Needs `grpcCaller: wasmGrpcCaller(...)` in `cli/run.ts`. Waypoints 127.0.33.221+.
 */
import assert from "node:assert/strict";
import { verdictPlugin } from "../wasm/_grpc_server.ts";
import { grpcMesh } from "./_wasm_grpc.ts";

Deno.test("a WasmPlugin's unary gRPC call to a mesh service lets the request through or denies it", async () => {
  const cluster = "outbound|50051||echo.ns1.svc.cluster.local";
  await using mesh = await grpcMesh("127.0.33.221", verdictPlugin(cluster));
  const allowed = await mesh.call("/test.Echo/Unary", "hi", { "x-verdict": "allow" });
  assert.equal(allowed.headers[":status"], 200);
  assert.equal(allowed.message, "echo: hi");
  const denied = await mesh.call("/test.Echo/Unary", "hi", { "x-verdict": "deny" });
  // A local reply to a gRPC request is a trailers-only gRPC response carrying the reply body.
  assert.notEqual(denied.headers["grpc-status"], "0");
  assert.equal(decodeURIComponent(String(denied.headers["grpc-message"])), "not you");
  const paths = mesh.server.seen.map((s) => s.path);
  assert.deepEqual(paths, ["/test.Verdict/Decide", "/test.Echo/Unary", "/test.Verdict/Decide"]);
  assert.equal(mesh.server.seen[0].metadata["x-from-plugin"], "yes");
});
