/**
 * For the Wasm gRPC tests: a server on grpc-js (an independent implementation) and a WAT plugin
 * that decides on a unary call's answer.
 */
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { LIFECYCLE, Plugin } from "./_host.ts";

/** Imports of the gRPC host functions, for {@link Plugin.build}. */
export const GRPC_IMPORTS = `
  (import "env" "proxy_grpc_call" (func $grpc (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_cancel" (func $cancel (param i32) (result i32)))
  (import "env" "proxy_grpc_stream" (func $stream (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_status" (func $status (param i32 i32 i32) (result i32)))
  (import "env" "proxy_done" (func $done (result i32)))`;

/** What the server saw of one call. */
export interface Seen {
  readonly path: string;
  readonly metadata: Record<string, string>;
  readonly message: string;
}

/**
 * A grpc-js server (not our gRPC code) on `host`, port picked by the system, messages as raw
 * bytes. `test.Verdict/Decide`: `allow` → `yes-allowed`, `deny` → PERMISSION_DENIED "not you",
 * anything else is answered only when the server is disposed. `test.Echo/Unary` answers
 * `echo: <message>`. Both record what they saw.
 */
export async function startGrpcServer(host: string) {
  const raw = (b: Buffer) => b;
  const method = {
    path: "/test.Verdict/Decide",
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  };
  const seen: Seen[] = [];
  const held: grpc.sendUnaryData<Buffer>[] = [];
  const server = new grpc.Server();
  const echo = { ...method, path: "/test.Echo/Unary" };
  server.addService({ Decide: method, Unary: echo }, {
    Unary(call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) {
      seen.push({ path: call.getPath(), metadata: {}, message: call.request.toString() });
      done(null, Buffer.from(`echo: ${call.request}`));
    },
    Decide(call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) {
      const message = call.request.toString();
      const metadata = Object.fromEntries(
        Object.entries(call.metadata.getMap()).map(([k, v]) => [k, String(v)]),
      );
      seen.push({ path: call.getPath(), metadata, message });
      if (message === "allow") done(null, Buffer.from("yes-allowed"));
      else if (message === "deny") {
        done({ code: grpc.status.PERMISSION_DENIED, details: "not you" });
      } else held.push(done);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      `${host}:0`,
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  return {
    port,
    seen,
    [Symbol.asyncDispose]: () => {
      for (const done of held) done(null, Buffer.from("late"));
      return new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}

/**
 * Pauses the request, sends `x-verdict` as the message to `upstream`, and on the answer: adds
 * `x-verdict-answer` and resumes when it starts with `y`; on close answers 400 + gRPC status
 * with the status message as body.
 */
export function verdictPlugin(upstream: string, timeoutMs = 5000): Uint8Array {
  const p = new Plugin();
  return p.build(
    `${LIFECYCLE}
    (global $ctx (mut i32) (i32.const 0))
    (func (export "proxy_on_request_headers") (param $c i32) (param i32 i32) (result i32)
      (global.set $ctx (local.get $c))
      (drop (call $get (i32.const 0) ${p.str("x-verdict")} (i32.const 8) (i32.const 12)))
      (if (call $grpc ${p.str(upstream)} ${p.str("test.Verdict")} ${p.str("Decide")}
            ${
      p.pairs([["x-from-plugin", "yes"]])
    } (i32.load (i32.const 8)) (i32.load (i32.const 12))
            (i32.const ${timeoutMs}) (i32.const 20))
        (then (drop (call $local (i32.const 502) ${p.str("grpc_call_refused")} ${p.str("")}
          ${p.pairs([])} (i32.const -1)))))
      (i32.const 1))
    (func (export "proxy_on_grpc_receive") (param i32 i32) (param $size i32)
      (drop (call $effective (global.get $ctx)))
      (drop (call $get_buf (i32.const 5) (i32.const 0) (local.get $size) (i32.const 8) (i32.const 12)))
      (if (i32.eq (i32.load8_u (i32.load (i32.const 8))) (i32.const 121))
        (then
          (drop (call $add (i32.const 0) ${p.str("x-verdict-answer")}
            (i32.load (i32.const 8)) (i32.load (i32.const 12))))
          (drop (call $continue (i32.const 0))))
        (else (drop (call $local (i32.const 403) ${p.str("grpc_denied")} ${p.str("")}
          ${p.pairs([])} (i32.const -1))))))
    (func (export "proxy_on_grpc_close") (param i32 i32) (param $code i32)
      (drop (call $effective (global.get $ctx)))
      (drop (call $status (i32.const 16) (i32.const 8) (i32.const 12)))
      (drop (call $local (i32.add (i32.const 400) (i32.load (i32.const 16))) ${p.str("grpc_closed")}
        (i32.load (i32.const 8)) (i32.load (i32.const 12)) ${p.pairs([])} (i32.const -1))))`,
    GRPC_IMPORTS,
  );
}
