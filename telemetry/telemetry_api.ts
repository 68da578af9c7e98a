/**
 * Istio's Telemetry API (`telemetry.istio.io/v1`) compiled at load into settings per
 * destination (l7.md §3): which metrics are recorded with which labels, which access logs are
 * written with which filter, and how requests are traced.
 *
 * Invariants:
 * - Levels merge in Istio's order (`applicableTelemetries`): the root namespace's namespace-wide
 *   Telemetry, this waypoint's namespace's, the destination Service's namespace's (if different),
 *   then Telemetries whose `targetRefs` name our Gateway (or GatewayClass `istio-waypoint` from
 *   the root namespace), then those naming the Service. Later levels override earlier ones.
 * - A waypoint is a SERVER: entries whose `match.mode` is `CLIENT` are skipped; `selector`
 *   Telemetries do not apply to waypoints (only `targetRefs` do) and are reported.
 * - The request path only looks settings up (two map reads); every CEL expression is compiled
 *   here, and a bad one is an error naming the resource, its `file:line` and the field.
 */
import type { Destination, Problem, SourceDoc, WaypointSelf } from "../mesh/mod.ts";
import { CelError, type CelProgram, compileCel } from "./cel/mod.ts";

/** Telemetry metric enum → family name (l7.md §3.2). */
export const METRIC_NAMES: Readonly<Record<string, string>> = Object.freeze({
  REQUEST_COUNT: "istio_requests_total",
  REQUEST_DURATION: "istio_request_duration_milliseconds",
  REQUEST_SIZE: "istio_request_bytes",
  RESPONSE_SIZE: "istio_response_bytes",
  GRPC_REQUEST_MESSAGES: "istio_request_messages_total",
  GRPC_RESPONSE_MESSAGES: "istio_response_messages_total",
  TCP_OPENED_CONNECTIONS: "istio_tcp_connections_opened_total",
  TCP_CLOSED_CONNECTIONS: "istio_tcp_connections_closed_total",
  TCP_SENT_BYTES: "istio_tcp_sent_bytes_total",
  TCP_RECEIVED_BYTES: "istio_tcp_received_bytes_total",
});
const ALL_FAMILIES = Object.values(METRIC_NAMES);

/** One metric's overrides after merging: `null` removes a label, a program upserts it. */
export interface MetricOverride {
  readonly disabled: boolean;
  /** Tag name → UPSERT value, or `null` for REMOVE; in the order they were first named. */
  readonly tags: ReadonlyMap<string, CelProgram | null>;
}

/** What the metrics filter and TCP recording do for a destination. */
export interface MetricsSettings {
  /** A `prometheus` provider is in force. */
  readonly enabled: boolean;
  /** Family name → override, only for families something was set on. */
  readonly overrides: ReadonlyMap<string, MetricOverride>;
}

/** One access log to write for a destination. */
export interface AccessLogSetting {
  /** The MeshConfig provider's name. */
  readonly provider: string;
  /** `filter.expression`; none logs everything. */
  readonly filter?: CelProgram;
}

/** A `customTags` entry. */
export type CustomTag =
  | { readonly name: string; readonly kind: "literal"; readonly value: string }
  | {
    readonly name: string;
    readonly kind: "header";
    readonly header: string;
    readonly defaultValue: string;
  };

/** How requests to a destination are traced. */
export interface TracingSettings {
  /** The first provider named; undefined keeps the one MeshConfig's defaults chose. */
  readonly provider?: string;
  /** `randomSamplingPercentage`; undefined keeps the proxy's default. */
  readonly sampling?: number;
  /** Environment tags are resolved at load, so only literal and header tags remain. */
  readonly customTags: readonly CustomTag[];
  readonly disableSpanReporting: boolean;
}

/** Everything Telemetry decides for one destination. */
export interface TelemetrySettings {
  readonly metrics: MetricsSettings;
  readonly accessLogs: readonly AccessLogSetting[];
  readonly tracing: TracingSettings;
}

/** The providers MeshConfig declares, by kind, and its `defaultProviders`. */
export interface TelemetryProviders {
  /** `prometheus` provider names (a provider named `prometheus` always exists). */
  readonly prometheus: ReadonlySet<string>;
  /** `envoyFileAccessLog` provider names (the built-in `envoy` always exists). */
  readonly accessLog: ReadonlySet<string>;
  /** Tracing provider names. */
  readonly tracing: ReadonlySet<string>;
  /** Every provider name of any kind, to tell a wrong kind from a typo. */
  readonly all: ReadonlySet<string>;
  readonly defaults: {
    readonly metrics: readonly string[];
    readonly accessLogging: readonly string[];
    readonly tracing: readonly string[];
  };
}

