/**
 * The tracing filter: every request continues the caller's trace (W3C `traceparent`, B3 when
 * asked) or starts one, the upstream sees our server span as its parent, and a sampled request
 * records one server span with Envoy's tag names and Istio's custom tags, like an Envoy waypoint
 * with the OpenTelemetry tracer.
 *
 * Invariants:
 * - Trace context is never the reason a request fails: a fault in tracing is reported to the
 *   sink and the request goes on as if tracing were off.
 * - Put it right after the metrics filter, so that requests policies refuse get a span too.
 * - An unsampled request costs a header parse and a header write: no body wrapping, no span.
 * - One span per sampled request, ended when the response body ends, errors or is cancelled; at
 *   once when there is no body; or in `finally` from the reply the chain will send.
 * - Sizes are body bytes, as Envoy's `request_size` and `response_size` tags count them.
 * - Telemetry `tracing` of the request's destination applies: its `randomSamplingPercentage`
 *   replaces the proxy's, `disableSpanReporting` keeps the context going but reports no span,
 *   and `customTags` (literal, environment, header) are added after Istio's tags.
 * - With {@link TracingFilterOptions.sinkFor}, the span goes to the sink of the provider the
 *   destination's Telemetry chose (`tracing[].providers`, else MeshConfig's default); when none
 *   resolves the request is not traced at all, no context read or written (Istio: "no provider
 *   resolved ⇒ tracing disabled").
 */
import type { Filter, HttpContext } from "../http/mod.ts";
import type { Destination, Endpoint, Service, Snapshot } from "../mesh/mod.ts";
import { BodyMeter, meteredBody } from "./_body_meter.ts";
import { type ExchangeEnd, grpcStatusOf, isGrpc, watchExchange } from "./_exchange_end.ts";
import { destinationLabels, hostOf, sourceLabels } from "./mesh_labels.ts";
import { upstreamCluster } from "./_exchange_record.ts";
import { DEFAULT_TELEMETRY } from "./telemetry_api.ts";
import type { CompiledTelemetry, TracingSettings } from "./telemetry_settings.ts";
import type { PeerLabels } from "./peer_labels.ts";
import {
  decideSampling,
  extractTrace,
  type IncomingTrace,
  injectTrace,
  type ServerContext,
  serverContext,
  type SpanAttribute,
  type SpanSink,
  TraceIds,
} from "./trace.ts";

/** What the filter reads from the request state; the proxy's `RequestState` has it. */
export interface TracingState {
  readonly config: { readonly mesh: Snapshot; readonly telemetry?: CompiledTelemetry };
  readonly destination: Destination;
  readonly peer: { readonly identity: string };
  /** Original client `ip:port`. */
  readonly client: string;
  readonly requestId: string;
  readonly baggage?: string;
  /** The endpoint of the last try, once the router picked one. */
  readonly endpoint?: Endpoint;
  /** The backend service the router sent to, when routes chose one. */
  readonly backendService?: Service;
  /** `Kind ns/name:port` of the backend that served. */
  readonly backend?: string;
}

/** Who this proxy is: the tags every span carries (Istio's `buildServiceTags`). */
export interface ProxyTags {
  /** Envoy's `node_id`: `waypoint~<pod ip>~<pod>.<ns>~<ns>.svc.cluster.local`. */
  readonly nodeId: string;
  /** The proxy's locality zone. @default "" */
  readonly zone?: string;
  /** `istio.canonical_service`: the waypoint's canonical name. */
  readonly canonicalService: string;
  /** `istio.canonical_revision`. @default "latest" */
  readonly canonicalRevision?: string;
  /** `istio.namespace`. */
  readonly namespace: string;
  /** `istio.mesh_id`. @default "cluster.local" */
  readonly meshId?: string;
  /** `istio.cluster_id`, also the cluster of source and destination tags. @default "Kubernetes" */
  readonly clusterId?: string;
}

/** Options of {@link tracingFilter}. */
export interface TracingFilterOptions<S = TracingState> {
  /** Where faults of tracing go, and finished spans unless {@link TracingFilterOptions.sinkFor} is given. */
  readonly sink: SpanSink;
  /**
   * The sink of the tracing provider a request's Telemetry chose; undefined turns tracing off
   * for the request. @default every request's spans go to `sink`
   */
  readonly sinkFor?: (provider: string | undefined, state: S) => SpanSink | undefined;
  readonly proxy: ProxyTags;
  /** Chance to sample a request without a caller's decision, 0–100. @default 1 (Istio's) */
  readonly samplingPercentage?: number;
  /** Read and write B3 headers besides `traceparent`. @default false */
  readonly b3?: boolean;
  /** Path characters kept in `http.url` (Envoy's `max_path_tag_length`). @default 256 */
  readonly maxPathTagLength?: number;
  /** A number in [0, 1) for the sampling draw. @default Math.random */
  readonly random?: () => number;
  /** Id source. @default a new {@link TraceIds} */
  readonly ids?: TraceIds;
  /** Clock in ms on the scale of `HttpContext.startedAt`. @default performance.now */
  readonly now?: () => number;
  /** Unix epoch ms at which {@link TracingFilterOptions.now} was 0. @default performance.timeOrigin */
  readonly timeOrigin?: number;
}

