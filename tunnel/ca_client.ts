/**
 * The Istio CA client: a fresh P-256 key and CSR, then one `CreateCertificate` call to istiod
 * (hbone.md §5) over TLS and our own HTTP/2, authenticated by the pod's projected service-account
 * token. No `node:http2` here: Deno's aborts the process on a peer GOAWAY, and istiod sends one
 * whenever it restarts.
 *
 * Invariants:
 * - Each call reads the token file again (kubelet rotates projected tokens) and opens its own
 *   connection, closed when the call ends: a renewal runs twice a day, a pooled session is not
 *   worth keeping.
 * - The CA's certificate is verified against the given roots and `hostname`, never skipped.
 * - The whole call (connect, handshake, RPC) ends within `timeoutMs`.
 * - A failure is a {@link CaError} naming the CA address and the reason; its kind tells a retry
 *   worth making (`unreachable`) from one that needs a person (`token`, `unauthenticated`).
 */
import tls from "node:tls";
import { connectH2 } from "../h2/mod.ts";
import { callUnary, GrpcError } from "../grpc/mod.ts";
import {
  type CertificateResponse,
  CREATE_CERTIFICATE_PATH,
  decodeCertificateResponse,
  encodeCertificateRequest,
} from "./_ca_messages.ts";
import { makeKeyAndCsr } from "./_csr.ts";
import { type TlsMaterial, tlsMaterialOf } from "./identity.ts";

/** Where istiod serves the CA (and XDS), as ztunnel's `CA_ADDRESS` default. */
export const DEFAULT_CA_ADDRESS = "istiod.istio-system.svc:15012";
/** The projected token Istio's waypoint template mounts (audience `istio-ca`). */
export const DEFAULT_CA_TOKEN_FILE = "/var/run/secrets/tokens/istio-token";
/** The mesh root from ConfigMap `istio-ca-root-cert`, as Istio's proxies mount it. */
export const DEFAULT_CA_ROOT_FILE = "/var/run/secrets/istio/root-cert.pem";

/** Closed set of CA failures. */
export type CaErrorKind =
  | "token" // the token or root file cannot be read, or is empty
  | "unreachable" // connect, TLS, HTTP/2 or deadline; or the CA said UNAVAILABLE
  | "unauthenticated" // the CA refused the token (gRPC UNAUTHENTICATED)
  | "rejected" // any other gRPC status
  | "response"; // the answer is not a usable certificate for our key

/** A failed certificate request. */
export class CaError extends Error {
  readonly kind: CaErrorKind;
  /** `host:port` of the CA. */
  readonly address: string;

  constructor(kind: CaErrorKind, address: string, reason: string) {
    super(`Certificate request to CA ${address} failed (${kind}): ${reason}`);
    this.name = "CaError";
    this.kind = kind;
    this.address = address;
  }
}

/** Options of {@link IstioCaClient}. */
export interface CaClientOptions {
  /** `host:port` of the CA. @default {@link DEFAULT_CA_ADDRESS} */
  readonly address?: string;
  /** Name checked in the CA's certificate and sent as SNI. @default the host of `address` */
  readonly hostname?: string;
  /** The projected token, read at each call. @default {@link DEFAULT_CA_TOKEN_FILE} */
  readonly tokenFile?: string;
  /** PEM roots the CA's serving certificate chains to. @default {@link DEFAULT_CA_ROOT_FILE} */
  readonly rootFile?: string;
  /** SPIFFE id put in the CSR. */
  readonly identity: string;
  /** Sent as the `clusterid` header and `ClusterID` metadata. @default "Kubernetes" */
  readonly clusterId?: string;
  /** Lifetime asked for, seconds. @default 86400 (ztunnel's and pilot-agent's `SECRET_TTL`) */
  readonly ttlSeconds?: number;
  /** Bound of one whole call. @default 10 s */
  readonly timeoutMs?: number;
}

/** Asks an Istio CA for our workload certificate. */
export class IstioCaClient {
  /** `host:port` of the CA, for logs and errors. */
  readonly address: string;
  readonly #host: string;
  readonly #port: number;
  readonly #hostname: string;
  readonly #options: CaClientOptions;

  /** @throws CaError when `address` has no port */
  constructor(options: CaClientOptions) {
    this.#options = options;
    this.address = options.address ?? DEFAULT_CA_ADDRESS;
    const at = this.address.lastIndexOf(":");
    const port = Number(this.address.slice(at + 1));
    if (at <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new CaError("unreachable", this.address, "address is not host:port");
    }
    this.#host = this.address.slice(0, at).replace(/^\[(.*)\]$/, "$1");
    this.#port = port;
    this.#hostname = options.hostname ?? this.#host;
  }

