import assert from "node:assert/strict";
import type { GrpcCallResponse } from "../../wasm/mod.ts";
import { LIFECYCLE, Plugin, send, spec, testRuntime } from "./_host.ts";

const GRPC_RESPONSE: [string, string][] = [["content-type", "application/grpc"]];
const GRPC_TRAILERS: [string, string][] = [["grpc-status", "0"], ["grpc-message", "fine"]];

Deno.test("proxy_on_response_trailers lets a plugin add a trailer to a gRPC response", async () => {
  const p = new Plugin();
  const bytes = p.build(`${LIFECYCLE}
    (func (export "proxy_on_response_trailers") (param i32) (param $n i32) (result i32)
      (drop (call $add (i32.const 3) ${p.str("x-wasm-trailer")} ${p.str("added")}))
      (drop (call $replace (i32.const 3) ${p.str("grpc-message")} ${p.str("rewritten")}))
      (i32.const 0))`);
  const { runtime } = testRuntime({ "demo/trailers": bytes });
  const r = await send(runtime, [spec("demo/trailers")], {}, {
    headers: GRPC_RESPONSE,
    body: "\0\0\0\0\x02hi",
    trailers: GRPC_TRAILERS,
  });
  assert.equal(r.status, 200);
  assert.equal(r.body, "\0\0\0\0\x02hi");
  assert.equal(r.trailers?.get("grpc-status"), "0");
  assert.equal(r.trailers?.get("grpc-message"), "rewritten");
  assert.equal(r.trailers?.get("x-wasm-trailer"), "added");
  runtime.close();
});

/** Logs each request body callback's end_of_stream, then reads and copies a request trailer. */
function trailerReader(): Uint8Array {
  const p = new Plugin();
  return p.build(`${LIFECYCLE}
    (func (export "proxy_on_request_body") (param i32 i32) (param $eos i32) (result i32)
      (if (local.get $eos)
        (then (drop (call $log (i32.const 2) ${p.str("body eos=1")})))
        (else (drop (call $log (i32.const 2) ${p.str("body eos=0")}))))
      (i32.const 0))
    (func (export "proxy_on_request_trailers") (param i32) (param $n i32) (result i32)
      (if (i32.ne (local.get $n) (i32.const 2)) (then (unreachable)))
      (if (i32.eqz (call $get (i32.const 1) ${p.str("x-checksum")} (i32.const 8) (i32.const 12)))
        (then (drop (call $add (i32.const 1) ${p.str("x-checksum-seen")}
          (i32.load (i32.const 8)) (i32.load (i32.const 12))))))
      (drop (call $remove (i32.const 1) ${p.str("x-secret")}))
      (drop (call $log (i32.const 2) ${p.str("trailers")}))
      (i32.const 0))`);
}

Deno.test("proxy_on_request_trailers reads and edits request trailers after bodies with end_of_stream false", async () => {
  const { runtime, logs } = testRuntime({ "demo/reader": trailerReader() });
  const r = await send(runtime, [spec("demo/reader")], {
    method: "POST",
    chunks: ["part1", "part2"],
    trailers: [["x-checksum", "abc123"], ["x-secret", "s"]],
  });
  assert.equal(r.status, 200);
  assert.equal(r.upstream?.body, "part1part2");
  assert.equal(r.upstream?.trailers?.get("x-checksum"), "abc123");
  assert.equal(r.upstream?.trailers?.get("x-checksum-seen"), "abc123");
  assert.equal(r.upstream?.trailers?.get("x-secret"), undefined);
  assert.deepEqual(logs.map((l) => l.message), ["body eos=0", "body eos=0", "trailers"]);
  runtime.close();
});

Deno.test("proxy_on_request_body sees end_of_stream true when no trailers follow", async () => {
  const { runtime, logs } = testRuntime({ "demo/reader": trailerReader() });
  const r = await send(runtime, [spec("demo/reader")], { method: "POST", chunks: ["a", "b"] });
  assert.equal(r.upstream?.body, "ab");
  assert.deepEqual(logs.map((l) => l.message), ["body eos=0", "body eos=0", "body eos=1"]);
  runtime.close();
});

