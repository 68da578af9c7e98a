/**
 * Shared setup of the telemetry benches: realistic Istio label sets, our registry filled with
 * them, and the OpenTelemetry SDK (`@opentelemetry/sdk-metrics`, Prometheus serializer) set up
 * as libraries.md describes (Envoy buckets, no target or scope info, cardinality cap raised).
 */
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import {
  DEFAULT_BUCKETS,
  type DestinationLabels,
  type HttpOutcome,
  IstioMetrics,
  type LabelPair,
  type SourceLabels,
} from "../../telemetry/mod.ts";

/** Source `i` of a mesh with bookinfo-length names. */
export function source(i: number): SourceLabels {
  return {
    workload: `productpage-v${i}`,
    namespace: "bookinfo",
    canonicalService: "productpage",
    canonicalRevision: `v${i}`,
    app: "productpage",
    version: `v${i}`,
    cluster: "Kubernetes",
    principal: `spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage-${i}`,
  };
}

/** Destination `i`. */
export function destination(i: number): DestinationLabels {
  return {
    workload: `reviews-v${i}`,
    namespace: "bookinfo",
    canonicalService: "reviews",
    canonicalRevision: `v${i}`,
    app: "reviews",
    version: `v${i}`,
    cluster: "Kubernetes",
    principal: `spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews-${i}`,
    service: `reviews-${i}.bookinfo.svc.cluster.local`,
    serviceName: `reviews-${i}`,
    serviceNamespace: "bookinfo",
  };
}

/** An outcome with a status code that varies with `i`. */
export function outcome(i: number): HttpOutcome {
  return {
    protocol: "http",
    code: 200 + (i % 5),
    grpcStatus: "",
    flag: "-",
    durationMs: 12,
    requestBytes: 350,
    responseBytes: 1200,
    requestMessages: 0,
    responseMessages: 0,
  };
}

/** The label set `i` as OpenTelemetry attributes, in Istio's order (read back from ours). */
export function attributes(i: number): Record<string, string> {
  const metrics = new IstioMetrics();
  const o = outcome(i);
  const pair = metrics.pair(source(i % 100), destination(Math.floor(i / 100) % 100));
  const labels = pair.http(o.protocol, o.code, o.grpcStatus, o.flag).requests!.labels;
  return Object.fromEntries([...labels.matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
}

/** `n` distinct label pairs (100 sources × up to 100 destinations). */
export function pairs(metrics: IstioMetrics, n: number): LabelPair[] {
  return Array.from(
    { length: n },
    (_, i) => metrics.pair(source(i % 100), destination(Math.floor(i / 100) % 100)),
  );
}

/**
 * Our metrics with `labelSets` distinct HTTP label sets recorded on all four HTTP instruments
 * (`counterOnly`: on `istio_requests_total` only).
 */
export function filledOurs(labelSets: number, counterOnly = false): IstioMetrics {
  const metrics = new IstioMetrics();
  const ps = pairs(metrics, labelSets);
  for (let i = 0; i < labelSets; i++) {
    if (counterOnly) metrics.requests.series(`${ps[i].text},i="${i}"`).add();
    else metrics.recordHttp(ps[i], outcome(0));
  }
  return metrics;
}

class BenchReader extends MetricReader {
  constructor() {
    super({ cardinalitySelector: () => 1_000_000 });
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** The SDK with Istio's four HTTP instruments. */
export function otel() {
  const reader = new BenchReader();
  const provider = new MeterProvider({ readers: [reader] });
  const meter = provider.getMeter("waypoint");
  const advice = { explicitBucketBoundaries: [...DEFAULT_BUCKETS] };
  const requests = meter.createCounter("istio_requests");
  const duration = meter.createHistogram("istio_request_duration_milliseconds", { advice });
  const requestBytes = meter.createHistogram("istio_request_bytes", { advice });
  const responseBytes = meter.createHistogram("istio_response_bytes", { advice });
  const serializer = new PrometheusSerializer(undefined, false, undefined, true, true);
  return {
    /** One request on all four instruments. */
    record(attrs: Record<string, string>) {
      requests.add(1, attrs);
      duration.record(12, attrs);
      requestBytes.record(350, attrs);
      responseBytes.record(1200, attrs);
    },
    requests,
    /** Collects and serializes, as a scrape does. */
    async scrape(): Promise<string> {
      const { resourceMetrics } = await reader.collect();
      return serializer.serialize(resourceMetrics);
    },
  };
}

/** The SDK with `labelSets` label sets (`counterOnly`: on the counter only). */
export function filledOtel(labelSets: number, counterOnly = false): ReturnType<typeof otel> {
  const o = otel();
  for (let i = 0; i < labelSets; i++) {
    const attrs = attributes(i);
    if (counterOnly) o.requests.add(1, { ...attrs, i: String(i) });
    else o.record(attrs);
  }
  return o;
}
