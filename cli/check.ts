/**
 * `check --config PATH... [--cases FILE] [--json]`: evaluates described requests against the
 * loaded policies and routes, with no traffic. The config is built as `run` builds it; each case
 * goes through `proxy/check.ts`, which runs the live filters. Exit 0 when every case met its
 * `expect`, 1 otherwise (or when the config has errors), 2 for usage errors.
 */
import { parse } from "yaml";
import { log } from "../log/mod.ts";
import { readConfig, type SourceDoc } from "../mesh/mod.ts";
import { RemoteJwks } from "../policy/mod.ts";
import {
  buildConfig,
  DEFAULT_MESH_CONFIG,
  type ProxyConfig,
  readMeshConfig,
} from "../proxy/mod.ts";
import {
  type CheckCase,
  checkCase,
  type CheckExpect,
  type CheckResult,
  type CheckSource,
  devJwks,
} from "../proxy/mod.ts";
import { parseAuthority } from "../tunnel/mod.ts";
import { meter, ModuleFetcher, WasmRuntime } from "../wasm/mod.ts";
import { parseFlags, UsageError } from "./flags.ts";
import { formatProblem } from "./validate.ts";

const CHECK_FLAGS = {
  config: { type: "string", multiple: true },
  cases: { type: "string" },
  json: { type: "boolean" },
  "print-dev-jwks": { type: "boolean" },
  namespace: { type: "string" },
  name: { type: "string" },
  "trust-domain": { type: "string" },
  "trust-domain-alias": { type: "string", multiple: true },
  "mesh-config": { type: "string" },
} as const;

/**
 * Runs `check`.
 *
 * @param args Arguments after `check`
 * @returns The exit code: 0 when every case met its `expect`, 1 otherwise or on config errors
 * @throws UsageError for bad flags, no cases, or a malformed cases file
 */
export async function checkCommand(args: string[]): Promise<number> {
  const f = parseFlags(args, CHECK_FLAGS);
  if (f["print-dev-jwks"]) {
    console.log(JSON.stringify(devJwks()));
    return 0;
  }
  if (!f.config || f.config.length === 0) throw new UsageError("--config is required");
  const { text, file } = await readCasesText(f.cases);
  const cases = parseCases(text, file);
  // stdout is the report: logs go to stderr, and only when something is badly wrong.
  log.setSink(Deno.stderr);
  log.setLevel("error");
  const config = await loadConfig(f.config, f);
  if (!config) return 1;
  const keys = new RemoteJwks();
  const wasm = await startWasm(config);
  const results: CheckResult[] = [];
  try {
    for (const c of cases) results.push(await checkCase(config, c, { keys, wasm }));
  } finally {
    keys.close();
    wasm?.close();
  }
  console.log(f.json ? JSON.stringify(results, null, 2) : formatResults(results));
  return results.every((r) => r.pass) ? 0 : 1;
}

/**
 * The WasmPlugins of the config, loaded (and metered) as `run` loads them, so that cases see what
 * plugins do to headers, routing and replies; none when no plugin is attached.
 */
async function startWasm(config: ProxyConfig): Promise<WasmRuntime | undefined> {
  if (config.wasm.all.length === 0) return undefined;
  const wasm = new WasmRuntime({ loader: new ModuleFetcher(), instrument: meter });
  await wasm.prepare(config.wasm.all);
  return wasm;
}

/** The config as `run` builds it; problems go to stderr, and errors give undefined. */
async function loadConfig(
  paths: readonly string[],
  f: {
    namespace?: string;
    name?: string;
    "trust-domain"?: string;
    "trust-domain-alias"?: string[];
    "mesh-config"?: string;
  },
): Promise<ProxyConfig | undefined> {
  const read = await readConfig(paths);
  const meshConfig = f["mesh-config"]
    ? await readMeshConfig(f["mesh-config"])
    : DEFAULT_MESH_CONFIG;
  for (const warning of meshConfig.warnings) console.error(`warning: ${warning}`);
  const aliases = f["trust-domain-alias"] ?? [];
  const built = buildConfig(read.documents, 1, {
    ...gatewayOf(read.documents, f.namespace, f.name),
    trustDomain: f["trust-domain"] ?? "cluster.local",
    trustDomainAliases: [...aliases, ...meshConfig.trustDomainAliases],
    meshConfig,
  });
  const problems = [...read.problems, ...built.problems];
  for (const p of problems) console.error(formatProblem(p));
  if (problems.some((p) => p.severity === "error")) {
    console.error("Config has errors: no case was checked");
    return undefined;
  }
  return built.snapshot;
}