Deno.test("proxy_add_header_map_value on trailers in the end-of-stream body callback adds trailers", async () => {
  const p = new Plugin();
  const bytes = p.build(`${LIFECYCLE}
    (func (export "proxy_on_response_body") (param i32 i32) (param $eos i32) (result i32)
      (if (i32.eqz (local.get $eos)) (then (return (i32.const 1))))
      (drop (call $add (i32.const 3) ${p.str("x-added-at-eos")} ${p.str("1")}))
      (i32.const 0))`);
  const { runtime } = testRuntime({ "demo/eos": bytes });
  const r = await send(runtime, [spec("demo/eos")], {}, { body: "no trailers here" });
  assert.equal(r.body, "no trailers here");
  assert.equal(r.trailers?.get("x-added-at-eos"), "1");
  runtime.close();
});

Deno.test("a plugin without trailer exports leaves a gRPC response and its trailers as they were", async () => {
  const p = new Plugin();
  const bytes = p.build(`${LIFECYCLE}
    (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
      (drop (call $add (i32.const 2) ${p.str("x-seen")} ${p.str("1")}))
      (i32.const 0))
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (if (i32.eqz (call $get (i32.const 1) ${p.str("x")} (i32.const 8) (i32.const 12)))
        (then (unreachable)))
      (i32.const 0))`);
  const { runtime } = testRuntime({ "demo/plain": bytes });
  const r = await send(runtime, [spec("demo/plain")], {
    method: "POST",
    chunks: ["\0\0\0\0\x01q"],
    trailers: [["x-req", "1"]],
  }, { headers: GRPC_RESPONSE, body: "\0\0\0\0\x01a", trailers: GRPC_TRAILERS });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-seen"), "1");
  assert.equal(r.body, "\0\0\0\0\x01a");
  assert.deepEqual(r.trailers?.entries(), GRPC_TRAILERS);
  assert.equal(r.upstream?.trailers?.get("x-req"), "1");
  runtime.close();
});

Deno.test("proxy_on_request_trailers pausing holds the request until the plugin continues it", async () => {
  const p = new Plugin();
  const imports =
    `(import "env" "proxy_grpc_call" (func $grpc (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))`;
  const bytes = p.build(
    `${LIFECYCLE}
    (global $ctx (mut i32) (i32.const 0))
    (func (export "proxy_on_request_trailers") (param $c i32) (param i32) (result i32)
      (global.set $ctx (local.get $c))
      (drop (call $grpc ${p.str("check.demo.svc.cluster.local")} ${p.str("demo.Check")}
        ${p.str("Trailers")} ${p.pairs([])} ${p.str("q")} (i32.const 1000) (i32.const 20)))
      (i32.const 1))
    (func (export "proxy_on_grpc_receive") (param i32 i32 i32)
      (drop (call $effective (global.get $ctx)))
      (drop (call $add (i32.const 1) ${p.str("x-checked")} ${p.str("yes")}))
      (drop (call $continue (i32.const 0))))`,
    imports,
  );
  let answer!: (r: GrpcCallResponse) => void;
  const called = Promise.withResolvers<void>();
  const { runtime } = testRuntime({ "demo/pause": bytes }, {
    grpcCaller: () => {
      called.resolve();
      return new Promise((resolve) => answer = resolve);
    },
  });
  const result = send(runtime, [spec("demo/pause")], {
    method: "POST",
    chunks: ["held"],
    trailers: [["x-t", "1"]],
  });
  await called.promise;
  answer({ status: 0, message: "", body: new TextEncoder().encode("ok") });
  const r = await result;
  assert.equal(r.status, 200);
  assert.equal(r.upstream?.body, "held");
  assert.equal(r.upstream?.trailers?.get("x-checked"), "yes");
  runtime.close();
});
