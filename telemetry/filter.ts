/**
 * The metrics filter: every request that enters the chain adds one record to Istio's HTTP
 * metrics when it is over, whether it was answered by the upstream, refused by a filter, failed,
 * or abandoned by the client (STYLE habit 15).
 *
 * Invariants:
 * - The filter must be the first of the chain: an onion filter sees only what runs inside it,
 *   and Envoy counts requests that authz denied (its stats filter logs every stream).
 * - One record per request: when the response body ends, errors or is cancelled; at once when
 *   there is no body to wait for; or in `finally` when a filter threw, from the reply the chain
 *   will send (a gRPC request's local reply goes out as HTTP 200 with a `grpc-status`, as
 *   `proxy/http_serve.ts` sends it).
 * - Bytes are counted on the wire side: the request head as received plus the body bytes read,
 *   the response head plus body bytes written, heads sized as HTTP/1.1 text.
 * - Label text is computed once per connection and destination (see {@link LabelCache}).
 */
import {
  type Filter,
  grpcStatusForHttp,
  HeaderMap,
  type HttpContext,
  LocalReply,
} from "../http/mod.ts";
import type { Destination, Endpoint, Service, Snapshot } from "../mesh/mod.ts";
import { type BodyEnd, BodyMeter, meteredBody } from "./_body_meter.ts";
import { destinationText, type IstioMetrics, type LabelPair, sourceText } from "./istio_metrics.ts";
import { destinationLabels, sourceLabels } from "./mesh_labels.ts";

/** What the filter reads from the request state; the proxy's `RequestState` has it. */
export interface MetricsState {
  readonly config: { readonly mesh: Snapshot };
  readonly destination: Destination;
  /**
   * The downstream peer. The same object for all requests of a connection: per-connection
   * label text is cached on it.
   */
  readonly peer: { readonly identity: string };
  /** Original client `ip:port`. */
  readonly client: string;
  /** The endpoint of the last try, once the router picked one. */
  readonly endpoint?: Endpoint;
  /** The backend service the router sent to, when it is not the CONNECT's service. */
  readonly backendService?: Service;
  /** The CONNECT's `baggage` header: the source's labels when the model does not know it. */
  readonly baggage?: string;
}

/** Options of {@link metricsFilter}. */
export interface MetricsFilterOptions {
  /** Clock in ms, on the same scale as `HttpContext.startedAt`. @default performance.now */
  readonly now?: () => number;
}

/** What the chain answers for a non-{@link LocalReply} throw (mirrors `runChain`). */
const INTERNAL_ERROR = new LocalReply(500, "internal error");

/**
 * Makes the metrics filter. Put it first in the chain.
 *
 * @example
 * ```ts
 * const metrics = new IstioMetrics({ cluster: "Kubernetes" });
 * const chain = compose<RequestState>([metricsFilter(metrics), authzFilter(), router(inputs)]);
 * ```
 *
 * @param metrics Where requests are recorded
 * @param options Clock
 * @returns The filter
 */
export function metricsFilter<S extends MetricsState>(
  metrics: IstioMetrics,
  options: MetricsFilterOptions = {},
): Filter<S> {
  const recorder: Recorder = {
    metrics,
    labels: new LabelCache(metrics),
    now: options.now ?? (() => performance.now()),
  };
  return async function recordMetrics(ctx, next) {
    const exchange = new MeteredExchange(ctx, recorder);
    let thrown: { error: unknown } | undefined;
    try {
      await next();
    } catch (e) {
      thrown = { error: e };
      throw e;
    } finally {
      if (thrown) exchange.failed(thrown.error);
      else exchange.answered();
    }
  };
}

/** What every exchange of one filter shares. */
interface Recorder {
  readonly metrics: IstioMetrics;
  readonly labels: LabelCache;
  readonly now: () => number;
}

/** One request's meters and the rules for when and what it records. */
class MeteredExchange<S extends MetricsState> {
  readonly #ctx: HttpContext<S>;
  readonly #grpc: boolean;
  readonly #requestHead: number;
  readonly #request: BodyMeter;
  readonly #recorder: Recorder;

