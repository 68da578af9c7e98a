/**
 * One OTLP exporter per MeshConfig `opentelemetry` provider, so that Telemetry
 * `tracing[].providers` can send each destination's spans to its own collector.
 *
 * Invariants:
 * - An exporter is made on the first span of its provider (no timer, no connection for a
 *   provider nobody uses) and found again per request with one WeakMap read on the provider
 *   object, which a MeshConfig load makes once and never changes.
 * - A provider is known by its name: when a reload changes its collector (URL, headers,
 *   timeout), the next request gets a new exporter and the old one is flushed and closed;
 *   {@link TraceExporters.retain} closes those of providers a reload removed. So there are at
 *   most as many exporters as providers in the current MeshConfig.
 * - A provider without `http` has no exporter: Istio would export with gRPC, which we do not.
 */
import { log } from "../log/mod.ts";
import { type ExportStats, OtlpExporter, type OtlpExporterOptions, otlpUrl } from "./otlp.ts";
import type { SpanSink } from "./trace.ts";

/** An `opentelemetry` provider as MeshConfig gives it (proxy's `OtelTracingProvider`). */
export interface OtlpProvider {
  readonly name: string;
  /** `host` or `ns/host` of the collector. */
  readonly service: string;
  readonly port: number;
  /** `http{path, timeout, headers}`; absent for a gRPC provider. */
  readonly http?: {
    /** @default "/v1/traces" */
    readonly path: string;
    /** @default 5 s */
    readonly timeoutMs: number;
    /** Fields added to each export, `envName` values read from the environment at load. */
    readonly headers: readonly (readonly [string, string])[];
  };
}

/** Options of {@link TraceExporters}. */
export interface TraceExportersOptions {
  /** Resource attribute `service.name`: the waypoint's `<canonical name>.<namespace>`. */
  readonly serviceName: string;
  /** Settings every exporter shares (batching, interval). @default OtlpExporter's */
  readonly exporter?: Partial<Omit<OtlpExporterOptions, "url" | "serviceName" | "headers">>;
}

interface Made {
  readonly key: string;
  readonly exporter: OtlpExporter;
}

const ZERO: ExportStats = { exported: 0, dropped: 0, failed: 0, exportErrors: 0, faults: 0 };

/**
 * The exporters of the tracing providers in use. As a {@link SpanSink} it takes the faults of
 * tracing; a span given to it directly names no provider, so it has no collector and is dropped.
 */
export class TraceExporters implements SpanSink {
  readonly #options: TraceExportersOptions;
  readonly #byName = new Map<string, Made>();
  readonly #byProvider = new WeakMap<OtlpProvider, OtlpExporter>();
  /** Stats of exporters already closed, so the totals never go back. */
  #closed: ExportStats = ZERO;
  #faults = 0;
  #unrouted = 0;
  #shut = false;

  constructor(options: TraceExportersOptions) {
    this.#options = options;
  }

  /**
   * The sink of the provider a request's Telemetry chose, under the request's MeshConfig.
   *
   * @param name The provider name; undefined when no provider resolved
   * @param providers The MeshConfig's `opentelemetry` providers by name
   * @returns Its exporter, or undefined (tracing is off for the request)
   */
  sinkFor(
    name: string | undefined,
    providers: ReadonlyMap<string, OtlpProvider>,
  ): SpanSink | undefined {
    if (name === undefined) return undefined;
    const provider = providers.get(name);
    if (!provider?.http || this.#shut) return undefined;
    return this.#byProvider.get(provider) ?? this.#make(provider);
  }

  /**
   * Closes the exporters of providers that are gone (after a MeshConfig reload).
   *
   * @param providers The providers of the new MeshConfig
   */
  retain(providers: ReadonlyMap<string, OtlpProvider>): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [name, made] of this.#byName) {
      const p = providers.get(name);
      if (p?.http && keyOf(p) === made.key) continue;
      this.#byName.delete(name);
      closing.push(this.#retire(made.exporter));
    }
    return Promise.all(closing).then(() => {});
  }

  /** Sends what every exporter queued. */
  async flush(): Promise<void> {
    await Promise.all([...this.#byName.values()].map((m) => m.exporter.flush()));
  }

  /** Totals over every exporter, closed ones included. */
  get stats(): ExportStats {
    const sum = { ...this.#closed, faults: this.#faults };
    sum.dropped += this.#unrouted;
    for (const { exporter } of this.#byName.values()) add(sum, exporter.stats);
    return sum;
  }

  /** How many exporters are open. */
  get size(): number {
    return this.#byName.size;
  }

  add(): void {
    this.#unrouted++;
  }

  fault(error: unknown): void {
    if (this.#faults++ === 0) log.warn("Tracing failed on a request", { reason: error });
  }

  /** Flushes and closes every exporter; later requests are not traced. */
  async close(): Promise<void> {
    this.#shut = true;
    const all = [...this.#byName.values()];
    this.#byName.clear();
    await Promise.all(all.map((m) => this.#retire(m.exporter)));
  }

  #make(provider: OtlpProvider): OtlpExporter {
    const key = keyOf(provider);
    let made = this.#byName.get(provider.name);
    if (made?.key !== key) {
      if (made) void this.#retire(made.exporter);
      made = {
        key,
        exporter: new OtlpExporter({
          ...this.#options.exporter,
          url: otlpUrl({ ...provider, path: provider.http!.path }),
          serviceName: this.#options.serviceName,
          headers: provider.http!.headers,
          timeoutMs: provider.http!.timeoutMs,
        }),
      };
      this.#byName.set(provider.name, made);
    }
    this.#byProvider.set(provider, made.exporter);
    return made.exporter;
  }

  async #retire(exporter: OtlpExporter): Promise<void> {
    await exporter.close();
    this.#closed = add({ ...this.#closed }, exporter.stats);
  }
}

/** What identifies a provider's collector. */
function keyOf(p: OtlpProvider): string {
  const h = p.http!;
  return JSON.stringify([otlpUrl({ ...p, path: h.path }), h.timeoutMs, h.headers]);
}

function add(to: { -readonly [K in keyof ExportStats]: number }, s: ExportStats): ExportStats {
  to.exported += s.exported;
  to.dropped += s.dropped;
  to.failed += s.failed;
  to.exportErrors += s.exportErrors;
  return to;
}
