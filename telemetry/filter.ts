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
 * - Telemetry settings are looked up once per request from the request's config; with no
 *   override, no access log and Prometheus on, the path is the plain one. Overrides pick a
 *   precomputed shape; only expressions that read attributes run per request.
 * - Access logs are written from the same end of the exchange as the metrics, after them.
 * - A gRPC stream also reports its new messages every reporting interval (`IstioMetrics.periodic`,
 *   as Envoy's stats filter does from its per-stream timer) once its destination is known, so
 *   the message counters of a long stream grow while it runs; the end adds the rest. Under a
 *   Telemetry shape with per-request label values those values exist only at the end, so such
 *   streams report their messages at the end only.
 */
import type { Filter, HeaderMap, HttpContext } from "../http/mod.ts";
import type { Destination, Endpoint, Service, Snapshot } from "../mesh/mod.ts";
import { BodyMeter, meteredBody } from "./_body_meter.ts";
import { type ExchangeEnd, field, grpcStatusOf, isGrpc, watchExchange } from "./_exchange_end.ts";
import type { IstioMetrics } from "./istio_metrics.ts";
import { destinationText, destinationValues, sourceText, sourceValues } from "./istio_labels.ts";
import type { LabelPair } from "./label_pair.ts";
import { destinationLabels, sourceLabels } from "./mesh_labels.ts";
import { MetricsShape } from "./metric_shape.ts";
import { DEFAULT_TELEMETRY } from "./telemetry_api.ts";
import type { CompiledTelemetry, TelemetrySettings } from "./telemetry_settings.ts";
import type { AccessLogs } from "./access_log.ts";
import { HttpRecord, type RecordState } from "./_exchange_record.ts";

/** What the filter reads from the request state; the proxy's `RequestState` has it. */
export interface MetricsState extends RecordState {
  /** The request's config: the mesh and, when loaded, the compiled Telemetry resources. */
  readonly config: { readonly mesh: Snapshot; readonly telemetry?: CompiledTelemetry };
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
  /** Unix epoch ms at which `now` was 0, for access-log start times. @default performance.timeOrigin */
  readonly timeOrigin?: number;
  /** Where Telemetry `accessLogging` providers write; no access logs without it. */
  readonly accessLogs?: AccessLogs;
}

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
    timeOrigin: options.timeOrigin ?? performance.timeOrigin,
    accessLogs: options.accessLogs,
  };
  return function recordMetrics(ctx, next) {
    const state = ctx.state;
    const settings = (state.config.telemetry ?? DEFAULT_TELEMETRY).lookup(state.destination);
    if (!settings.metrics.enabled && (!recorder.accessLogs || settings.accessLogs.length === 0)) {
      return next();
    }
    const exchange = new MeteredExchange(ctx, recorder, settings);
    return watchExchange(ctx, next, {
      grpc: exchange.grpc,
      onEnd: (end) => exchange.finish(end),
      responseMeter: exchange.response,
    });
  };
}

/** What every exchange of one filter shares. */
interface Recorder {
  readonly metrics: IstioMetrics;
  readonly labels: LabelCache;
  readonly now: () => number;
  readonly timeOrigin: number;
  readonly accessLogs?: AccessLogs;
}

/** One request's meters and what it records when it is over. */
class MeteredExchange<S extends MetricsState> {
  readonly grpc: boolean;
  /** The response body's meter, for a gRPC stream whose metrics are on. */
  readonly response?: BodyMeter;
  readonly #ctx: HttpContext<S>;
  readonly #requestHead: number;
  readonly #request: BodyMeter;
  readonly #recorder: Recorder;
  readonly #settings: TelemetrySettings;
  /** Messages already reported by the periodic report. */
  #reported = { request: 0, response: 0 };
  #stopReports?: () => void;

