/**
 * Istio's MeshConfig, the parts a waypoint reads: root namespace, trust domain aliases, path
 * normalization, `extensionProviders` (CUSTOM authorization, OpenTelemetry tracing) and
 * `defaultProviders.tracing`. Read from a YAML file that is either the MeshConfig itself or
 * Istio's `istio` ConfigMap with the MeshConfig in `data.mesh`.
 */
import { parse } from "yaml";
import {
  type AccessLogProvider,
  compileFormat,
  DEFAULT_JSON_LABELS,
  type OtlpProvider,
  type TelemetryProviders,
} from "../telemetry/mod.ts";

/** What both ext_authz provider kinds share. */
interface ExtAuthzCommon {
  readonly name: string;
  /** `host` or `ns/host` of the authorization service. */
  readonly service: string;
  readonly port: number;
  /** @default 600 s */
  readonly timeoutMs: number;
  readonly failOpen: boolean;
  /** @default 403 */
  readonly statusOnError: number;
}

/** An `envoyExtAuthzHttp` provider as users write it. */
export interface ExtAuthzHttpProvider extends ExtAuthzCommon {
  readonly kind: "http";
  readonly pathPrefix: string;
  readonly includeRequestHeadersInCheck: readonly string[];
  readonly includeAdditionalHeadersInCheck: Readonly<Record<string, string>>;
  readonly headersToUpstreamOnAllow: readonly string[];
  readonly headersToDownstreamOnAllow: readonly string[];
  readonly headersToDownstreamOnDeny: readonly string[];
}

/** An `envoyExtAuthzGrpc` provider as users write it: Envoy's `Authorization/Check` over h2c. */
export interface ExtAuthzGrpcProvider extends ExtAuthzCommon {
  readonly kind: "grpc";
}

/** A CUSTOM authorization provider of either kind. */
export type ExtAuthzProvider = ExtAuthzHttpProvider | ExtAuthzGrpcProvider;

/**
 * An `opentelemetry` tracing provider. Spans are exported only with OTLP/HTTP: a provider
 * without `http` exports with gRPC in Istio, which we do not, so it has no `http` here.
 */
export type OtelTracingProvider = OtlpProvider;

/** The MeshConfig fields in use. */
export interface MeshConfig {
  /** @default "istio-system" */
  readonly rootNamespace: string;
  readonly trustDomainAliases: readonly string[];
  /** `pathNormalization.normalization`. @default "BASE" */
  readonly pathNormalization: "NONE" | "BASE" | "MERGE_SLASHES" | "DECODE_AND_MERGE_SLASHES";
  /** Every provider name (any type), for CUSTOM policies naming one. */
  readonly providerNames: readonly string[];
  /** ext_authz providers (`envoyExtAuthzHttp`, `envoyExtAuthzGrpc`) by name. */
  readonly extAuthz: ReadonlyMap<string, ExtAuthzProvider>;
  /** `opentelemetry` tracing providers by name. */
  readonly tracing: ReadonlyMap<string, OtelTracingProvider>;
  /** `envoyFileAccessLog` providers by name, with the built-in `envoy` (`/dev/stdout`). */
  readonly accessLog: ReadonlyMap<string, AccessLogProvider>;
  /** `prometheus` provider names, with the built-in `prometheus`. */
  readonly prometheus: readonly string[];
  /** `defaultProviders`: provider names used when no Telemetry names one. */
  readonly defaultProviders: {
    readonly tracing: readonly string[];
    /** @default ["prometheus"] (Istio's mesh default) */
    readonly metrics: readonly string[];
    /** The legacy `accessLogFile` provider when it is set and this is not. */
    readonly accessLogging: readonly string[];
  };
  /** Settings read but not honoured, for the operator's log. */
  readonly warnings: readonly string[];
}

/** Istio's defaults when no mesh config is given. */
export const DEFAULT_MESH_CONFIG: MeshConfig = Object.freeze({
  rootNamespace: "istio-system",
  trustDomainAliases: [],
  pathNormalization: "BASE",
  providerNames: [],
  extAuthz: new Map(),
  tracing: new Map(),
  accessLog: new Map([["envoy", { name: "envoy", path: "/dev/stdout" }]]),
  prometheus: ["prometheus"],
  defaultProviders: { tracing: [], metrics: ["prometheus"], accessLogging: [] },
  warnings: [],
});

/** The provider name given to MeshConfig's legacy `accessLogFile` settings. */
export const LEGACY_ACCESS_LOG = "accessLogFile";

/**
 * The providers as the Telemetry compiler sees them.
 *
 * @param mesh The MeshConfig
 * @returns Provider names by kind, and the defaults
 */
