/**
 * Reads and validates one Telemetry resource into a layer: its targets, its metrics, access
 * logging and tracing entries with every CEL expression compiled, and the located problems.
 * Entries for CLIENT only are dropped; a resource with an error is skipped whole.
 */
import type { Problem, SourceDoc } from "../mesh/mod.ts";
import { CelError, type CelProgram, compileCel } from "./cel/mod.ts";
import {
  type CustomTag,
  METRIC_NAMES,
  type TelemetryContext,
  type TelemetryProviders,
} from "./telemetry_settings.ts";

const ALL_FAMILIES = Object.values(METRIC_NAMES);
const NO_TAGS: ReadonlyMap<string, CelProgram | null> = new Map();

/** One Telemetry, read and compiled. */
export interface Layer {
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

const GATEWAY_GROUP = "gateway.networking.k8s.io";

interface ReadTelemetry {
  readonly layer: Layer;
  readonly namespace: string;
  readonly where: string;
  readonly targets: "namespace" | { gateway: boolean; services: string[] };
}

/** Reads one Telemetry; undefined (with the problems) when it is unusable or not ours. */
export function readTelemetry(
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

export function problem(
  severity: Problem["severity"],
  where: string,
  resource: string,
  message: string,
): Problem {
  return { severity, where, resource, message };
}