  constructor(ctx: HttpContext<S>, recorder: Recorder, settings: TelemetrySettings) {
    this.#ctx = ctx;
    this.#recorder = recorder;
    this.#settings = settings;
    const { head } = ctx.request;
    this.grpc = isGrpc(head.headers);
    this.#requestHead = requestHeadBytes(head);
    this.#request = new BodyMeter(this.grpc);
    const body = ctx.request.body;
    if (body.length !== 0) ctx.request.body = meteredBody(body, this.#request);
    if (this.grpc && settings.metrics.enabled) {
      this.response = new BodyMeter(true);
      this.#stopReports = recorder.metrics.periodic.add(() => this.#report());
    }
  }

  /** The periodic report of a gRPC stream: messages since the last one. */
  #report(): void {
    const state = this.#ctx.state;
    // Envoy reports once the peers are known; our destination is known once routed.
    if (!state.endpoint && state.destination.kind === "service") return;
    const shape = MetricsShape.of(this.#settings.metrics);
    if (shape && shape.dynamic.length > 0) return;
    const request = this.#request.messages, response = this.response!.messages;
    const done = this.#reported;
    if (request === done.request && response === done.response) return;
    const r = this.#recorder;
    r.metrics.recordMessages(
      r.labels.pairFor(state, shape),
      request - done.request,
      response - done.response,
    );
    this.#reported = { request, response };
  }

  finish(end: ExchangeEnd): void {
    this.#stopReports?.();
    const r = this.#recorder;
    const nowMs = r.now();
    let record: HttpRecord<S> | undefined;
    const recordOf = () =>
      record ??= new HttpRecord(this.#ctx, end, {
        requestBody: this.#request.bytes,
        grpc: this.grpc,
      }, { nowMs, timeOrigin: r.timeOrigin });
    if (this.#settings.metrics.enabled) this.#metrics(end, nowMs, recordOf);
    const logs = r.accessLogs;
    if (!logs) return;
    for (const log of this.#settings.accessLogs) {
      try {
        if (log.filter && !log.filter.test(recordOf())) continue;
        logs.write(log.provider, recordOf());
      } catch {
        // Like metrics, a log line must never fail the request; the count shows the bug.
        r.metrics.recordFailures++;
      }
    }
  }

  #metrics(end: ExchangeEnd, nowMs: number, recordOf: () => HttpRecord<S>): void {
    const { code, headers, trailers, bodyBytes, messages, flag } = end;
    const r = this.#recorder;
    const ctx = this.#ctx;
    try {
      const shape = MetricsShape.of(this.#settings.metrics);
      const dynamic = shape && shape.dynamic.length > 0 ? shape.values(recordOf()) : undefined;
      r.metrics.recordHttp(r.labels.pairFor(ctx.state, shape), {
        protocol: this.grpc ? "grpc" : "http",
        code,
        grpcStatus: this.grpc ? grpcStatusOf(code, headers, trailers) : "",
        flag,
        durationMs: nowMs - ctx.startedAt,
        requestBytes: this.#requestHead + this.#request.bytes,
        responseBytes: responseHeadBytes(headers, trailers) + bodyBytes,
        requestMessages: Math.max(0, this.#request.messages - this.#reported.request),
        responseMessages: Math.max(0, messages - this.#reported.response),
      }, dynamic);
    } catch {
      // Metrics must never be the reason a request fails; the count shows the bug.
      r.metrics.recordFailures++;
    }
  }
}

/**
 * Label pairs cached per connection (keyed by its `peer` object) and destination labels cached
 * per endpoint and service (snapshot objects, so a new snapshot starts fresh).
 */
class LabelCache {
  readonly #metrics: IstioMetrics;
  readonly #connections = new WeakMap<object, ConnectionLabels>();
  readonly #destinations = new WeakMap<object, Map<Service | undefined, Rendered>>();

  constructor(metrics: IstioMetrics) {
    this.#metrics = metrics;
  }

  pairFor(state: MetricsState, shape?: MetricsShape): LabelPair {
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
        source: { values: sourceValues(source), text: sourceText(source) },
        principal: source.principal,
      };
      this.#connections.set(state.peer, c);
    }
    // `servedBy()` inlined: this runs per request.
    const d = state.destination;
    const service = state.backendService ?? (d.kind === "service" ? d.service : undefined);
    const endpoint = state.endpoint ?? (d.kind === "workload" ? d.endpoint : undefined);
    if (c.pair && c.service === service && c.endpoint === endpoint && c.shape === shape) {
      return c.pair;
    }
    const dest = this.#destination(mesh, service, endpoint);
    c.service = service;
    c.endpoint = endpoint;
    c.shape = shape;
    return c.pair = shape
      ? this.#metrics.shapedPair(c.source.values, dest.values, c.principal, shape)
      : this.#metrics.pairOf(c.source.text, dest.text, c.principal);
  }

  #destination(mesh: Snapshot, service?: Service, endpoint?: Endpoint): Rendered {
    const key: object = endpoint ?? service ?? mesh;
    let byService = this.#destinations.get(key);
    if (!byService) this.#destinations.set(key, byService = new Map());
    let found = byService.get(service);
    if (found === undefined) {
      const labels = destinationLabels(mesh, service, endpoint, this.#metrics.cluster);
      found = { values: destinationValues(labels), text: destinationText(labels) };
      byService.set(service, found);
    }
    return found;
  }
}

/** Label values and their rendered text. */
interface Rendered {
  readonly values: readonly string[];
  readonly text: string;
}

interface ConnectionLabels {
  readonly mesh: Snapshot;
  readonly baggage: string | undefined;
  readonly source: Rendered;
  readonly principal: string;
  service?: Service;
  endpoint?: Endpoint;
  shape?: MetricsShape;
  pair?: LabelPair;
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