export function telemetryProviders(mesh: MeshConfig): TelemetryProviders {
  return {
    prometheus: new Set(mesh.prometheus),
    accessLog: new Set(mesh.accessLog.keys()),
    tracing: new Set(mesh.tracing.keys()),
    all: new Set([...mesh.providerNames, ...mesh.prometheus, ...mesh.accessLog.keys()]),
    defaults: mesh.defaultProviders,
  };
}

/**
 * Parses MeshConfig text.
 *
 * @param text YAML of a MeshConfig or of the `istio` ConfigMap
 * @param file For error messages
 * @throws Error naming the file and the field at fault
 */
export function parseMeshConfig(text: string, file: string): MeshConfig {
  // deno-lint-ignore no-explicit-any
  let doc: any = parse(text) ?? {};
  if (doc.kind === "ConfigMap") doc = parse(String(doc.data?.mesh ?? "")) ?? {};
  const providers = Array.isArray(doc.extensionProviders) ? doc.extensionProviders : [];
  const extAuthz = new Map<string, ExtAuthzProvider>();
  const tracing = new Map<string, OtelTracingProvider>();
  const accessLog = new Map(DEFAULT_MESH_CONFIG.accessLog);
  const prometheus = ["prometheus"];
  const warnings: string[] = [];
  for (const [i, p] of providers.entries()) {
    if (typeof p?.name !== "string") {
      throw new Error(`${file}: extensionProviders[${i}].name is missing`);
    }
    const at = `${file}: extensionProviders[${i}] (${p.name})`;
    if (p.opentelemetry) {
      tracing.set(p.name, otelOf(p.name, p.opentelemetry, at, warnings));
      continue;
    }
    if (p.prometheus !== undefined) {
      prometheus.push(p.name);
      continue;
    }
    if (p.envoyFileAccessLog !== undefined) {
      accessLog.set(p.name, fileLogOf(p.name, p.envoyFileAccessLog, at));
      continue;
    }
    const kind = p.envoyExtAuthzHttp
      ? "envoyExtAuthzHttp"
      : p.envoyExtAuthzGrpc
      ? "envoyExtAuthzGrpc"
      : undefined;
    if (!kind) continue;
    const common = commonOf(p.name, p[kind], `${at} needs ${kind}.service and port`);
    // The body is never buffered for a check; Envoy would send up to maxRequestBytes of it.
    if (p[kind].includeRequestBodyInCheck) {
      warnings.push(`${at}: ${kind}.includeRequestBodyInCheck is ignored, no body is sent`);
    }
    extAuthz.set(
      p.name,
      kind === "envoyExtAuthzGrpc" ? { ...common, kind: "grpc" } : httpOf(common, p[kind]),
    );
  }
  return Object.freeze({
    rootNamespace: String(doc.rootNamespace ?? "istio-system"),
    trustDomainAliases: Array.isArray(doc.trustDomainAliases)
      ? doc.trustDomainAliases.map(String)
      : [],
    pathNormalization: doc.pathNormalization?.normalization ?? "BASE",
    providerNames: providers.map((p: { name: string }) => p.name),
    extAuthz,
    tracing,
    accessLog,
    prometheus,
    defaultProviders: {
      tracing: names(doc.defaultProviders?.tracing) ?? [],
      metrics: names(doc.defaultProviders?.metrics) ?? ["prometheus"],
      accessLogging: names(doc.defaultProviders?.accessLogging) ??
        legacyAccessLog(doc, accessLog, file),
    },
    warnings,
  });
}

// deno-lint-ignore no-explicit-any
function names(v: any): string[] | undefined {
  return Array.isArray(v) ? v.map(String) : undefined;
}

/** An `envoyFileAccessLog` provider; its format is compiled now, so a bad one fails the load. */
// deno-lint-ignore no-explicit-any
function fileLogOf(name: string, f: any, at: string): AccessLogProvider {
  const format = f?.logFormat ?? {};
  const provider: AccessLogProvider = {
    name,
    path: String(f?.path || "/dev/stdout"),
    text: typeof format.text === "string" ? format.text : undefined,
    labels: format.labels && typeof format.labels === "object"
      ? Object.fromEntries(Object.entries(format.labels).map(([k, v]) => [k, String(v)]))
      : undefined,
    omitEmptyValues: f?.omitEmptyValues === true,
  };
  try {
    compileFormat(provider);
  } catch (e) {
    throw new Error(`${at}: ${(e as Error).message}`);
  }
  return provider;
}

/**
 * MeshConfig's legacy `accessLogFile` / `accessLogEncoding` / `accessLogFormat` as a provider,
 * used when no `defaultProviders.accessLogging` is set (Istio applies them when no Telemetry
 * configures logging).
 */
