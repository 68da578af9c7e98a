/**
 * A small metrics registry for the request path: counters and histograms whose series are keyed
 * by their label text, rendered once when the series is made (`a="x",b="y"`, already escaped), so
 * recording is a map lookup or a field increment instead of hashing twenty labels. The Prometheus
 * text serializer writes it out in time slices so a large scrape never stalls the event loop.
 *
 * Invariants:
 * - A series' label text is written by {@link labelText} (names in the caller's order, values
 *   escaped per the exposition format) and never changes; the serializer copies it verbatim.
 * - Histogram bucket counts are kept per bucket and made cumulative only when rendered.
 * - A family holds at most `maxSeries` series; records for new label sets past that go to one
 *   detached series that is never rendered, and are counted in {@link Registry.overflow}.
 * - Rendering yields to the event loop between slices of at most `sliceMs`, never inside a series.
 */
import { setImmediate } from "node:timers";

/**
 * Envoy's default histogram buckets (`HistogramOptionsImpl::defaultBuckets`), which Istio keeps
 * for `istio_request_duration_milliseconds` and the byte histograms (hbone.md §6.1).
 */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.5,
  1,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10000,
  30000,
  60000,
  300000,
  600000,
  1800000,
  3600000,
]);

/** Default bound on the series of one family. */
export const DEFAULT_MAX_SERIES = 100_000;

/**
 * Escapes a label value for the text format: backslash, double quote and line feed (Prometheus
 * `exposition_formats.md`: "label_value can be any sequence of UTF-8 characters, but the
 * backslash, the double-quote and the line feed characters have to be escaped").
 *
 * @param value The raw value
 * @returns The value as it goes between the quotes
 */
