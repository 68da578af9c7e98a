/**
 * The calls a VM makes to mesh services: `proxy_http_call` and unary `proxy_grpc_call`, with
 * their answers delivered as cpp-host does (l7.md §5.5): to the root context with the root id
 * (SDKs find the calling stream by token), the answer readable from the root and from the
 * calling context once the plugin makes it effective, and only while the callback runs.
 *
 * Invariants:
 * - At most {@link MAX_CALLS} calls of each kind in flight per VM; each ends within its timeout,
 *   bounded by {@link MAX_CALL_TIMEOUT_MS} (0 means that bound).
 * - A unary gRPC call ends in exactly one callback, as Envoy's async client reports it:
 *   `proxy_on_grpc_receive` with the message (GRPC_CALL_MESSAGE buffer) on status OK, else
 *   `proxy_on_grpc_close(status)` with `proxy_get_status` giving code and message. Initial and
 *   trailing metadata callbacks belong to gRPC streams, which we do not host.
 * - A cancelled (or closed) call delivers nothing; nor does one whose calling context is gone.
 */
import type {
  GrpcCaller,
  GrpcCallRequest,
  GrpcCallResponse,
  HttpCaller,
  HttpCallRequest,
  HttpCallResponse,
} from "../spec.ts";
import { BufferType, MapType, Status } from "./abi.ts";
import { BufferSlot, type HeaderView, type HostContext, MapView } from "./context.ts";
import { HeaderMap } from "../../http/mod.ts";

/** Most calls of each kind one VM may have in flight. */
export const MAX_CALLS = 1_000;
/** Longest call timeout honoured, ms. */
export const MAX_CALL_TIMEOUT_MS = 60_000;

/** gRPC status codes the host itself reports. */
const GRPC = { DEADLINE_EXCEEDED: 4, UNAVAILABLE: 14 } as const;

/** What the calls need of their VM. */
export interface CallHost {
  readonly root: HostContext;
  /** Whether a context is still open (its calls' answers still wanted). */
  alive(ctx: HostContext): boolean;
  /** Runs a root callback unless the VM is gone; failures are the VM's to log. */
  deliver(name: string, args: number[]): void;
}

/** A call's answer as the plugin reads it during its callback. */
interface Answer {
  readonly maps: readonly (readonly [number, HeaderView])[];
  readonly buffers: readonly (readonly [number, BufferSlot])[];
  readonly status?: { readonly code: number; readonly message: string };
}

/** The http and gRPC calls of one VM. */
export class Calls {
  readonly #host: CallHost;
  readonly #http?: HttpCaller;
  readonly #grpc?: GrpcCaller;
  #httpInFlight = 0;
  #httpId = 0;
  /** gRPC call tokens are odd, as Envoy's (even ones are its streams'). */
  #grpcId = -1;
  readonly #grpcCalls = new Map<number, AbortController>();

  constructor(host: CallHost, http?: HttpCaller, grpc?: GrpcCaller) {
    this.#host = host;
    this.#http = http;
    this.#grpc = grpc;
  }

