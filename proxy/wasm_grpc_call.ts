/**
 * `proxy_grpc_call` for Wasm plugins: one unary gRPC call to a mesh service, sent as h2c through
 * the same tunnels and pools as routed requests and `proxy_http_call`s, to the cluster the
 * plugin's `GrpcService` names (forms as in `wasm_http_call.ts`).
 *
 * The answer is a gRPC status as Envoy's async client reports it: `grpc-status` from the trailers
 * (or the headers of a trailers-only response), an HTTP error mapped by Envoy's table, and
 * INTERNAL for a response that is not one message. It never waits past the call's signal.
 */
import {
  type Body,
  bytesBody,
  grpcStatusForHttp,
  HeaderMap,
  readAll,
  type RequestHead,
  type ResponseHead,
} from "../http/mod.ts";
import { grpcFrame, grpcMessageText, grpcTimeout, grpcUnframe } from "../grpc/mod.ts";
import type { GrpcCaller, GrpcCallRequest, GrpcCallResponse } from "../wasm/mod.ts";
import { pickCallTarget, type WasmCallInputs } from "./wasm_http_call.ts";

/** Largest response message (gRPC's default). */
const MAX_MESSAGE = 4 << 20;
/** gRPC INTERNAL: the answer was not a well-formed unary response. */
const INTERNAL = 13;

/**
 * Makes the {@link GrpcCaller} a WasmRuntime uses.
 *
 * @example
 * ```ts
 * new WasmRuntime({ loader, grpcCaller: wasmGrpcCaller({ config, upstreams, balancer }) });
 * ```
 * @param inputs Config, pools and balancer
 * @returns The caller; it rejects naming the cluster when the call cannot be made
 */
export function wasmGrpcCaller(inputs: WasmCallInputs): GrpcCaller {
  return async (call: GrpcCallRequest): Promise<GrpcCallResponse> => {
    const { target, pick } = pickCallTarget(inputs, call.cluster);
    try {
      const sent = inputs.upstreams.send(
        pick.endpoint,
        "h2c",
        target.host,
        requestHead(call, call.authority ?? target.host),
        bytesBody(grpcFrame(call.message)),
      );
      const res = await untilAborted(sent, call.signal, () => {
        sent.then((late) => late.body.cancel(), () => {});
      });
      return await untilAborted(answer(res.head, res.body), call.signal, () => res.body.cancel());
    } finally {
      pick.done();
    }
  };
}

function requestHead(call: GrpcCallRequest, authority: string): RequestHead {
  const headers = new HeaderMap();
  for (const [name, value] of call.metadata) if (!name.startsWith(":")) headers.add(name, value);
  headers.set("content-type", "application/grpc");
  headers.set("te", "trailers");
  headers.set("grpc-timeout", grpcTimeout(call.timeoutMs));
  return {
    method: "POST",
    path: `/${call.service}/${call.method}`,
    authority,
    scheme: "http",
    version: "2",
    headers,
  };
}

/** The status and message of a finished response. */
async function answer(head: ResponseHead, body: Body): Promise<GrpcCallResponse> {
  const type = head.headers.get("content-type") ?? "";
  if (head.status !== 200 || !type.startsWith("application/grpc")) {
    body.cancel();
    return { status: grpcStatusForHttp(head.status), message: `HTTP ${head.status}` };
  }
  const bytes = await readAll(body, MAX_MESSAGE + 5);
  // A trailers-only response (an error without messages) carries grpc-status in its headers.
  const field = (name: string) => body.trailers?.get(name) ?? head.headers.get(name);
  const code = Number(field("grpc-status") ?? NaN);
  if (!Number.isInteger(code)) return { status: INTERNAL, message: "no grpc-status" };
  const message = grpcMessageText(field("grpc-message") ?? "");
  if (code !== 0) return { status: code, message };
  let messages: Uint8Array[];
  try {
    messages = grpcUnframe(bytes);
  } catch (e) {
    return { status: INTERNAL, message: (e as Error).message };
  }
  if (messages.length !== 1) {
    return { status: INTERNAL, message: `${messages.length} response messages, expected 1` };
  }
  return { status: 0, message, body: messages[0] };
}

/** `work`'s result, or a rejection once `signal` aborts (`onAbort` then releases the work). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal, onAbort: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      onAbort();
      reject(signal.reason);
    };
    if (signal.aborted) return abort();
    signal.addEventListener("abort", abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}
