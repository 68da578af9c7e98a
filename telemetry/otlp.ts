/**
 * Span export with OTLP/HTTP in its JSON encoding (opentelemetry-proto `ExportTraceServiceRequest`,
 * POST `application/json`, hex ids, 64-bit integers as decimal strings): batched in the
 * background, off the request path.
 *
 * Invariants:
 * - `add()` never blocks and never throws: the queue is bounded, and a span that finds it full is
 *   dropped and counted (ztunnel's `nonblocking.rs` rule for telemetry).
 * - One POST in flight at a time. A batch holds at most `maxBatch` spans; the queue is sent every
 *   `intervalMs`, and at once when a batch is full.
 * - A failed export is counted and dropped, never retried, as Envoy's OTLP exporter does; the log
 *   says when exports start failing and when they work again, not every failure.
 * - The collector is reached with plain `fetch` to `http://<host>:<port><path>`, outside the mesh:
 *   export over HBONE (as an Envoy waypoint's cluster would send it through ztunnel) is not done.
 */
import { log } from "../log/mod.ts";
import type { FinishedSpan, SpanAttribute, SpanSink } from "./trace.ts";

/** Where a MeshConfig `opentelemetry` provider sends spans. */
export interface OtlpTarget {
  /** `host` or `namespace/host`. */
  readonly service: string;
  readonly port: number;
  /** `http.path`. @default "/v1/traces" */
  readonly path?: string;
}

/** Options of {@link OtlpExporter}. */
export interface OtlpExporterOptions {
  /** The collector's OTLP/HTTP traces URL, see {@link otlpUrl}. */
  readonly url: string;
  /** Resource attribute `service.name`: the waypoint's `<canonical name>.<namespace>`. */
  readonly serviceName: string;
  /** Extra request fields (`http.headers` of the provider). @default [] */
  readonly headers?: readonly (readonly [string, string])[];
  /** Time one POST may take. @default 5000 */
  readonly timeoutMs?: number;
  /** Spans waiting at most; more are dropped. @default 2048 */
  readonly maxQueue?: number;
  /** Spans per POST at most. @default 512 */
  readonly maxBatch?: number;
  /** How often the queue is sent. @default 5000 */
  readonly intervalMs?: number;
  /** Instrumentation scope version. @default "" */
  readonly version?: string;
}

/** What the exporter has done so far. */
export interface ExportStats {
  /** Spans the collector accepted (a 2xx answer). */
  readonly exported: number;
  /** Spans dropped because the queue was full. */
  readonly dropped: number;
  /** Spans lost with a failed POST. */
  readonly failed: number;
  /** POSTs that failed: no connection, timeout, or a non-2xx answer. */
  readonly exportErrors: number;
  /** Requests on which tracing itself failed (bugs; the request went on). */
  readonly faults: number;
}

/**
 * The collector URL of a provider: the namespace prefix of `service` dropped, `http://` with
 * the port, and the path (default `/v1/traces`).
 *
 * @example
 * ```ts
 * otlpUrl({ service: "observability/otel.observability.svc.cluster.local", port: 4318 });
 * // "http://otel.observability.svc.cluster.local:4318/v1/traces"
 * ```
 *
 * @param target The provider's service, port and path
 * @returns The URL to POST to
 */
export function otlpUrl(target: OtlpTarget): string {
  const host = target.service.slice(target.service.indexOf("/") + 1);
  const path = target.path || "/v1/traces";
  const hostText = host.includes(":") ? `[${host}]` : host;
  return `http://${hostText}:${target.port}${path.startsWith("/") ? "" : "/"}${path}`;
}

/**
 * Encodes spans as one OTLP JSON `ExportTraceServiceRequest`.
 *
 * @param spans Finished server spans
 * @param resource The `service.name` and the scope version
 * @returns The request object, ready for `JSON.stringify`
 */
export function otlpTraceRequest(
  spans: readonly FinishedSpan[],
  resource: { readonly serviceName: string; readonly version?: string },
): object {
  return {
    resourceSpans: [{
      resource: { attributes: [keyValue(["service.name", resource.serviceName])] },
      scopeSpans: [{
        scope: { name: "waypoint", version: resource.version ?? "" },
        spans: spans.map(encodeSpan),
      }],
    }],
  };
}

