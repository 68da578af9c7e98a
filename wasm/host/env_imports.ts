/**
 * The `env` import module: every host function of proxy-wasm ABI 0.2.1 and 0.2.0, the 0.1.0 names
 * the legacy SDKs link (`proxy_get_configuration`, `proxy_continue_request/response`,
 * `proxy_clear_route_cache`), and the Emscripten helpers C++ plugins import. Each function checks
 * the plugin's pointers and answers a `proxy_status_t`; the work is done by the {@link HostVm}.
 */
import type { GrpcCallRequest, HttpCallRequest } from "../spec.ts";
import { type AbiVersion, BufferType, NO_GRPC_STATUS, Status, StreamType } from "./abi.ts";
import { type BufferSlot, type HostContext, validField } from "./context.ts";
import { grpcTarget } from "./grpc_service.ts";
import type { GuestMemory } from "./memory.ts";
import type { WasmMetrics } from "./metrics.ts";
import { decodePairs, encodePairs, type Pairs } from "./pairs.ts";
import type { SharedStore } from "./shared.ts";
import { realtimeNs } from "./wasi.ts";

/** What host functions need from their VM. */
export interface HostVm {
  readonly memory: GuestMemory;
  readonly abi: AbiVersion;
  readonly metrics: WasmMetrics;
  readonly shared: SharedStore;
  /** The context host functions act on (the callback's, or the one made effective). */
  effective(): HostContext | undefined;
  setEffective(id: number): boolean;
  /** VM-wide buffers: the VM and plugin configuration. */
  buffer(type: number): BufferSlot | undefined;
  log(level: number, message: string): void;
  logLevel(): number;
  setTick(rootId: number, ms: number): void;
  /** Starts a call; the id, or a status when it cannot be made. */
  httpCall(from: HostContext, request: HttpCallRequest): { id: number } | { status: number };
  grpcCall(
    from: HostContext,
    request: Omit<GrpcCallRequest, "signal">,
  ): { id: number } | { status: number };
  /** Cancels (or, for a unary call, closes) a gRPC call. */
  grpcCancel(id: number): number;
  /** `proxy_grpc_stream`/`proxy_grpc_send`: unsupported, said once per VM. */
  grpcStream(): number;
  /** `proxy_done` from a root whose `proxy_on_done` answered false. */
  done(): number;
  registerQueue(rootId: number, name: string): number | undefined;
}

type Fn = (...args: never[]) => unknown;

/**
 * Builds the `env` import object of one VM.
 *
 * @param vm The VM the functions act on
 * @returns Functions by import name
 */