  constructor(ctx: HttpContext<S>, recorder: Recorder) {
    this.#ctx = ctx;
    this.#recorder = recorder;
    const { head } = ctx.request;
    this.#grpc = isGrpc(head.headers);
    this.#requestHead = requestHeadBytes(head);
    this.#request = new BodyMeter(this.#grpc);
    const body = ctx.request.body;
    if (body.length !== 0) ctx.request.body = meteredBody(body, this.#request);
  }

  /** A filter threw: record the reply the chain will make of it. */
  failed(error: unknown): void {
    const reply = error instanceof LocalReply ? error : INTERNAL_ERROR;
    const flag = this.#ctx.flag !== "-" ? this.#ctx.flag : reply.flag;
    this.#recordReply(reply, flag);
  }

  /** The chain returned: record now, or once the response body is over. */
  answered(): void {
    const ctx = this.#ctx;
    const res = ctx.response;
    if (!res) return this.#recordReply(new LocalReply(500, "no response"), ctx.flag);
    if (ctx.localReply && this.#grpc) return this.#recordReply(ctx.localReply, ctx.flag);
    const { head } = res;
    if (head.status === 101 || res.body.length === 0) {
      return this.#finish(head.status, head.headers, undefined, 0, 0, ctx.flag);
    }
    const meter = new BodyMeter(this.#grpc);
    const body = res.body;
    ctx.response = {
      head,
      body: meteredBody(body, meter, (end, reason) => {
        const flag = ctx.flag !== "-" ? ctx.flag : endFlag(end, reason, ctx, head.status);
        this.#finish(head.status, head.headers, body.trailers, meter.bytes, meter.messages, flag);
      }),
    };
  }

  #recordReply(reply: LocalReply, flag: string): void {
    if (this.#grpc) {
      // The gRPC shape `proxy/http_serve.ts` gives local replies: 200 with the status mapped.
      const headers = new HeaderMap([
        ["content-type", "application/grpc"],
        ["grpc-status", String(grpcStatusForHttp(reply.status))],
      ]);
      return this.#finish(200, headers, undefined, 0, 0, flag);
    }
    const { head, body } = reply.toResponse();
    this.#finish(head.status, head.headers, undefined, body.length ?? 0, 0, flag);
  }

  #finish(
    code: number,
    headers: HeaderMap,
    trailers: HeaderMap | undefined,
    bodyBytes: number,
    messages: number,
    flag: string,
  ): void {
    const r = this.#recorder;
    const ctx = this.#ctx;
    try {
      r.metrics.recordHttp(r.labels.pairFor(ctx.state), {
        protocol: this.#grpc ? "grpc" : "http",
        code,
        grpcStatus: this.#grpc ? grpcStatusOf(code, headers, trailers) : "",
        flag,
        durationMs: r.now() - ctx.startedAt,
        requestBytes: this.#requestHead + this.#request.bytes,
        responseBytes: responseHeadBytes(headers, trailers) + bodyBytes,
        requestMessages: this.#request.messages,
        responseMessages: messages,
      });
    } catch {
      // Metrics must never be the reason a request fails; the count shows the bug.
      r.metrics.recordFailures++;
    }
  }
}

/**
 * The flag a response body's early stop implies: a read error is the upstream's (`UC`), a
 * cancel is the downstream going away (`DC`), except the codec dropping a body that must not be
 * sent (HEAD, 204, 304).
 */
function endFlag(end: BodyEnd, reason: unknown, ctx: HttpContext<unknown>, status: number) {
  if (end === "end") return "-";
  if (end === "error") return "UC";
  const bodiless = ctx.request.head.method === "HEAD" || status === 204 || status === 304;
  return reason === undefined && bodiless ? "-" : "DC";
}

/**
 * Label pairs cached per connection (keyed by its `peer` object) and destination text cached per
 * endpoint and service (snapshot objects, so a new snapshot starts fresh).
 */
class LabelCache {
  readonly #metrics: IstioMetrics;
  readonly #connections = new WeakMap<object, ConnectionLabels>();
  readonly #destinations = new WeakMap<object, Map<Service | undefined, string>>();

