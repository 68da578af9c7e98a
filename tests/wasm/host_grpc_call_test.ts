/**
 * `proxy_grpc_call` from WAT plugins: through `wasmGrpcCaller` (h2c over plain TCP, our pool) to
 * an independent grpc-js server on 127.0.33.1, and with a fake caller for cancel and the
 * unsupported streams. Also the root's `proxy_on_done` answering "not yet".
 */
import assert from "node:assert/strict";
import type { Endpoint, Service } from "../../mesh/mod.ts";
import type { ProxyConfig } from "../../proxy/config.ts";
import { HttpUpstreams } from "../../proxy/http_pool.ts";
import { wasmGrpcCaller } from "../../proxy/wasm_grpc_call.ts";
import { Balancer } from "../../routes/mod.ts";
import { PlainOpener } from "../../tunnel/mod.ts";
import type { GrpcCallRequest, GrpcCallResponse } from "../../wasm/mod.ts";
import { GRPC_IMPORTS, startGrpcServer, verdictPlugin } from "./_grpc_server.ts";
import { LIFECYCLE, Plugin, send, spec, testRuntime } from "./_host.ts";

const HOST = "127.0.33.1";
const SERVICE = "verdict.ns1.svc.cluster.local";

/** The caller, over our pool with plain TCP, for a mesh where `verdict` runs on the server. */
function realCaller(port: number) {
  const endpoint = { address: HOST, port, identity: "spiffe://cluster.local/ns/ns1/sa/verdict" };
  const service = {
    hostname: SERVICE,
    namespace: "ns1",
    ports: [{ name: "grpc", port: 50051, protocol: "grpc", endpoints: [endpoint as Endpoint] }],
  } as unknown as Service;
  const config = { mesh: { servicesByName: new Map([["ns1/verdict", service]]) } };
  const upstreams = new HttpUpstreams({ opener: new PlainOpener(2000), ztunnelPort: 0 });
  const caller = wasmGrpcCaller({
    config: () => config as unknown as ProxyConfig,
    upstreams,
    balancer: new Balancer(),
  });
  return { caller, upstreams };
}

/** A serialized GrpcService: envoy_grpc { cluster_name } and one initial_metadata entry. */
function grpcService(cluster: string, key: string, value: string): string {
  const len = (s: string) => String.fromCharCode(s.length);
  const envoy = `\x0a${len(cluster)}${cluster}`;
  const header = `\x0a${len(key)}${key}\x12${len(value)}${value}`;
  return `\x0a${len(envoy)}${envoy}\x2a${len(header)}${header}`;
}

Deno.test("proxy_grpc_call to a gRPC server lets the plugin resume the request on its answer", async () => {
  await using server = await startGrpcServer(HOST);
  const { caller, upstreams } = realCaller(server.port);
  const { runtime } = testRuntime({
    "demo/verdict": verdictPlugin(`outbound|50051||${SERVICE}`),
  }, { grpcCaller: caller });
  const r = await send(runtime, [spec("demo/verdict")], { headers: [["x-verdict", "allow"]] });
  assert.equal(r.status, 200);
  assert.equal(r.upstream?.headers.get("x-verdict-answer"), "yes-allowed");
  assert.equal(server.seen.length, 1);
  assert.equal(server.seen[0].path, "/test.Verdict/Decide");
  assert.equal(server.seen[0].metadata["x-from-plugin"], "yes");
  assert.equal(server.seen[0].message, "allow");
  runtime.close();
  upstreams.close();
});

Deno.test("proxy_grpc_call with a serialized GrpcService reaches its cluster; a gRPC error closes the call", async () => {
  await using server = await startGrpcServer(HOST);
  const { caller, upstreams } = realCaller(server.port);
  const service = grpcService(`${SERVICE}:50051`, "x-service-md", "1");
  const { runtime } = testRuntime({ "demo/verdict": verdictPlugin(service) }, {
    grpcCaller: caller,
  });
  const r = await send(runtime, [spec("demo/verdict")], { headers: [["x-verdict", "deny"]] });
  assert.equal(r.status, 407, "400 + PERMISSION_DENIED");
  assert.equal(r.body, "not you");
  assert.equal(r.detail, "grpc_closed");
  assert.equal(r.upstream, undefined);
  assert.equal(server.seen[0].metadata["x-service-md"], "1");
  runtime.close();
  upstreams.close();
});

Deno.test("proxy_grpc_call past its timeout closes with DEADLINE_EXCEEDED; an unknown cluster with UNAVAILABLE", async () => {
  await using server = await startGrpcServer(HOST);
  const { caller, upstreams } = realCaller(server.port);
  const { runtime } = testRuntime({
    "demo/slow": verdictPlugin(SERVICE, 100),
    "demo/nowhere": verdictPlugin("nowhere.ns1.svc.cluster.local"),
  }, { grpcCaller: caller });
  const slow = await send(runtime, [spec("demo/slow")], { headers: [["x-verdict", "slow"]] });
  assert.equal(slow.status, 404, "400 + DEADLINE_EXCEEDED");
  const nowhere = await send(runtime, [spec("demo/nowhere")], {
    headers: [["x-verdict", "allow"]],
  });
  assert.equal(nowhere.status, 414, "400 + UNAVAILABLE");
  assert.match(nowhere.body, /nowhere\.ns1/);
  runtime.close();
  upstreams.close();
});

