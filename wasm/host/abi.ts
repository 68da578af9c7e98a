/**
 * The proxy-wasm ABI numbers (l7.md §5.3) and ABI detection from the module's marker export
 * (§5.1). Values are the wire numbers the SDKs use; names follow the spec.
 */

/** `proxy_status_t`. */
export const Status = {
  OK: 0,
  NOT_FOUND: 1,
  BAD_ARGUMENT: 2,
  SERIALIZATION_FAILURE: 3,
  PARSE_FAILURE: 4,
  INVALID_MEMORY_ACCESS: 6,
  EMPTY: 7,
  CAS_MISMATCH: 8,
  INTERNAL_FAILURE: 10,
  UNIMPLEMENTED: 12,
} as const;

/** `proxy_log_level_t`. */
export const LogLevel = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, CRITICAL: 5 } as const;

/** `proxy_buffer_type_t`. */
export const BufferType = {
  HTTP_REQUEST_BODY: 0,
  HTTP_RESPONSE_BODY: 1,
  DOWNSTREAM_DATA: 2,
  UPSTREAM_DATA: 3,
  HTTP_CALL_RESPONSE_BODY: 4,
  GRPC_CALL_MESSAGE: 5,
  VM_CONFIGURATION: 6,
  PLUGIN_CONFIGURATION: 7,
  FOREIGN_FUNCTION_ARGUMENTS: 8,
} as const;

/** `proxy_map_type_t`. */
export const MapType = {
  HTTP_REQUEST_HEADERS: 0,
  HTTP_REQUEST_TRAILERS: 1,
  HTTP_RESPONSE_HEADERS: 2,
  HTTP_RESPONSE_TRAILERS: 3,
  GRPC_CALL_INITIAL_METADATA: 4,
  GRPC_CALL_TRAILING_METADATA: 5,
  HTTP_CALL_RESPONSE_HEADERS: 6,
  HTTP_CALL_RESPONSE_TRAILERS: 7,
} as const;

/** `proxy_stream_type_t`. */
export const StreamType = {
  HTTP_REQUEST: 0,
  HTTP_RESPONSE: 1,
  DOWNSTREAM: 2,
  UPSTREAM: 3,
} as const;

/** `proxy_metric_type_t`. */
export const MetricType = { COUNTER: 0, GAUGE: 1, HISTOGRAM: 2 } as const;

/** Callback results: headers 1..4 and body 1..3 all stop iteration; 0 continues (§5.5). */
export const Action = { CONTINUE: 0, PAUSE: 1 } as const;

/** `wasi_errno_t` values the shim answers with. */
export const Errno = {
  SUCCESS: 0,
  BADF: 8,
  FAULT: 21,
  INVAL: 28,
  NOENT: 44,
  NOSYS: 52,
  NOTSUP: 58,
} as const;

/** gRPC status argument meaning "none, use the HTTP status". */
export const NO_GRPC_STATUS = 0xffffffff;

/** The ABI versions we host. */
export type AbiVersion = "0.1.0" | "0.2.0" | "0.2.1";

const MARKERS: Record<string, AbiVersion> = {
  proxy_abi_version_0_2_1: "0.2.1",
  proxy_abi_version_0_2_0: "0.2.0",
  proxy_abi_version_0_1_0: "0.1.0",
};

/**
 * The ABI a module declares through its marker export.
 *
 * @param module A compiled module
 * @returns The version, or undefined when the module has no known marker
 */
export function detectAbi(module: WebAssembly.Module): AbiVersion | undefined {
  for (const e of WebAssembly.Module.exports(module)) {
    const v = MARKERS[e.name];
    if (v) return v;
  }
  return undefined;
}