/**
 * Our Gateway: `--namespace`/`--name` where given; otherwise the only `istio-waypoint` Gateway of
 * the config that fits them, so `check` needs no flags for a config with one waypoint.
 */
function gatewayOf(
  docs: readonly SourceDoc[],
  namespace: string | undefined,
  name: string | undefined,
): { namespace: string; name: string } {
  const waypoints = docs.map((d) => d.object).filter((o) => {
    const spec = o.spec as { gatewayClassName?: unknown } | undefined;
    return o.kind === "Gateway" && spec?.gatewayClassName === "istio-waypoint";
  }).map((o) => {
    const meta = o.metadata as { name?: string; namespace?: string } | undefined;
    return { namespace: meta?.namespace ?? "default", name: meta?.name ?? "" };
  }).filter((g) =>
    (namespace === undefined || g.namespace === namespace) &&
    (name === undefined || g.name === name)
  );
  if (waypoints.length === 1) return waypoints[0];
  return { namespace: namespace ?? "default", name: name ?? "waypoint" };
}

/** The cases file, or stdin when it is not a terminal. */
async function readCasesText(path: string | undefined): Promise<{ text: string; file: string }> {
  if (path !== undefined) {
    try {
      return { text: await Deno.readTextFile(path), file: path };
    } catch (e) {
      throw new UsageError(`Cannot read cases file: ${path}: ${(e as Error).message}`);
    }
  }
  if (Deno.stdin.isTerminal()) throw new UsageError("--cases is required (or cases on stdin)");
  return { text: await new Response(Deno.stdin.readable).text(), file: "<stdin>" };
}

const CASE_FIELDS = new Set([
  "name",
  "destination",
  "method",
  "path",
  "headers",
  "source",
  "jwt",
  "claims",
  "protocol",
  "expect",
]);

/**
 * Reads a cases file: `cases: [...]` (or a bare list) of {@link CheckCase} fields.
 *
 * @param text YAML text
 * @param file For messages
 * @returns The cases, in order
 * @throws UsageError naming the file, the case and the field at fault
 */
export function parseCases(text: string, file: string): CheckCase[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new UsageError(`Cases file is not YAML: ${file}: ${(e as Error).message}`);
  }
  const list = Array.isArray(doc) ? doc : isMap(doc) ? doc.cases : undefined;
  if (!Array.isArray(list) || list.length === 0) {
    throw new UsageError(`Cases file has no cases: ${file}: want "cases:" with a list`);
  }
  return list.map((item, i) => {
    const where = `${file}: cases[${i}]`;
    if (!isMap(item)) throw new UsageError(`${where}: want a map`);
    const name = typeof item.name === "string" ? item.name : `case ${i + 1}`;
    try {
      return parseCase(item, name);
    } catch (e) {
      throw new UsageError(`${where} (${name}): ${(e as Error).message}`);
    }
  });
}

function parseCase(item: Record<string, unknown>, name: string): CheckCase {
  for (const key of Object.keys(item)) {
    if (!CASE_FIELDS.has(key)) throw new Error(`unknown field "${key}"`);
  }
  const headers = headersOf(item.headers);
  if ((item.jwt !== undefined || item.claims !== undefined) && hasAuthorization(headers)) {
    throw new Error("jwt/claims: the token goes in authorization; drop that header");
  }
  if (item.jwt !== undefined && item.claims !== undefined) {
    throw new Error("give jwt or claims, not both");
  }
  if (item.claims !== undefined && !isMap(item.claims)) throw new Error("claims: want a map");
  const protocol = optText(item.protocol, "protocol");
  if (protocol !== undefined && protocol !== "http" && protocol !== "tcp") {
    throw new Error(`protocol: want http or tcp: got "${protocol}"`);
  }
  const method = optText(item.method, "method")?.toUpperCase();
  const path = optText(item.path, "path");
  const jwt = optText(item.jwt, "jwt");
  const out: CheckCase = {
    name,
    destination: text(item.destination, "destination"),
    ...(method === undefined ? {} : { method }),
    ...(path === undefined ? {} : { path }),
    ...(headers === undefined ? {} : { headers }),
    ...(item.source === undefined ? {} : { source: sourceOf(item.source) }),
    ...(jwt === undefined ? {} : { jwt }),
    ...(isMap(item.claims) ? { claims: item.claims } : {}),
    ...(protocol === undefined ? {} : { protocol }),
    ...(item.expect === undefined ? {} : { expect: expectOf(item.expect) }),
  };
  return out;
}