  constructor(metrics: IstioMetrics) {
    this.#metrics = metrics;
  }

  pairFor(state: MetricsState): LabelPair {
    const mesh = state.config.mesh;
    let c = this.#connections.get(state.peer);
    if (!c || c.mesh !== mesh || c.baggage !== state.baggage) {
      const source = sourceLabels(mesh, {
        identity: state.peer.identity,
        client: state.client,
        baggage: state.baggage,
      }, this.#metrics.cluster);
      c = {
        mesh,
        baggage: state.baggage,
        text: sourceText(source),
        principal: source.principal,
      };
      this.#connections.set(state.peer, c);
    }
    // `servedBy()` inlined: this runs per request.
    const d = state.destination;
    const service = state.backendService ?? (d.kind === "service" ? d.service : undefined);
    const endpoint = state.endpoint ?? (d.kind === "workload" ? d.endpoint : undefined);
    if (c.pair && c.service === service && c.endpoint === endpoint) return c.pair;
    const text = this.#destinationText(mesh, service, endpoint);
    c.service = service;
    c.endpoint = endpoint;
    return c.pair = this.#metrics.pairOf(c.text, text, c.principal);
  }

  #destinationText(mesh: Snapshot, service?: Service, endpoint?: Endpoint): string {
    const key: object = endpoint ?? service ?? mesh;
    let byService = this.#destinations.get(key);
    if (!byService) this.#destinations.set(key, byService = new Map());
    let text = byService.get(service);
    if (text === undefined) {
      text = destinationText(destinationLabels(mesh, service, endpoint, this.#metrics.cluster));
      byService.set(service, text);
    }
    return text;
  }
}

interface ConnectionLabels {
  readonly mesh: Snapshot;
  readonly baggage: string | undefined;
  readonly text: string;
  readonly principal: string;
  service?: Service;
  endpoint?: Endpoint;
  pair?: LabelPair;
}

function isGrpc(headers: HeaderMap): boolean {
  return field(headers, "content-type")?.startsWith("application/grpc") ?? false;
}

/** `HeaderMap.get` without lower-casing the name each call (names are stored lower-case). */
function field(headers: HeaderMap, lowerName: string): string | undefined {
  const all = headers.entries();
  for (let i = 0; i < all.length; i++) if (all[i][0] === lowerName) return all[i][1];
  return undefined;
}

/**
 * Envoy's `Grpc::Common::getGrpcStatus`: trailers, then headers, then the HTTP status mapped.
 */
function grpcStatusOf(code: number, headers: HeaderMap, trailers?: HeaderMap): string {
  const raw = (trailers && field(trailers, "grpc-status")) ?? field(headers, "grpc-status");
  if (raw !== undefined && /^\d+$/.test(raw.trim())) return raw.trim();
  return code > 0 ? String(grpcStatusForHttp(code)) : "";
}

/** `METHOD path HTTP/1.1\r\n`, the fields (with `host` when only `:authority` came), `\r\n`. */
function requestHeadBytes(head: HttpContext<unknown>["request"]["head"]): number {
  let n = head.method.length + head.path.length + 12;
  if (field(head.headers, "host") === undefined) n += 8 + head.authority.length;
  return n + fieldBytes(head.headers) + 2;
}

/** `HTTP/1.1 200 \r\n`, the fields, `\r\n`, and the trailers when there are any. */
function responseHeadBytes(headers: HeaderMap, trailers?: HeaderMap): number {
  const n = 15 + fieldBytes(headers) + 2;
  return trailers && trailers.size > 0 ? n + fieldBytes(trailers) + 2 : n;
}

function fieldBytes(fields: HeaderMap): number {
  const all = fields.entries();
  let n = 0;
  for (let i = 0; i < all.length; i++) n += all[i][0].length + all[i][1].length + 4;
  return n;
}
