/**
 * `run`: builds the waypoint's pieces from options and starts them. Each piece gets only what it
 * uses (STYLE habit 11): the inbound handler a snapshot reader and an outbound connector, the
 * admin apps read-only views.
 */
import { adminApp, metricsApp, readinessApp, serveApp, type ServedApp } from "../admin/mod.ts";
import { log } from "../log/mod.ts";
import {
  type ConfigWatch,
  type Problem,
  SnapshotHolder,
  type SourceDoc,
  watchConfig,
} from "../mesh/mod.ts";
import { meshConfigText, startGatewayStatus, watchKubernetes } from "../mesh/kube/mod.ts";
import { formatProblem } from "./validate.ts";
import {
  authnFilter,
  authzFilter,
  buildConfig,
  customAuthzFilter,
  DEFAULT_MESH_CONFIG,
  dumpConfig,
  emptyConfig,
  ExtAuthz,
  fromHbone,
  fromSandwich,
  HttpUpstreams,
  inboundHandler,
  listenDevHttp,
  type MeshConfig,
  nodeText,
  Outbound,
  parseMeshConfig,
  type ProxyConfig,
  readMeshConfig,
  type RequestState,
  router,
  wasmFilter,
  wasmGrpcCaller,
  wasmHttpCaller,
} from "../proxy/mod.ts";
import { meter, ModuleFetcher, WasmRuntime } from "../wasm/mod.ts";
import { RemoteJwks } from "../policy/mod.ts";
import {
  AccessLogs,
  IstioMetrics,
  metricsFilter,
  processMetrics,
  prometheusStream,
  TraceExporters,
  tracingFilter,
} from "../telemetry/mod.ts";
import { compose } from "../http/mod.ts";
import { Balancer } from "../routes/mod.ts";
import {
  type CaClientOptions,
  type CaIdentity,
  DEFAULT_TUNNEL_CONFIG,
  HbonePool,
  type HboneServer,
  IdentitySource,
  listenHbone,
  listenSandwich,
  PlainOpener,
  type RotationOptions,
  type SandwichServer,
  startCaIdentity,
  type TunnelConfig,
} from "../tunnel/mod.ts";
import type { HostPort } from "./flags.ts";
import { drainListeners, type DrainOptions } from "./shutdown.ts";

/** Everything `run` needs, already parsed. */
export interface RunOptions {
  /** YAML files or folders. */
  readonly config: readonly string[];
  /** Certificate folder in Istio's layout; unused when {@link RunOptions.ca} is set. */
  readonly certs: string;
  /** Get the certificate from an Istio CA and renew it, instead of reading `certs`. */
  readonly ca?: CaClientOptions & RotationOptions;
  /** Our Gateway's namespace and name. */
  readonly namespace: string;
  readonly name: string;
  /** @default "cluster.local" */
  readonly trustDomain: string;
  /** Extra trust domains accepted from peers. */
  readonly trustDomainAliases: readonly string[];
  readonly hbone: HostPort;
  readonly readiness: HostPort;
  readonly metrics: HostPort;
  readonly admin: HostPort;
  /** @default 15008 */
  readonly ztunnelPort: number;
  /**
   * Plain listener for the sandwich binding (PROXY v2 with the client identity in TLV 0xD0, from a
   * local ztunnel). Off when undefined.
   */
  readonly sandwich?: HostPort;
  /**
   * Reach endpoints by plain TCP to `podIP:targetPort` instead of HBONE: for laptops without
   * ztunnel, and for the sandwich binding where the node's ztunnel carries the hop.
   */
  readonly plainUpstreams?: boolean;
  /** Plaintext HTTP listener treating requests as HBONE from {@link RunOptions.devIdentity}. */
  readonly devHttp?: HostPort;
  /** @default `spiffe://<trust domain>/ns/default/sa/default` */
  readonly devIdentity?: string;
  /** Cluster id for metric labels (`source_cluster`, `destination_cluster`). @default "Kubernetes" */
  readonly cluster?: string;
  /** MeshConfig file (or the `istio` ConfigMap): root namespace, extension providers, ... */
  readonly meshConfig?: string;
  /**
   * Read config from the Kubernetes API (a kubeconfig file, else in-cluster) instead of `config`;
   * without `meshConfig`, the MeshConfig comes from the `istio` ConfigMap in istio-system.
   */
  readonly kubernetes?: { readonly kubeconfig?: string };
  /** Overrides of the HTTP/2 and pool tunables. */
  readonly tunnel?: Partial<TunnelConfig>;
  /** Tracing choices; the provider itself comes from the MeshConfig. */
  readonly tracing?: TracingRunOptions;
  /**
   * Time between the reports of open TCP connections and gRPC streams (Istio's stats filter
   * `tcp_reporting_duration`). @default 5000
   */
  readonly metricsReportIntervalMs?: number;
}