/** Istio's defaults: `prometheus` metrics, no access log, no tracing. */
export const DEFAULT_PROVIDERS: TelemetryProviders = Object.freeze({
  prometheus: new Set(["prometheus"]),
  accessLog: new Set(["envoy"]),
  tracing: new Set<string>(),
  all: new Set(["prometheus", "envoy"]),
  defaults: { metrics: ["prometheus"], accessLogging: [], tracing: [] },
});

/** What compiling needs to know. */
export interface TelemetryContext {
  readonly self: Pick<WaypointSelf, "namespace" | "name">;
  readonly rootNamespace: string;
  readonly providers: TelemetryProviders;
  /** Environment for `customTags.environment`. @default Deno.env */
  readonly env?: (name: string) => string | undefined;
}

/** Settings looked up by a request's destination. */
export class CompiledTelemetry {
  /** For workloads and services no namespace-wide or targetRef Telemetry names. */
  readonly wide: TelemetrySettings;
  readonly #namespaces: ReadonlyMap<string, TelemetrySettings>;
  readonly #services: ReadonlyMap<string, TelemetrySettings>;

  constructor(
    wide: TelemetrySettings,
    namespaces: ReadonlyMap<string, TelemetrySettings> = new Map(),
    services: ReadonlyMap<string, TelemetrySettings> = new Map(),
  ) {
    this.wide = wide;
    this.#namespaces = namespaces;
    this.#services = services;
  }

  /**
   * The settings for a CONNECT's destination; no allocation.
   *
   * @param destination Service or workload addressed
   */
  lookup(destination: Destination): TelemetrySettings {
    if (destination.kind !== "service") return this.wide;
    const s = destination.service;
    return this.#services.get(`${s.namespace}/${s.name}`) ?? this.#namespaces.get(s.namespace) ??
      this.wide;
  }
}

const NO_TAGS: ReadonlyMap<string, CelProgram | null> = new Map();

/** Settings with no Telemetry resource: Prometheus on, no logs, tracing as the proxy starts. */
export const DEFAULT_TELEMETRY: CompiledTelemetry = new CompiledTelemetry(
  merge([], DEFAULT_PROVIDERS),
);

/** One Telemetry, read and compiled. */
interface Layer {
  readonly ref: string;
  readonly metrics: readonly MetricsEntry[];
  readonly accessLogging: readonly LoggingEntry[];
  readonly tracing: readonly TracingEntry[];
}

interface MetricsEntry {
  readonly providers?: readonly string[];
  readonly overrides: readonly {
    readonly families: readonly string[];
    readonly disabled?: boolean;
    readonly tags: ReadonlyMap<string, CelProgram | null>;
  }[];
}

interface LoggingEntry {
  readonly providers?: readonly string[];
  readonly disabled?: boolean;
  readonly filter?: CelProgram;
}

interface TracingEntry {
  readonly providers?: readonly string[];
  readonly sampling?: number;
  readonly customTags?: readonly CustomTag[];
  readonly disableSpanReporting?: boolean;
}

/** A YAML value as the loader parsed it; read defensively. */
// deno-lint-ignore no-explicit-any
type Yaml = any;

const API_VERSIONS = ["telemetry.istio.io/v1", "telemetry.istio.io/v1alpha1"];
const GATEWAY_GROUP = "gateway.networking.k8s.io";

/**
 * Compiles the Telemetry resources of a load.
 *
 * @param documents Every document of the load
 * @param context This waypoint, the root namespace and the MeshConfig providers
 * @returns The settings index and the problems found
 */
