/**
 * Trace context: reading and writing W3C `traceparent` (Trace Context Level 1) and, when asked,
 * Zipkin's B3 headers; the sampling decision; random ids; the finished span as plain data.
 *
 * Invariants:
 * - Parsing never throws. A malformed, all-zero or repeated `traceparent` counts as absent
 *   (W3C §4.2: "the vendor MUST create a new traceparent"), so trace context can never be the
 *   reason a request fails.
 * - Ids are lower-case hex: 32 characters for a trace, 16 for a span, never all zeros.
 * - A caller's decision wins (Istio: "a prior sampling decision in incoming headers is
 *   respected"); only a request without one is sampled at random.
 * - `tracestate` is passed through untouched: we add no entry of our own.
 */
import type { HeaderMap } from "../http/mod.ts";

/** The ids and flag one span hands on to its children. */
export interface SpanContext {
  /** 32 lower-case hex characters. */
  readonly traceId: string;
  /** 16 lower-case hex characters. */
  readonly spanId: string;
  readonly sampled: boolean;
}

/** Where an incoming trace context was read from. */
export type TraceFormat = "w3c" | "b3" | "b3multi";

/** What a request's headers say about its trace. */
export interface IncomingTrace {
  /** The caller's span, when the headers carry valid ids. */
  readonly parent?: { readonly traceId: string; readonly spanId: string };
  /** The caller's sampling decision; undefined leaves it to us. */
  readonly sampled?: boolean;
  readonly format?: TraceFormat;
  /** The `tracestate` fields joined, when a valid `traceparent` came with them. */
  readonly traceState?: string;
}

/** Our server span's context: the ids we send upstream and the caller's span id. */
export interface ServerContext extends SpanContext {
  readonly parentSpanId?: string;
}

/** One attribute of a span: Envoy's tag name and its value. */
export type SpanAttribute = readonly [key: string, value: string | number | boolean];

/** A finished span as the exporter takes it. */
export interface FinishedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  /** The `tracestate` the span was continued with. */
  readonly traceState?: string;
  readonly name: string;
  /** Unix epoch milliseconds, with fractions. */
  readonly startMs: number;
  readonly endMs: number;
  /** OTLP status ERROR (Envoy's `error: true` tag). */
  readonly error: boolean;
  readonly attributes: readonly SpanAttribute[];
}

/** Where finished spans go; the OTLP exporter is one. */
export interface SpanSink {
  /** Takes a finished span; must neither throw nor block. */
  add(span: FinishedSpan): void;
  /** Told when tracing itself failed on a request (a bug); the request went on without it. */
  fault(error: unknown): void;
}

const NO_TRACE: IncomingTrace = Object.freeze({});
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})/;

/**
 * Parses a `traceparent` value (W3C Trace Context §3.2). Version `00` must be exactly 55
 * characters; a later version is read by its version-00 prefix, as §4.3 asks ("if a higher
 * version is detected, the implementation SHOULD try to parse it"); version `ff`, upper-case hex,
 * wrong lengths and all-zero ids are invalid.
 *
 * @example
 * ```ts
 * parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?.sampled; // true
 * ```
 *
 * @param value The header value
 * @returns The context, or undefined when the value is not valid
 */
