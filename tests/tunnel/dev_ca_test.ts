import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createCa, issueCert } from "../../tunnel/dev_ca.ts";

const SERVER_ID = "spiffe://cluster.local/ns/istio-system/sa/waypoint";
const CLIENT_ID = "spiffe://cluster.local/ns/default/sa/sleep";
const OID_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

/** Reads a file from a folder as text. */
function read(dir: string, name: string): Promise<string> {
  return Deno.readTextFile(`${dir}/${name}`);
}

/** Splits a PEM bundle into its certificates. */
function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
}

/** A CA in a fresh temp folder plus one workload certificate per identity asked for. */
async function makeMesh(
  ids: Record<string, string>,
  trustDomain = "cluster.local",
): Promise<{ ca: string; dirs: Record<string, string> }> {
  const root = await Deno.makeTempDir({ prefix: "waypoint_dev_ca_" });
  const ca = `${root}/ca`;
  await createCa(ca, { trustDomain });
  const dirs: Record<string, string> = {};
  for (const [name, id] of Object.entries(ids)) {
    dirs[name] = `${root}/${name}`;
    await issueCert(ca, id, dirs[name]);
  }
  return { ca, dirs };
}

Deno.test("createCa() writes a self-signed P-256 root named after the trust domain", async () => {
  const dir = `${await Deno.makeTempDir()}/nested/ca`;
  await createCa(dir, { trustDomain: "example.org" });
  const rootPem = await read(dir, "root-cert.pem");
  assert.equal(await read(dir, "ca-cert.pem"), rootPem);
  const root = new X509Certificate(rootPem);
  assert.equal(root.ca, true);
  assert.equal(root.subject, "O=example.org");
  assert.equal(root.issuer, "O=example.org");
  assert.equal(root.checkIssued(root), true);
  assert.equal(root.verify(root.publicKey), true);
  assert.equal(root.publicKey.asymmetricKeyType, "ec");
  assert.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
  const usages = new x509.X509Certificate(rootPem).getExtension(x509.KeyUsagesExtension);
  assert.equal(usages?.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  assert.equal(usages?.critical, true);
  const days = (Date.parse(root.validTo) - Date.now()) / 86_400_000;
  assert.ok(days > 3649 && days <= 3650, `root lives ${days} days`);
  const keyPem = await read(dir, "ca-key.pem");
  assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.equal((await Deno.stat(`${dir}/ca-key.pem`)).mode! & 0o777, 0o600);
});

Deno.test("createCa() rejects an invalid trust domain or lifetime", async () => {
  const dir = await Deno.makeTempDir();
  const cases: [string, Parameters<typeof createCa>[1], string][] = [
    ["an upper-case trust domain", { trustDomain: "Cluster.Local" }, "Invalid trust domain"],
    ["an empty trust domain", { trustDomain: "" }, "Invalid trust domain"],
    ["a zero lifetime", { validityDays: 0 }, "Invalid validityDays"],
    ["a NaN lifetime", { validityDays: NaN }, "Invalid validityDays"],
  ];
  for (const [name, options, message] of cases) {
    await assert.rejects(createCa(dir, options), (e: Error) => e.message.startsWith(message), name);
  }
});

Deno.test("issueCert() writes Istio's layout with the leaf first in the chain", async () => {
  const { ca, dirs } = await makeMesh({ server: SERVER_ID });
  const chain = splitPem(await read(dirs.server, "cert-chain.pem"));
  assert.equal(chain.length, 2);
  assert.equal(chain[1], splitPem(await read(ca, "ca-cert.pem"))[0]);
  assert.equal(await read(dirs.server, "root-cert.pem"), await read(ca, "root-cert.pem"));
  assert.match(await read(dirs.server, "key.pem"), /^-----BEGIN PRIVATE KEY-----\n/);
  assert.equal((await Deno.stat(`${dirs.server}/key.pem`)).mode! & 0o777, 0o600);
});

Deno.test("issueCert() puts the SPIFFE id in a URI SAN", async () => {
  const { dirs } = await makeMesh({ server: SERVER_ID });
  const pem = splitPem(await read(dirs.server, "cert-chain.pem"))[0];
  const leaf = new X509Certificate(pem);
  assert.equal(leaf.subjectAltName, `URI:${SERVER_ID}`);
  // Deno's node:crypto reports an empty subject as undefined (Node: ""), so read it with x509.
  const cert = new x509.X509Certificate(pem);
  assert.equal(cert.subject, "");
  // An empty subject makes the SAN critical (RFC 5280 §4.2.1.6).
  assert.equal(cert.getExtension(x509.SubjectAlternativeNameExtension)?.critical, true);
});

Deno.test("issueCert() signs a leaf that verifies against the root", async () => {
  const { ca, dirs } = await makeMesh({ server: SERVER_ID });
  const root = new X509Certificate(await read(ca, "root-cert.pem"));
  const leaf = new X509Certificate(splitPem(await read(dirs.server, "cert-chain.pem"))[0]);
  assert.equal(leaf.verify(root.publicKey), true);
  assert.equal(leaf.checkIssued(root), true);
  assert.equal(leaf.ca, false);
  assert.equal(leaf.issuer, "O=cluster.local");
  assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
});

Deno.test("issueCert() sets Istio's key usages, EKU both and a 128-bit serial", async () => {
  const { dirs } = await makeMesh({ a: SERVER_ID, b: SERVER_ID });
  const serials: string[] = [];
  for (const dir of [dirs.a, dirs.b]) {
    const pem = splitPem(await read(dir, "cert-chain.pem"))[0];
    // Deno's node:crypto `keyUsage` lists the KeyUsage bits where Node lists the EKU OIDs.
    const cert = new x509.X509Certificate(pem);
    const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
    assert.deepEqual([...eku?.usages ?? []], [OID_SERVER_AUTH, OID_CLIENT_AUTH]);
    const usages = cert.getExtension(x509.KeyUsagesExtension)?.usages;
    assert.equal(
      usages,
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    );
    assert.ok(cert.serialNumber.length <= 32, `serial ${cert.serialNumber}`);
    serials.push(cert.serialNumber);
  }
  assert.notEqual(serials[0], serials[1]);
});

Deno.test("issueCert() keeps the requested lifetime within the CA's", async () => {
  const dir = await Deno.makeTempDir();
  await createCa(`${dir}/ca`, { validityDays: 2 });
  const cases: [string, number, number][] = [
    ["a short lifetime is kept", 1, 1],
    ["a lifetime past the CA is capped", 24 * 30, 48],
  ];
  for (const [name, validityHours, wantHours] of cases) {
    await issueCert(`${dir}/ca`, CLIENT_ID, `${dir}/leaf`, { validityHours });
    const leaf = new X509Certificate(await read(`${dir}/leaf`, "cert-chain.pem"));
    const hours = (Date.parse(leaf.validTo) - Date.now()) / 3_600_000;
    assert.ok(hours > wantHours - 0.1 && hours <= wantHours, `${name}: ${hours} hours`);
  }
});

Deno.test("issueCert() rejects a malformed SPIFFE id or lifetime", async () => {
  const { ca } = await makeMesh({});
  const out = await Deno.makeTempDir();
  const cases: [string, string, number | undefined, string][] = [
    ["no service account", "spiffe://cluster.local/ns/default", undefined, "Invalid SPIFFE id"],
    ["a DNS name", "waypoint.istio-system.svc", undefined, "Invalid SPIFFE id"],
    ["an extra segment", `${CLIENT_ID}/x`, undefined, "Invalid SPIFFE id"],
    ["a negative lifetime", CLIENT_ID, -1, "Invalid validityHours"],
  ];
  for (const [name, id, validityHours, message] of cases) {
    await assert.rejects(
      issueCert(ca, id, out, { validityHours }),
      (e: Error) => e.message.startsWith(message),
      name,
    );
  }
  assert.deepEqual([...Deno.readDirSync(out)], [], "nothing is written");
});

Deno.test("issueCert() names the CA file it cannot use", async () => {
  const { ca } = await makeMesh({});
  const other = await makeMesh({});
  const mixed = await Deno.makeTempDir();
  await Deno.copyFile(`${ca}/ca-cert.pem`, `${mixed}/ca-cert.pem`);
  await Deno.copyFile(`${ca}/root-cert.pem`, `${mixed}/root-cert.pem`);
  await Deno.copyFile(`${other.ca}/ca-key.pem`, `${mixed}/ca-key.pem`);
  const missing = `${await Deno.makeTempDir()}/none`;
  const cases: [string, string, string][] = [
    ["a missing folder", missing, `Cannot read CA file: ${missing}/ca-cert.pem`],
    ["a key from another CA", mixed, `CA key does not match the CA certificate: ${mixed}`],
  ];
  for (const [name, caDir, message] of cases) {
    const out = await Deno.makeTempDir();
    await assert.rejects(issueCert(caDir, CLIENT_ID, out), { message }, name);
  }
});

interface Handshake {
  /** What the client read before the connection ended. */
  readonly received: string;
  /** The error the client saw, if any. */
  readonly clientError?: Error;
  /** The error the server saw while handshaking, if any. */
  readonly serverError?: Error;
  /** The URI SAN of the client as the server saw it. */
  readonly clientSan?: string;
  readonly protocol?: string | null;
  readonly alpn?: string | false | null;
}

/** Runs one mutual-TLS exchange over loopback the way ztunnel and the waypoint talk. */
async function handshake(
  serverDir: string,
  clientDir: string,
  wantServerId: string,
): Promise<Handshake> {
  const server = tls.createServer({
    key: await read(serverDir, "key.pem"),
    cert: await read(serverDir, "cert-chain.pem"),
    ca: await read(serverDir, "root-cert.pem"),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
    ALPNProtocols: ["h2"],
  });
  let clientSan: string | undefined;
  let serverError: Error | undefined;
  server.on("secureConnection", (socket) => {
    clientSan = socket.getPeerCertificate().subjectaltname;
    socket.end(`hello ${socket.alpnProtocol}`);
  });
  const serverFailed = new Promise<void>((resolve) => {
    server.on("tlsClientError", (err) => {
      serverError = err;
      resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      key: await read(clientDir, "key.pem"),
      cert: await read(clientDir, "cert-chain.pem"),
      ca: await read(clientDir, "root-cert.pem"),
      minVersion: "TLSv1.3",
      ALPNProtocols: ["h2"],
      // Like ztunnel: no hostname check, the peer's URI SAN must be the expected identity.
      checkServerIdentity: (_host, cert) =>
        cert.subjectaltname === `URI:${wantServerId}`
          ? undefined
          : new Error(`Unexpected server identity: ${cert.subjectaltname}`),
    });
    let received = "";
    let clientError: Error | undefined;
    let protocol: string | null | undefined;
    let alpn: string | false | null | undefined;
    socket.on("secureConnect", () => {
      protocol = socket.getProtocol();
      alpn = socket.alpnProtocol;
    });
    socket.on("data", (chunk) => received += chunk);
    await new Promise<void>((resolve) => {
      socket.on("error", (err) => clientError = err);
      socket.on("close", () => resolve());
    });
    // TLS 1.3 lets the client finish before the server judges its certificate; wait for the verdict.
    if (received === "") await Promise.race([serverFailed, new Promise((r) => setTimeout(r, 500))]);
    return { received, clientError, serverError, clientSan, protocol, alpn };
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

Deno.test("issueCert() certificates complete a TLS 1.3 mutual handshake with ALPN h2", async () => {
  const { dirs } = await makeMesh({ server: SERVER_ID, client: CLIENT_ID });
  const result = await handshake(dirs.server, dirs.client, SERVER_ID);
  assert.equal(result.clientError, undefined);
  assert.equal(result.serverError, undefined);
  assert.equal(result.received, "hello h2");
  assert.equal(result.clientSan, `URI:${CLIENT_ID}`);
  assert.equal(result.protocol, "TLSv1.3");
  assert.equal(result.alpn, "h2");
});

Deno.test("issueCert() certificates from another CA are refused by the server", async () => {
  const mesh = await makeMesh({ server: SERVER_ID });
  const rogue = await makeMesh({ client: CLIENT_ID });
  // The rogue client trusts our root, so only the server's check of its certificate can fail.
  await Deno.copyFile(`${mesh.ca}/root-cert.pem`, `${rogue.dirs.client}/root-cert.pem`);
  const result = await handshake(mesh.dirs.server, rogue.dirs.client, SERVER_ID);
  assert.equal(result.received, "");
  assert.equal(result.clientSan, undefined);
  assert.ok(result.serverError, "the server reports a TLS client error");
});
