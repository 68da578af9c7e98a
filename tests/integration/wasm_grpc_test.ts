/**
 * WasmPlugins on gRPC through a real waypoint (`_wasm_grpc.ts`): trailers reach the plugin's
 * trailer callbacks; a plugin without them changes nothing. Waypoints 127.0.33.211+.
 */
import assert from "node:assert/strict";
import { LIFECYCLE, Plugin } from "../wasm/_host.ts";
import { grpcMesh } from "./_wasm_grpc.ts";

Deno.test("a WasmPlugin adds a trailer to a gRPC response through the waypoint", async () => {
  const p = new Plugin();
  const module = p.build(`${LIFECYCLE}
    (func (export "proxy_on_response_trailers") (param i32 i32) (result i32)
      (if (i32.eqz (call $get (i32.const 3) ${p.str("grpc-status")} (i32.const 8) (i32.const 12)))
        (then (drop (call $add (i32.const 3) ${p.str("x-upstream-grpc-status")}
          (i32.load (i32.const 8)) (i32.load (i32.const 12))))))
      (drop (call $add (i32.const 3) ${p.str("x-wasm-trailer")} ${p.str("added")}))
      (i32.const 0))`);
  await using mesh = await grpcMesh("127.0.33.211", module);
  const r = await mesh.call("/test.Echo/Unary", "hello");
  assert.equal(r.headers[":status"], 200);
  assert.equal(r.message, "echo: hello");
  assert.equal(r.trailers?.["grpc-status"], "0");
  assert.equal(r.trailers?.["x-upstream-grpc-status"], "0");
  assert.equal(r.trailers?.["x-wasm-trailer"], "added");
});

Deno.test("a WasmPlugin without trailer callbacks leaves the gRPC trailers as the server sent them", async () => {
  const p = new Plugin();
  const module = p.build(`${LIFECYCLE}
    (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
      (drop (call $add (i32.const 2) ${p.str("x-wasm-header")} ${p.str("1")}))
      (i32.const 0))`);
  await using mesh = await grpcMesh("127.0.33.212", module);
  const r = await mesh.call("/test.Echo/Unary", "plain");
  assert.equal(r.headers["x-wasm-header"], "1");
  assert.equal(r.message, "echo: plain");
  assert.equal(r.trailers?.["grpc-status"], "0");
  assert.equal(r.trailers?.["x-wasm-trailer"], undefined);
  assert.equal(mesh.server.seen.length, 1);
});

Deno.test("a WasmPlugin's local response to a gRPC request carries the gRPC status it chose", async () => {
  const p = new Plugin();
  const module = p.build(`${LIFECYCLE}
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $local (i32.const 403) ${p.str("wasm_denied")} ${p.str("no entry")}
        ${p.pairs([])} (i32.const 16)))
      (i32.const 1))`);
  await using mesh = await grpcMesh("127.0.33.213", module);
  const r = await mesh.call("/test.Echo/Unary", "denied");
  assert.equal(r.headers[":status"], 200, "a trailers-only gRPC response");
  assert.equal(r.headers["grpc-status"], "16", "UNAUTHENTICATED, as the plugin said");
  assert.equal(decodeURIComponent(String(r.headers["grpc-message"])), "no entry");
  assert.equal(mesh.server.seen.length, 0);
});
