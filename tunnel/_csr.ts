/**
 * A fresh key and a PKCS#10 request for a SPIFFE id, shaped like ztunnel's (`src/tls/csr.rs`):
 * ECDSA P-256, empty subject, the id as the one URI SAN. istiod issues the SAN from the caller's
 * token and ignores the CSR's (hbone.md §5), but the CA proto asks for it, so we send it right.
 */

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** A private key (PKCS#8 PEM) and the CSR (PEM) for its public half. */
export interface KeyAndCsr {
  readonly keyPem: string;
  readonly csrPem: string;
}

/**
 * Makes a new P-256 key and a CSR carrying `spiffeId` as URI SAN.
 *
 * @param spiffeId `spiffe://<td>/ns/<ns>/sa/<sa>`
 * @returns The key and the request, PEM
 */
export async function makeKeyAndCsr(spiffeId: string): Promise<KeyAndCsr> {
  // Loaded here, not at start: the library and its polyfill cost ~10 MiB of RSS that a waypoint
  // with file certificates never needs. @peculiar/x509 2.x resolves its ASN.1 types through
  // tsyringe, which needs the Reflect metadata API: the polyfill must be evaluated first.
  await import("reflect-metadata");
  const x509 = await import("@peculiar/x509");
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: spiffeId }])],
  });
  const der = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    keyPem: x509.PemConverter.encode(der, "PRIVATE KEY") + "\n",
    csrPem: csr.toString("pem") + "\n",
  };
}
