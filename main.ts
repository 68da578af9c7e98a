/**
 * The waypoint command line: parses flags, builds the pieces and starts them. Logic that a test
 * would want to call lives in `cli/` and the folders it wires.
 */
import { parseFlags, parseHostPort, UsageError } from "./cli/flags.ts";
import { type RunOptions, startWaypoint } from "./cli/run.ts";
import { tunnelCommand } from "./cli/tunnel.ts";
import { validateCommand } from "./cli/validate.ts";
import { CA_FLAGS, caRunOptions } from "./cli/ca_flags.ts";
import { DEFAULT_DRAIN_MS, drainOnSignals, parseDrainTimeout } from "./cli/shutdown.ts";
import { versionText } from "./cli/version.ts";
import { type Level, log } from "./log/mod.ts";
import denoJson from "./deno.json" with { type: "json" };

const USAGE = `waypoint ${denoJson.version}: an Istio ambient waypoint proxy

Usage:
  waypoint run --config PATH... --certs DIR [--namespace NS] [--name GATEWAY]
               [--service-account SA] [--trust-domain TD] [--trust-domain-alias TD...]
               [--hbone ADDR] [--readiness ADDR] [--metrics ADDR] [--admin ADDR]
               [--ztunnel-port N] [--sandwich ADDR] [--dev-plain-upstreams]
               [--dev-http ADDR --dev-identity SPIFFE_ID] [--mesh-config FILE]
               [--trace-provider NAME] [--trace-sampling PERCENT]
               [--log-level debug|info|warn|error] [--drain-timeout 5s]
               [--ca-address HOST:PORT [--ca-token FILE] [--ca-root FILE] [--ca-hostname NAME]]
                                      the certificate from the Istio CA instead of --certs
  waypoint run --kubernetes [--kubeconfig FILE] --certs DIR [same flags as above]
                                      config from the Kubernetes API: in-cluster, or the
                                      kubeconfig's current context
  waypoint run --demo                 the embedded demo mesh with dev certificates
  waypoint validate --config PATH... [--namespace NS] [--name GATEWAY]
  waypoint check --config PATH... [--cases FILE] [--json] [--namespace NS] [--name GATEWAY]
                 [--trust-domain TD] [--trust-domain-alias TD...] [--mesh-config FILE]
  waypoint check --print-dev-jwks     the public JWKS of the dev key that signs case claims
  waypoint certs ca --out DIR [--trust-domain TD]
  waypoint certs issue --ca DIR --identity SPIFFE_ID --out DIR
  waypoint tunnel connect --via HOST:PORT --authority ADDR:PORT --certs DIR [--listen ADDR]
                          [--identity SPIFFE_ID]
  waypoint tunnel serve --listen ADDR... --certs DIR
  waypoint --version
`;

const RUN_FLAGS = {
  config: { type: "string", multiple: true },
  certs: { type: "string" },
  namespace: { type: "string" },
  name: { type: "string" },
  "service-account": { type: "string" },
  "trust-domain": { type: "string" },
  "trust-domain-alias": { type: "string", multiple: true },
  hbone: { type: "string" },
  readiness: { type: "string" },
  metrics: { type: "string" },
  admin: { type: "string" },
  "ztunnel-port": { type: "string" },
  "log-level": { type: "string" },
  sandwich: { type: "string" },
  "dev-plain-upstreams": { type: "boolean" },
  "dev-http": { type: "string" },
  "mesh-config": { type: "string" },
  kubernetes: { type: "boolean" },
  kubeconfig: { type: "string" },
  "dev-identity": { type: "string" },
  "trace-provider": { type: "string" },
  "trace-sampling": { type: "string" },
  demo: { type: "boolean" },
  "drain-timeout": { type: "string" },
  ...CA_FLAGS,
} as const;

