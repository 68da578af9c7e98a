/**
 * Reads the spec of one WasmPlugin (`extensions.istio.io/v1alpha1`, l7.md §4.1) into a
 * {@link WasmPluginSpec}, with Istio's defaults: `oci://` when the url has no scheme, pull policy
 * `Always` for an OCI `:latest` tag, `pluginConfig` as JSON text, `vmConfig.env` resolved now.
 *
 * What a waypoint cannot run is refused here, with the reason: `type: NETWORK` (an L4 filter), and
 * `match` selectors that never match a waypoint's HTTP chain (Istio builds it as an inbound chain
 * on listener port 0, so `ports` and `mode: CLIENT` never match).
 */
import { type Fields, type PolicyHead, show } from "../policy/mod.ts";
import { fingerprint } from "./_hash.ts";
import type { PullPolicy, RegistryAuth, WasmPluginSpec } from "./spec.ts";

/** What reading a plugin needs besides its head. */
export interface ReadContext {
  /** The proxy's environment, for `valueFrom: HOST`. */
  readonly env: Readonly<Record<string, string>>;
  /** Resolves `imagePullSecret` in the plugin's namespace; pushes a warning when it cannot. */
  readonly pullSecret: (namespace: string, name: string, warn: (m: string) => void) =>
    | readonly RegistryAuth[]
    | undefined;
  /** `metadata.resourceVersion` and the whole object, for the revision. */
  readonly object: Fields;
}

/** A read plugin, or why it is refused (an error) or inert (a warning). */
export type ReadResult =
  | { readonly spec: WasmPluginSpec; readonly warnings: readonly string[] }
  | {
    readonly refused: string;
    readonly severity: "error" | "warning";
    readonly warnings: readonly string[];
  };

const FIELDS = [
  "selector",
  "targetRef",
  "targetRefs",
  "url",
  "sha256",
  "imagePullPolicy",
  "imagePullSecret",
  "pluginConfig",
  "pluginName",
  "phase",
  "priority",
  "failStrategy",
  "vmConfig",
  "match",
  "type",
  "verificationKey",
];
const PHASES = ["UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"] as const;
const FAIL_STRATEGIES = ["FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"] as const;
const PULL_POLICIES = ["UNSPECIFIED_POLICY", "IfNotPresent", "Always"] as const;
const PLUGIN_TYPES = ["UNSPECIFIED_PLUGIN_TYPE", "HTTP", "NETWORK"] as const;
const MODES = ["UNDEFINED", "CLIENT", "SERVER", "CLIENT_AND_SERVER"] as const;
const SCHEMES = ["oci", "file", "http", "https"];
const SHA256 = /^[a-f0-9]{64}$/;
const MAX_ENV = 256;
const INT32 = 2 ** 31;

/**
 * Reads one plugin whose head (metadata, targetRefs) is already read.
 *
 * @param head The plugin's head; schema faults land in `head.schema`
 * @param context Environment, pull-secret lookup and the raw object
 * @returns The spec, or the reason it is refused
 */
export function readWasmPlugin(head: PolicyHead, context: ReadContext): ReadResult {
  const { schema, spec } = head;
  const warnings: string[] = [];
  schema.known(spec, "spec", FIELDS);
  const refuse = (why: string, severity: "error" | "warning" = "error"): ReadResult => ({
    refused: why,
    severity,
    warnings,
  });
  const type = choice(head, spec.type, "spec.type", PLUGIN_TYPES) ?? "UNSPECIFIED_PLUGIN_TYPE";
  if (type === "NETWORK") {
    return refuse(
      "Unsupported: spec.type NETWORK (an L4 filter) cannot run in this waypoint, which runs HTTP plugins only; the plugin is skipped",
    );
  }
  if (spec.verificationKey !== undefined) {
    warnings.push("Not implemented: spec.verificationKey is ignored (Istio ignores it too)");
  }
  const url = readUrl(head);
  if (typeof url !== "string") return refuse(url.error);
  const sha256 = schema.text(spec.sha256, "spec.sha256") || undefined;
  if (sha256 !== undefined && !SHA256.test(sha256)) {
    return refuse(`Invalid value: spec.sha256 ${show(sha256)} is not 64 lowercase hex digits`);
  }
  const digest = /@sha256:([a-f0-9]{64})$/.exec(url)?.[1];
  if (sha256 !== undefined && digest !== undefined && digest !== sha256) {
    return refuse(`Invalid value: spec.sha256 ${sha256} does not match the digest in spec.url`);
  }
  const policy = choice(head, spec.imagePullPolicy, "spec.imagePullPolicy", PULL_POLICIES);
  const secret = schema.text(spec.imagePullSecret, "spec.imagePullSecret") || undefined;
  const auth = secret === undefined
    ? undefined
    : context.pullSecret(head.namespace, secret, (m) => warnings.push(m));
  const env = readEnv(head, context.env);
  if (typeof env === "string") return refuse(env);
  const never = neverMatches(head, warnings);
  if (never) return refuse(never, "warning");
  const config = schema.mapping(spec.pluginConfig, "spec.pluginConfig");
  const pluginConfig = config && Object.keys(config).length > 0 ? JSON.stringify(config) : "";
  const rootId = schema.text(spec.pluginName, "spec.pluginName") ?? "";
  const priority = readPriority(head);
  const source = {
    url,
    ...(sha256 !== undefined && { sha256 }),
    pullPolicy: pullPolicy(policy, url),
    ...(auth !== undefined && { auth }),
    revision: revisionOf(context.object),
  };
  return {
    spec: Object.freeze(
      {
        ref: `${head.namespace}/${head.name}`,
        name: `${head.namespace}.${head.name}`,
        rootId,
        phase: choice(head, spec.phase, "spec.phase", PHASES) ?? "UNSPECIFIED_PHASE",
        ...(priority !== undefined && { priority }),
        failStrategy: choice(head, spec.failStrategy, "spec.failStrategy", FAIL_STRATEGIES) ??
          "FAIL_CLOSE",
        pluginConfig,
        env,
        source: Object.freeze(source),
        vmKey: `${url}#${
          fingerprint([url, sha256 ?? "", JSON.stringify(env), rootId, pluginConfig])
        }`,
      } satisfies WasmPluginSpec,
    ),
    warnings,
  };
}

