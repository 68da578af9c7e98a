/**
 * One finished HTTP exchange seen two ways: as Envoy attributes for CEL (tag overrides,
 * access-log filters) and as the fields of an access-log line. Values are computed when read,
 * so a request that is neither filtered nor logged pays only for the object.
 */
import type { HeaderMap, HttpContext } from "../http/mod.ts";
import type { Destination, Endpoint, Service } from "../mesh/mod.ts";
import type { CelAttributes } from "./cel/mod.ts";
import type { ExchangeEnd } from "./_exchange_end.ts";
import { field, grpcStatusOf } from "./_exchange_end.ts";
import type { LogRecord } from "./access_log.ts";
import { envoyFlag } from "./istio_labels.ts";
import { hostOf } from "./mesh_labels.ts";

/** The request state the record reads; the proxy's `RequestState` has it. */
export interface RecordState {
  readonly destination: Destination;
  readonly peer: { readonly identity: string; readonly sni?: string };
  readonly client: string;
  readonly requestId?: string;
  /** The CONNECT target, as the downstream local address. */
  readonly target?: { readonly address: string; readonly port: number };
  readonly endpoint?: Endpoint;
  readonly backendService?: Service;
  /** `Kind ns/name:port` of the backend that served. */
  readonly backend?: string;
  readonly route?: {
    readonly rule: { readonly route: { readonly namespace: string; readonly name: string } };
  };
  readonly attempts?: number;
  readonly policy?: string;
}

/** Sizes the metrics filter measured. */
export interface ExchangeSizes {
  /** Request body bytes read. */
  readonly requestBody: number;
  readonly grpc: boolean;
}

/** A finished exchange as CEL attributes and access-log fields. */
export class HttpRecord<S extends RecordState> implements LogRecord, CelAttributes {
  readonly #ctx: HttpContext<S>;
  readonly #end: ExchangeEnd;
  readonly #sizes: ExchangeSizes;
  readonly startMs: number;
  readonly durationMs: number;

  constructor(
    ctx: HttpContext<S>,
    end: ExchangeEnd,
    sizes: ExchangeSizes,
    times: { readonly nowMs: number; readonly timeOrigin: number },
  ) {
    this.#ctx = ctx;
    this.#end = end;
    this.#sizes = sizes;
    this.startMs = times.timeOrigin + ctx.startedAt;
    this.durationMs = times.nowMs - ctx.startedAt;
  }