export function envImports(vm: HostVm): Record<string, Fn> {
  const m = vm.memory;
  const str = (p: number, l: number) => m.readString(p, l);
  const map = (type: number) => vm.effective()?.maps.get(type);
  const buf = (type: number) => vm.effective()?.buffers.get(type) ?? vm.buffer(type);
  const editMap = (type: number, kp: number, kl: number, vp: number, vl: number, op: string) => {
    const name = str(kp, kl)?.toLowerCase();
    const value = str(vp, vl);
    if (name === undefined || value === undefined) return Status.INVALID_MEMORY_ACCESS;
    const view = map(type);
    if (!view) return Status.NOT_FOUND;
    if (!validField(name, value)) return Status.BAD_ARGUMENT;
    if (op === "add") view.add(name, value);
    else view.replace(name, value);
    return Status.OK;
  };
  const continueStream = (type: number) =>
    vm.effective()?.stream?.continueStream(type) ?? Status.NOT_FOUND;
  return {
    proxy_log(level: number, p: number, l: number) {
      // SDKs log at debug on every callback: below our level the message is not even read.
      if (level < vm.logLevel()) return Status.OK;
      const msg = str(p, l);
      if (msg === undefined) return Status.INVALID_MEMORY_ACCESS;
      vm.log(level, msg);
      return Status.OK;
    },
    proxy_get_log_level: (out: number) =>
      m.writeU32(out, vm.logLevel()) ? Status.OK : Status.INVALID_MEMORY_ACCESS,
    proxy_get_current_time_nanoseconds: (out: number) =>
      m.writeU64(out, realtimeNs()) ? Status.OK : Status.INVALID_MEMORY_ACCESS,
    proxy_set_tick_period_milliseconds(ms: number) {
      const ctx = vm.effective();
      if (!ctx) return Status.NOT_FOUND;
      vm.setTick(ctx.rootId, ms >>> 0);
      return Status.OK;
    },
    proxy_set_effective_context: (id: number) =>
      vm.setEffective(id >>> 0) ? Status.OK : Status.BAD_ARGUMENT,
    proxy_done: () => vm.done(),
    proxy_get_configuration: (pp: number, sp: number) =>
      m.copyOut(vm.buffer(BufferType.PLUGIN_CONFIGURATION)?.bytes ?? new Uint8Array(), pp, sp),
    proxy_get_buffer_bytes(type: number, start: number, max: number, pp: number, sp: number) {
      const b = buf(type);
      if (!b) return Status.NOT_FOUND;
      const from = Math.min(start >>> 0, b.bytes.length);
      return m.copyOut(b.bytes.subarray(from, from + Math.min(max >>> 0, b.bytes.length)), pp, sp);
    },
    proxy_get_buffer_status(type: number, sizePtr: number, flagsPtr: number) {
      const b = buf(type);
      if (!b) return Status.NOT_FOUND;
      return m.writeU32(sizePtr, b.bytes.length) && m.writeU32(flagsPtr, 0)
        ? Status.OK
        : Status.INVALID_MEMORY_ACCESS;
    },
    proxy_set_buffer_bytes(type: number, start: number, size: number, vp: number, vl: number) {
      const value = m.read(vp, vl);
      if (!value) return Status.INVALID_MEMORY_ACCESS;
      const b = buf(type);
      if (!b) return Status.NOT_FOUND;
      if (!b.writable) return Status.BAD_ARGUMENT;
      b.set(start >>> 0, size >>> 0, value);
      return Status.OK;
    },
    proxy_get_header_map_size(type: number, out: number) {
      const view = map(type);
      if (!view) return Status.NOT_FOUND;
      return m.writeU32(out, encodePairs(view.pairs()).length)
        ? Status.OK
        : Status.INVALID_MEMORY_ACCESS;
    },
    proxy_get_header_map_pairs(type: number, pp: number, sp: number) {
      const view = map(type);
      return view ? m.copyOut(encodePairs(view.pairs()), pp, sp) : Status.NOT_FOUND;
    },
    proxy_set_header_map_pairs(type: number, p: number, l: number) {
      const pairs = pairsAt(m, p, l);
      if (typeof pairs === "number") return pairs;
      const view = map(type);
      if (!view) return Status.NOT_FOUND;
      view.setPairs(pairs);
      return Status.OK;
    },
    proxy_get_header_map_value(type: number, kp: number, kl: number, pp: number, sp: number) {
      const name = str(kp, kl);
      if (name === undefined) return Status.INVALID_MEMORY_ACCESS;
      const view = map(type);
      if (!view) return Status.NOT_FOUND;
      const value = view.get(name.toLowerCase());
      // ABI 0.1.0 answered OK with an empty value for a missing key (l7.md §5.1).
      if (value === undefined && vm.abi !== "0.1.0") return Status.NOT_FOUND;
      return m.copyOut(new TextEncoder().encode(value ?? ""), pp, sp);
    },
    proxy_add_header_map_value: (t: number, kp: number, kl: number, vp: number, vl: number) =>
      editMap(t, kp, kl, vp, vl, "add"),
    proxy_replace_header_map_value: (t: number, kp: number, kl: number, vp: number, vl: number) =>
      editMap(t, kp, kl, vp, vl, "replace"),
    proxy_remove_header_map_value(type: number, kp: number, kl: number) {
      const name = str(kp, kl);
      if (name === undefined) return Status.INVALID_MEMORY_ACCESS;
      const view = map(type);
      if (!view) return Status.NOT_FOUND;
      view.remove(name.toLowerCase());
      return Status.OK;
    },
    proxy_continue_stream: continueStream,
    proxy_continue_request: () => continueStream(StreamType.HTTP_REQUEST),
    proxy_continue_response: () => continueStream(StreamType.HTTP_RESPONSE),
    proxy_close_stream: (type: number) =>
      vm.effective()?.stream?.closeStream(type) ?? Status.NOT_FOUND,
    proxy_clear_route_cache: () => Status.OK,
    proxy_get_status(codePtr: number, pp: number, sp: number) {
      const status = vm.effective()?.callStatus;
      if (status === undefined) return Status.NOT_FOUND;
      if (!m.writeU32(codePtr, status.code)) return Status.INVALID_MEMORY_ACCESS;
      return m.copyOut(new TextEncoder().encode(status.message), pp, sp);
    },
    proxy_send_local_response(
      status: number,
      dp: number,
      dl: number,
      bp: number,
      bl: number,
      hp: number,
      hl: number,
      grpc: number,
    ) {
      const details = str(dp, dl);
      const body = m.read(bp, bl);
      if (details === undefined || !body) return Status.INVALID_MEMORY_ACCESS;
      const headers = pairsAt(m, hp, hl);
      if (typeof headers === "number") return headers;
      const stream = vm.effective()?.stream;
      if (!stream) return Status.NOT_FOUND;
      const grpcStatus = grpc >>> 0 === NO_GRPC_STATUS ? undefined : grpc >>> 0;
      return stream.sendLocalResponse({ status: status >>> 0, details, body, headers, grpcStatus });
    },
    proxy_http_call(
      up: number,
      ul: number,
      hp: number,
      hl: number,
      bp: number,
      bl: number,
      tp: number,
      tl: number,
      timeout: number,
      idPtr: number,
    ) {
      const cluster = str(up, ul);
      const body = m.read(bp, bl);
      if (cluster === undefined || !body) return Status.INVALID_MEMORY_ACCESS;
      const headers = pairsAt(m, hp, hl);
      const trailers = pairsAt(m, tp, tl);
      if (typeof headers === "number") return headers;
      if (typeof trailers === "number") return trailers;
      const names = new Set(headers.map(([k]) => k));
      if (![":method", ":path", ":authority"].every((n) => names.has(n))) {
        return Status.BAD_ARGUMENT;
      }
      const ctx = vm.effective();
      if (!ctx) return Status.NOT_FOUND;
      const r = vm.httpCall(ctx, { cluster, headers, body, trailers, timeoutMs: timeout >>> 0 });
      if ("status" in r) return r.status;
      return m.writeU32(idPtr, r.id) ? Status.OK : Status.INVALID_MEMORY_ACCESS;
    },
    ...grpcImports(vm),
    // We offer no foreign functions (Envoy's are `compress`, `uncompress`, `declare_property`,
    // `set_envoy_filter_state`, `clear_route_cache`, `verify_signature`...): SDKs see NOT_FOUND.
    proxy_call_foreign_function: () => Status.NOT_FOUND,
    ...sharedImports(vm),
    ...metricImports(vm),
    ...propertyImports(vm),
    emscripten_notify_memory_growth: () => {},
    pthread_equal: (a: number, b: number) => a === b ? 1 : 0,
  };
}