  /**
   * Makes a key, sends its CSR and returns the issued material.
   *
   * @returns Key, chain (leaf first) and roots, checked as a usable pair
   * @throws CaError naming the CA and the reason
   */
  async fetch(): Promise<TlsMaterial> {
    const o = this.#options;
    const [token, root] = await Promise.all([
      this.#readFile(o.tokenFile ?? DEFAULT_CA_TOKEN_FILE, "token"),
      this.#readFile(o.rootFile ?? DEFAULT_CA_ROOT_FILE, "CA root"),
    ]);
    const { keyPem, csrPem } = await makeKeyAndCsr(o.identity);
    const clusterId = o.clusterId ?? "Kubernetes";
    const request = encodeCertificateRequest({
      csr: csrPem,
      validitySeconds: o.ttlSeconds ?? 86_400,
      metadata: { ClusterID: clusterId },
    });
    const deadline = Date.now() + (o.timeoutMs ?? 10_000);
    const socket = await this.#connect(root, deadline);
    const session = connectH2(socket, { pingIntervalMs: 0 });
    let response: CertificateResponse;
    try {
      const bytes = await callUnary(session, request, {
        path: CREATE_CERTIFICATE_PATH,
        authority: this.#hostname,
        metadata: { authorization: `Bearer ${token}`, clusterid: clusterId },
        timeoutMs: Math.max(1, deadline - Date.now()),
        peer: this.address,
      });
      response = decodeCertificateResponse(bytes);
    } catch (e) {
      throw this.#fromCall(e);
    } finally {
      session.destroy();
    }
    return this.#material(response, keyPem, root);
  }

  async #readFile(path: string, what: string): Promise<string> {
    let text: string;
    try {
      text = (await Deno.readTextFile(path)).trim();
    } catch (e) {
      throw new CaError("token", this.address, `cannot read the ${what} file ${path}: ${e}`);
    }
    if (!text) throw new CaError("token", this.address, `the ${what} file ${path} is empty`);
    return text;
  }

  #connect(root: string, deadline: number): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: this.#host,
        port: this.#port,
        servername: this.#hostname,
        ca: root,
        ALPNProtocols: ["h2"],
        minVersion: "TLSv1.2",
        // Verify the name we were told, not the address we dialed (istiod is reached by a
        // Service name, tests by a loopback address).
        checkServerIdentity: (_host, cert) => tls.checkServerIdentity(this.#hostname, cert),
      });
      const fail = (reason: string) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new CaError("unreachable", this.address, reason));
      };
      const timer = setTimeout(
        () => fail("no TLS session before the deadline"),
        Math.max(1, deadline - Date.now()),
      );
      socket.once("error", (e) => fail(e.message));
      socket.once("secureConnect", () => {
        clearTimeout(timer);
        socket.removeAllListeners("error");
        if (socket.alpnProtocol !== "h2") {
          fail(`ALPN is ${socket.alpnProtocol || "none"}, not h2`);
          return;
        }
        resolve(socket);
      });
    });
  }

  #fromCall(e: unknown): CaError {
    if (!(e instanceof GrpcError)) return new CaError("response", this.address, String(e));
    const reason = e.message.replace(/^gRPC call to \S+ failed /, "");
    if (e.kind === "status" && e.code === 16) {
      return new CaError("unauthenticated", this.address, reason);
    }
    // UNAVAILABLE and DEADLINE_EXCEEDED are the CA being busy or restarting: worth a retry.
    const transient = e.kind === "transport" || e.kind === "timeout" ||
      (e.kind === "status" && (e.code === 14 || e.code === 4));
    if (transient) return new CaError("unreachable", this.address, reason);
    return new CaError(e.kind === "status" ? "rejected" : "response", this.address, reason);
  }

  /**
   * Our material from the CA's answer: the last `cert_chain` element is the root bundle unless
   * `root_cert` came (ca.proto's rule); a lone leaf is trusted with the configured roots.
   */
  #material(response: CertificateResponse, key: string, configuredRoot: string): TlsMaterial {
    const chain = response.certChain;
    if (chain.length === 0) throw new CaError("response", this.address, "empty cert_chain");
    const rootsInChain = response.roots.length === 0 && chain.length > 1;
    const certs = rootsInChain ? chain.slice(0, -1) : chain;
    const root = response.roots.length > 0
      ? response.roots.join("\n")
      : rootsInChain
      ? chain[chain.length - 1]
      : configuredRoot;
    try {
      return tlsMaterialOf(
        { key, certChain: certs.map(withNewline).join(""), root },
        `CA ${this.address}`,
      );
    } catch (e) {
      throw new CaError("response", this.address, (e as Error).message);
    }
  }
}

function withNewline(pem: string): string {
  return pem.endsWith("\n") ? pem : pem + "\n";
}
