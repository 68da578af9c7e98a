/**
 * `run`: builds the waypoint's pieces from options and starts them. Each piece gets only what it
 * uses (STYLE habit 11): the inbound handler a snapshot reader and an outbound connector, the
 * admin apps read-only views.
 */
import { adminApp, metricsApp, readinessApp, serveApp, type ServedApp } from "../admin/mod.ts";
import { log } from "../log/mod.ts";
import { type ConfigWatch, SnapshotHolder, watchConfig } from "../mesh/mod.ts";
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
  type ProxyConfig,
  readMeshConfig,
  type RequestState,
  router,
} from "../proxy/mod.ts";
import { RemoteJwks } from "../policy/mod.ts";
import {
  IstioMetrics,
  metricsFilter,
  OtlpExporter,
  otlpUrl,
  prometheusRenderer,
  tracingFilter,
} from "../telemetry/mod.ts";
import { compose } from "../http/mod.ts";
import { Balancer } from "../routes/mod.ts";
import {
  DEFAULT_TUNNEL_CONFIG,
  HbonePool,
  type HboneServer,
  IdentitySource,
  listenHbone,
  listenSandwich,
  PlainOpener,
  type SandwichServer,
  type TunnelConfig,
} from "../tunnel/mod.ts";
import type { HostPort } from "./flags.ts";

/** Everything `run` needs, already parsed. */
export interface RunOptions {
  /** YAML files or folders. */
  readonly config: readonly string[];
  /** Certificate folder in Istio's layout. */
  readonly certs: string;
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
  /** Overrides of the HTTP/2 and pool tunables. */
  readonly tunnel?: Partial<TunnelConfig>;
  /** Tracing choices; the provider itself comes from the MeshConfig. */
  readonly tracing?: TracingRunOptions;
}