export function parseTraceparent(value: string): SpanContext | undefined {
  const m = TRACEPARENT.exec(value);
  if (!m) return undefined;
  const [, version, traceId, spanId, flags] = m;
  if (version === "ff") return undefined;
  if (version === "00" ? value.length !== 55 : value.length > 55 && value[55] !== "-") {
    return undefined;
  }
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

/**
 * Formats a context as a version-00 `traceparent`.
 *
 * @param context Ids and sampled flag
 * @returns `00-<trace id>-<span id>-01` or `-00`
 */
export function formatTraceparent(context: SpanContext): string {
  return `00-${context.traceId}-${context.spanId}-${context.sampled ? "01" : "00"}`;
}

/**
 * Parses a B3 single header (`b3: {trace}-{span}[-{sampling}[-{parent}]]`, or just the
 * sampling state `0`, `1` or `d`), per openzipkin/b3-propagation. A 64-bit trace id is widened
 * to 128 bits with leading zeros; hex is accepted in either case, as Envoy's Zipkin tracer does.
 *
 * @param value The header value
 * @returns What it says, or undefined when it is malformed
 */
export function parseB3Single(value: string): IncomingTrace | undefined {
  const parts = value.trim().toLowerCase().split("-");
  if (parts.length === 1) {
    const sampled = b3Sampled(parts[0]);
    return sampled === undefined ? undefined : { sampled, format: "b3" };
  }
  if (parts.length > 4) return undefined;
  const parent = b3Ids(parts[0], parts[1]);
  if (!parent) return undefined;
  if (parts.length === 4 && !isSpanHex(parts[3])) return undefined;
  const sampled = parts.length >= 3 ? b3Sampled(parts[2]) : undefined;
  if (parts.length >= 3 && sampled === undefined) return undefined;
  return { parent, sampled, format: "b3" };
}

/**
 * Reads B3 multi headers (`x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled`, `x-b3-flags`). The
 * debug flag `x-b3-flags: 1` means sampled.
 *
 * @param headers The request's fields
 * @returns What they say, or undefined when they carry neither valid ids nor a decision
 */
export function parseB3Multi(headers: HeaderMap): IncomingTrace | undefined {
  const traceId = headers.get("x-b3-traceid");
  const spanId = headers.get("x-b3-spanid");
  const parent = traceId !== undefined && spanId !== undefined
    ? b3Ids(traceId.trim().toLowerCase(), spanId.trim().toLowerCase())
    : undefined;
  const flag = headers.get("x-b3-flags")?.trim() === "1" ? true : undefined;
  const sampledField = headers.get("x-b3-sampled");
  const sampled = flag ?? (sampledField === undefined ? undefined : b3Sampled(sampledField));
  if (!parent && sampled === undefined) return undefined;
  return { parent, sampled, format: "b3multi" };
}

/**
 * Reads the trace context of a request: a valid `traceparent` first, then (with `b3` on) the
 * `b3` header, then the `x-b3-*` headers. Anything invalid counts as absent.
 *
 * @param headers The request's fields
 * @param options Whether B3 headers are read
 * @returns The context found, empty when none
 */
export function extractTrace(headers: HeaderMap, options: { b3?: boolean } = {}): IncomingTrace {
  const all = headers.entries();
  let traceparent: string | undefined;
  let repeated = false;
  for (let i = 0; i < all.length; i++) {
    if (all[i][0] !== "traceparent") continue;
    repeated = traceparent !== undefined;
    traceparent = all[i][1];
  }
  // Two `traceparent` fields cannot be told apart: W3C §3.2 treats that as invalid.
  const w3c = traceparent !== undefined && !repeated ? parseTraceparent(traceparent) : undefined;
  if (w3c) {
    const { traceId, spanId, sampled } = w3c;
    return { parent: { traceId, spanId }, sampled, format: "w3c", traceState: traceState(headers) };
  }
  if (!options.b3) return NO_TRACE;
  const single = headers.get("b3");
  return (single !== undefined ? parseB3Single(single) : undefined) ?? parseB3Multi(headers) ??
    NO_TRACE;
}

/**
 * Whether to record a request: the caller's decision when it made one, else at random with the
 * given percentage (Telemetry `randomSamplingPercentage`, 0–100).
 *
 * @param incoming What the headers said
 * @param percentage Chance in percent for a request without a decision
 * @param random A number in [0, 1)
 * @returns Whether the span is sampled
 */
export function decideSampling(
  incoming: IncomingTrace,
  percentage: number,
  random: () => number,
): boolean {
  if (incoming.sampled !== undefined) return incoming.sampled;
  if (percentage >= 100) return true;
  return percentage > 0 && random() * 100 < percentage;
}

/**
 * Our server span's context: the caller's trace continued with a new span id, or a new trace.
 *
 * @param incoming What the headers said
 * @param sampled The sampling decision
 * @param ids Where new ids come from
 * @returns The context to record and to send upstream
 */
export function serverContext(
  incoming: IncomingTrace,
  sampled: boolean,
  ids: TraceIds,
): ServerContext {
  const parent = incoming.parent;
  if (!parent) return { traceId: ids.traceId(), spanId: ids.spanId(), sampled };
  return { traceId: parent.traceId, spanId: ids.spanId(), sampled, parentSpanId: parent.spanId };
}

/**
 * Writes our context on the upstream request: `traceparent` always; with `b3` on also the B3
 * headers, as a single `b3` when the caller used one, else the `x-b3-*` set. `tracestate` is left
 * as it came.
 *
 * @param headers The request's fields, edited in place
 * @param context Our server span's context
 * @param options Whether B3 headers are written
 */
export function injectTrace(
  headers: HeaderMap,
  context: ServerContext,
  options: { b3?: boolean } = {},
): void {
  headers.set("traceparent", formatTraceparent(context));
  if (!options.b3) return;
  const sampled = context.sampled ? "1" : "0";
  if (headers.has("b3")) {
    const parent = context.parentSpanId ? `-${context.parentSpanId}` : "";
    headers.set("b3", `${context.traceId}-${context.spanId}-${sampled}${parent}`);
    return;
  }
  headers.set("x-b3-traceid", context.traceId);
  headers.set("x-b3-spanid", context.spanId);
  headers.set("x-b3-sampled", sampled);
  if (context.parentSpanId) headers.set("x-b3-parentspanid", context.parentSpanId);
  else headers.delete("x-b3-parentspanid");
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const POOL_BYTES = 4096;

/**
 * Random trace and span ids from `crypto.getRandomValues`, drawn from a pooled buffer so that a
 * request costs no system call of its own.
 */
export class TraceIds {
  readonly #pool = new Uint8Array(POOL_BYTES);
  #at = POOL_BYTES;

  /** A new 128-bit trace id, never all zeros. */
  traceId(): string {
    let id = this.#hex(16);
    while (id === ZERO_TRACE) id = this.#hex(16);
    return id;
  }

  /** A new 64-bit span id, never all zeros. */
  spanId(): string {
    let id = this.#hex(8);
    while (id === ZERO_SPAN) id = this.#hex(8);
    return id;
  }

  #hex(bytes: number): string {
    if (this.#at + bytes > POOL_BYTES) {
      crypto.getRandomValues(this.#pool);
      this.#at = 0;
    }
    let out = "";
    for (let i = 0; i < bytes; i++) out += HEX[this.#pool[this.#at++]];
    return out;
  }
}

function traceState(headers: HeaderMap): string | undefined {
  return headers.joined("tracestate");
}

function b3Ids(traceId: string, spanId: string): IncomingTrace["parent"] {
  if (!/^([0-9a-f]{16}){1,2}$/.test(traceId) || !isSpanHex(spanId)) return undefined;
  const wide = traceId.length === 16 ? ZERO_SPAN + traceId : traceId;
  if (wide === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId: wide, spanId };
}

function isSpanHex(s: string): boolean {
  return /^[0-9a-f]{16}$/.test(s);
}

function b3Sampled(s: string): boolean | undefined {
  const v = s.trim().toLowerCase();
  if (v === "1" || v === "d" || v === "true") return true;
  if (v === "0" || v === "false") return false;
  return undefined;
}
