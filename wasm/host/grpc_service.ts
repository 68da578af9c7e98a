/**
 * The `grpc_service` argument of `proxy_grpc_call`/`proxy_grpc_stream`: Envoy's SDKs pass a
 * serialized `envoy.config.core.v3.GrpcService`, the Rust SDK a bare cluster name. Envoy reads
 * the proto first and falls back to the bytes as a cluster name; so do we.
 *
 * Field numbers from envoyproxy/envoy `api/envoy/config/core/v3/grpc_service.proto`:
 * GrpcService.envoy_grpc 1, initial_metadata 5; EnvoyGrpc.cluster_name 1, authority 2;
 * `base.proto` HeaderValue.key 1, value 2.
 */
import { readFields } from "../../grpc/mod.ts";
import type { Pairs } from "./pairs.ts";

/** Where a call goes. */
export interface GrpcTarget {
  readonly cluster: string;
  readonly authority?: string;
  /** `initial_metadata` of the GrpcService. */
  readonly metadata: Pairs;
}

/**
 * Reads the service argument.
 *
 * @param bytes As the plugin passed them
 * @returns The target, or undefined when the bytes name no cluster
 */
export function grpcTarget(bytes: Uint8Array): GrpcTarget | undefined {
  const decoded = decodeService(bytes);
  if (decoded?.cluster) return decoded;
  let name: string;
  try {
    name = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
  return name && !/[\0-\x20]/.test(name) ? { cluster: name, metadata: [] } : undefined;
}

function decodeService(bytes: Uint8Array): GrpcTarget | undefined {
  let cluster = "";
  let authority: string | undefined;
  const metadata: [string, string][] = [];
  try {
    readFields(bytes, {
      1: (r) =>
        readFields(r.bytes(), {
          1: (e) => cluster = e.string(),
          2: (e) => authority = e.string() || undefined,
        }),
      5: (r) => {
        const h = { key: "", value: "" };
        readFields(r.bytes(), { 1: (v) => h.key = v.string(), 2: (v) => h.value = v.string() });
        metadata.push([h.key.toLowerCase(), h.value]);
      },
    });
  } catch {
    return undefined;
  }
  return { cluster, authority, metadata };
}