/** How `run` traces requests. */
export interface TracingRunOptions {
  /**
   * An `opentelemetry` provider of the MeshConfig, used where no Telemetry names one (it
   * replaces `defaultProviders.tracing`, also in reloaded MeshConfigs).
   * @default `defaultProviders.tracing[0]`
   */
  readonly provider?: string;
  /** Percentage of requests without a caller's decision to sample, 0–100. @default 1 */
  readonly sampling?: number;
  /** For Envoy's `node_id` tag. @default the Gateway name */
  readonly podName?: string;
  /** For Envoy's `node_id` tag. @default the HBONE listener's address */
  readonly podIp?: string;
}

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
  const meshConfig = withTraceDefault(
    options.meshConfig ? await readMeshConfig(options.meshConfig) : DEFAULT_MESH_CONFIG,
    options.tracing?.provider,
  );
  for (const warning of meshConfig.warnings) log.warn("MeshConfig setting ignored", { warning });
  const meshOptions = {
    namespace: options.namespace,
    name: options.name,
    trustDomain: options.trustDomain,
    trustDomainAliases: [...options.trustDomainAliases, ...meshConfig.trustDomainAliases],
    meshConfig,
  };
  const holder = new SnapshotHolder<ProxyConfig>(emptyConfig(meshOptions));
  const loads = { success: 0, error: 0 };
  const countLoad = (load: { applied: boolean }) => load.applied ? loads.success++ : loads.error++;
  let watch: ConfigWatch<ProxyConfig>;
  try {
    watch = options.kubernetes
      ? await watchKubernetes(
        {
          kubeconfig: options.kubernetes.kubeconfig,
          meshConfigMap: options.meshConfig ? false : {},
        },
        (docs, version) =>
          buildWithMeshConfigMap(docs, version, meshOptions, holder, options.tracing?.provider),
        holder,
        { onLoad: countLoad },
      )
      : await watchConfig(
        options.config,
        (docs, version) => buildConfig(docs, version, meshOptions),
        holder,
        { onLoad: countLoad },
      );
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
  const metrics = new IstioMetrics({
    cluster: options.cluster ?? "Kubernetes",
    reportIntervalMs: options.metricsReportIntervalMs,
  });
  // Providers follow MeshConfig reloads (the `istio` ConfigMap in Kubernetes mode).
  const accessLogs = new AccessLogs(holder.current.meshConfig.accessLog.values());
  const traces = new TraceExporters({ serviceName: `${options.name}.${options.namespace}` });
  const unsubscribeProviders = holder.subscribe((next, previous) => {
    if (next.meshConfig === previous.meshConfig) return;
    accessLogs.update(next.meshConfig.accessLog.values()).catch((e) =>
      log.warn("Access log providers not updated", { reason: String(e) })
    );
    void traces.retain(next.meshConfig.tracing);
  });
  const wasm = new WasmRuntime({
    loader: new ModuleFetcher(),
    httpCaller: wasmHttpCaller({ config: () => holder.current, upstreams, balancer }),
    grpcCaller: wasmGrpcCaller({ config: () => holder.current, upstreams, balancer }),
    // Bounds each plugin callback's run time: a runaway plugin traps instead of stalling us.
    instrument: meter,
    node: { id: `waypoint~${options.namespace}~${options.name}`, cluster: options.name },
  });
  const prepareWasm = (next: ProxyConfig) => {
    wasm.retain(next.wasm.all.map((s) => s.vmKey));
    wasm.prepare(next.wasm.all).catch((e) =>
      log.warn("Wasm prepare failed", { reason: String(e) })
    );
  };
  prepareWasm(holder.current);
  const unsubscribeWasm = holder.subscribe(prepareWasm);
  // Istio's waypoint order (l7.md §4.3), with metrics and tracing first to see every request.
  const chain = compose<RequestState>([
    // First, so that it also sees the requests that policies refuse; it also writes access logs.
    metricsFilter(metrics, { accessLogs }),
    tracing(options, traces),
    customAuthzFilter(new ExtAuthz({ upstreams, balancer })),
    wasmFilter(wasm, "AUTHN"),
    authnFilter(jwks),
    wasmFilter(wasm, "AUTHZ"),
    authzFilter(),
    wasmFilter(wasm, "STATS"),
    wasmFilter(wasm, "UNSPECIFIED_PHASE"),
    router({ upstreams, balancer }),
  ]);
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
  const scrapeExtra = withWasm(
    wasm,
    processMetrics({
      downstreamConnections: () => hbone.sessions,
      downstreamGoaways: () => hbone.goaways,
      upstream: () => pool.stats,
      configVersion: () => holder.current.version,
      configLoads: () => loads,
      certificateNotAfter: () => identity.current.notAfter,
      accessLogDropped: () => accessLogs.dropped,
      logDropped: () => log.dropped,
      traces: () => traces.stats,
      registry: metrics.registry,
      recordFailures: () => metrics.recordFailures,
    }),
  );
  const admin = [
    serveApp(readinessApp(() => ready), addressText(options.readiness)),
    serveApp(
      metricsApp(() => prometheusStream(metrics.registry, { extra: scrapeExtra })),
      addressText(options.metrics),
    ),
    serveApp(
      adminApp({ configDump: () => dumpConfig(holder.current) }),
      addressText(options.admin),
    ),
  ];
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
      unsubscribeProviders();
      await traces.close();
      await accessLogs.drain();
      accessLogs.close();
      upstreams.close();
      unsubscribeJwks();
      jwks.close();
      unsubscribeWasm();
      wasm.close();
      pool.close();
      await Promise.all(admin.map((a) => a.shutdown()));
    },
  };
}