/** The url with its scheme defaulted to `oci://`, or why it is refused. */
function readUrl(head: PolicyHead): string | { error: string } {
  const written = head.schema.text(head.spec.url, "spec.url");
  if (!written) return { error: "Missing field: spec.url; the plugin is skipped" };
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(written)?.[1];
  if (scheme === undefined) return `oci://${written}`;
  if (!SCHEMES.includes(scheme)) {
    return {
      error: `Invalid value: spec.url scheme ${scheme} (want oci, file, http or https)`,
    };
  }
  return written;
}

/** Istio: unset means IfNotPresent, except an OCI reference tagged `latest`. */
function pullPolicy(written: string | undefined, url: string): PullPolicy {
  if (written === "IfNotPresent" || written === "Always") return written;
  return url.startsWith("oci://") && /:latest$/.test(url) ? "Always" : "IfNotPresent";
}

function readPriority(head: PolicyHead): number | undefined {
  const value = head.spec.priority;
  if (value === undefined || value === null) return undefined;
  if (typeof value === "number" && Number.isInteger(value) && value >= -INT32 && value < INT32) {
    return value;
  }
  head.schema.faults.push(`Wrong type: spec.priority is ${show(value)} (want a 32-bit integer)`);
  return undefined;
}

/** `vmConfig.env` as the VM sees it, or why it is refused. */
function readEnv(
  head: PolicyHead,
  hostEnv: Readonly<Record<string, string>>,
): Record<string, string> | string {
  const { schema } = head;
  const vmConfig = schema.mapping(head.spec.vmConfig, "spec.vmConfig");
  const entries = schema.list(vmConfig?.env, "spec.vmConfig.env") ?? [];
  if (entries.length > MAX_ENV) {
    return `Invalid value: spec.vmConfig.env has ${entries.length} entries (at most ${MAX_ENV})`;
  }
  const env: Record<string, string> = {};
  for (const [i, item] of entries.entries()) {
    const path = `spec.vmConfig.env[${i}]`;
    const entry = schema.mapping(item, path) ?? {};
    const name = schema.text(entry.name, `${path}.name`);
    if (!name) return `Missing field: ${path}.name`;
    const from = choice(head, entry.valueFrom, `${path}.valueFrom`, ["INLINE", "HOST"] as const) ??
      "INLINE";
    const value = schema.text(entry.value, `${path}.value`);
    if (from === "HOST") {
      if (value !== undefined) return `Invalid value: ${path}.value is only allowed with INLINE`;
      if (Object.hasOwn(hostEnv, name)) env[name] = hostEnv[name];
    } else {
      env[name] = value ?? "";
    }
  }
  return Object.freeze(env);
}

/**
 * Why `match` keeps the plugin off every waypoint request, or undefined when a selector (or no
 * `match` at all) lets it apply. Selectors that cannot match are warned about either way.
 */
function neverMatches(head: PolicyHead, warnings: string[]): string | undefined {
  const { schema } = head;
  const selectors = schema.list(head.spec.match, "spec.match") ?? [];
  let applies = selectors.length === 0;
  for (const [i, item] of selectors.entries()) {
    const path = `spec.match[${i}]`;
    const selector = schema.mapping(item, path) ?? {};
    const mode = choice(head, selector.mode, `${path}.mode`, MODES) ?? "UNDEFINED";
    const ports = schema.list(selector.ports, `${path}.ports`) ?? [];
    if (mode === "CLIENT") {
      warnings.push(`Never matches: ${path}.mode CLIENT does not apply on a waypoint (inbound)`);
    } else if (ports.length > 0) {
      warnings.push(
        `Never matches: ${path}.ports never match on a waypoint (Istio matches its HTTP chain as port 0)`,
      );
    } else {
      applies = true;
    }
  }
  return applies
    ? undefined
    : "Never applies: no spec.match selector can match on a waypoint; the plugin is skipped";
}

/** An enum field: a schema fault when it is not one of the values. */
function choice<T extends string>(
  head: PolicyHead,
  value: unknown,
  path: string,
  values: readonly T[],
): T | undefined {
  const text = head.schema.text(value, path);
  if (text === undefined) return undefined;
  if ((values as readonly string[]).includes(text)) return text as T;
  head.schema.faults.push(
    `Invalid value: ${path} is ${show(text)} (want one of ${values.join(", ")})`,
  );
  return undefined;
}

/** `metadata.resourceVersion`, or a digest of the object when it has none (files). */
function revisionOf(object: Fields): string {
  const meta = object.metadata as Fields | undefined;
  const version = meta?.resourceVersion;
  if (typeof version === "string" && version !== "") return version;
  return fingerprint([JSON.stringify(object)]);
}