export function compileTelemetry(
  documents: readonly SourceDoc[],
  context: TelemetryContext,
): { telemetry: CompiledTelemetry; problems: Problem[] } {
  const problems: Problem[] = [];
  const namespaceWide = new Map<string, Layer>();
  const gatewayRefs: Layer[] = [];
  const serviceRefs = new Map<string, Layer[]>();
  for (const doc of documents) {
    const o = doc.object as { kind?: string; apiVersion?: string };
    if (o?.kind !== "Telemetry" || !API_VERSIONS.includes(o.apiVersion ?? "")) continue;
    const read = readTelemetry(doc, context, problems);
    if (!read) continue;
    const { layer, namespace, targets, where } = read;
    if (targets === "namespace") {
      if (namespaceWide.has(namespace)) {
        problems.push(
          problem(
            "warning",
            where,
            layer.ref,
            "Another namespace-wide Telemetry of this namespace is used; this one is ignored",
          ),
        );
      } else namespaceWide.set(namespace, layer);
      continue;
    }
    if (targets.gateway) gatewayRefs.push(layer);
    for (const key of targets.services) {
      const list = serviceRefs.get(key) ?? [];
      list.push(layer);
      serviceRefs.set(key, list);
    }
  }
  const { rootNamespace, self } = context;
  const base = [namespaceWide.get(rootNamespace), namespaceWide.get(self.namespace)]
    .filter((l, i) => l && (i === 0 || self.namespace !== rootNamespace)) as Layer[];
  const levels = (namespace?: string, service: Layer[] = []) => {
    const own = namespace !== undefined && namespace !== rootNamespace &&
        namespace !== self.namespace
      ? namespaceWide.get(namespace)
      : undefined;
    return [...base, ...(own ? [own] : []), ...gatewayRefs, ...service];
  };
  const p = context.providers;
  const namespaces = new Map<string, TelemetrySettings>();
  for (const ns of namespaceWide.keys()) {
    if (ns !== rootNamespace && ns !== self.namespace) namespaces.set(ns, merge(levels(ns), p));
  }
  const services = new Map<string, TelemetrySettings>();
  for (const [key, layers] of serviceRefs) {
    services.set(key, merge(levels(key.slice(0, key.indexOf("/")), layers), p));
  }
  return { telemetry: new CompiledTelemetry(merge(levels(), p), namespaces, services), problems };
}

/** Merges levels, earliest first (l7.md §3.2–3.4). */
function merge(layers: readonly Layer[], providers: TelemetryProviders): TelemetrySettings {
  return Object.freeze({
    metrics: mergeMetrics(layers, providers),
    accessLogs: mergeLogging(layers, providers),
    tracing: mergeTracing(layers, providers),
  });
}

function mergeMetrics(layers: readonly Layer[], providers: TelemetryProviders): MetricsSettings {
  let names: readonly string[] = providers.defaults.metrics;
  const overrides = new Map<string, { disabled: boolean; tags: Map<string, CelProgram | null> }>();
  for (const layer of layers) {
    for (const entry of layer.metrics) {
      if (entry.providers) names = entry.providers;
      for (const o of entry.overrides) {
        for (const family of o.families) {
          const found = overrides.get(family) ?? { disabled: false, tags: new Map() };
          if (o.disabled !== undefined) found.disabled = o.disabled;
          for (const [tag, op] of o.tags) found.tags.set(tag, op);
          overrides.set(family, found);
        }
      }
    }
  }
  for (const [family, o] of overrides) {
    if (!o.disabled && o.tags.size === 0) overrides.delete(family);
  }
  return {
    enabled: names.some((n) => providers.prometheus.has(n)),
    overrides,
  };
}

function mergeLogging(
  layers: readonly Layer[],
  providers: TelemetryProviders,
): readonly AccessLogSetting[] {
  let names: readonly string[] = providers.defaults.accessLogging;
  const settings = new Map<string, { disabled: boolean; filter?: CelProgram }>();
  for (const layer of layers) {
    for (const entry of layer.accessLogging) {
      if (entry.providers) names = entry.providers;
      for (const name of names) {
        const prior = settings.get(name);
        settings.set(name, {
          disabled: entry.disabled ?? prior?.disabled ?? false,
          filter: entry.filter ?? prior?.filter,
        });
      }
    }
  }
  return names
    .filter((n) => providers.accessLog.has(n) && !settings.get(n)?.disabled)
    .map((n) => ({ provider: n, filter: settings.get(n)?.filter }));
}

function mergeTracing(layers: readonly Layer[], providers: TelemetryProviders): TracingSettings {
  let provider: string | undefined = providers.defaults.tracing[0];
  let sampling: number | undefined;
  let customTags: readonly CustomTag[] = [];
  let disableSpanReporting = false;
  for (const layer of layers) {
    for (const entry of layer.tracing) {
      if (entry.providers) provider = entry.providers[0];
      if (entry.sampling !== undefined) sampling = entry.sampling;
      if (entry.customTags) customTags = entry.customTags;
      if (entry.disableSpanReporting !== undefined) {
        disableSpanReporting = entry.disableSpanReporting;
      }
    }
  }
  return { provider, sampling, customTags, disableSpanReporting };
}

interface ReadTelemetry {
  readonly layer: Layer;
  readonly namespace: string;
  readonly where: string;
  readonly targets: "namespace" | { gateway: boolean; services: string[] };
}