function grpcImports(vm: HostVm): Record<string, Fn> {
  const m = vm.memory;
  return {
    proxy_grpc_call(
      up: number,
      ul: number,
      sp: number,
      sl: number,
      mp: number,
      ml: number,
      hp: number,
      hl: number,
      bp: number,
      bl: number,
      timeout: number,
      idPtr: number,
    ) {
      const upstream = m.read(up, ul);
      const service = m.readString(sp, sl);
      const method = m.readString(mp, ml);
      const message = m.read(bp, bl);
      if (!upstream || service === undefined || method === undefined || !message) {
        return Status.INVALID_MEMORY_ACCESS;
      }
      const metadata = pairsAt(m, hp, hl);
      if (typeof metadata === "number") return metadata;
      const target = grpcTarget(upstream);
      if (!target || !service || !method) return Status.PARSE_FAILURE;
      const ctx = vm.effective();
      if (!ctx) return Status.NOT_FOUND;
      const r = vm.grpcCall(ctx, {
        cluster: target.cluster,
        authority: target.authority,
        service,
        method,
        metadata: [...metadata, ...target.metadata],
        message,
        timeoutMs: timeout >>> 0,
      });
      if ("status" in r) return r.status;
      return m.writeU32(idPtr, r.id) ? Status.OK : Status.INVALID_MEMORY_ACCESS;
    },
    proxy_grpc_stream: () => vm.grpcStream(),
    proxy_grpc_send: () => vm.grpcStream(),
    proxy_grpc_cancel: (id: number) => vm.grpcCancel(id >>> 0),
    proxy_grpc_close: (id: number) => vm.grpcCancel(id >>> 0),
  };
}