Deno.test("proxy_grpc_cancel aborts the call and no callback follows; a second cancel is NOT_FOUND", async () => {
  const p = new Plugin();
  const bytes = p.build(
    `${LIFECYCLE}
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $grpc ${p.str(SERVICE)} ${p.str("test.Verdict")} ${p.str("Decide")}
        ${p.pairs([])} ${p.str("allow")} (i32.const 0) (i32.const 20)))
      (if (i32.eqz (call $cancel (i32.load (i32.const 20))))
        (then (drop (call $add (i32.const 0) ${p.str("x-cancel")} ${p.str("ok")}))))
      (if (i32.eq (call $cancel (i32.load (i32.const 20))) (i32.const 1))
        (then (drop (call $add (i32.const 0) ${p.str("x-cancel-again")} ${p.str("not-found")}))))
      (i32.const 0))
    (func (export "proxy_on_grpc_receive") (param i32 i32 i32) (unreachable))
    (func (export "proxy_on_grpc_close") (param i32 i32 i32) (unreachable))`,
    GRPC_IMPORTS,
  );
  const calls: GrpcCallRequest[] = [];
  let answer!: (r: GrpcCallResponse) => void;
  const { runtime } = testRuntime({ "demo/cancel": bytes }, {
    grpcCaller: (call) => {
      calls.push(call);
      return new Promise((resolve) => answer = resolve);
    },
  });
  const r = await send(runtime, [spec("demo/cancel")]);
  assert.equal(r.status, 200);
  assert.equal(r.upstream?.headers.get("x-cancel"), "ok");
  assert.equal(r.upstream?.headers.get("x-cancel-again"), "not-found");
  assert.equal(calls[0].signal.aborted, true);
  answer({ status: 0, message: "", body: new TextEncoder().encode("late") });
  await new Promise((resolve) => setTimeout(resolve, 0));
  const vm = await runtime.vm(spec("demo/cancel"));
  assert.equal(vm.failure, undefined, "no callback ran for the cancelled call");
  runtime.close();
});

Deno.test("proxy_grpc_call without a caller and proxy_grpc_stream answer UNIMPLEMENTED; streams are logged once", async () => {
  const p = new Plugin();
  const bytes = p.build(
    `${LIFECYCLE}
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (if (i32.eq (call $grpc ${p.str(SERVICE)} ${p.str("test.Verdict")} ${p.str("Decide")}
            ${p.pairs([])} ${p.str("allow")} (i32.const 0) (i32.const 20)) (i32.const 12))
        (then (drop (call $add (i32.const 0) ${p.str("x-call")} ${p.str("unimplemented")}))))
      (if (i32.eq (call $stream ${p.str(SERVICE)} ${p.str("test.Verdict")} ${p.str("Watch")}
            ${p.pairs([])} (i32.const 20)) (i32.const 12))
        (then (drop (call $add (i32.const 0) ${p.str("x-stream")} ${p.str("unimplemented")}))))
      (i32.const 0))`,
    GRPC_IMPORTS,
  );
  const { runtime, logs } = testRuntime({ "demo/nocaller": bytes });
  for (let i = 0; i < 2; i++) {
    const r = await send(runtime, [spec("demo/nocaller")]);
    assert.equal(r.upstream?.headers.get("x-call"), "unimplemented");
    assert.equal(r.upstream?.headers.get("x-stream"), "unimplemented");
  }
  assert.equal(logs.filter((l) => /gRPC streams/.test(l.message)).length, 1);
  runtime.close();
});

Deno.test("a root's proxy_on_done answering false delays proxy_on_delete until proxy_done", async () => {
  const p = new Plugin();
  const bytes = p.build(
    `(func (export "proxy_on_context_create") (param i32 i32))
    (func (export "proxy_on_done") (param i32) (result i32)
      (drop (call $log (i32.const 2) ${p.str("on_done")}))
      (drop (call $tick (i32.const 1)))
      (i32.const 0))
    (func (export "proxy_on_tick") (param i32)
      (drop (call $log (i32.const 2) ${p.str("tick")}))
      (drop (call $done)))
    (func (export "proxy_on_delete") (param i32)
      (drop (call $log (i32.const 2) ${p.str("on_delete")})))`,
    GRPC_IMPORTS,
  );
  const deleted = Promise.withResolvers<void>();
  const logs: string[] = [];
  const { runtime } = testRuntime({ "demo/done": bytes }, {
    log: (_plugin, _level, message) => {
      logs.push(message);
      if (message === "on_delete") deleted.resolve();
    },
  });
  await runtime.vm(spec("demo/done"));
  runtime.close();
  assert.deepEqual(logs, ["on_done"]);
  // The VM's timers are unref'd: keep the test's event loop alive while it finishes.
  const keepAlive = setInterval(() => {}, 1000);
  await deleted.promise;
  clearInterval(keepAlive);
  assert.deepEqual(logs, ["on_done", "tick", "on_delete"]);
});
