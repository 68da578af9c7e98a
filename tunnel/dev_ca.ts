/**
 * A development certificate authority: a self-signed root and workload certificates shaped like
 * the ones Istio issues, so a laptop mesh (and interop with a FAKE_CA ztunnel) needs no istiod.
 *
 * Invariants:
 * - Every key is ECDSA P-256, as ztunnel's CSRs are (ztunnel `src/tls/csr.rs`).
 * - A CA folder holds `root-cert.pem`, `ca-cert.pem` and `ca-key.pem`, the names of Istio's
 *   `cacerts` secret; a workload folder holds `cert-chain.pem` (leaf first), `key.pem` and
 *   `root-cert.pem`, the files Istio mounts for a proxy.
 * - A workload certificate carries exactly one URI SAN, its SPIFFE id, and no DNS SAN; its subject
 *   is empty, so the SAN extension is critical (RFC 5280 §4.2.1.6), as in Istio's
 *   `security/pkg/pki/util/san.go`.
 * - Keys are written PKCS#8 PEM with mode 0600.
 */
// @peculiar/x509 2.x resolves its ASN.1 types through tsyringe, which needs the Reflect metadata
// API; the polyfill must be evaluated before the library.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { isTrustDomain, parseSpiffeId } from "./spiffe.ts";

/** Options for {@link createCa}. */
export interface CreateCaOptions {
  /** Written as the root's subject `O=<trustDomain>`, like Istio's self-signed root. @default "cluster.local" */
  trustDomain?: string;
  /** Lifetime of the root. @default 3650 (10 years, Istio's self-signed root TTL) */
  validityDays?: number;
}

/** Options for {@link issueCert}. */
export interface IssueCertOptions {
  /**
   * Lifetime of the workload certificate, capped at the CA's own expiry. Istio issues 24 h
   * certificates and rotates them; a dev certificate lives long so demos keep working.
   * @default 8760 (365 days)
   */
  validityHours?: number;
}

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const HOUR_MS = 3_600_000;
// Backdating notBefore absorbs clock skew between the machine that issues and the peer that checks.
const BACKDATE_MS = 5 * 60_000;
const KEY_FILE_MODE = 0o600;
const SPIFFE_SHAPE = "spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>";

/**
 * Creates a self-signed root CA and writes it as `root-cert.pem`, `ca-cert.pem` (the same
 * certificate) and `ca-key.pem` (PKCS#8) into `outDir`, creating the folder.
 *
 * @example
 * ```ts
 * await createCa(".dev/ca", { trustDomain: "cluster.local" });
 * ```
 *
 * @param outDir Folder to write into; created with its parents when missing.
 * @param options Trust domain and lifetime.
 * @returns Resolves once the three files are written.
 * @throws {Error} When the trust domain or lifetime is invalid, or a file cannot be written.
 */
export async function createCa(outDir: string, options: CreateCaOptions = {}): Promise<void> {
  const trustDomain = options.trustDomain ?? "cluster.local";
  const validityDays = options.validityDays ?? 3650;
  if (!isTrustDomain(trustDomain)) {
    throw new Error(`Invalid trust domain, want lowercase [a-z0-9._-]: "${trustDomain}"`);
  }
  assertPositive("validityDays", validityDays);
  const keys = await generateKeyPair();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ O: [trustDomain] }],
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + validityDays * 24 * HOUR_MS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      ...constraints(true, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPem = cert.toString("pem") + "\n";
  await Deno.mkdir(outDir, { recursive: true });
  await writeFile(outDir, "root-cert.pem", certPem);
  await writeFile(outDir, "ca-cert.pem", certPem);
  await writeFile(outDir, "ca-key.pem", await privateKeyPem(keys.privateKey), KEY_FILE_MODE);
}

/**
 * Issues a workload certificate for a SPIFFE id, signed by the CA in `caDir`, and writes Istio's
 * layout into `outDir`: `cert-chain.pem` (leaf, then the CA certificate), `key.pem` (PKCS#8) and
 * `root-cert.pem`.
 *
 * The leaf is what istiod would sign for ztunnel's CSR (istio
 * `security/pkg/pki/util/generate_cert.go` `genCertTemplateFromCSR`): empty subject, critical URI
 * SAN, KeyUsage digitalSignature|keyEncipherment, EKU serverAuth+clientAuth so one certificate
 * serves both ends of a tunnel, and a random 128-bit serial.
 *
 * @example
 * ```ts
 * await issueCert(".dev/ca", "spiffe://cluster.local/ns/default/sa/waypoint", ".dev/waypoint");
 * ```
 *
 * @param caDir Folder written by {@link createCa} (or an Istio `cacerts` folder with an EC key).
 * @param spiffeId Identity to certify, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
 * @param outDir Folder to write into; created with its parents when missing.
 * @param options Lifetime of the certificate.
 * @returns Resolves once the three files are written.
 * @throws {Error} When the SPIFFE id or lifetime is invalid, the CA files cannot be read, the CA
 * key does not match the CA certificate, or a file cannot be written.
 */