async function runCommand(args: string[]): Promise<void> {
  const f = parseFlags(args, RUN_FLAGS);
  if (f["log-level"]) log.setLevel(f["log-level"] as Level);
  const demoDir = ".dev/demo";
  const base = f.demo ? await (await import("./cli/demo.ts")).prepareDemo(demoDir) : undefined;
  const env = (name: string) => Deno.env.get(name) || undefined;
  const addr = (flag: "hbone" | "readiness" | "metrics" | "admin", fallback: string) =>
    f[flag] ? parseHostPort(flag, f[flag]) : base?.[flag] ?? parseHostPort(flag, fallback);
  const options: RunOptions = {
    config: f.config ?? base?.config ?? [],
    certs: f.certs ?? base?.certs ?? "",
    namespace: f.namespace ?? base?.namespace ?? env("POD_NAMESPACE") ?? "default",
    name: f.name ?? base?.name ?? env("GATEWAY_NAME") ?? "waypoint",
    trustDomain: f["trust-domain"] ?? "cluster.local",
    trustDomainAliases: f["trust-domain-alias"] ?? [],
    hbone: addr("hbone", "0.0.0.0:15008"),
    readiness: addr("readiness", "0.0.0.0:15021"),
    metrics: addr("metrics", "0.0.0.0:15020"),
    admin: addr("admin", "127.0.0.1:15000"),
    ztunnelPort: f["ztunnel-port"] ? Number(f["ztunnel-port"]) : 15008,
    sandwich: f.sandwich ? parseHostPort("sandwich", f.sandwich) : undefined,
    plainUpstreams: f["dev-plain-upstreams"] ?? false,
    devHttp: f["dev-http"] ? parseHostPort("dev-http", f["dev-http"]) : base?.devHttp,
    devIdentity: f["dev-identity"] ?? base?.devIdentity,
    meshConfig: f["mesh-config"],
    kubernetes: f.kubernetes || f.kubeconfig ? { kubeconfig: f.kubeconfig } : undefined,
    tracing: {
      provider: f["trace-provider"],
      sampling: f["trace-sampling"] === undefined ? undefined : Number(f["trace-sampling"]),
      podName: env("POD_NAME"),
      podIp: env("INSTANCE_IP"),
    },
  };
  if (options.kubernetes && options.config.length > 0) {
    throw new UsageError("--config and --kubernetes exclude each other");
  }
  if (options.config.length === 0 && !options.kubernetes) {
    throw new UsageError("--config (or --kubernetes) is required");
  }
  const ca = caRunOptions(f, {
    ...options,
    serviceAccount: f["service-account"] ?? env("SERVICE_ACCOUNT"),
    clusterId: env("ISTIO_META_CLUSTER_ID"),
  }, env);
  if (!options.certs && !ca) throw new UsageError("--certs (or --ca-address) is required");
  if (options.certs && ca) throw new UsageError("--certs and --ca-address exclude each other");
  const drainMs = f["drain-timeout"] ? parseDrainTimeout(f["drain-timeout"]) : DEFAULT_DRAIN_MS;
  if (
    !Number.isInteger(options.ztunnelPort) || options.ztunnelPort < 1 || options.ztunnelPort > 65535
  ) {
    throw new UsageError(`--ztunnel-port wants a port number: got "${f["ztunnel-port"]}"`);
  }
  const sampling = options.tracing?.sampling;
  if (sampling !== undefined && !(sampling >= 0 && sampling <= 100)) {
    throw new UsageError(
      `--trace-sampling wants a percentage from 0 to 100: got "${f["trace-sampling"]}"`,
    );
  }
  const sa = f["service-account"] ?? env("SERVICE_ACCOUNT");
  const waypoint = await startWaypoint({ ...options, ca });
  if (sa && !waypoint.identity.current.identity.endsWith(`/sa/${sa}`)) {
    log.warn("Certificate identity does not carry --service-account", {
      identity: waypoint.identity.current.identity,
      serviceAccount: sa,
    });
  }
  if (f.demo) console.log((await import("./cli/demo.ts")).demoInstructions(demoDir));
  drainOnSignals(waypoint, drainMs);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run":
      await runCommand(rest);
      return -1;
    case "validate":
      return await validateCommand(rest);
    case "check":
      return await (await import("./cli/check.ts")).checkCommand(rest);
    case "certs":
      await (await import("./cli/certs.ts")).certsCommand(rest);
      return 0;
    case "tunnel":
      await tunnelCommand(rest);
      return 0;
    case "--version":
    case "version":
      console.log(await versionText());
      return 0;
    case undefined:
    case "help":
    case "--help":
      console.log(USAGE);
      return 0;
    default:
      throw new UsageError(`Unknown command "${command}"`);
  }
}

if (import.meta.main) {
  try {
    const code = await main(Deno.args);
    if (code >= 0) {
      await log.drain();
      Deno.exit(code);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${e.message}\n\n${USAGE}`);
      Deno.exit(2);
    }
    log.error("Fatal", { reason: e });
    await log.drain();
    Deno.exit(1);
  }
}
