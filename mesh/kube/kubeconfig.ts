/**
 * Where the Kubernetes API is and how to prove who we are: in-cluster (the pod's service account)
 * or a kubeconfig file's current context. Resolving is pure ({@link parseKubeconfig},
 * {@link inClusterTarget}); {@link KubeAccess} then reads the files, holds the TLS client and
 * keeps the bearer token fresh.
 *
 * Invariants:
 * - Projected service account tokens rotate (the kubelet rewrites the file well before expiry), so
 *   a token file is re-read at most {@link TOKEN_REREAD_MS} after the last read, and at once after
 *   the API server answered 401.
 * - Exec and auth-provider plugins are refused: running commands from a config file is not
 *   something a proxy should do, and a pod never needs it.
 */
import { dirname, isAbsolute, join } from "node:path";
import { parse } from "yaml";

/** How often a token file is read again, as client-go's cached file token source does. */
export const TOKEN_REREAD_MS = 60_000;

/** A PEM value given inline or as a file to read. */
export type PemSource = { readonly pem: string } | { readonly file: string };

/** The API server and credentials of one context, before any file is read. */
export interface KubeTarget {
  /** `https://host:port` (or `http://` for local test servers). */
  readonly server: string;
  /** The context's namespace, or the pod's; `default` when neither says. */
  readonly namespace: string;
  /** Extra roots for the server certificate; the system roots are trusted too. */
  readonly ca?: PemSource;
  /** Client certificate and key for mutual TLS. */
  readonly clientCert?: { readonly cert: PemSource; readonly key: PemSource };
  readonly token?: string;
  readonly tokenFile?: string;
  /** For error messages: `kubeconfig FILE context NAME` or `in-cluster`. */
  readonly origin: string;
}

/** Paths and environment of a pod's service account, overridable for tests. */
export interface InClusterOptions {
  /** @default "/var/run/secrets/kubernetes.io/serviceaccount" */
  readonly dir?: string;
  /** @default Deno.env.get */
  readonly env?: (name: string) => string | undefined;
}

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * The in-cluster target: `KUBERNETES_SERVICE_HOST/PORT`, the service account's `ca.crt` and
 * `token` files; the namespace file is read by {@link KubeAccess.open}.
 *
 * @param options Folder and environment
 * @returns The target
 * @throws Error when the environment does not name the API server (not running in a pod)
 */
export function inClusterTarget(options: InClusterOptions = {}): KubeTarget {
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const dir = options.dir ?? SERVICE_ACCOUNT_DIR;
  const host = env("KUBERNETES_SERVICE_HOST");
  const port = env("KUBERNETES_SERVICE_PORT");
  if (!host || !port) {
    throw new Error(
      "Not running in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset (give --kubeconfig FILE)",
    );
  }
  const hostText = host.includes(":") ? `[${host}]` : host;
  return {
    server: `https://${hostText}:${port}`,
    namespace: "",
    ca: { file: join(dir, "ca.crt") },
    tokenFile: join(dir, "token"),
    origin: "in-cluster",
  };
}

/**
 * Resolves a kubeconfig's context: its cluster (server, CA) and user (token, token file or client
 * certificate). Relative paths are relative to the kubeconfig's folder, as kubectl reads them.
 *
 * @param text The kubeconfig YAML
 * @param file Its path, for relative paths and messages
 * @param context The context to use. @default the file's `current-context`
 * @returns The target
 * @throws Error naming the file, context and field at fault, and for exec or auth-provider users
 */
export function parseKubeconfig(text: string, file: string, context?: string): KubeTarget {
  // deno-lint-ignore no-explicit-any
  const doc: any = parse(text) ?? {};
  const name = context ?? doc["current-context"];
  const at = `kubeconfig ${file}`;
  if (typeof name !== "string" || name === "") throw new Error(`${at}: no current-context`);
  const origin = `${at} context ${name}`;
  const ctx = named(doc.contexts, name, "context", `${at}: no context named ${name}`);
  const cluster = named(
    doc.clusters,
    ctx?.cluster,
    "cluster",
    `${origin}: no cluster named ${ctx?.cluster}`,
  );
  const user = ctx?.user === undefined
    ? {}
    : named(doc.users, ctx.user, "user", `${origin}: no user named ${ctx.user}`);
  if (typeof cluster.server !== "string" || !/^https?:\/\//.test(cluster.server)) {
    throw new Error(`${origin}: cluster.server must be an http(s) URL: got ${cluster.server}`);
  }
  if (user.exec || user["auth-provider"]) {
    const plugin = user.exec ? `exec (${user.exec.command ?? "?"})` : "auth-provider";
    throw new Error(
      `${origin}: user ${ctx.user} authenticates with an ${plugin} plugin, which is not supported: use a token, tokenFile or client certificate`,
    );
  }
  const base = dirname(file);
  const ca = pemSource(cluster, "certificate-authority", base, origin);
  if (cluster["insecure-skip-tls-verify"] === true && cluster.server.startsWith("https:")) {
    throw new Error(
      `${origin}: insecure-skip-tls-verify is not supported (Deno's fetch always verifies): give certificate-authority or certificate-authority-data`,
    );
  }
  const cert = pemSource(user, "client-certificate", base, origin);
  const key = pemSource(user, "client-key", base, origin);
  if ((cert === undefined) !== (key === undefined)) {
    throw new Error(`${origin}: user ${ctx.user} needs both client-certificate and client-key`);
  }
  return {
    server: cluster.server.replace(/\/+$/, ""),
    namespace: typeof ctx.namespace === "string" && ctx.namespace ? ctx.namespace : "default",
    ca,
    clientCert: cert && key ? { cert, key } : undefined,
    token: typeof user.token === "string" ? user.token : undefined,
    tokenFile: typeof user.tokenFile === "string" ? resolvePath(base, user.tokenFile) : undefined,
    origin,
  };
}