/** The batching OTLP/HTTP JSON exporter; it is the tracing filter's {@link SpanSink}. */
export class OtlpExporter implements SpanSink {
  readonly #url: string;
  readonly #headers: Headers;
  readonly #resource: { serviceName: string; version: string };
  readonly #timeoutMs: number;
  readonly #maxQueue: number;
  readonly #maxBatch: number;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #client = Deno.createHttpClient({});
  #queue: FinishedSpan[] = [];
  #sending?: Promise<void>;
  #failing = false;
  #closed = false;
  #stats = { exported: 0, dropped: 0, failed: 0, exportErrors: 0, faults: 0 };

  /**
   * @param options Collector URL, service name, limits
   * @throws RangeError when a limit is not a positive number
   */
  constructor(options: OtlpExporterOptions) {
    this.#url = options.url;
    this.#headers = new Headers();
    for (const [name, value] of options.headers ?? []) this.#headers.set(name, value);
    this.#headers.set("content-type", "application/json");
    this.#resource = { serviceName: options.serviceName, version: options.version ?? "" };
    this.#timeoutMs = positive("timeoutMs", options.timeoutMs ?? 5_000);
    this.#maxQueue = positive("maxQueue", options.maxQueue ?? 2_048);
    this.#maxBatch = positive("maxBatch", options.maxBatch ?? 512);
    const intervalMs = positive("intervalMs", options.intervalMs ?? 5_000);
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    // The timer must not keep the process alive on its own.
    Deno.unrefTimer(this.#timer);
  }

  /** Counters so far. */
  get stats(): ExportStats {
    return { ...this.#stats };
  }

  /** Spans waiting to be sent. */
  get queued(): number {
    return this.#queue.length;
  }

  add(span: FinishedSpan): void {
    if (this.#closed || this.#queue.length >= this.#maxQueue) {
      this.#stats.dropped++;
      return;
    }
    this.#queue.push(span);
    if (this.#queue.length >= this.#maxBatch) void this.flush();
  }

  fault(error: unknown): void {
    if (this.#stats.faults++ === 0) log.warn("Tracing failed on a request", { reason: error });
  }

  /**
   * Sends everything queued, a batch at a time; joins a send already under way.
   *
   * @returns When the queue is empty; never rejects
   */
  flush(): Promise<void> {
    this.#sending ??= this.#drain().finally(() => this.#sending = undefined);
    return this.#sending;
  }

  /** Stops the timer, sends what is queued and releases the connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.flush();
    this.#client.close();
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.length <= this.#maxBatch
        ? this.#queue
        : this.#queue.slice(0, this.#maxBatch);
      this.#queue = batch === this.#queue ? [] : this.#queue.slice(this.#maxBatch);
      await this.#post(batch);
    }
  }

  async #post(batch: FinishedSpan[]): Promise<void> {
    const abort = new AbortController();
    const timeout = setTimeout(() => abort.abort(), this.#timeoutMs);
    try {
      const res = await fetch(this.#url, {
        method: "POST",
        headers: this.#headers,
        body: JSON.stringify(otlpTraceRequest(batch, this.#resource)),
        signal: abort.signal,
        client: this.#client,
      });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`Collector answered ${res.status}`);
      this.#stats.exported += batch.length;
      if (this.#failing) log.info("Trace export works again", { url: this.#url });
      this.#failing = false;
    } catch (e) {
      this.#stats.failed += batch.length;
      this.#stats.exportErrors++;
      if (!this.#failing) log.warn("Trace export failed", { url: this.#url, reason: e });
      this.#failing = true;
    } finally {
      clearTimeout(timeout);
    }
  }
}

function encodeSpan(span: FinishedSpan): object {
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
    ...(span.traceState ? { traceState: span.traceState } : {}),
    name: span.name,
    // SPAN_KIND_SERVER
    kind: 2,
    startTimeUnixNano: unixNano(span.startMs),
    endTimeUnixNano: unixNano(span.endMs),
    attributes: span.attributes.map(keyValue),
    // STATUS_CODE_ERROR; unset otherwise, as Envoy leaves it.
    ...(span.error ? { status: { code: 2 } } : {}),
  };
}

/** Epoch ms to nanoseconds as a decimal string, exact to the microsecond. */
function unixNano(ms: number): string {
  return `${Math.round(ms * 1_000)}000`;
}

function keyValue([key, value]: SpanAttribute): object {
  if (typeof value === "string") return { key, value: { stringValue: value } };
  if (typeof value === "boolean") return { key, value: { boolValue: value } };
  return Number.isInteger(value)
    ? { key, value: { intValue: String(value) } }
    : { key, value: { doubleValue: value } };
}

function positive(name: string, n: number): number {
  if (!(n > 0)) throw new RangeError(`OTLP exporter ${name} must be positive: got ${n}`);
  return n;
}
