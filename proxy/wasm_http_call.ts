/**
 * `proxy_http_call` for Wasm plugins: the plugin names an upstream cluster, we send the call to
 * that service's endpoints through the same tunnels and pools as routed requests.
 *
 * Cluster names are accepted as Envoy's Istio clusters (`outbound|<port>|<subset>|<host>`) or as
 * `<host>[:<port>]`; without a port, the service's first port. The answer's `:status` comes first
 * among its headers, as Envoy hands it to `proxy_on_http_call_response`.
 */
import { bytesBody, HeaderMap, readAll, type RequestHead } from "../http/mod.ts";
import type { Endpoint, ServicePort } from "../mesh/mod.ts";
import type { Balancer, Pick } from "../routes/mod.ts";
import type { HttpCaller, HttpCallRequest, HttpCallResponse } from "../wasm/mod.ts";
import type { ProxyConfig } from "./config.ts";
import type { HttpUpstreams } from "./http_pool.ts";
import { servicePortByHost } from "./service_lookup.ts";

/** Bound of a call's response body. */
const MAX_RESPONSE_BODY = 1 << 20;

/** What the caller needs. */
export interface WasmCallInputs {
  /** The config in force when the call is made. */
  readonly config: () => ProxyConfig;
  readonly upstreams: HttpUpstreams;
  readonly balancer: Balancer;
}

/** A parsed cluster name. */
export interface CallCluster {
  readonly host: string;
  readonly port?: number;
}

/**
 * Reads a cluster name.
 *
 * @param cluster As the plugin wrote it
 * @returns Host and optional port, or undefined when it is not a form we know
 */
export function parseCluster(cluster: string): CallCluster | undefined {
  if (cluster.startsWith("outbound|")) {
    const [, port, , host] = cluster.split("|");
    const n = Number(port);
    return host && Number.isInteger(n) && n > 0 && n < 65536 ? { host, port: n } : undefined;
  }
  const colon = cluster.lastIndexOf(":");
  if (colon < 0) return cluster ? { host: cluster } : undefined;
  const n = Number(cluster.slice(colon + 1));
  if (!Number.isInteger(n) || n <= 0 || n >= 65536) return undefined;
  return { host: cluster.slice(0, colon), port: n };
}

/** Where one call goes: the service port and an endpoint, busy until `pick.done()`. */
export interface CallTarget {
  readonly target: CallCluster;
  readonly port: ServicePort;
  readonly pick: Pick<Endpoint>;
}

/**
 * Resolves a plugin's cluster name to a service port and picks an endpoint.
 *
 * @throws Error naming the cluster when it is malformed, unknown or has no endpoint
 */
export function pickCallTarget(inputs: WasmCallInputs, cluster: string): CallTarget {
  const target = parseCluster(cluster);
  if (!target) throw new Error(`unknown cluster "${cluster}"`);
  const port = servicePortByHost(inputs.config().mesh, target.host, target.port);
  if (!port) throw new Error(`no service for cluster "${cluster}"`);
  const pick = inputs.balancer.pick(port.endpoints);
  if (!pick) throw new Error(`no endpoint for cluster "${cluster}"`);
  return { target, port, pick };
}

/**
 * Makes the {@link HttpCaller} a WasmRuntime uses.
 *
 * @param inputs Config, pools and balancer
 * @returns The caller; it rejects naming the cluster when the call cannot be made
 */
export function wasmHttpCaller(inputs: WasmCallInputs): HttpCaller {
  return async (call: HttpCallRequest): Promise<HttpCallResponse> => {
    const { target, port, pick } = pickCallTarget(inputs, call.cluster);
    const codec = port.protocol === "http2" || port.protocol === "grpc" ? "h2c" : "http1";
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), call.timeoutMs);
    try {
      const answer = inputs.upstreams.send(
        pick.endpoint,
        codec,
        target.host,
        requestHead(call, target.host, codec),
        bytesBody(call.body),
      ).then(async (res) => ({
        headers: [[":status", String(res.head.status)] as const, ...res.head.headers.entries()],
        body: await readAll(res.body, MAX_RESPONSE_BODY),
        trailers: [],
      }));
      const expired = new Promise<never>((_, reject) =>
        controller.signal.addEventListener(
          "abort",
          () =>
            reject(new Error(`cluster "${call.cluster}" gave no answer in ${call.timeoutMs} ms`)),
        )
      );
      return await Promise.race([answer, expired]);
    } finally {
      clearTimeout(timer);
      pick.done();
    }
  };
}

function requestHead(call: HttpCallRequest, host: string, codec: "http1" | "h2c"): RequestHead {
  const headers = new HeaderMap();
  let method = "GET", path = "/", authority = host, scheme = "http";
  for (const [name, value] of call.headers) {
    if (name === ":method") method = value;
    else if (name === ":path") path = value;
    else if (name === ":authority" || name === "host") authority = value;
    else if (name === ":scheme") scheme = value;
    else if (!name.startsWith(":")) headers.add(name, value);
  }
  if (codec === "http1") headers.set("content-length", String(call.body.byteLength));
  return { method, path, authority, scheme, version: codec === "h2c" ? "2" : "1.1", headers };
}