export function escapeLabelValue(value: string): string {
  if (!/[\\"\n]/.test(value)) return value;
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

/**
 * Renders label pairs in the given order, the key of a series.
 *
 * @example
 * ```ts
 * labelText(["reporter", "response_code"], ["waypoint", "200"]);
 * // reporter="waypoint",response_code="200"
 * ```
 *
 * @param names Label names; valid Prometheus names, not checked here
 * @param values One raw value per name
 * @returns `name="value"` pairs joined by commas
 * @throws Error when the lengths differ
 */
export function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length !== values.length) {
    throw new Error(`Label count mismatch: ${names.length} names, ${values.length} values`);
  }
  let out = "";
  for (let i = 0; i < names.length; i++) {
    out += `${i === 0 ? "" : ","}${names[i]}="${escapeLabelValue(values[i])}"`;
  }
  return out;
}

/** One counter series. */
export class CounterSeries {
  /** The rendered labels. */
  readonly labels: string;
  value = 0;

  constructor(labels: string) {
    this.labels = labels;
  }

  /** Adds a non-negative amount. */
  add(amount = 1): void {
    this.value += amount;
  }
}

/** One histogram series: counts per bucket (not cumulative), sum and count. */
export class HistogramSeries {
  readonly labels: string;
  /** Shared by the family; a typed array so the bucket search stays monomorphic. */
  readonly bounds: Float64Array;
  /** `counts[i]` holds observations in `(bounds[i-1], bounds[i]]`; the last slot is `+Inf`. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(labels: string, bounds: Float64Array) {
    this.labels = labels;
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one observation. */
  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

type Kind = "counter" | "histogram";

/** A metric family: a name, help text and its series by label text. */
abstract class Family<T extends { readonly labels: string }> {
  abstract readonly kind: Kind;
  readonly name: string;
  readonly help: string;
  readonly #series = new Map<string, T>();
  readonly #registry: Registry;
  #overflow?: T;

  constructor(registry: Registry, name: string, help: string) {
    this.#registry = registry;
    this.name = name;
    this.help = help;
  }

  /**
   * The series of a label set, made on first use. Keep the result: it is the fast path.
   *
   * @param labels Rendered by {@link labelText}
   */
  series(labels: string): T {
    const found = this.#series.get(labels);
    if (found) return found;
    if (this.#series.size >= this.#registry.maxSeries) {
      this.#registry.overflow++;
      return this.#overflow ??= this.make("overflow");
    }
    const made = this.make(labels);
    this.#series.set(labels, made);
    return made;
  }

  /** Number of series. */
  get size(): number {
    return this.#series.size;
  }

  /** Series in creation order. */
  values(): IterableIterator<T> {
    return this.#series.values();
  }

  protected abstract make(labels: string): T;
}

/** A counter family; Prometheus names end in `_total`, given here in full. */
export class Counter extends Family<CounterSeries> {
  readonly kind = "counter";

  protected make(labels: string): CounterSeries {
    return new CounterSeries(labels);
  }
}

/** A histogram family with fixed bucket bounds. */
export class Histogram extends Family<HistogramSeries> {
  readonly kind = "histogram";
  readonly bounds: Float64Array;

  constructor(registry: Registry, name: string, help: string, bounds: readonly number[]) {
    super(registry, name, help);
    this.bounds = Float64Array.from(bounds);
  }

  protected make(labels: string): HistogramSeries {
    return new HistogramSeries(labels, this.bounds);
  }
}

/** Options of {@link Registry}. */
export interface RegistryOptions {
  /** Bound on the series of each family. @default 100000 */
  readonly maxSeries?: number;
}

/** Options of {@link Registry.render}. */
export interface RenderOptions {
  /** Longest stretch of work between two yields to the event loop, in ms. @default 4 */
  readonly sliceMs?: number;
  /** Approximate size of one text piece, in characters. @default 262144 */
  readonly chunkChars?: number;
  /** Clock for the slices. @default performance.now */
  readonly now?: () => number;
}

/** The families of one process, in registration order. */
export class Registry {
  readonly maxSeries: number;
  /** Records that found their family full (see the invariants). */
  overflow = 0;
  readonly #families: (Counter | Histogram)[] = [];

  /** @param options Series bound */
  constructor(options: RegistryOptions = {}) {
    this.maxSeries = options.maxSeries ?? DEFAULT_MAX_SERIES;
  }

  /**
   * Registers a counter.
   *
   * @param name Full Prometheus name, such as `istio_requests_total`
   * @param help One line for `# HELP`
   * @throws Error when the name is taken or not a valid metric name
   */
  counter(name: string, help: string): Counter {
    return this.#add(new Counter(this, checkName(name), help));
  }

  /**
   * Registers a histogram.
   *
   * @param name Prometheus name without the `_bucket`/`_sum`/`_count` suffixes
   * @param help One line for `# HELP`
   * @param bounds Increasing upper bounds. @default {@link DEFAULT_BUCKETS}
   * @throws Error when the name is taken or invalid, or the bounds do not increase
   */
  histogram(name: string, help: string, bounds: readonly number[] = DEFAULT_BUCKETS): Histogram {
    if (bounds.some((b, i) => i > 0 && b <= bounds[i - 1])) {
      throw new Error(`Histogram buckets must increase: ${name}`);
    }
    return this.#add(new Histogram(this, checkName(name), help, bounds));
  }

  /** All series of all families. */
  get seriesCount(): number {
    let n = 0;
    for (const f of this.#families) n += f.size;
    return n;
  }

  /**
   * Renders the text format in pieces, yielding to the event loop (`setImmediate`, so pending
   * I/O runs) whenever a slice has taken `sliceMs`. Series recorded during a scrape may or may
   * not appear in it; each series is written whole.
   *
   * @param options Slice length and clock
   * @returns Text pieces that concatenate to the exposition
   */
  async *render(options: RenderOptions = {}): AsyncGenerator<string> {
    const sliceMs = options.sliceMs ?? 4;
    const now = options.now ?? performance.now.bind(performance);
    const chunkChars = options.chunkChars ?? 256 * 1024;
    let sliceStart = now();
    let parts: string[] = [];
    let chars = 0;
    for (const family of this.#families) {
      if (family.size === 0) continue;
      parts.push(`# HELP ${family.name} ${escapeHelp(family.help)}\n`);
      parts.push(`# TYPE ${family.name} ${family.kind}\n`);
      const perSeries = family.kind === "counter" ? 1 : family.bounds.length + 3;
      const fixed = perSeries * (family.name.length + 40);
      for (const series of family.values() as IterableIterator<CounterSeries | HistogramSeries>) {
        if (series instanceof CounterSeries) {
          parts.push(`${family.name}{${series.labels}} ${formatValue(series.value)}\n`);
        } else writeHistogram(parts, family.name, series);
        // Parts are ropes until joined, so the join is where the time goes: bound the text of a
        // piece, and the time of a slice of pieces.
        if ((chars += fixed + perSeries * series.labels.length) >= chunkChars) {
          chars = 0;
          yield parts.join("");
          parts = [];
          if (now() - sliceStart >= sliceMs) {
            await new Promise((r) => setImmediate(r));
            sliceStart = now();
          }
        }
      }
    }
    if (parts.length > 0) yield parts.join("");
  }

  /**
   * Renders the whole text format (sliced as {@link Registry.render}).
   *
   * @param options Slice length and clock
   * @returns The exposition text
   */
  async renderText(options: RenderOptions = {}): Promise<string> {
    const parts: string[] = [];
    for await (const part of this.render(options)) parts.push(part);
    return parts.join("");
  }

  #add<F extends Counter | Histogram>(family: F): F {
    if (this.#families.some((f) => f.name === family.name)) {
      throw new Error(`Metric already registered: ${family.name}`);
    }
    this.#families.push(family);
    return family;
  }
}

function writeHistogram(parts: string[], name: string, s: HistogramSeries): void {
  const head = `${name}_bucket{${s.labels},le="`;
  let cumulative = 0;
  for (let i = 0; i < s.bounds.length; i++) {
    cumulative += s.counts[i];
    parts.push(`${head}${formatValue(s.bounds[i])}"} ${cumulative}\n`);
  }
  cumulative += s.counts[s.bounds.length];
  parts.push(`${head}+Inf"} ${cumulative}\n`);
  parts.push(`${name}_sum{${s.labels}} ${formatValue(s.sum)}\n`);
  parts.push(`${name}_count{${s.labels}} ${s.count}\n`);
}

/** Go's `strconv.FormatFloat(v, 'g', -1, 64)` spelling for the few values that differ from JS. */
function formatValue(v: number): string {
  if (Number.isFinite(v)) return String(v);
  return Number.isNaN(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
}

/** HELP text escapes backslash and line feed only. */
function escapeHelp(help: string): string {
  return help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function checkName(name: string): string {
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`Invalid metric name: ${name}`);
  return name;
}
