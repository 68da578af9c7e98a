/**
 * `run`: builds the waypoint's pieces from options and starts them, in order: identity, config,
 * upstreams and policies, telemetry, Wasm, the filter chain, the listeners, the admin ports.
 * Each piece gets only what it uses (STYLE habit 11): the inbound handler a snapshot reader and
 * an outbound connector, the admin apps read-only views.
 */
import type { ServedApp } from "../admin/mod.ts";
import { log } from "../log/mod.ts";
import { type ConfigWatch, SnapshotHolder } from "../mesh/mod.ts";
import { startGatewayStatus } from "../mesh/kube/mod.ts";
import { formatProblem } from "./validate.ts";
import {
  authnFilter,
  authzFilter,
  customAuthzFilter,
  emptyConfig,
  ExtAuthz,
  fromHbone,
  fromSandwich,
  HttpUpstreams,
  inboundHandler,
  listenDevHttp,
  Outbound,
  type ProxyConfig,
  type RequestState,
  router,
  wasmFilter,
} from "../proxy/mod.ts";
import { RemoteJwks } from "../policy/mod.ts";
import { metricsFilter, type TraceExporters } from "../telemetry/mod.ts";
import { chainVariants, type Filter } from "../http/mod.ts";
import { Balancer } from "../routes/mod.ts";
import {
  type CaIdentity,
  DEFAULT_TUNNEL_CONFIG,
  HbonePool,
  type HboneServer,
  IdentitySource,
  listenHbone,
  listenSandwich,
  PlainOpener,
  type SandwichServer,
  startCaIdentity,
  type TunnelConfig,
} from "../tunnel/mod.ts";
import { drainListeners, type DrainOptions } from "./shutdown.ts";
import type { RunOptions } from "./run_options.ts";
import { meshOptionsOf, watchSources } from "./run_config.ts";
import { checkTracingProvider, startTelemetry, tracingFilterFor } from "./run_telemetry.ts";
import { startWasm } from "./run_wasm.ts";
import { serveAdmin } from "./run_admin.ts";

export type { RunOptions, TracingRunOptions } from "./run_options.ts";

/** A running waypoint. */
export interface Waypoint {
  readonly hbone: HboneServer;
  readonly sandwich?: SandwichServer;
  /** The `--dev-http` listener, when on. */
  readonly devHttp?: { readonly address: string; readonly port: number };
  readonly holder: SnapshotHolder<ProxyConfig>;
  readonly identity: IdentitySource;
  /** The CA-backed identity's renewal (stats for metrics), when `ca` was given. */
  readonly ca?: CaIdentity;
  readonly pool: HbonePool;
  /** The span exporters, one per tracing provider in use. */
  readonly traces: TraceExporters;
  readonly admin: readonly ServedApp[];
  /**
   * Readiness false, GOAWAY and `connection: close` everywhere, accept for `acceptMs`, then stop
   * accepting and wait for the last stream, up to `graceMs` in all; then release everything.
   */
  close(graceMs?: number, options?: DrainOptions): Promise<void>;
}

/**
 * Starts the waypoint: certificates, config (watched), the HBONE listener and the admin ports.
 *
 * @param options Parsed `run` flags
 * @returns The running waypoint
 * @throws Error when the certificates are unusable, the first config load has errors, or a port
 *   cannot be bound
 */