/**
 * `buildConfig` with the MeshConfig of the watched `istio` ConfigMap when there is one, so that
 * editing it rebuilds the config (root namespace, path normalization, providers of every kind,
 * trust domain aliases). A ConfigMap that does not parse is an error naming it: the last good
 * config stays. `--trace-provider` stays the tracing default of every MeshConfig.
 */
function buildWithMeshConfigMap(
  docs: readonly SourceDoc[],
  version: number,
  meshOptions: Parameters<typeof buildConfig>[2],
  holder: SnapshotHolder<ProxyConfig>,
  traceProvider: string | undefined,
): { snapshot: ProxyConfig; problems: Problem[] } {
  const found = meshConfigText(docs);
  if (!found) return buildConfig(docs, version, meshOptions);
  let meshConfig: MeshConfig;
  try {
    meshConfig = withTraceDefault(parseMeshConfig(found.text, found.origin), traceProvider);
  } catch (e) {
    const message = `MeshConfig (key mesh): ${(e as Error).message}`;
    return {
      snapshot: holder.current,
      problems: [{ severity: "error", where: found.origin, message }],
    };
  }
  const aliases = [...meshOptions.trustDomainAliases ?? [], ...meshConfig.trustDomainAliases];
  return buildConfig(docs, version, { ...meshOptions, meshConfig, trustDomainAliases: aliases });
}

/** MeshConfig with `--trace-provider` as its default tracing provider, when given. */
function withTraceDefault(meshConfig: MeshConfig, provider: string | undefined): MeshConfig {
  if (provider === undefined) return meshConfig;
  const defaultProviders = { ...meshConfig.defaultProviders, tracing: [provider] };
  return Object.freeze({ ...meshConfig, defaultProviders });
}

/**
 * Checks the default tracing provider: `--trace-provider` must name an `opentelemetry`
 * provider with `http`; a MeshConfig default that cannot be used is a warning (Istio: "no
 * provider resolved ⇒ tracing disabled").
 *
 * @throws Error when `--trace-provider` names no `opentelemetry` provider with `http`
 */
function checkTracingProvider(options: RunOptions, meshConfig: MeshConfig): void {
  const name = meshConfig.defaultProviders.tracing[0];
  if (!name) return;
  const provider = meshConfig.tracing.get(name);
  if (provider?.http) {
    log.info("Tracing", { provider: name, sampling: options.tracing?.sampling ?? 1 });
    return;
  }
  const reason = provider
    ? "exports with gRPC; only OTLP/HTTP (opentelemetry.http) is supported"
    : meshConfig.providerNames.includes(name)
    ? "is not an opentelemetry provider"
    : "is not among the MeshConfig's extensionProviders";
  if (options.tracing?.provider) throw new Error(`Tracing provider "${name}" ${reason}`);
  log.warn("Tracing is off by default", { provider: name, reason });
}

/**
 * The tracing filter: spans go to the exporter of the provider each request's Telemetry chose,
 * under the request's MeshConfig, with plain HTTP, not through the mesh.
 */
function tracing(options: RunOptions, traces: TraceExporters) {
  const { namespace, name: gateway } = options;
  const podIp = options.tracing?.podIp ?? options.hbone.hostname;
  const podName = options.tracing?.podName ?? gateway;
  return tracingFilter<RequestState>({
    sink: traces,
    sinkFor: (provider, state) => traces.sinkFor(provider, state.config.meshConfig.tracing),
    samplingPercentage: options.tracing?.sampling,
    proxy: {
      nodeId: `waypoint~${podIp}~${podName}.${namespace}~${namespace}.svc.cluster.local`,
      canonicalService: gateway,
      namespace,
      meshId: options.trustDomain,
      clusterId: options.cluster ?? "Kubernetes",
    },
  });
}

function addressText(a: HostPort): string {
  return nodeText(a.hostname, a.port);
}

/** Our process metrics followed by the plugins' own (proxy-wasm `proxy_define_metric`). */
function withWasm(wasm: WasmRuntime, process: () => string): () => string {
  return () => process() + wasm.prometheus();
}
