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
  nodeText,
  Outbound,
  type ProxyConfig,
  readMeshConfig,
  type RequestState,
  router,
} from "../proxy/mod.ts";
import { RemoteJwks } from "../policy/mod.ts";
import { IstioMetrics, metricsFilter, prometheusRenderer } from "../telemetry/mod.ts";
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
  const chain = compose<RequestState>([
    // First, so that it also sees the requests that policies refuse.
    metricsFilter(metrics),
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
        prometheusRenderer(metrics.registry, { extra: () => processMetrics(hbone, pool, holder) }),
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
    admin,
    close: async (graceMs = 5_000) => {
      ready = false;
      await watch.close();
      identity.close();
      await sandwich?.close();
      await devHttp?.close();
      await hbone.close(graceMs);
      upstreams.close();
      unsubscribeJwks();
      jwks.close();
      pool.close();
      await Promise.all(admin.map((a) => a.shutdown()));
    },
  };
}

/** Our own `waypoint_` gauges until the telemetry issue brings Istio's metrics. */
function processMetrics(
  hbone: HboneServer,
  pool: HbonePool,
  holder: SnapshotHolder<ProxyConfig>,
): string {
  const s = pool.stats;
  return [
    "# TYPE waypoint_downstream_connections gauge",
    `waypoint_downstream_connections ${hbone.sessions}`,
    "# TYPE waypoint_upstream_connections gauge",
    `waypoint_upstream_connections ${s.connections}`,
    "# TYPE waypoint_upstream_streams gauge",
    `waypoint_upstream_streams ${s.streams}`,
    "# TYPE waypoint_config_version gauge",
    `waypoint_config_version ${holder.current.version}`,
    "",
  ].join("\n");
}

function addressText(a: HostPort): string {
  return nodeText(a.hostname, a.port);
}
