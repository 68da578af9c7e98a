import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import assert from "node:assert/strict";
import { createServer, type TLSSocket } from "node:tls";
import {
  inClusterTarget,
  KubeAccess,
  KubeClient,
  meshKinds,
  parseKubeconfig,
} from "../../mesh/kube/mod.ts";

const HOST = "127.0.22.3";
const b64 = (text: string) => btoa(text);

function kubeconfig(cluster: string, user: string, extra = ""): string {
  return `apiVersion: v1
kind: Config
current-context: prod
contexts:
  - { name: dev, context: { cluster: other, user: other } }
  - { name: prod, context: { cluster: prod, user: admin, namespace: mesh } }
clusters:
  - { name: prod, cluster: ${cluster} }
users:
  - { name: admin, user: ${user} }
${extra}`;
}

Deno.test("parseKubeconfig() reads the current context's server, namespace and token", () => {
  const target = parseKubeconfig(
    kubeconfig(`{ server: "https://api.example:6443/" }`, `{ token: abc }`),
    "/home/me/.kube/config",
  );
  assert.equal(target.server, "https://api.example:6443");
  assert.equal(target.namespace, "mesh");
  assert.equal(target.token, "abc");
  assert.equal(target.ca, undefined);
  assert.equal(target.origin, "kubeconfig /home/me/.kube/config context prod");
});

Deno.test("parseKubeconfig() decodes CA and client certificate data, and resolves files", () => {
  const data = parseKubeconfig(
    kubeconfig(
      `{ server: "https://api:6443", certificate-authority-data: ${b64("CA PEM")} }`,
      `{ client-certificate-data: ${b64("CERT PEM")}, client-key-data: ${b64("KEY PEM")} }`,
    ),
    "/etc/kube/config",
  );
  assert.deepEqual(data.ca, { pem: "CA PEM" });
  assert.deepEqual(data.clientCert, { cert: { pem: "CERT PEM" }, key: { pem: "KEY PEM" } });
  const files = parseKubeconfig(
    kubeconfig(
      `{ server: "https://api:6443", certificate-authority: ca.crt }`,
      `{ client-certificate: /abs/client.crt, client-key: keys/client.key, tokenFile: token }`,
    ),
    "/etc/kube/config",
  );
  assert.deepEqual(files.ca, { file: "/etc/kube/ca.crt" });
  assert.deepEqual(files.clientCert, {
    cert: { file: "/abs/client.crt" },
    key: { file: "/etc/kube/keys/client.key" },
  });
  assert.equal(files.tokenFile, "/etc/kube/token");
});

Deno.test("parseKubeconfig() refuses what it cannot do safely, saying why", () => {
  const cases: [string, string, RegExp][] = [
    [
      "an exec plugin",
      kubeconfig(`{ server: "https://api:6443" }`, `{ exec: { command: aws-iam-authenticator } }`),
      /context prod: user admin authenticates with an exec \(aws-iam-authenticator\) plugin, which is not supported/,
    ],
    [
      "an auth-provider plugin",
      kubeconfig(`{ server: "https://api:6443" }`, `{ auth-provider: { name: gcp } }`),
      /auth-provider plugin, which is not supported/,
    ],
    [
      "skipping TLS verification",
      kubeconfig(`{ server: "https://api:6443", insecure-skip-tls-verify: true }`, `{ token: t }`),
      /insecure-skip-tls-verify is not supported/,
    ],
    [
      "a certificate without its key",
      kubeconfig(`{ server: "https://api:6443" }`, `{ client-certificate-data: ${b64("C")} }`),
      /needs both client-certificate and client-key/,
    ],
    [
      "a missing cluster",
      kubeconfig(`{ server: "https://api:6443" }`, `{ token: t }`).replace(
        "cluster: prod,",
        "cluster: gone,",
      ),
      /context prod: no cluster named gone/,
    ],
    ["no current context", "apiVersion: v1\nkind: Config\n", /no current-context/],
  ];
  for (const [name, text, error] of cases) {
    assert.throws(() => parseKubeconfig(text, "cfg"), error, name);
  }
});