function sharedImports(vm: HostVm): Record<string, Fn> {
  const m = vm.memory;
  return {
    proxy_get_shared_data(kp: number, kl: number, pp: number, sp: number, casPtr: number) {
      const key = m.readString(kp, kl);
      if (key === undefined) return Status.INVALID_MEMORY_ACCESS;
      const entry = vm.shared.get(key);
      if (!entry) return Status.NOT_FOUND;
      const s = m.copyOut(entry.value, pp, sp);
      if (s !== Status.OK) return s;
      return m.writeU32(casPtr, entry.cas) ? Status.OK : Status.INVALID_MEMORY_ACCESS;
    },
    proxy_set_shared_data(kp: number, kl: number, vp: number, vl: number, cas: number) {
      const key = m.readString(kp, kl);
      const value = m.read(vp, vl);
      if (key === undefined || !value) return Status.INVALID_MEMORY_ACCESS;
      return vm.shared.set(key, value, cas >>> 0);
    },
    proxy_register_shared_queue(np: number, nl: number, idPtr: number) {
      const name = m.readString(np, nl);
      if (name === undefined) return Status.INVALID_MEMORY_ACCESS;
      const ctx = vm.effective();
      const id = ctx ? vm.registerQueue(ctx.rootId, name) : undefined;
      if (id === undefined) return Status.INTERNAL_FAILURE;
      return m.writeU32(idPtr, id) ? Status.OK : Status.INVALID_MEMORY_ACCESS;
    },
    proxy_resolve_shared_queue(vp: number, vl: number, np: number, nl: number, idPtr: number) {
      const name = m.readString(np, nl);
      if (name === undefined || m.readString(vp, vl) === undefined) {
        return Status.INVALID_MEMORY_ACCESS;
      }
      const id = vm.shared.resolve(name);
      if (id === undefined) return Status.NOT_FOUND;
      return m.writeU32(idPtr, id) ? Status.OK : Status.INVALID_MEMORY_ACCESS;
    },
    proxy_enqueue_shared_queue(id: number, vp: number, vl: number) {
      const value = m.read(vp, vl);
      return value ? vm.shared.enqueue(id >>> 0, value) : Status.INVALID_MEMORY_ACCESS;
    },
    proxy_dequeue_shared_queue(id: number, pp: number, sp: number) {
      const item = vm.shared.dequeue(id >>> 0);
      return typeof item === "number" ? item : m.copyOut(item, pp, sp);
    },
  };
}

function metricImports(vm: HostVm): Record<string, Fn> {
  const m = vm.memory;
  return {
    proxy_define_metric(type: number, np: number, nl: number, idPtr: number) {
      const name = m.readString(np, nl);
      if (name === undefined) return Status.INVALID_MEMORY_ACCESS;
      const r = vm.metrics.define(type, name);
      if ("status" in r) return r.status;
      return m.writeU32(idPtr, r.id) ? Status.OK : Status.INVALID_MEMORY_ACCESS;
    },
    proxy_increment_metric: (id: number, delta: bigint) => vm.metrics.increment(id >>> 0, delta),
    proxy_record_metric: (id: number, value: bigint) =>
      vm.metrics.record(id >>> 0, BigInt.asUintN(64, value)),
    proxy_get_metric(id: number, out: number) {
      const r = vm.metrics.get(id >>> 0);
      if ("status" in r) return r.status;
      return m.writeU64(out, r.value) ? Status.OK : Status.INVALID_MEMORY_ACCESS;
    },
  };
}

function propertyImports(vm: HostVm): Record<string, Fn> {
  const m = vm.memory;
  return {
    proxy_get_property(pp: number, pl: number, vpp: number, vsp: number) {
      const path = m.readString(pp, pl);
      if (path === undefined) return Status.INVALID_MEMORY_ACCESS;
      const ctx = vm.effective();
      const value = ctx?.property(segments(path));
      return value === undefined ? Status.NOT_FOUND : m.copyOut(value, vpp, vsp);
    },
    proxy_set_property(pp: number, pl: number, vp: number, vl: number) {
      const path = m.readString(pp, pl);
      const value = m.read(vp, vl);
      if (path === undefined || !value) return Status.INVALID_MEMORY_ACCESS;
      const ctx = vm.effective();
      if (!ctx) return Status.NOT_FOUND;
      ctx.setProperty(segments(path), value);
      return Status.OK;
    },
  };
}

/** Path segments; a trailing NUL (the Zig SDK ends every segment with one) adds no segment. */
function segments(path: string): string[] {
  const parts = path.split("\0");
  if (parts.length > 1 && parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/** Serialized pairs from guest memory, names lower-cased and checked; or the status to answer. */
function pairsAt(m: GuestMemory, ptr: number, len: number): Pairs | number {
  const bytes = m.read(ptr, len);
  if (!bytes) return Status.INVALID_MEMORY_ACCESS;
  const pairs = decodePairs(bytes)?.map(([k, v]) => [k.toLowerCase(), v] as const);
  if (!pairs) return Status.SERIALIZATION_FAILURE;
  return pairs.every(([k, v]) => validField(k, v)) ? pairs : Status.BAD_ARGUMENT;
}
