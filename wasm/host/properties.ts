/**
 * Properties (`proxy_get_property`, l7.md §5.6): Envoy's attribute vocabulary built from a
 * request's facts, with values encoded as Envoy encodes them: strings raw, integers 8-byte
 * little-endian, booleans one byte, timestamps and durations int64 nanoseconds, maps as
 * serialized pairs. Values are computed only when a plugin asks.
 */
import type { RequestHead, ResponseHead } from "../../http/mod.ts";
import { encodePairs } from "./pairs.ts";

/** A property value; functions are evaluated on lookup. */
export type PropertyValue =
  | string
  | number
  | bigint
  | boolean
  | Uint8Array
  | ReadonlyMap<string, string>
  | PropertyTree
  | undefined
  | (() => PropertyValue);

/** A tree of properties navigated by path segments. */
export interface PropertyTree {
  readonly [key: string]: PropertyValue;
}

/** The node (proxy) identity plugins read as `node.*`. */
export interface NodeInfo {
  readonly id: string;
  readonly cluster: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

/** The plugin, as `plugin_name`, `plugin_root_id`, `plugin_vm_id` show it. */
export interface PluginInfo {
  /** `<namespace>.<name>`. */
  readonly name: string;
  readonly rootId: string;
}

/** Per-request facts that the HTTP stream exposes. */
export interface StreamFacts {
  /** Downstream peer address (the original client) and its SPIFFE id when mTLS. */
  readonly source: { readonly address: string; readonly port: number; readonly principal?: string };
  /** The CONNECT target as policies see it. */
  readonly destination: { readonly address: string; readonly port: number };
  readonly requestId: string;
  /** Wall-clock start of the request, ns. */
  readonly startNs: bigint;
  /** Envoy-style cluster name of the destination, e.g. `inbound-vip|80|http|svc.ns.svc.cluster.local`. */
  readonly clusterName: () => string | undefined;
  readonly routeName: () => string | undefined;
  readonly upstream: () => { readonly address: string; readonly port: number } | undefined;
  /** Dynamic metadata (`metadata.filter_metadata.<filter>.<key>`). */
  readonly metadata?: PropertyTree;
}

const encoder = new TextEncoder();

/**
 * Looks a path up in a tree; a single dotted segment (`request.path`) is split as Envoy does.
 *
 * @param tree The properties
 * @param path Segments, as the plugin joined them with NUL
 * @returns The encoded value, or undefined when absent
 */
export function lookupProperty(
  tree: PropertyTree,
  path: readonly string[],
): Uint8Array | undefined {
  const v = walk(tree, path);
  if (v !== undefined || path.length !== 1 || !path[0].includes(".")) return encode(v);
  return encode(walk(tree, path[0].split(".")));
}

function walk(tree: PropertyTree, path: readonly string[]): PropertyValue {
  let v: PropertyValue = tree;
  for (const seg of path) {
    while (typeof v === "function") v = v();
    if (v instanceof Map) v = v.get(seg);
    else if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
      v = Object.hasOwn(v, seg) ? (v as PropertyTree)[seg] : undefined;
    } else return undefined;
  }
  while (typeof v === "function") v = v();
  return v;
}

function encode(v: PropertyValue): Uint8Array | undefined {
  if (v === undefined || typeof v === "function") return undefined;
  if (typeof v === "string") return encoder.encode(v);
  if (typeof v === "boolean") return new Uint8Array([v ? 1 : 0]);
  if (v instanceof Uint8Array) return v;
  if (typeof v === "number" || typeof v === "bigint") {
    const out = new Uint8Array(8);
    const view = new DataView(out.buffer);
    if (typeof v === "number" && !Number.isInteger(v)) view.setFloat64(0, v, true);
    else view.setBigInt64(0, BigInt(v), true);
    return out;
  }
  if (v instanceof Map) return encodePairs([...v]);
  const pairs: [string, string][] = [];
  for (const [k, x] of Object.entries(v)) {
    const leaf = typeof x === "function" ? x() : x;
    if (typeof leaf === "string" || typeof leaf === "number" || typeof leaf === "boolean") {
      pairs.push([k, String(leaf)]);
    }
  }
  return encodePairs(pairs);
}

/** Properties every context has: the plugin and the node. */
export function pluginProperties(plugin: PluginInfo, node: NodeInfo): PropertyTree {
  const nodeTree: PropertyTree = {
    id: node.id,
    cluster: node.cluster,
    metadata: new Map(Object.entries(node.metadata ?? {})),
  };
  return {
    plugin_name: plugin.name,
    plugin_root_id: plugin.rootId,
    plugin_vm_id: "",
    node: nodeTree,
    xds: { node: nodeTree, listener_direction: 1 },
    listener_direction: 1,
  };
}

/**
 * The properties of one HTTP stream.
 *
 * @param base {@link pluginProperties}
 * @param facts The request's facts
 * @param request The live request head
 * @param response The response head once there is one
 */
export function streamProperties(
  base: PropertyTree,
  facts: StreamFacts,
  request: RequestHead,
  response: () => ResponseHead | undefined,
): PropertyTree {
  const headers = (h: Iterable<readonly [string, string]>) => {
    const out = new Map<string, string>();
    for (const [k, v] of h) out.set(k, out.has(k) ? `${out.get(k)},${v}` : v);
    return out;
  };
  const q = () => request.path.indexOf("?");
  const cluster = () => facts.clusterName();
  const route = () => facts.routeName();
  return {
    ...base,
    request: {
      path: () => request.path,
      url_path: () => q() < 0 ? request.path : request.path.slice(0, q()),
      query: () => q() < 0 ? "" : request.path.slice(q() + 1),
      host: () => request.authority,
      scheme: () => request.scheme,
      method: () => request.method,
      headers: () => headers(request.headers),
      referer: () => request.headers.get("referer"),
      useragent: () => request.headers.get("user-agent"),
      id: facts.requestId,
      protocol: `HTTP/${request.version === "2" ? "2" : request.version}`,
      time: facts.startNs,
    },
    response: () => {
      const r = response();
      return r && { code: r.status, headers: headers(r.headers) };
    },
    source: {
      address: `${facts.source.address}:${facts.source.port}`,
      port: facts.source.port,
      principal: facts.source.principal,
    },
    destination: {
      address: `${facts.destination.address}:${facts.destination.port}`,
      port: facts.destination.port,
    },
    connection: {
      mtls: facts.source.principal !== undefined,
      uri_san_peer_certificate: facts.source.principal,
    },
    upstream: () => {
      const u = facts.upstream();
      return u && { address: `${u.address}:${u.port}`, port: u.port };
    },
    cluster_name: cluster,
    route_name: route,
    xds: { ...(base.xds as PropertyTree), cluster_name: cluster, route_name: route },
    metadata: facts.metadata,
  };
}
