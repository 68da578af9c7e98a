/**
 * The contract between WasmPlugin resources (compiled by `wasm/plugins.ts`) and the proxy-wasm
 * host (`wasm/host/`): what one attached plugin is, where its module comes from, and how the host
 * reaches the network. Plain data, so `check` and tests build it without I/O.
 */

/** Where in the chain a plugin runs (l7.md §4.3). */
export type WasmPhase = "AUTHN" | "AUTHZ" | "STATS" | "UNSPECIFIED_PHASE";

/** What a fatal plugin error does (l7.md §4.1). */
export type FailStrategy = "FAIL_CLOSE" | "FAIL_OPEN" | "FAIL_RELOAD";

/** `imagePullPolicy` after defaulting (`latest` tags pull `Always`). */
export type PullPolicy = "IfNotPresent" | "Always";

/** Registry credentials from an `imagePullSecret` (a `kubernetes.io/dockerconfigjson` Secret). */
export interface RegistryAuth {
  /** Registry host as written in the secret, such as `127.0.0.1:5000`. */
  readonly registry: string;
  readonly username?: string;
  readonly password?: string;
  /** `auth` field: base64 of `user:password`. */
  readonly auth?: string;
}

/** Where a module's bytes come from. */
export interface ModuleSource {
  /** As written, with the scheme defaulted: `oci://`, `file://`, `http://` or `https://`. */
  readonly url: string;
  /**
   * Expected sha256, lowercase hex: of the module bytes for `file://` and `http(s)://`, of the
   * image manifest for `oci://` (what Istio checks it against, and what an `@sha256:` url names).
   */
  readonly sha256?: string;
  readonly pullPolicy: PullPolicy;
  /** Credentials resolved from `imagePullSecret`, when one is named and found. */
  readonly auth?: readonly RegistryAuth[];
  /** Changes whenever the resource changes, so `Always` re-pulls (Istio passes resourceVersion). */
  readonly revision: string;
}

/** One WasmPlugin as attached to this waypoint, after defaulting. */
export interface WasmPluginSpec {
  /** `namespace/name` of the resource, for logs and metrics. */
  readonly ref: string;
  /** Envoy's plugin name, `<namespace>.<name>`: the `plugin_name` property. */
  readonly name: string;
  /** `pluginName`: the root id the SDKs use to find their root context. */
  readonly rootId: string;
  readonly phase: WasmPhase;
  /** `priority`; unset sorts after every explicit value. */
  readonly priority?: number;
  readonly failStrategy: FailStrategy;
  /** `pluginConfig` as JSON text (the plugin configuration buffer); `""` when absent. */
  readonly pluginConfig: string;
  /** `vmConfig.env`: INLINE values and HOST values copied from our environment at compile time. */
  readonly env: Readonly<Record<string, string>>;
  readonly source: ModuleSource;
  /**
   * Identity of the VM this plugin runs in: two specs with equal keys share one VM. Built from the
   * module source, env, root id and plugin config.
   */
  readonly vmKey: string;
}

/** Fetches module bytes (file, http(s), OCI), verified and cached. */
export interface ModuleLoader {
  /**
   * @throws WasmFetchError naming the url and the reason when the module cannot be had
   */
  load(source: ModuleSource): Promise<Uint8Array>;
}

/** A `proxy_http_call`: the host sends it to a service named by host, through the mesh. */
export interface HttpCallRequest {
  /** The `upstream` argument: a service host (`name.ns.svc.cluster.local`, optionally `:port`). */
  readonly cluster: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array;
  readonly trailers: readonly (readonly [string, string])[];
  readonly timeoutMs: number;
}

/** The answer to a {@link HttpCallRequest}; a failure resolves with `status` 0 semantics by throwing. */
export interface HttpCallResponse {
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array;
  readonly trailers: readonly (readonly [string, string])[];
}

/** Sends plugin http calls; rejects when the cluster is unknown or the call fails. */
export type HttpCaller = (request: HttpCallRequest) => Promise<HttpCallResponse>;

/** A unary `proxy_grpc_call`: the host sends it to a mesh service named like an http call's. */
export interface GrpcCallRequest {
  /**
   * The service: `envoy_grpc.cluster_name` of the plugin's serialized `GrpcService`, or the
   * argument itself when it is a plain cluster name (`outbound|<port>||<host>` or `<host>[:<port>]`).
   */
  readonly cluster: string;
  /** `envoy_grpc.authority`, when the plugin set one. */
  readonly authority?: string;
  /** `package.Service`. */
  readonly service: string;
  readonly method: string;
  /** Initial metadata: the plugin's, then the `GrpcService`'s `initial_metadata`. */
  readonly metadata: readonly (readonly [string, string])[];
  /** The request message, without the gRPC prefix. */
  readonly message: Uint8Array;
  readonly timeoutMs: number;
  /** Aborted when the plugin cancels the call or its deadline passes. */
  readonly signal: AbortSignal;
}

/** How a {@link GrpcCallRequest} ended. */
export interface GrpcCallResponse {
  /** `grpc-status`; 0 with `body`, the response message. */
  readonly status: number;
  /** `grpc-message`, decoded. */
  readonly message: string;
  readonly body?: Uint8Array;
}

/** Sends plugin gRPC calls; rejects when the call cannot be made (the host reports UNAVAILABLE). */
export type GrpcCaller = (request: GrpcCallRequest) => Promise<GrpcCallResponse>;