export async function issueCert(
  caDir: string,
  spiffeId: string,
  outDir: string,
  options: IssueCertOptions = {},
): Promise<void> {
  if (parseSpiffeId(spiffeId) === undefined) {
    throw new Error(`Invalid SPIFFE id, want ${SPIFFE_SHAPE}: "${spiffeId}"`);
  }
  const validityHours = options.validityHours ?? 24 * 365;
  assertPositive("validityHours", validityHours);
  const keys = await generateKeyPair();
  const signed = await signLeaf(caDir, {
    publicKey: keys.publicKey,
    uris: [spiffeId],
    validityMs: validityHours * HOUR_MS,
  });
  await Deno.mkdir(outDir, { recursive: true });
  await writeFile(outDir, "cert-chain.pem", signed.certChain);
  await writeFile(outDir, "key.pem", await privateKeyPem(keys.privateKey), KEY_FILE_MODE);
  await writeFile(outDir, "root-cert.pem", signed.root);
}

/** What {@link signLeaf} certifies. */
export interface LeafRequest {
  /** The subject's public key (from its key pair or its CSR). */
  readonly publicKey: CryptoKey;
  /** URI SANs, e.g. the SPIFFE id. */
  readonly uris?: readonly string[];
  /** DNS SANs, e.g. `istiod.istio-system.svc` for a serving certificate. */
  readonly dnsNames?: readonly string[];
  /** Lifetime, capped at the CA's own expiry. */
  readonly validityMs: number;
}

/**
 * Signs a leaf shaped as {@link issueCert} describes, for any public key and SANs: what a CA
 * server does with a CSR.
 *
 * @param caDir Folder written by {@link createCa}
 * @param request Public key, SANs and lifetime
 * @returns `certChain` (leaf, then the CA certificate) and `root`, both PEM
 * @throws {Error} When the lifetime is invalid, the CA files cannot be read or the CA key does not
 * match the CA certificate
 */
export async function signLeaf(
  caDir: string,
  request: LeafRequest,
): Promise<{ certChain: string; root: string }> {
  assertPositive("validityMs", request.validityMs);
  const ca = await loadCa(caDir);
  const now = Date.now();
  const notAfter = Math.min(now + request.validityMs, ca.cert.notAfter.getTime());
  const sans = [
    ...(request.uris ?? []).map((value) => ({ type: "url" as const, value })),
    ...(request.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
  ];
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: "",
    issuer: ca.cert.subjectName,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(notAfter),
    publicKey: request.publicKey,
    signingKey: ca.key,
    signingAlgorithm: ALGORITHM,
    extensions: [
      ...constraints(
        false,
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      ),
      new x509.ExtendedKeyUsageExtension(
        [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      new x509.SubjectAlternativeNameExtension(sans, true),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false),
    ],
  });
  if (!(await leaf.verify({ publicKey: ca.cert, signatureOnly: true }))) {
    throw new Error(`CA key does not match the CA certificate: ${caDir}`);
  }
  return { certChain: leaf.toString("pem") + "\n" + ca.certPem, root: ca.rootPem };
}

interface LoadedCa {
  readonly cert: x509.X509Certificate;
  readonly certPem: string;
  readonly rootPem: string;
  readonly key: CryptoKey;
}

async function loadCa(caDir: string): Promise<LoadedCa> {
  const certPem = await readFile(caDir, "ca-cert.pem");
  const rootPem = await readFile(caDir, "root-cert.pem");
  const keyPem = await readFile(caDir, "ca-key.pem");
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(certPem);
  } catch (cause) {
    throw new Error(`Cannot parse the CA certificate: ${caDir}/ca-cert.pem`, { cause });
  }
  if (cert.getExtension(x509.BasicConstraintsExtension)?.ca !== true) {
    throw new Error(`CA certificate is not a CA (basicConstraints CA:FALSE): ${caDir}/ca-cert.pem`);
  }
  let key: CryptoKey;
  try {
    const der = x509.PemConverter.decodeFirst(keyPem);
    key = await crypto.subtle.importKey("pkcs8", der, ALGORITHM, false, ["sign"]);
  } catch (cause) {
    throw new Error(`Cannot load the CA key, want a PKCS#8 P-256 key: ${caDir}/ca-key.pem`, {
      cause,
    });
  }
  return { cert, certPem: ensureTrailingNewline(certPem), rootPem, key };
}

/** BasicConstraints and KeyUsage, both critical as Go's x509 (and so istiod) writes them. */
function constraints(isCa: boolean, usages: x509.KeyUsageFlags): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(isCa, undefined, true),
    new x509.KeyUsagesExtension(usages, true),
  ];
}

async function generateKeyPair(): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY") + "\n";
}

function randomSerial(): string {
  // 128 random bits; the library strips leading zero bytes and keeps the DER integer positive.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function assertPositive(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0) {
    throw new Error(`Invalid ${name}, want a positive number: ${value}`);
  }
}

function ensureTrailingNewline(text: string): string {
  return text.endsWith("\n") ? text : text + "\n";
}

async function readFile(dir: string, name: string): Promise<string> {
  const path = `${dir}/${name}`;
  try {
    return await Deno.readTextFile(path);
  } catch (cause) {
    throw new Error(`Cannot read CA file: ${path}`, { cause });
  }
}

async function writeFile(dir: string, name: string, text: string, mode?: number): Promise<void> {
  const path = `${dir}/${name}`;
  try {
    await Deno.writeTextFile(path, text, { mode });
    // `mode` only applies when the file is created; tighten a key file that already existed.
    if (mode !== undefined) await Deno.chmod(path, mode);
  } catch (cause) {
    throw new Error(`Cannot write certificate file: ${path}`, { cause });
  }
}