function legacyAccessLog(
  // deno-lint-ignore no-explicit-any
  doc: any,
  accessLog: Map<string, AccessLogProvider>,
  file: string,
): string[] {
  if (typeof doc.accessLogFile !== "string" || doc.accessLogFile === "") return [];
  const json = doc.accessLogEncoding === "JSON";
  const custom = typeof doc.accessLogFormat === "string" && doc.accessLogFormat !== ""
    ? doc.accessLogFormat
    : undefined;
  let labels: Record<string, string> | undefined = json ? { ...DEFAULT_JSON_LABELS } : undefined;
  if (json && custom) {
    try {
      labels = JSON.parse(custom);
    } catch {
      throw new Error(
        `${file}: accessLogFormat is not a JSON object while accessLogEncoding is JSON`,
      );
    }
  }
  accessLog.set(
    LEGACY_ACCESS_LOG,
    fileLogOf(
      LEGACY_ACCESS_LOG,
      { path: doc.accessLogFile, logFormat: { text: json ? undefined : custom, labels } },
      `${file}: accessLogFile`,
    ),
  );
  return [LEGACY_ACCESS_LOG];
}

/**
 * The fields both kinds share. `clearRouteCache` needs no flag here: routes are matched after
 * CUSTOM authorization, on the edited headers, always.
 */
// deno-lint-ignore no-explicit-any
function commonOf(name: string, h: any, missing: string): ExtAuthzCommon {
  const port = Number(h.port);
  if (typeof h.service !== "string" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(missing);
  }
  return {
    name,
    service: h.service,
    port,
    timeoutMs: durationMs(h.timeout) ?? 600_000,
    failOpen: h.failOpen === true,
    statusOnError: Number(h.statusOnError ?? 403) || 403,
  };
}

// deno-lint-ignore no-explicit-any
function httpOf(common: ExtAuthzCommon, h: any): ExtAuthzHttpProvider {
  return {
    ...common,
    kind: "http",
    pathPrefix: String(h.pathPrefix ?? ""),
    includeRequestHeadersInCheck: lower(h.includeRequestHeadersInCheck),
    includeAdditionalHeadersInCheck: { ...(h.includeAdditionalHeadersInCheck ?? {}) },
    headersToUpstreamOnAllow: lower(h.headersToUpstreamOnAllow),
    headersToDownstreamOnAllow: lower(h.headersToDownstreamOnAllow),
    headersToDownstreamOnDeny: lower(h.headersToDownstreamOnDeny),
  };
}

/** An `opentelemetry` provider; gRPC export and the fields we do not honour are warned about. */
function otelOf(
  name: string,
  // deno-lint-ignore no-explicit-any
  o: any,
  at: string,
  warnings: string[],
): OtelTracingProvider {
  const port = Number(o.port);
  if (typeof o.service !== "string" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`${at} needs opentelemetry.service and port`);
  }
  for (const field of ["resourceDetectors", "sampling", "dynatraceSampler"]) {
    if (o[field]) warnings.push(`${at}: opentelemetry.${field} is ignored`);
  }
  if (!o.http) {
    warnings.push(`${at}: opentelemetry without http exports with gRPC, which is not supported`);
    return { name, service: o.service, port };
  }
  const headers = (Array.isArray(o.http.headers) ? o.http.headers : [])
    .filter((h: { name?: unknown }) => typeof h?.name === "string")
    .map((h: { name: string; value?: unknown; envName?: unknown }) =>
      [h.name, typeof h.envName === "string" ? envValue(h.envName) : String(h.value ?? "")] as const
    );
  return {
    name,
    service: o.service,
    port,
    http: {
      path: String(o.http.path || "/v1/traces"),
      timeoutMs: durationMs(o.http.timeout) ?? 5_000,
      headers,
    },
  };
}

/** An environment variable, empty when unset or not readable (Istio's `env.Register` default). */
function envValue(name: string): string {
  try {
    return Deno.env.get(name) ?? "";
  } catch {
    return "";
  }
}

/** Reads a MeshConfig file. @throws Error naming the file */
export async function readMeshConfig(file: string): Promise<MeshConfig> {
  return parseMeshConfig(await Deno.readTextFile(file), file);
}

function lower(v: unknown): string[] {
  return Array.isArray(v) ? v.map((x) => String(x).toLowerCase()) : [];
}

/** `600s`, `1.5s`, `200ms` (protobuf Duration JSON) to milliseconds. */
function durationMs(v: unknown): number | undefined {
  if (typeof v !== "string") return undefined;
  const m = /^([0-9.]+)(ms|s|m|h)$/.exec(v.trim());
  if (!m) return undefined;
  return Number(m[1]) *
    { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
}
