/**
 * Metrics that plugins define (`proxy_define_metric`), shared by every VM of a runtime as Envoy's
 * stats are: two plugins defining the same name share one metric. Rendered as Prometheus text
 * under the plugin's own name, as Envoy's `wasmcustom` stat namespace shows them.
 *
 * Invariants:
 * - At most {@link MAX_METRICS} names; past that `define` fails with `INTERNAL_FAILURE`.
 * - Counters only grow (`BAD_ARGUMENT` otherwise); histograms only record.
 */
import { DEFAULT_BUCKETS as BUCKETS } from "../../telemetry/mod.ts";
import { MetricType, Status } from "./abi.ts";

/** Most metrics the plugins of one runtime may define. */
export const MAX_METRICS = 10_000;

interface Metric {
  readonly name: string;
  readonly type: number;
  value: bigint;
  /** Histogram bucket counts (same order as {@link BUCKETS}), sum and count. */
  buckets?: number[];
  sum: number;
  count: number;
}

/** The plugin-defined metrics of one runtime. */
export class WasmMetrics {
  #byName = new Map<string, number>();
  #metrics: Metric[] = [];

  /**
   * Defines a metric, or finds one of the same name.
   *
   * @returns The metric id, or a status when the type differs or the table is full
   */
  define(type: number, name: string): { id: number } | { status: number } {
    if (type !== MetricType.COUNTER && type !== MetricType.GAUGE && type !== MetricType.HISTOGRAM) {
      return { status: Status.BAD_ARGUMENT };
    }
    const found = this.#byName.get(name);
    if (found !== undefined) {
      return this.#metrics[found].type === type ? { id: found } : { status: Status.BAD_ARGUMENT };
    }
    if (this.#metrics.length >= MAX_METRICS) return { status: Status.INTERNAL_FAILURE };
    const id = this.#metrics.length;
    this.#metrics.push({
      name,
      type,
      value: 0n,
      sum: 0,
      count: 0,
      buckets: type === MetricType.HISTOGRAM ? BUCKETS.map(() => 0) : undefined,
    });
    this.#byName.set(name, id);
    return { id };
  }

  /** `proxy_increment_metric`. */
  increment(id: number, delta: bigint): number {
    const m = this.#metrics[id];
    if (!m || m.type === MetricType.HISTOGRAM) return m ? Status.BAD_ARGUMENT : Status.NOT_FOUND;
    if (m.type === MetricType.COUNTER && delta < 0n) return Status.BAD_ARGUMENT;
    m.value += delta;
    return Status.OK;
  }

  /** `proxy_record_metric`: counters add, gauges set, histograms record. */
  record(id: number, value: bigint): number {
    const m = this.#metrics[id];
    if (!m) return Status.NOT_FOUND;
    if (m.type === MetricType.COUNTER) m.value += value;
    else if (m.type === MetricType.GAUGE) m.value = value;
    else {
      const v = Number(value);
      const i = BUCKETS.findIndex((b) => v <= b);
      if (i >= 0) m.buckets![i]++;
      m.sum += v;
      m.count++;
    }
    return Status.OK;
  }

  /** `proxy_get_metric`: the value of a counter or gauge. */
  get(id: number): { value: bigint } | { status: number } {
    const m = this.#metrics[id];
    if (!m) return { status: Status.NOT_FOUND };
    if (m.type === MetricType.HISTOGRAM) return { status: Status.BAD_ARGUMENT };
    return { value: m.value };
  }

  /**
   * The metrics as Prometheus text lines, to append to `/stats/prometheus`.
   *
   * @returns Text ending in a newline, or "" when no plugin defined a metric
   */
  prometheus(): string {
    const lines: string[] = [];
    for (const m of this.#metrics) {
      const name = m.name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/^([0-9])/, "_$1");
      if (m.type === MetricType.HISTOGRAM) {
        lines.push(`# TYPE ${name} histogram`);
        let cumulative = 0;
        BUCKETS.forEach((b, i) => {
          cumulative += m.buckets![i];
          lines.push(`${name}_bucket{le="${b}"} ${cumulative}`);
        });
        lines.push(`${name}_bucket{le="+Inf"} ${m.count}`, `${name}_sum ${m.sum}`);
        lines.push(`${name}_count ${m.count}`);
      } else {
        const type = m.type === MetricType.COUNTER ? "counter" : "gauge";
        lines.push(`# TYPE ${name} ${type}`, `${name} ${m.value}`);
      }
    }
    return lines.length ? lines.join("\n") + "\n" : "";
  }
}
