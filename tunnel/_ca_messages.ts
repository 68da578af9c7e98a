/**
 * The messages of `istio.v1.auth.IstioCertificateService/CreateCertificate`, written and read by
 * hand on `grpc/`. Field numbers from istio/api `security/v1alpha1/ca.proto`:
 * IstioCertificateRequest.csr 1 (string), validity_duration 3 (int64 seconds), metadata 4
 * (google.protobuf.Struct); IstioCertificateResponse.cert_chain 1 (repeated string: leaf first,
 * root last), root_cert 2 (Roots.ca_cert 1, repeated string; newer istiod only).
 * google.protobuf.Struct (`struct.proto`): fields 1 (map<string, Value>); Value.string_value 3.
 */
import { ProtoWriter, readFields } from "../grpc/mod.ts";

/** The gRPC method istiod and ztunnel's CA client use. */
export const CREATE_CERTIFICATE_PATH = "/istio.v1.auth.IstioCertificateService/CreateCertificate";

/** An `IstioCertificateRequest`. */
export interface CertificateRequest {
  /** PEM CSR. */
  readonly csr: string;
  /** Requested lifetime in seconds. */
  readonly validitySeconds: number;
  /** String entries of `metadata` (e.g. `ClusterID`). */
  readonly metadata: Readonly<Record<string, string>>;
}

/** An `IstioCertificateResponse`. */
export interface CertificateResponse {
  /** PEM certificates, leaf first; the last may hold several roots when `roots` is empty. */
  readonly certChain: readonly string[];
  /** `root_cert.ca_cert`, when the CA sent it. */
  readonly roots: readonly string[];
}

/** Encodes an `IstioCertificateRequest`. */
export function encodeCertificateRequest(request: CertificateRequest): Uint8Array {
  const metadata = new ProtoWriter();
  for (const [key, value] of Object.entries(request.metadata)) {
    metadata.message(
      1,
      new ProtoWriter().string(1, key).message(2, new ProtoWriter().string(3, value)),
    );
  }
  return new ProtoWriter()
    .string(1, request.csr)
    .varint(3, request.validitySeconds)
    .message(4, metadata)
    .finish();
}

/**
 * Decodes an `IstioCertificateResponse`.
 *
 * @throws Error `Malformed protobuf: ...`
 */
export function decodeCertificateResponse(bytes: Uint8Array): CertificateResponse {
  const certChain: string[] = [];
  const roots: string[] = [];
  readFields(bytes, {
    1: (r) => certChain.push(r.string()),
    2: (r) => readFields(r.bytes(), { 1: (c) => roots.push(c.string()) }),
  });
  return { certChain, roots };
}