/** Reads one Telemetry; undefined (with the problems) when it is unusable or not ours. */
function readTelemetry(
  doc: SourceDoc,
  context: TelemetryContext,
  problems: Problem[],
): ReadTelemetry | undefined {
  const o = doc.object as Yaml;
  const where = `${doc.file}:${doc.line}`;
  const namespace = String(o.metadata?.namespace ?? "default");
  const ref = `Telemetry ${namespace}/${o.metadata?.name ?? "?"}`;
  const spec = o.spec ?? {};
  const errors: string[] = [];
  const report = new Reporter(where, ref, problems, errors);
  const refs = Array.isArray(spec.targetRefs)
    ? spec.targetRefs
    : spec.targetRef
    ? [spec.targetRef]
    : [];
  let targets: ReadTelemetry["targets"] = "namespace";
  if (refs.length > 0) targets = targetsOf(refs, namespace, context, report);
  else if (spec.selector) {
    report.warn("selector does not apply to waypoints (use targetRefs); the Telemetry is ignored");
    return undefined;
  }
  const layer: Layer = {
    ref,
    metrics: list(spec.metrics).map((m, i) =>
      readMetrics(m, `spec.metrics[${i}]`, report, context.providers)
    ),
    accessLogging: list(spec.accessLogging).filter(isServer).map((l, i) =>
      readLogging(l, `spec.accessLogging[${i}]`, report, context.providers)
    ),
    tracing: list(spec.tracing).filter(isServer).map((t, i) =>
      readTracing(t, `spec.tracing[${i}]`, report, context)
    ),
  };
  if (errors.length > 0) return undefined;
  return { layer, namespace, where, targets };
}

/** Collects located problems for one resource. */
class Reporter {
  constructor(
    readonly where: string,
    readonly ref: string,
    readonly problems: Problem[],
    readonly errors: string[],
  ) {}

  error(message: string): void {
    this.errors.push(message);
    this.problems.push(
      problem("error", this.where, this.ref, `${message}; the Telemetry is skipped`),
    );
  }

  warn(message: string): void {
    this.problems.push(problem("warning", this.where, this.ref, message));
  }

  /** Provider names of a section; names of another kind or unknown are reported. */
  providers(
    value: unknown,
    path: string,
    known: ReadonlySet<string>,
    all: ReadonlySet<string>,
  ): readonly string[] | undefined {
    if (value === undefined) return undefined;
    const names = list(value).map((p) => String((p as { name?: unknown })?.name ?? ""));
    for (const [i, name] of names.entries()) {
      if (!known.has(name)) {
        this.warn(
          `${path}[${i}]: provider "${name}" ${
            all.has(name)
              ? "is not of a kind this section uses"
              : "is not among the MeshConfig's extensionProviders"
          }; it is ignored`,
        );
      }
    }
    return names;
  }

  cel(source: unknown, path: string): CelProgram | undefined {
    if (typeof source !== "string") {
      this.error(`${path} must be a CEL expression string`);
      return undefined;
    }
    try {
      return compileCel(source);
    } catch (e) {
      if (!(e instanceof CelError)) throw e;
      this.error(`${path} "${source}": ${e.message} (at character ${e.offset + 1})`);
      return undefined;
    }
  }
}

function targetsOf(
  refs: Yaml[],
  namespace: string,
  context: TelemetryContext,
  report: Reporter,
): { gateway: boolean; services: string[] } {
  let gateway = false;
  const services: string[] = [];
  for (const [i, r] of refs.entries()) {
    const group = String(r?.group ?? "");
    const kind = String(r?.kind ?? "");
    const name = String(r?.name ?? "");
    const path = `spec.targetRefs[${i}]`;
    if ((group === "" || group === "core") && kind === "Service") {
      services.push(`${namespace}/${name}`);
    } else if (group === "networking.istio.io" && kind === "ServiceEntry") {
      services.push(`${namespace}/${name}`);
    } else if (group === GATEWAY_GROUP && kind === "Gateway") {
      gateway ||= namespace === context.self.namespace && name === context.self.name;
    } else if (group === GATEWAY_GROUP && kind === "GatewayClass") {
      if (namespace === context.rootNamespace && name === "istio-waypoint") gateway = true;
      else {report.warn(
          `${path}: GatewayClass ${name} binds only as istio-waypoint from the root namespace ${context.rootNamespace}`,
        );}
    } else {
      report.warn(`${path}: ${kind} (${group || "core"}) is not a target a waypoint takes`);
    }
  }
  return { gateway, services };
}