/**
 * Makes the tracing filter. Put it right after the metrics filter.
 *
 * @example
 * ```ts
 * const exporter = new OtlpExporter({ url: "http://otel.observability:4318/v1/traces", serviceName: "waypoint.ns1" });
 * const chain = compose<RequestState>([metricsFilter(metrics), tracingFilter({ sink: exporter, proxy }), router(inputs)]);
 * ```
 *
 * @param options Sink, proxy tags, sampling
 * @returns The filter
 * @throws RangeError when the sampling percentage is not within 0–100
 */
export function tracingFilter<S extends TracingState>(
  options: TracingFilterOptions<S>,
): Filter<S> {
  const percentage = options.samplingPercentage ?? 1;
  if (!(percentage >= 0 && percentage <= 100)) {
    throw new RangeError(`Trace sampling must be a percentage from 0 to 100: got ${percentage}`);
  }
  const tracer: Tracer<S> = {
    sink: options.sink,
    sinkFor: options.sinkFor,
    percentage,
    b3: options.b3 ?? false,
    maxPath: options.maxPathTagLength ?? 256,
    random: options.random ?? Math.random,
    ids: options.ids ?? new TraceIds(),
    now: options.now ?? (() => performance.now()),
    timeOrigin: options.timeOrigin ?? performance.timeOrigin,
    clusterId: options.proxy.clusterId ?? "Kubernetes",
    proxyTags: proxyAttributes(options.proxy),
  };
  return async function traceRequest(ctx, next) {
    let span: ServerSpan<S> | undefined;
    try {
      span = begin(ctx, tracer);
    } catch (e) {
      tracer.sink.fault(e);
    }
    if (!span) return await next();
    const { grpc } = span;
    await watchExchange(ctx, next, { grpc, onEnd: (end) => span.end(end) });
  };
}

/** What every request of one filter shares. */
interface Tracer<S> {
  readonly sink: SpanSink;
  readonly sinkFor?: (provider: string | undefined, state: S) => SpanSink | undefined;
  readonly percentage: number;
  readonly b3: boolean;
  readonly maxPath: number;
  readonly random: () => number;
  readonly ids: TraceIds;
  readonly now: () => number;
  readonly timeOrigin: number;
  readonly clusterId: string;
  readonly proxyTags: readonly SpanAttribute[];
}

/** Reads the caller's context, decides, writes ours upstream; a span only when sampled. */
function begin<S extends TracingState>(
  ctx: HttpContext<S>,
  tracer: Tracer<S>,
): ServerSpan<S> | undefined {
  const headers = ctx.request.head.headers;
  const settings = (ctx.state.config.telemetry ?? DEFAULT_TELEMETRY).lookup(ctx.state.destination)
    .tracing;
  const sink = tracer.sinkFor ? tracer.sinkFor(settings.provider, ctx.state) : tracer.sink;
  if (!sink) return undefined;
  const incoming = extractTrace(headers, tracer);
  const sampled = decideSampling(incoming, settings.sampling ?? tracer.percentage, tracer.random);
  const context = serverContext(incoming, sampled, tracer.ids);
  injectTrace(headers, context, tracer);
  if (!sampled || settings.disableSpanReporting) return undefined;
  return new ServerSpan(ctx, tracer, sink, context, incoming, settings);
}

/** One sampled request's span, from the request head to the end of the response. */
class ServerSpan<S extends TracingState> {
  readonly grpc: boolean;
  readonly #ctx: HttpContext<S>;
  readonly #tracer: Tracer<S>;
  readonly #sink: SpanSink;
  readonly #context: ServerContext;
  readonly #traceState?: string;
  readonly #request = new BodyMeter(false);
  readonly #settings: TracingSettings;