Deno.test("inClusterTarget() uses the service account files and KubeAccess re-reads a rotated token", async () => {
  const dir = await Deno.makeTempDir({ prefix: "waypoint-sa-" });
  try {
    await Deno.writeTextFile(`${dir}/token`, "first\n");
    await Deno.writeTextFile(`${dir}/namespace`, "istio-system");
    const env: Record<string, string> = {
      KUBERNETES_SERVICE_HOST: "fd00::1",
      KUBERNETES_SERVICE_PORT: "443",
    };
    const target = inClusterTarget({ dir, env: (name) => env[name] });
    assert.equal(target.server, "https://[fd00::1]:443");
    assert.deepEqual(target.ca, { file: `${dir}/ca.crt` });
    assert.throws(() => inClusterTarget({ dir, env: () => undefined }), /Not running in a pod/);
    let now = 0;
    // No CA file in this folder: open the token part only.
    const access = await KubeAccess.open({ ...target, ca: undefined }, { now: () => now });
    assert.equal(access.namespace, "istio-system");
    assert.equal(await access.authorization(), "Bearer first");
    await Deno.writeTextFile(`${dir}/token`, "second\n");
    now = 30_000;
    assert.equal(await access.authorization(), "Bearer first", "not yet due");
    now = 60_000;
    assert.equal(await access.authorization(), "Bearer second");
    await Deno.writeTextFile(`${dir}/token`, "third\n");
    access.tokenRejected();
    assert.equal(await access.authorization(), "Bearer third", "a 401 forces a read");
    access.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A CA, a server certificate for HOST and a client certificate, as PEM. */
async function testPki() {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
  const pem = async (key: CryptoKey) =>
    x509.PemConverter.encode(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
  const caKeys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=test kube CA",
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys: caKeys,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  const leaf = async (name: string, ext: x509.Extension[]) => {
    const keys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: name === "CN=apiserver" ? "02" : "03",
      subject: name,
      issuer: ca.subjectName,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: alg,
      extensions: ext,
    });
    return { cert: cert.toString("pem"), key: await pem(keys.privateKey) };
  };
  const server = await leaf("CN=apiserver", [
    new x509.SubjectAlternativeNameExtension([{ type: "ip", value: HOST }]),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
  ]);
  const client = await leaf("CN=tester", [
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
  ]);
  return { ca: ca.toString("pem"), server, client };
}

Deno.test("KubeAccess lists over HTTPS with the kubeconfig's CA data and client certificate", async () => {
  const pki = await testPki();
  const seen: { cn?: string; request?: string } = {};
  // node:tls, because Deno.serve cannot ask for a client certificate.
  const server = createServer({
    cert: pki.server.cert,
    key: pki.server.key,
    ca: [pki.ca],
    requestCert: true,
    rejectUnauthorized: true,
  }, (socket: TLSSocket) => {
    seen.cn = String(socket.getPeerCertificate().subject?.CN);
    socket.once("data", (chunk) => {
      seen.request = chunk.toString().split("\r\n")[0];
      const body = JSON.stringify({ kind: "List", metadata: { resourceVersion: "7" }, items: [] });
      socket.end(
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const port = (server.address() as { port: number }).port;
  try {
    const target = parseKubeconfig(
      kubeconfig(
        `{ server: "https://${HOST}:${port}", certificate-authority-data: ${b64(pki.ca)} }`,
        `{ client-certificate-data: ${b64(pki.client.cert)}, client-key-data: ${
          b64(pki.client.key)
        } }`,
      ),
      "cfg",
    );
    const access = await KubeAccess.open(target);
    try {
      const list = await new KubeClient(access).list(meshKinds().find((k) => k.kind === "Pod")!);
      assert.equal(list.resourceVersion, "7");
      assert.equal(seen.cn, "tester");
      assert.match(
        seen.request ?? "",
        /^GET \/api\/v1\/pods\?limit=500&fieldSelector=status\.phase/,
      );
    } finally {
      access.close();
    }
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