  get protocol(): string {
    return `HTTP/${this.#ctx.request.head.version}`;
  }
  get code(): number {
    return this.#end.code;
  }
  get flags(): string {
    return envoyFlag(this.#end.flag);
  }
  get details(): string {
    return responseDetails(this.#ctx, this.#end);
  }
  get bytesReceived(): number {
    return this.#sizes.requestBody;
  }
  get bytesSent(): number {
    return this.#end.bodyBytes;
  }
  get upstreamHost(): string | undefined {
    const e = this.#ctx.state.endpoint;
    return e ? `${e.address}:${e.port}` : undefined;
  }
  get upstreamCluster(): string {
    return upstreamCluster(this.#ctx.state);
  }
  get upstreamFailure(): string | undefined {
    const f = this.#end.flag;
    return f === "UF" || f === "UH" ? this.#ctx.localReply?.detail || undefined : undefined;
  }
  get downstreamLocal(): string | undefined {
    const t = this.#ctx.state.target;
    return t ? nodeOf(t.address, t.port) : undefined;
  }
  get downstreamRemote(): string {
    return this.#ctx.state.client;
  }
  get peerSan(): string | undefined {
    return this.#ctx.state.peer.identity || undefined;
  }
  get requestedServerName(): string | undefined {
    return this.#ctx.state.peer.sni;
  }
  get routeName(): string {
    const r = this.#ctx.state.route?.rule.route;
    // Istio's waypoint names its catch-all route `default`.
    return r ? `${r.namespace}.${r.name}` : "default";
  }
  get grpcStatus(): string | undefined {
    if (!this.#sizes.grpc) return undefined;
    return grpcStatusOf(this.#end.code, this.#end.headers, this.#end.trailers);
  }
  get attempts(): number | undefined {
    return this.#ctx.state.attempts;
  }
  get policy(): string | undefined {
    return this.#ctx.state.policy;
  }
  get decision(): string | undefined {
    if (this.#ctx.state.policy === undefined) return undefined;
    return isDenied(this.#end.flag) ? "deny" : "allow";
  }

  requestHeader(name: string): string | undefined {
    const head = this.#ctx.request.head;
    switch (name) {
      case ":method":
        return head.method;
      case ":path":
        return head.path;
      case ":authority":
        return head.authority;
      case ":scheme":
        return head.scheme;
      default:
        return field(head.headers, name);
    }
  }

  responseHeader(name: string): string | undefined {
    return field(this.#end.headers, name);
  }

  responseTrailer(name: string): string | undefined {
    return this.#end.trailers ? field(this.#end.trailers, name) : undefined;
  }

  /** Envoy's attribute vocabulary (l7.md §5.6), the parts a waypoint fills. */
  attribute(name: string): unknown {
    const head = this.#ctx.request.head;
    const state = this.#ctx.state;
    switch (name) {
      case "request.path":
        return head.path;
      case "request.url_path":
        return head.path.split("?")[0];
      case "request.query": {
        const q = head.path.indexOf("?");
        return q < 0 ? "" : head.path.slice(q + 1);
      }
      case "request.host":
        return head.authority;
      case "request.scheme":
        return head.scheme;
      case "request.method":
        return head.method;
      case "request.headers":
        return headerMap(head.headers);
      case "request.referer":
        return field(head.headers, "referer");
      case "request.useragent":
        return field(head.headers, "user-agent");
      case "request.id":
        return state.requestId ?? field(head.headers, "x-request-id");
      case "request.protocol":
        return this.protocol;
      case "request.size":
      case "request.total_size":
        return this.#sizes.requestBody;
      case "request.time":
        return new Date(this.startMs);
      case "request.duration":
        return this.durationMs;
      case "response.code":
        return this.#end.code;
      case "response.code_details":
        return this.details;
      case "response.flags":
        return this.flags;
      case "response.grpc_status":
        return this.grpcStatus;
      case "response.headers":
        return headerMap(this.#end.headers);
      case "response.trailers":
        return this.#end.trailers ? headerMap(this.#end.trailers) : undefined;
      case "response.size":
      case "response.total_size":
        return this.#end.bodyBytes;
      default:
        return connectionAttribute(name, state);
    }
  }
}

/**
 * The connection-level attributes both HTTP and TCP records have.
 *
 * @param name The attribute
 * @param state The connection's facts
 */
export function connectionAttribute(name: string, state: RecordState): unknown {
  switch (name) {
    case "source.address":
      return hostOf(state.client);
    case "source.port":
      return Number(state.client.slice(state.client.lastIndexOf(":") + 1));
    case "source.principal":
      return state.peer.identity || undefined;
    case "destination.address":
      return state.target?.address;
    case "destination.port":
      return state.target?.port ??
        (state.destination.kind === "service"
          ? state.destination.port.port
          : state.destination.port);
    case "connection.mtls":
      return state.peer.identity !== "";
    case "upstream.address":
      return state.endpoint?.address;
    case "upstream.port":
      return state.endpoint?.port;
    default:
      return undefined;
  }
}

/**
 * The Envoy cluster an Istio waypoint would have used: `inbound-vip|<port>|http|<host>` for a
 * service (the routed backend's port when `backend` names one), `inbound-pod|<port>||<ip>` for a
 * workload.
 */
export function upstreamCluster(
  state: Pick<RecordState, "destination" | "backendService" | "backend">,
): string {
  const d = state.destination;
  if (d.kind === "workload") return `inbound-pod|${d.port}||${d.workload.address}`;
  const service = state.backendService ?? d.service;
  const port = state.backendService && state.backend
    ? state.backend.slice(state.backend.lastIndexOf(":") + 1)
    : String(d.port.port);
  return `inbound-vip|${port}|http|${service.hostname}`;
}

/** `ip:port`, with brackets for IPv6. */
export function nodeOf(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

function isDenied(flag: string): boolean {
  return flag === "RBAC" || flag === "UAEX";
}

/** Envoy's `%RESPONSE_CODE_DETAILS%` for how the request ended. */
function responseDetails<S extends RecordState>(ctx: HttpContext<S>, end: ExchangeEnd): string {
  switch (end.flag) {
    case "RBAC":
      return `rbac_access_denied_matched_policy[${ctx.state.policy ?? "none"}]`;
    case "UAEX":
      return "ext_authz_denied";
    case "NR":
      return "route_not_found";
    case "UF":
      return "upstream_reset_before_response_started{connection_failure}";
    case "UH":
      return "no_healthy_upstream";
    case "UT":
      return "response_timeout";
    case "URX":
      return "upstream_reset_before_response_started{retry_limit_exceeded}";
    case "UC":
      return "upstream_reset_after_response_started{remote_reset}";
    case "DC":
      return "downstream_remote_disconnect";
  }
  if (!ctx.localReply) return "via_upstream";
  if (end.code === 401 || (end.code === 403 && ctx.localReply.detail.startsWith("Request"))) {
    return "jwt_authn_access_denied";
  }
  return "local_reply";
}

function headerMap(headers: HeaderMap): { get(name: string): string | undefined } {
  return { get: (name) => field(headers, name.toLowerCase()) };
}