// deno-lint-ignore no-explicit-any
function named(list: unknown, name: unknown, field: string, missing: string): any {
  const entry = Array.isArray(list) ? list.find((e) => e?.name === name) : undefined;
  if (!entry || typeof entry[field] !== "object" || entry[field] === null) {
    throw new Error(missing);
  }
  return entry[field];
}

/** `<field>-data` (base64 PEM) or `<field>` (a file). */
function pemSource(
  // deno-lint-ignore no-explicit-any
  section: any,
  field: string,
  base: string,
  origin: string,
): PemSource | undefined {
  const data = section[`${field}-data`];
  if (typeof data === "string" && data !== "") {
    try {
      return { pem: new TextDecoder().decode(Uint8Array.from(atob(data), (c) => c.charCodeAt(0))) };
    } catch {
      throw new Error(`${origin}: ${field}-data is not base64`);
    }
  }
  const file = section[field];
  return typeof file === "string" && file !== "" ? { file: resolvePath(base, file) } : undefined;
}

function resolvePath(base: string, path: string): string {
  return isAbsolute(path) ? path : join(base, path);
}

/** Reads a PEM source. */
async function readPem(source: PemSource, what: string, origin: string): Promise<string> {
  if ("pem" in source) return source.pem;
  try {
    return await Deno.readTextFile(source.file);
  } catch (error) {
    throw new Error(`${origin}: cannot read ${what} ${source.file}: ${(error as Error).message}`);
  }
}

/**
 * A connection to the API server: its URL, the TLS client (CA and client certificate) and the
 * current bearer token.
 */
export class KubeAccess {
  /** API server base URL, without a trailing slash. */
  readonly server: string;
  /** The context's (or pod's) namespace. */
  readonly namespace: string;
  /** Passed to `fetch` as `client`; undefined when the defaults do. */
  readonly client: Deno.HttpClient | undefined;
  readonly #target: KubeTarget;
  readonly #now: () => number;
  #token: string | undefined;
  #readAt = -Infinity;

  private constructor(target: KubeTarget, client: Deno.HttpClient | undefined, now: () => number) {
    this.server = target.server;
    this.namespace = target.namespace || "default";
    this.client = client;
    this.#target = target;
    this.#token = target.token;
    this.#now = now;
  }

  /**
   * Reads the CA, client certificate and namespace file, and makes the TLS client.
   *
   * @param target From {@link parseKubeconfig} or {@link inClusterTarget}
   * @param options `now` for the token re-read clock (tests)
   * @throws Error naming the file that cannot be read or the PEM Deno refuses
   */
  static async open(
    target: KubeTarget,
    options: { now?: () => number } = {},
  ): Promise<KubeAccess> {
    const origin = target.origin;
    const caCerts = target.ca ? [await readPem(target.ca, "CA", origin)] : undefined;
    const cert = target.clientCert && await readPem(target.clientCert.cert, "certificate", origin);
    const key = target.clientCert && await readPem(target.clientCert.key, "key", origin);
    let namespace = target.namespace;
    if (!namespace && target.tokenFile) {
      const file = join(dirname(target.tokenFile), "namespace");
      namespace = (await Deno.readTextFile(file).catch(() => "")).trim();
    }
    let client: Deno.HttpClient | undefined;
    if (caCerts || cert) {
      try {
        client = Deno.createHttpClient({ caCerts, ...(cert && key ? { cert, key } : {}) });
      } catch (error) {
        throw new Error(`${origin}: unusable TLS material: ${(error as Error).message}`);
      }
    }
    return new KubeAccess({ ...target, namespace }, client, options.now ?? Date.now);
  }

  /** Opens `--kubeconfig FILE` when given, else the in-cluster service account. */
  static async fromEnvironment(kubeconfig?: string): Promise<KubeAccess> {
    if (!kubeconfig) return await KubeAccess.open(inClusterTarget());
    let text: string;
    try {
      text = await Deno.readTextFile(kubeconfig);
    } catch (error) {
      throw new Error(`Cannot read kubeconfig ${kubeconfig}: ${(error as Error).message}`);
    }
    return await KubeAccess.open(parseKubeconfig(text, kubeconfig));
  }

  /** The `authorization` header value, re-reading a token file when due. */
  async authorization(): Promise<string | undefined> {
    const file = this.#target.tokenFile;
    if (file && this.#now() - this.#readAt >= TOKEN_REREAD_MS) {
      try {
        this.#token = (await Deno.readTextFile(file)).trim();
        this.#readAt = this.#now();
      } catch (error) {
        // Keep the previous token: the file is replaced atomically, a failed read is transient.
        if (this.#token === undefined) {
          throw new Error(`${this.#target.origin}: cannot read token file ${file}: ${error}`);
        }
      }
    }
    return this.#token ? `Bearer ${this.#token}` : undefined;
  }

  /** The server refused our token: read the file again before the next request. */
  tokenRejected(): void {
    this.#readAt = -Infinity;
  }

  /** Releases the TLS client. */
  close(): void {
    this.client?.close();
  }
}