/** How `run` traces requests. */
export interface TracingRunOptions {
  /** An `opentelemetry` provider of the MeshConfig. @default `defaultProviders.tracing[0]` */
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
  readonly pool: HbonePool;
  /** The span exporter, when a tracing provider is configured. */
  readonly traceExporter?: OtlpExporter;
  readonly admin: readonly ServedApp[];
  /** Readiness false, stop accepting, GOAWAY, wait up to `graceMs`, then release everything. */
  close(graceMs?: number): Promise<void>;
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
  const identity = await IdentitySource.fromDir(options.certs);
  identity.watch(options.certs);
  const trustDomains = [options.trustDomain, ...options.trustDomainAliases];
  if (identity.current.trustDomain !== options.trustDomain) {
    log.warn("Certificate trust domain differs from --trust-domain", {
      certificate: identity.current.identity,
      trustDomain: options.trustDomain,
    });
  }
  const meshConfig = options.meshConfig
    ? await readMeshConfig(options.meshConfig)
    : DEFAULT_MESH_CONFIG;
  for (const warning of meshConfig.warnings) log.warn("MeshConfig setting ignored", { warning });
  const traceProvider = tracingProvider(options, meshConfig);
  const meshOptions = {
    namespace: options.namespace,
    name: options.name,
    trustDomain: options.trustDomain,
    trustDomainAliases: [...options.trustDomainAliases, ...meshConfig.trustDomainAliases],
    meshConfig,
  };
  const holder = new SnapshotHolder<ProxyConfig>(emptyConfig(meshOptions));
  let watch: ConfigWatch<ProxyConfig>;
  try {
    watch = await watchConfig(
      options.config,
      (docs, version) => buildConfig(docs, version, meshOptions),
      holder,
    );
  } catch (e) {
    identity.close();
    throw e;
  }
  if (!watch.initial.applied) {
    identity.close();
    await watch.close();
    const lines = watch.initial.problems.map(formatProblem).join("\n  ");
    throw new Error(`Config has errors:\n  ${lines}`);
  }
  for (const p of watch.initial.problems) log.warn("Config problem", { ...p });
  const pool = new HbonePool(identity, config);
  const opener = options.plainUpstreams ? new PlainOpener(config.connectTimeoutMs) : pool;
  const balancer = new Balancer();
  const outbound = new Outbound({ opener, balancer, ztunnelPort: options.ztunnelPort });
  const upstreams = new HttpUpstreams({ opener, ztunnelPort: options.ztunnelPort });
  const jwks = new RemoteJwks();
  // Fetch remote key sets at load, so the first request of an issuer does not wait for them.
  jwks.prefetch(holder.current.authn.remotes);
  const unsubscribeJwks = holder.subscribe((next) => jwks.prefetch(next.authn.remotes));
  const metrics = new IstioMetrics({ cluster: options.cluster ?? "Kubernetes" });
  const tracing = traceProvider && startTracing(options, traceProvider);
  const chain = compose<RequestState>([
    // First, so that it also sees the requests that policies refuse.
    metricsFilter(metrics),
    ...(tracing ? [tracing.filter] : []),
    customAuthzFilter(new ExtAuthz({ providers: meshConfig.extAuthz, upstreams, balancer })),
    authnFilter(jwks),
    authzFilter(),
    router({ upstreams, balancer }),
  ]);
  let ready = false;
  const handle = inboundHandler({
    config: () => holder.current,
    outbound,
    http: { chain },
    metrics,
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
      http: { chain },
    })
    : undefined;
  const sandwich = options.sandwich
    ? await listenSandwich(
      options.sandwich.hostname,
      options.sandwich.port,
      (connection) => handle(fromSandwich(connection)),
    )
    : undefined;
  const admin = [
    serveApp(readinessApp(() => ready), addressText(options.readiness)),
    serveApp(
      metricsApp(
        prometheusRenderer(metrics.registry, {
          extra: () => processMetrics(hbone, pool, holder, tracing?.exporter),
        }),
      ),
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
    pool,
    traceExporter: tracing?.exporter,
    admin,
    close: async (graceMs = 5_000) => {
      ready = false;
      await watch.close();
      identity.close();
      await sandwich?.close();
      await devHttp?.close();
      await hbone.close(graceMs);
      await tracing?.exporter.close();
      upstreams.close();
      unsubscribeJwks();
      jwks.close();
      pool.close();
      await Promise.all(admin.map((a) => a.shutdown()));
    },
  };
}

/**
 * The MeshConfig `opentelemetry` provider that `--trace-provider` names, else
 * `defaultProviders.tracing[0]`; none without one (Istio: "no provider resolved ⇒ tracing
 * disabled"), or with a warning when the default one cannot be used.
 *
 * @throws Error when `--trace-provider` names no `opentelemetry` provider with `http`
 */
function tracingProvider(options: RunOptions, meshConfig: MeshConfig) {
  const chosen = options.tracing?.provider;
  const name = chosen ?? meshConfig.defaultProviders.tracing[0];
  if (!name) return undefined;
  const provider = meshConfig.tracing.get(name);
  if (provider?.http) return { ...provider, http: provider.http };
  const reason = provider
    ? "exports with gRPC; only OTLP/HTTP (opentelemetry.http) is supported"
    : meshConfig.providerNames.includes(name)
    ? "is not an opentelemetry provider"
    : "is not among the MeshConfig's extensionProviders";
  if (chosen) throw new Error(`Tracing provider "${name}" ${reason}`);
  log.warn("Tracing is off", { provider: name, reason });
  return undefined;
}

/**
 * The tracing filter and its exporter. Spans go to the collector with plain HTTP, not through
 * the mesh.
 */
function startTracing(
  options: RunOptions,
  provider: NonNullable<ReturnType<typeof tracingProvider>>,
) {
  const { namespace, name: gateway } = options;
  const url = otlpUrl({ ...provider, path: provider.http.path });
  const exporter = new OtlpExporter({
    url,
    // Istio's service cluster for the proxy: `<canonical name>.<namespace>`.
    serviceName: `${gateway}.${namespace}`,
    headers: provider.http.headers,
    timeoutMs: provider.http.timeoutMs,
  });
  const podIp = options.tracing?.podIp ?? options.hbone.hostname;
  const podName = options.tracing?.podName ?? gateway;
  const filter = tracingFilter<RequestState>({
    sink: exporter,
    samplingPercentage: options.tracing?.sampling,
    proxy: {
      nodeId: `waypoint~${podIp}~${podName}.${namespace}~${namespace}.svc.cluster.local`,
      canonicalService: gateway,
      namespace,
      meshId: options.trustDomain,
      clusterId: options.cluster ?? "Kubernetes",
    },
  });
  log.info("Tracing", { provider: provider.name, url, sampling: options.tracing?.sampling ?? 1 });
  return { exporter, filter };
}

/** Our own `waypoint_` gauges and counters. */
function processMetrics(
  hbone: HboneServer,
  pool: HbonePool,
  holder: SnapshotHolder<ProxyConfig>,
  traces?: OtlpExporter,
): string {
  const s = pool.stats;
  const t = traces?.stats;
  const traceLines = t
    ? [
      "# TYPE waypoint_trace_spans_exported_total counter",
      `waypoint_trace_spans_exported_total ${t.exported}`,
      "# TYPE waypoint_trace_spans_dropped_total counter",
      `waypoint_trace_spans_dropped_total{reason="queue_full"} ${t.dropped}`,
      `waypoint_trace_spans_dropped_total{reason="export_failed"} ${t.failed}`,
      "# TYPE waypoint_trace_export_errors_total counter",
      `waypoint_trace_export_errors_total ${t.exportErrors}`,
    ]
    : [];
  return [
    "# TYPE waypoint_downstream_connections gauge",
    `waypoint_downstream_connections ${hbone.sessions}`,
    "# TYPE waypoint_upstream_connections gauge",
    `waypoint_upstream_connections ${s.connections}`,
    "# TYPE waypoint_upstream_streams gauge",
    `waypoint_upstream_streams ${s.streams}`,
    "# TYPE waypoint_config_version gauge",
    `waypoint_config_version ${holder.current.version}`,
    ...traceLines,
    "",
  ].join("\n");
}

function addressText(a: HostPort): string {
  return nodeText(a.hostname, a.port);
}
