/**
 * A test Istio CA on grpc-js (not our gRPC code): checks the bearer token and the `clusterid`
 * header, signs each CSR's key for the identity its token stands for (istiod ignores the CSR's
 * SAN the same way), and answers `cert_chain = [leaf, root]`. Its serving certificate names
 * `istiod.istio-system.svc`. It can be stopped and started again on the same port.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { signLeaf } from "../../tunnel/dev_ca.ts";
import { makeKeyAndCsr } from "../../tunnel/_csr.ts";

export const CA_HOSTNAME = "istiod.istio-system.svc";

/** What the server saw in one call. */
export interface CaCall {
  readonly token: string;
  readonly clusterId: string;
  readonly metadataClusterId: string;
  readonly validitySeconds: number;
}

/** Options of {@link startCaServer}. */
export interface CaServerOptions {
  readonly host: string;
  /** A CA folder (`tests/fixtures/pki.ts` `caDir`). */
  readonly caDir: string;
  /** Accepted bearer token → the identity it is issued. */
  readonly tokens: Readonly<Record<string, string>>;
  /** Lifetime of issued certificates. */
  readonly validityMs: number;
}

/** A running test CA. */
export interface CaServer {
  readonly port: number;
  readonly calls: readonly CaCall[];
  /** Stops listening (the port stays reserved for {@link CaServer.start}). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
}

const PROTO = new URL("./_istio_ca.proto", import.meta.url).pathname;

/** Starts the CA on `host`, port picked by the system. */
export async function startCaServer(options: CaServerOptions): Promise<CaServer> {
  const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true });
  const proto = grpc.loadPackageDefinition(definition) as unknown as {
    istio: { v1: { auth: { IstioCertificateService: { service: grpc.ServiceDefinition } } } };
  };
  const service = proto.istio.v1.auth.IstioCertificateService.service;
  const serving = await servingCert(options.caDir);
  const root = await Deno.readTextFile(`${options.caDir}/root-cert.pem`);
  // The root is passed explicitly (libraries.md: grpc-js would otherwise read the system bundle).
  const credentials = grpc.ServerCredentials.createSsl(Buffer.from(root), [
    { private_key: Buffer.from(serving.key), cert_chain: Buffer.from(serving.chain) },
  ], false);
  const calls: CaCall[] = [];
  let port = 0;
  let server: grpc.Server | undefined;
  const start = async () => {
    server = new grpc.Server();
    server.addService(service, { CreateCertificate: createCertificate(options, calls, root) });
    port = await new Promise<number>((resolve, reject) =>
      server!.bindAsync(
        `${options.host}:${port}`,
        credentials,
        (e, p) => e ? reject(e) : resolve(p),
      )
    );
  };
  await start();
  return {
    get port() {
      return port;
    },
    calls,
    start,
    stop: () =>
      new Promise<void>((resolve) => {
        server?.forceShutdown();
        server = undefined;
        resolve();
      }),
  };
}

type Handler = grpc.handleUnaryCall<
  {
    csr: string;
    validity_duration: number;
    metadata?: { fields?: Record<string, { stringValue?: string }> };
  },
  { cert_chain: string[] }
>;

function createCertificate(options: CaServerOptions, calls: CaCall[], root: string): Handler {
  return async (call, callback) => {
    const auth = String(call.metadata.get("authorization")[0] ?? "");
    const token = auth.replace(/^Bearer /, "");
    calls.push({
      token,
      clusterId: String(call.metadata.get("clusterid")[0] ?? ""),
      metadataClusterId: call.request.metadata?.fields?.ClusterID?.stringValue ?? "",
      validitySeconds: call.request.validity_duration,
    });
    const identity = options.tokens[token];
    if (!auth.startsWith("Bearer ") || !identity) {
      callback({
        code: grpc.status.UNAUTHENTICATED,
        details: "authenticate failed: token not accepted",
      });
      return;
    }
    try {
      const csr = new x509.Pkcs10CertificateRequest(call.request.csr);
      const signed = await signLeaf(options.caDir, {
        publicKey: await csr.publicKey.export(),
        uris: [identity],
        validityMs: options.validityMs,
      });
      const leaf = signed.certChain.slice(
        0,
        signed.certChain.indexOf("-----END CERTIFICATE-----") + 25,
      );
      callback(null, { cert_chain: [leaf, root] });
    } catch (e) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: String(e) });
    }
  };
}

/** A serving key and chain for {@link CA_HOSTNAME}, signed by the test root. */
async function servingCert(caDir: string): Promise<{ key: string; chain: string }> {
  const { keyPem, csrPem } = await makeKeyAndCsr(
    "spiffe://cluster.local/ns/istio-system/sa/istiod",
  );
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  const signed = await signLeaf(caDir, {
    publicKey: await csr.publicKey.export(),
    dnsNames: [CA_HOSTNAME],
    validityMs: 3_600_000,
  });
  return { key: keyPem, chain: signed.certChain };
}