/** Entries for CLIENT only do not apply to a waypoint, which is a SERVER. */
function isServer(entry: unknown): boolean {
  const mode = (entry as { match?: { mode?: unknown } })?.match?.mode;
  return mode === undefined || mode === "SERVER" || mode === "CLIENT_AND_SERVER";
}

function readMetrics(
  m: Yaml,
  path: string,
  report: Reporter,
  known: TelemetryProviders,
): MetricsEntry {
  const overrides = list(m?.overrides).filter((o) =>
    isServer({ match: (o as { match?: unknown })?.match })
  )
    .map((o: Yaml, i) => {
      const at = `${path}.overrides[${i}]`;
      const match = o?.match ?? {};
      let families: readonly string[] = ALL_FAMILIES;
      if (match.customMetric !== undefined) {
        report.warn(
          `${at}.match.customMetric "${match.customMetric}": custom metrics are not supported; ignored`,
        );
        families = [];
      } else if (match.metric !== undefined && match.metric !== "ALL_METRICS") {
        const family = METRIC_NAMES[String(match.metric)];
        if (!family) report.error(`${at}.match.metric "${match.metric}" is not a standard metric`);
        families = family ? [family] : [];
      }
      const tags = new Map<string, CelProgram | null>();
      for (const [tag, op] of Object.entries(o?.tagOverrides ?? {})) {
        const operation = (op as Yaml)?.operation ?? "UPSERT";
        if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(tag)) {
          report.error(`${at}.tagOverrides: "${tag}" is not a valid label name`);
        } else if (operation === "REMOVE") tags.set(tag, null);
        else if (operation === "UPSERT") {
          const program = report.cel((op as Yaml)?.value, `${at}.tagOverrides.${tag}.value`);
          if (program) tags.set(tag, program);
        } else {report.error(
            `${at}.tagOverrides.${tag}.operation "${operation}" is not UPSERT or REMOVE`,
          );}
      }
      const disabled = typeof o?.disabled === "boolean" ? o.disabled : undefined;
      return { families, disabled, tags: tags.size > 0 ? tags : NO_TAGS };
    });
  const providers = report.providers(
    m?.providers,
    `${path}.providers`,
    known.prometheus,
    known.all,
  );
  return { providers, overrides };
}

function readLogging(
  l: Yaml,
  path: string,
  report: Reporter,
  known: TelemetryProviders,
): LoggingEntry {
  const expression = l?.filter?.expression;
  return {
    providers: report.providers(l?.providers, `${path}.providers`, known.accessLog, known.all),
    disabled: typeof l?.disabled === "boolean" ? l.disabled : undefined,
    filter: expression === undefined
      ? undefined
      : report.cel(expression, `${path}.filter.expression`),
  };
}

function readTracing(
  t: Yaml,
  path: string,
  report: Reporter,
  context: TelemetryContext,
): TracingEntry {
  let sampling: number | undefined;
  if (t?.randomSamplingPercentage !== undefined) {
    const v = Number(t.randomSamplingPercentage);
    if (!(v >= 0 && v <= 100)) {
      report.error(
        `${path}.randomSamplingPercentage ${t.randomSamplingPercentage} is not within 0–100`,
      );
    } else sampling = v;
  }
  const env = context.env ?? envValue;
  let customTags: CustomTag[] | undefined;
  if (t?.customTags !== undefined) {
    customTags = [];
    for (const [name, tag] of Object.entries(t.customTags ?? {})) {
      const v = tag as Yaml;
      if (v?.literal) {
        customTags.push({ name, kind: "literal", value: String(v.literal.value ?? "") });
      } else if (v?.environment) {
        const value = env(String(v.environment.name ?? "")) ??
          String(v.environment.defaultValue ?? "");
        customTags.push({ name, kind: "literal", value });
      } else if (v?.header) {
        customTags.push({
          name,
          kind: "header",
          header: String(v.header.name ?? "").toLowerCase(),
          defaultValue: String(v.header.defaultValue ?? ""),
        });
      } else {report.warn(
          `${path}.customTags.${name}: only literal, environment and header tags are supported; ignored`,
        );}
    }
  }
  return {
    providers: report.providers(
      t?.providers,
      `${path}.providers`,
      context.providers.tracing,
      context.providers.all,
    ),
    sampling,
    customTags,
    disableSpanReporting: typeof t?.disableSpanReporting === "boolean"
      ? t.disableSpanReporting
      : undefined,
  };
}

function envValue(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function problem(
  severity: Problem["severity"],
  where: string,
  resource: string,
  message: string,
): Problem {
  return { severity, where, resource, message };
}