export async function startWaypoint(options: RunOptions): Promise<Waypoint> {
  const config: TunnelConfig = { ...DEFAULT_TUNNEL_CONFIG, ...options.tunnel };
  const ca = options.ca ? await startCaIdentity(options.ca) : undefined;
  const identity = ca?.identity ?? await IdentitySource.fromDir(options.certs);
  if (!ca) identity.watch(options.certs);
  const trustDomains = [options.trustDomain, ...options.trustDomainAliases];
  if (identity.current.trustDomain !== options.trustDomain) {
    log.warn("Certificate trust domain differs from --trust-domain", {
      certificate: identity.current.identity,
      trustDomain: options.trustDomain,
    });
  }
  const meshOptions = await meshOptionsOf(options);
  const holder = new SnapshotHolder<ProxyConfig>(emptyConfig(meshOptions));
  const loads = { success: 0, error: 0 };
  const countLoad = (load: { applied: boolean }) => load.applied ? loads.success++ : loads.error++;
  let watch: ConfigWatch<ProxyConfig>;
  try {
    watch = await watchSources(options, meshOptions, holder, { onLoad: countLoad });
  } catch (e) {
    identity.close();
    ca?.close();
    throw e;
  }
  try {
    if (!watch.initial.applied) {
      const lines = watch.initial.problems.map(formatProblem).join("\n  ");
      throw new Error(`Config has errors:\n  ${lines}`);
    }
    // After the first load: in Kubernetes mode the MeshConfig comes from the ConfigMap.
    checkTracingProvider(options, holder.current.meshConfig);
  } catch (e) {
    identity.close();
    ca?.close();
    await watch.close();
    throw e;
  }
  for (const p of watch.initial.problems) log.warn("Config problem", { ...p });
  // ztunnel sends nothing to a waypoint whose Gateway has no status address (hbone.md §3.1).
  const gatewayStatus = options.kubernetes
    ? await startGatewayStatus({
      namespace: options.namespace,
      name: options.name,
      kubeconfig: options.kubernetes.kubeconfig,
      identity: options.tracing?.podName ?? Deno.hostname(),
    })
    : undefined;
  const pool = new HbonePool(identity, config);
  const opener = options.plainUpstreams ? new PlainOpener(config.connectTimeoutMs) : pool;
  const balancer = new Balancer();
  const outbound = new Outbound({ opener, balancer, ztunnelPort: options.ztunnelPort });
  const upstreams = new HttpUpstreams({ opener, ztunnelPort: options.ztunnelPort });
  const jwks = new RemoteJwks();
  // Fetch remote key sets at load, so the first request of an issuer does not wait for them.
  jwks.prefetch(holder.current.authn.remotes);
  const unsubscribeJwks = holder.subscribe((next) => jwks.prefetch(next.authn.remotes));
  const telemetry = startTelemetry(options, holder);
  const { metrics, accessLogs, traces } = telemetry;
  const plugins = startWasm(options, holder, { upstreams, balancer });
  const wasm = plugins.wasm;
  // First, so that it also sees the requests that policies refuse; it also writes access logs.
  const metered = metricsFilter(metrics, { accessLogs });
  const custom = customAuthzFilter(new ExtAuthz({ upstreams, balancer }));
  const [authn, authz, tracing] = [
    authnFilter(jwks),
    authzFilter(),
    tracingFilterFor(options, traces),
  ];
  const [wasmAuthn, wasmAuthz, wasmStats, wasmOther] = (
    ["AUTHN", "AUTHZ", "STATS", "UNSPECIFIED_PHASE"] as const
  ).map((phase) => wasmFilter(wasm, phase));
  const route = router({ upstreams, balancer });
  // Istio's waypoint order (l7.md §4.3), with metrics and tracing first to see every request; a
  // config without plugins, policies or tracing providers gets a chain without those filters.
  const chain = chainVariants<RequestState>(
    ({ state: { config } }) =>
      (config.wasm.all.length > 0 ? USES_WASM : 0) |
      (config.authz.count + config.authn.count > 0 ? USES_POLICY : 0) |
      (config.meshConfig.tracing.size > 0 ? USES_TRACING : 0),
    (uses) => {
      const on = (bit: number, ...filters: Filter<RequestState>[]) => (uses & bit ? filters : []);
      return [
        metered,
        ...on(USES_TRACING, tracing),
        ...on(USES_POLICY, custom),
        ...on(USES_WASM, wasmAuthn),
        ...on(USES_POLICY, authn),
        ...on(USES_WASM, wasmAuthz),
        ...on(USES_POLICY, authz),
        ...on(USES_WASM, wasmStats, wasmOther),
        route,
      ];
    },
  );
  let ready = false;
  // Aborted on close: every HTTP connection inside the tunnels and on --dev-http drains (Envoy's).
  const drain = new AbortController();
  const handle = inboundHandler({
    config: () => holder.current,
    outbound,
    http: { chain, current: () => holder.current, drain: drain.signal },
    metrics,
    accessLogs,
  });
  const hbone = await listenHbone(options.hbone.hostname, options.hbone.port, {
    identity,
    trustDomains: () => trustDomains,
    config,
    handler: (request) => handle(fromHbone(request)),
  });
  const devHttp = options.devHttp
    ? await listenDevHttp({
      ...options.devHttp,
      identity: options.devIdentity ?? `spiffe://${options.trustDomain}/ns/default/sa/default`,
      config: () => holder.current,
      http: { chain, current: () => holder.current, drain: drain.signal },
    })
    : undefined;
  const sandwich = options.sandwich
    ? await listenSandwich(
      options.sandwich.hostname,
      options.sandwich.port,
      (connection) => handle(fromSandwich(connection)),
    )
    : undefined;
  const admin = serveAdmin(options, {
    ready: () => ready,
    hbone,
    pool,
    holder,
    loads,
    identity,
    metrics,
    accessLogs,
    traces,
    wasm,
  });
  ready = true;
  log.info("Waypoint started", {
    gateway: `${options.namespace}/${options.name}`,
    identity: identity.current.identity,
    hbone: `${hbone.address}:${hbone.port}`,
    configVersion: holder.current.version,
  });
  return {
    hbone,
    sandwich,
    devHttp,
    holder,
    identity,
    ca,
    pool,
    traces,
    admin,
    close: async (graceMs = 5_000, drainOptions?: DrainOptions) => {
      ready = false;
      drain.abort();
      hbone.drain();
      const listeners = drainListeners([hbone, sandwich, devHttp], graceMs, drainOptions);
      await watch.close();
      await gatewayStatus?.close();
      identity.close();
      ca?.close();
      await listeners;
      await telemetry.close();
      upstreams.close();
      unsubscribeJwks();
      jwks.close();
      plugins.close();
      pool.close();
      await Promise.all(admin.map((a) => a.shutdown()));
    },
  };
}

/** What a request's config needs from the chain (see `chainVariants`). */
const USES_WASM = 1, USES_POLICY = 2, USES_TRACING = 4;