  /** Starts an http call; the token, or the status to answer. */
  http(from: HostContext, request: HttpCallRequest): { id: number } | { status: number } {
    if (!this.#http) return { status: Status.BAD_ARGUMENT };
    if (this.#httpInFlight >= MAX_CALLS) return { status: Status.INTERNAL_FAILURE };
    const id = ++this.#httpId;
    this.#httpInFlight++;
    const ms = callTimeout(request.timeoutMs);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`http call timed out after ${ms} ms`)), ms);
    });
    Promise.race([this.#http({ ...request, timeoutMs: ms }), timeout]).then(
      (r) => this.#httpDone(from, id, r),
      () => this.#httpDone(from, id, undefined),
    ).finally(() => {
      clearTimeout(timer);
      this.#httpInFlight--;
    });
    return { id };
  }

  #httpDone(from: HostContext, id: number, r: HttpCallResponse | undefined): void {
    const args = r ? [r.headers.length, r.body.length, r.trailers.length] : [0, 0, 0];
    const answer: Answer = r
      ? {
        maps: [
          [MapType.HTTP_CALL_RESPONSE_HEADERS, new MapView(new HeaderMap(r.headers))],
          [MapType.HTTP_CALL_RESPONSE_TRAILERS, new MapView(new HeaderMap(r.trailers))],
        ],
        buffers: [[BufferType.HTTP_CALL_RESPONSE_BODY, new BufferSlot(r.body)]],
        status: {
          code: Number(r.headers.find(([k]) => k === ":status")?.[1] ?? 200),
          message: "",
        },
      }
      : { maps: [], buffers: [] };
    this.#answer(from, answer, "proxy_on_http_call_response", [id, ...args]);
  }

  /** Starts a unary gRPC call; the token, or the status to answer. */
  grpc(
    from: HostContext,
    request: Omit<GrpcCallRequest, "signal">,
  ): { id: number } | { status: number } {
    if (!this.#grpc) return { status: Status.UNIMPLEMENTED };
    if (this.#grpcCalls.size >= MAX_CALLS) return { status: Status.INTERNAL_FAILURE };
    const id = this.#grpcId += 2;
    const controller = new AbortController();
    this.#grpcCalls.set(id, controller);
    const ms = callTimeout(request.timeoutMs);
    const timer = setTimeout(() => controller.abort(), ms);
    const signal = controller.signal;
    this.#grpc({ ...request, timeoutMs: ms, signal }).then(
      (r) => r,
      (e): GrpcCallResponse =>
        signal.aborted
          ? { status: GRPC.DEADLINE_EXCEEDED, message: `no answer in ${ms} ms` }
          : { status: GRPC.UNAVAILABLE, message: e instanceof Error ? e.message : String(e) },
    ).then((r) => {
      clearTimeout(timer);
      // Cancelled by the plugin: nothing is delivered.
      if (this.#grpcCalls.get(id) !== controller) return;
      this.#grpcCalls.delete(id);
      this.#grpcDone(from, id, r);
    });
    return { id };
  }

  #grpcDone(from: HostContext, id: number, r: GrpcCallResponse): void {
    if (r.status === 0 && r.body) {
      const answer: Answer = {
        maps: [],
        buffers: [[BufferType.GRPC_CALL_MESSAGE, new BufferSlot(r.body)]],
      };
      return this.#answer(from, answer, "proxy_on_grpc_receive", [id, r.body.length]);
    }
    const status = { code: r.status || GRPC.UNAVAILABLE, message: r.message };
    this.#answer(from, { maps: [], buffers: [], status }, "proxy_on_grpc_close", [id, status.code]);
  }

  /** `proxy_grpc_cancel` and, for a unary call, `proxy_grpc_close`: the call is dropped. */
  cancelGrpc(id: number): number {
    const controller = this.#grpcCalls.get(id);
    if (!controller) return Status.NOT_FOUND;
    this.#grpcCalls.delete(id);
    controller.abort(new Error("cancelled by the plugin"));
    return Status.OK;
  }

  /** Aborts every gRPC call in flight (the VM is closing). */
  close(): void {
    for (const c of this.#grpcCalls.values()) c.abort(new Error("plugin VM closed"));
    this.#grpcCalls.clear();
  }

  #answer(from: HostContext, answer: Answer, callback: string, args: number[]): void {
    const host = this.#host;
    if (!host.alive(from)) return;
    const holders = from === host.root ? [from] : [from, host.root];
    for (const c of holders) {
      for (const [type, map] of answer.maps) c.maps.set(type, map);
      for (const [type, buffer] of answer.buffers) c.buffers.set(type, buffer);
      c.callStatus = answer.status;
    }
    try {
      host.deliver(callback, [host.root.id, ...args]);
    } finally {
      for (const c of holders) {
        for (const [type] of answer.maps) c.maps.delete(type);
        for (const [type] of answer.buffers) c.buffers.delete(type);
        c.callStatus = undefined;
      }
    }
  }
}

function callTimeout(ms: number): number {
  return Math.min(ms || MAX_CALL_TIMEOUT_MS, MAX_CALL_TIMEOUT_MS);
}
