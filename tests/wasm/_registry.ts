/**
 * A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8) on a loopback
 * address with filesystem storage in a temp folder, and pushes over its HTTP API (monolithic blob
 * upload, manifest PUT), as `crane`/`oras` would do them.
 */
import { gzip, sha256, tar } from "./_archive.ts";

/** A running registry. */
export interface Registry {
  /** `host:port` */
  readonly host: string;
  stop(): Promise<void>;
}

/** Whether the registry binary is installed (tests skip without it). */
export function registryAvailable(): boolean {
  try {
    return new Deno.Command("docker-registry", { args: ["--version"], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Starts a registry on `hostname` and a free port and waits until `/v2/` answers.
 *
 * @throws Error with the registry's output when it does not come up
 */
export async function startRegistry(hostname: string): Promise<Registry> {
  const dir = await Deno.makeTempDir({ prefix: "registry-" });
  const probe = Deno.listen({ hostname, port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const host = `${hostname}:${port}`;
  const config = `${dir}/config.yml`;
  await Deno.writeTextFile(
    config,
    [
      "version: 0.1",
      "log: { level: error, accesslog: { disabled: true } }",
      `storage: { filesystem: { rootdirectory: ${dir}/data }, delete: { enabled: true } }`,
      `http: { addr: "${host}" }`,
    ].join("\n"),
  );
  const child = new Deno.Command("docker-registry", {
    args: ["serve", config],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await stderr;
    await Deno.remove(dir, { recursive: true });
  };
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      const response = await fetch(`http://${host}/v2/`);
      await response.body?.cancel();
      if (response.ok) return { host, stop };
    } catch { /* not listening yet */ }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await stop();
  throw new Error(`docker-registry did not start on ${host}: ${await stderr}`);
}

/** A content descriptor as manifests list them. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
}

/** Uploads a blob in one request (POST then PUT with the digest) and describes it. */
export async function pushBlob(
  host: string,
  repository: string,
  bytes: Uint8Array<ArrayBuffer>,
  mediaType: string,
): Promise<Descriptor> {
  const digest = `sha256:${await sha256(bytes)}`;
  const start = await fetch(`http://${host}/v2/${repository}/blobs/uploads/`, { method: "POST" });
  await start.body?.cancel();
  if (start.status !== 202) throw new Error(`blob upload start: ${start.status}`);
  const location = new URL(start.headers.get("location")!, `http://${host}`);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: bytes,
  });
  await put.body?.cancel();
  if (put.status !== 201) throw new Error(`blob upload: ${put.status}`);
  return { mediaType, digest, size: bytes.length };
}

/** Puts a manifest (or index) under a tag; returns its digest as `sha256:<hex>`. */
export async function pushManifest(
  host: string,
  repository: string,
  tag: string,
  manifest: { mediaType: string },
): Promise<Descriptor> {
  const bytes = new TextEncoder().encode(JSON.stringify(manifest));
  const response = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, {
    method: "PUT",
    headers: { "content-type": manifest.mediaType },
    body: bytes,
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`manifest ${tag}: ${response.status} ${text}`);
  return {
    mediaType: manifest.mediaType,
    digest: `sha256:${await sha256(bytes)}`,
    size: bytes.length,
  };
}

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";

/** How a module is packed in an image: Docker or OCI image with a tar.gz layer, or a Wasm artifact. */
export type Layout = "docker" | "oci" | "artifact";

/** Pushes `module` as an image of one layout and returns the manifest's descriptor. */
export async function pushImage(
  host: string,
  repository: string,
  tag: string,
  layout: Layout,
  module: Uint8Array<ArrayBuffer>,
): Promise<Descriptor> {
  const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  const image = { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } };
  const [configType, layerType, layerBytes] = layout === "docker"
    ? [
      "application/vnd.docker.container.image.v1+json",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      await gzip(tar({ "plugin.wasm": module })),
    ]
    : layout === "oci"
    ? [
      "application/vnd.oci.image.config.v1+json",
      "application/vnd.oci.image.layer.v1.tar+gzip",
      await gzip(tar({ "plugin.wasm": module })),
    ]
    : [
      "application/vnd.module.wasm.config.v1+json",
      "application/vnd.module.wasm.content.layer.v1+wasm",
      module,
    ];
  const config = await pushBlob(host, repository, json(image), configType);
  const layer = await pushBlob(host, repository, layerBytes, layerType);
  const mediaType = layout === "docker" ? DOCKER_MANIFEST : OCI_MANIFEST;
  return await pushManifest(host, repository, tag, {
    schemaVersion: 2,
    mediaType,
    config,
    layers: [layer],
  } as { mediaType: string });
}