  constructor(
    ctx: HttpContext<S>,
    tracer: Tracer<S>,
    sink: SpanSink,
    context: ServerContext,
    incoming: IncomingTrace,
    settings: TracingSettings,
  ) {
    this.#ctx = ctx;
    this.#sink = sink;
    this.#settings = settings;
    this.#tracer = tracer;
    this.#context = context;
    this.#traceState = incoming.traceState;
    this.grpc = isGrpc(ctx.request.head.headers);
    const body = ctx.request.body;
    if (body.length !== 0) ctx.request.body = meteredBody(body, this.#request);
  }

  /** The request is over: the span goes to the sink. */
  end(end: ExchangeEnd): void {
    const t = this.#tracer;
    const c = this.#context;
    try {
      this.#sink.add({
        traceId: c.traceId,
        spanId: c.spanId,
        parentSpanId: c.parentSpanId,
        traceState: this.#traceState,
        name: operationName(this.#ctx.state.destination),
        startMs: t.timeOrigin + this.#ctx.startedAt,
        endMs: t.timeOrigin + t.now(),
        error: isError(end.code),
        attributes: this.#attributes(end),
      });
    } catch (e) {
      t.sink.fault(e);
    }
  }

  /** Envoy's tags in `HttpTracerUtility::setCommonTags` order, then Istio's custom tags. */
  #attributes({ code, headers, trailers, bodyBytes, flag }: ExchangeEnd): SpanAttribute[] {
    const { head } = this.#ctx.request;
    const state = this.#ctx.state;
    const t = this.#tracer;
    const tags: SpanAttribute[] = [
      ["guid:x-request-id", state.requestId],
      ["http.url", `${head.scheme}://${head.authority}${head.path.slice(0, t.maxPath)}`],
      ["http.method", head.method],
      ["downstream_cluster", head.headers.get("x-envoy-downstream-service-cluster") ?? "-"],
      ["user_agent", head.headers.get("user-agent") ?? "-"],
      ["http.protocol", `HTTP/${head.version}`],
      ["peer.address", hostOf(state.client)],
      ["request_size", String(this.#request.bytes)],
      ["response_size", String(bodyBytes)],
      ["response_flags", flag],
      ["http.status_code", String(code)],
      ["upstream_cluster", upstreamCluster(state)],
    ];
    if (state.endpoint) {
      tags.push(["upstream_address", `${state.endpoint.address}:${state.endpoint.port}`]);
    }
    if (this.grpc) tags.push(["grpc.status_code", grpcStatusOf(code, headers, trailers)]);
    if (isError(code)) tags.push(["error", "true"]);
    tags.push(...t.proxyTags, ...this.#peerTags());
    for (const tag of this.#settings.customTags) {
      tags.push([
        tag.name,
        tag.kind === "literal" ? tag.value : head.headers.get(tag.header) ?? tag.defaultValue,
      ]);
    }
    return tags;
  }

  /** Istio's waypoint source and destination tags (`buildWaypointSourceTags`). */
  #peerTags(): SpanAttribute[] {
    const state = this.#ctx.state;
    const mesh = state.config.mesh;
    const cluster = this.#tracer.clusterId;
    const source = sourceLabels(mesh, {
      identity: state.peer.identity,
      client: state.client,
      baggage: state.baggage,
    }, cluster);
    const d = state.destination;
    const service = state.backendService ?? (d.kind === "service" ? d.service : undefined);
    const endpoint = state.endpoint ?? (d.kind === "workload" ? d.endpoint : undefined);
    const destination = destinationLabels(mesh, service, endpoint, cluster);
    return [
      ...peerAttributes("istio.source_", source),
      ...peerAttributes("istio.destination_", destination),
    ];
  }
}

/** Envoy tags `error` on 5xx and on requests that got no response code. */
function isError(status: number): boolean {
  return status >= 500 || status === 0;
}

/** Istio's route decorator: `<service FQDN>:<port>/*`, or `<pod ip>:<port>/*` for a workload. */
function operationName(d: Destination): string {
  return d.kind === "service"
    ? `${d.service.hostname}:${d.port.port}/*`
    : `${d.workload.address}:${d.port}/*`;
}

function proxyAttributes(p: ProxyTags): SpanAttribute[] {
  return [
    ["node_id", p.nodeId],
    ["zone", p.zone ?? ""],
    ["component", "proxy"],
    ["istio.canonical_revision", p.canonicalRevision ?? "latest"],
    ["istio.canonical_service", p.canonicalService],
    ["istio.cluster_id", p.clusterId ?? "Kubernetes"],
    ["istio.mesh_id", p.meshId ?? "cluster.local"],
    ["istio.namespace", p.namespace],
  ];
}

function peerAttributes(prefix: string, p: PeerLabels): SpanAttribute[] {
  return [
    [`${prefix}workload`, p.workload],
    [`${prefix}namespace`, p.namespace],
    [`${prefix}cluster_id`, p.cluster],
    [`${prefix}canonical_service`, p.canonicalService],
    [`${prefix}canonical_revision`, p.canonicalRevision],
    [`${prefix}app`, p.app],
    [`${prefix}app_version`, p.version],
  ];
}
