/**
 * The options of `run` ({@link RunOptions}), already parsed from flags or built by a test; the
 * pieces of `run` read the fields they use.
 */
import type { CaClientOptions, RotationOptions, TunnelConfig } from "../tunnel/mod.ts";
import type { HostPort } from "./flags.ts";

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