function headersOf(value: unknown): Record<string, string | string[]> | undefined {
  if (value === undefined) return undefined;
  if (!isMap(value)) throw new Error("headers: want a map of name to value");
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(value)) {
    if (Array.isArray(v)) out[k] = v.map((x) => scalar(x, `headers.${k}`));
    else out[k] = scalar(v, `headers.${k}`);
  }
  return out;
}

function hasAuthorization(headers: Record<string, unknown> | undefined): boolean {
  return Object.keys(headers ?? {}).some((k) => k.toLowerCase() === "authorization");
}

function sourceOf(value: unknown): CheckSource {
  if (!isMap(value)) throw new Error("source: want a map with principal, namespace or ip");
  for (const key of Object.keys(value)) {
    if (!["principal", "namespace", "ip"].includes(key)) {
      throw new Error(`source: unknown field "${key}"`);
    }
  }
  const principal = optText(value.principal, "source.principal");
  const namespace = optText(value.namespace, "source.namespace");
  const ipText = optText(value.ip, "source.ip");
  if (principal !== undefined && namespace !== undefined) {
    throw new Error("source: give principal or namespace, not both");
  }
  const ip = ipText === undefined ? undefined : canonicalIp(ipText);
  return {
    ...(principal === undefined ? {} : { principal }),
    ...(namespace === undefined ? {} : { namespace }),
    ...(ip === undefined ? {} : { ip }),
  };
}

function canonicalIp(text: string): string {
  const parsed = parseAuthority(text.includes(":") ? `[${text}]:1` : `${text}:1`);
  if (!parsed) throw new Error(`source.ip: not an IP address: "${text}"`);
  return parsed.host;
}

function expectOf(value: unknown): CheckExpect {
  if (value === "allow" || value === "deny") return value;
  const n = typeof value === "string" && /^[0-9]+$/.test(value) ? Number(value) : value;
  if (typeof n === "number" && Number.isInteger(n) && n >= 100 && n <= 599) return n;
  throw new Error(`expect: want allow, deny or an HTTP status: got ${JSON.stringify(value)}`);
}

function text(value: unknown, field: string): string {
  if (typeof value !== "string" || value === "") throw new Error(`${field}: want a string`);
  return value;
}

function optText(value: unknown, field: string): string | undefined {
  return value === undefined ? undefined : text(value, field);
}

function scalar(value: unknown, field: string): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  throw new Error(`${field}: want a string`);
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The text report: one line a case, then `N passed, M failed`.
 *
 * @param results In case order
 */
export function formatResults(results: readonly CheckResult[]): string {
  const width = Math.min(40, Math.max(0, ...results.map((r) => r.name.length)));
  const lines = results.map((r) => {
    const expected = r.pass ? "" : `  expected ${r.expect}`;
    return `${r.pass ? "PASS" : "FAIL"}  ${r.name.padEnd(width)}  → ${
      describeResult(r)
    }${expected}`;
  });
  const passed = results.filter((r) => r.pass).length;
  lines.push(`${passed} passed, ${results.length - passed} failed`);
  return lines.join("\n");
}

/** `allow (policy) route ns/name rule[i] backend Kind ns/name:port`, `deny (...)`, `401 (why)`. */
function describeResult(r: CheckResult): string {
  if (r.decision === "error") {
    return `error${r.status === undefined ? "" : ` ${r.status}`}: ${r.reason}`;
  }
  if (r.decision === "deny") {
    const word = r.status === undefined || r.status === 403 ? "deny" : String(r.status);
    return `${word} (${r.policy ?? whyDenied(r.reason)})`;
  }
  const parts: string[] = [];
  parts.push(r.policy === undefined ? "allow" : `allow (${r.policy})`);
  for (const c of r.custom ?? []) parts.push(`would ask provider ${c.provider} (${c.policy})`);
  if (r.route) parts.push(`route ${r.route.namespace}/${r.route.name} rule[${r.route.rule}]`);
  if (r.backend !== undefined) parts.push(`backend ${r.backend}${share(r)}`);
  if (r.protocol === "tcp") parts.push("(tcp)");
  if (r.status !== undefined) parts.push(`then ${r.status}: ${r.reason}`);
  return parts.join(" ");
}

function whyDenied(reason: string | undefined): string {
  return reason === "rbac_access_denied_matched_policy[none]"
    ? "no ALLOW rule matched"
    : `${reason}`;
}

function share(r: CheckResult): string {
  if (!r.backends) return "";
  const total = r.backends.reduce((sum, b) => sum + b.weight, 0);
  const mine = r.backends.find((b) => b.backend === r.backend);
  return mine ? ` (weight ${mine.weight} of ${total})` : "";
}
