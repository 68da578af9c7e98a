/**
 * ModuleFetcher against a real registry (Debian's docker-registry, distribution 2.8) on
 * 127.0.21.1: images pushed in the three layouts Istio accepts and an image index, pulled by tag
 * and by digest; a token-protected front of our own (Bearer challenge, token realm that wants
 * basic credentials from the pull secret); wrong sha256, size bound, missing tag.
 */
import assert from "node:assert/strict";
import { ModuleFetcher } from "../../wasm/fetch.ts";
import { parseReference } from "../../wasm/oci.ts";
import type { RegistryAuth } from "../../wasm/spec.ts";
import { fetchError, source } from "./_sources.ts";
import { testModule } from "./_archive.ts";
import {
  type Descriptor,
  type Layout,
  pushImage,
  pushManifest,
  registryAvailable,
  startRegistry,
} from "./_registry.ts";

const HOST = "127.0.21.1";
/**
 * A Bearer-protected front for the registry: `/v2/*` wants `Bearer <token>`, and `/token` gives
 * the token only for basic credentials `puller:s3cret`.
 */
function tokenFront(registry: string) {
  const token = "token-for-puller";
  const server: Deno.HttpServer<Deno.NetAddr> = Deno.serve({
    hostname: HOST,
    port: 0,
    onListen() {},
  }, async (request): Promise<Response> => {
    const url = new URL(request.url);
    if (url.pathname === "/token") {
      const ok = request.headers.get("authorization") === `Basic ${btoa("puller:s3cret")}` &&
        url.searchParams.get("service") === "test-registry" &&
        url.searchParams.get("scope") === "repository:wasm/front:pull";
      return ok ? Response.json({ token }) : new Response("bad credentials", { status: 401 });
    }
    if (request.headers.get("authorization") !== `Bearer ${token}`) {
      const realm = `http://${HOST}:${server.addr.port}/token`;
      return new Response("unauthorized", {
        status: 401,
        headers: {
          "www-authenticate":
            `Bearer realm="${realm}",service="test-registry",scope="repository:wasm/front:pull"`,
        },
      });
    }
    const upstream = await fetch(`http://${registry}${url.pathname}`, {
      headers: { accept: request.headers.get("accept") ?? "*/*" },
    });
    return new Response(upstream.body, { status: upstream.status, headers: upstream.headers });
  });
  return { host: `${HOST}:${server.addr.port}`, close: () => server.shutdown() };
}

Deno.test("parseReference() reads registries, tags, digests and Docker Hub names", () => {
  const digest = `sha256:${"c".repeat(64)}`;
  assert.deepEqual(parseReference("oci://127.0.21.1:5000/wasm/a:v1"), {
    registry: "127.0.21.1:5000",
    repository: "wasm/a",
    reference: "v1",
  });
  assert.deepEqual(parseReference(`oci://ghcr.io/o/p@${digest}`), {
    registry: "ghcr.io",
    repository: "o/p",
    reference: digest,
  });
  assert.deepEqual(parseReference("oci://localhost/p"), {
    registry: "localhost",
    repository: "p",
    reference: "latest",
  });
  assert.deepEqual(parseReference("oci://istio/plugin:1.0"), {
    registry: "index.docker.io",
    repository: "istio/plugin",
    reference: "1.0",
  });
  assert.deepEqual(parseReference("oci://plugin"), {
    registry: "index.docker.io",
    repository: "library/plugin",
    reference: "latest",
  });
});

Deno.test({
  name: "ModuleFetcher.load() pulls Wasm images from a registry",
  ignore: !registryAvailable(),
  async fn(t) {
    const registry = await startRegistry(HOST);
    const host = registry.host;
    try {
      const fetcher = new ModuleFetcher();
      const modules: Record<Layout, Uint8Array<ArrayBuffer>> = {
        docker: testModule("docker", 1000),
        oci: testModule("oci", 1000),
        artifact: testModule("artifact", 1000),
      };
      const manifests = {} as Record<Layout, Descriptor>;
      for (const layout of ["docker", "oci", "artifact"] as const) {
        manifests[layout] = await pushImage(host, `wasm/${layout}`, "v1", layout, modules[layout]);
      }

      for (const layout of ["docker", "oci", "artifact"] as const) {
        await t.step(`a ${layout} image by tag and by digest`, async () => {
          const byTag = await fetcher.load(source(`oci://${host}/wasm/${layout}:v1`));
          assert.deepEqual(byTag, modules[layout]);
          const digest = manifests[layout].digest;
          const byDigest = await new ModuleFetcher().load(
            source(`oci://${host}/wasm/${layout}@${digest}`, { sha256: digest.slice(7) }),
          );
          assert.deepEqual(byDigest, modules[layout]);
        });
      }

      await t.step("an image index gives its linux/amd64 image", async () => {
        const arm = testModule("arm64");
        const armImage = await pushImage(host, "wasm/multi", "arm", "oci", arm);
        const amdImage = await pushImage(host, "wasm/multi", "amd", "oci", modules.oci);
        await pushManifest(host, "wasm/multi", "v1", {
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.index.v1+json",
          manifests: [
            { ...armImage, platform: { os: "linux", architecture: "arm64" } },
            { ...amdImage, platform: { os: "linux", architecture: "amd64" } },
          ],
        } as { mediaType: string });
        assert.deepEqual(await fetcher.load(source(`oci://${host}/wasm/multi:v1`)), modules.oci);
      });

      await t.step("a sha256 other than the image digest is refused", async () => {
        const error = await fetchError(
          new ModuleFetcher().load(
            source(`oci://${host}/wasm/oci:v1`, { sha256: "e".repeat(64) }),
          ),
        );
        assert.equal(error.kind, "digest");
        assert.equal(
          error.reason,
          `image digest is ${manifests.oci.digest.slice(7)}, but the WasmPlugin's sha256 is ${
            "e".repeat(64)
          }`,
        );
      });

      await t.step("a layer larger than the bound is not downloaded", async () => {
        await pushImage(host, "wasm/big", "v1", "artifact", testModule("big", 50_000));
        const error = await fetchError(
          new ModuleFetcher({ maxBytes: 10_000 }).load(source(`oci://${host}/wasm/big:v1`)),
        );
        assert.equal(error.kind, "size");
        assert.match(error.reason, /^layer sha256:[0-9a-f]{64} is 50\d\d\d bytes, larger than/);
      });

      await t.step("a missing tag names the manifest", async () => {
        const error = await fetchError(fetcher.load(source(`oci://${host}/wasm/oci:v9`)));
        assert.equal(
          error.message,
          `Cannot fetch Wasm module oci://${host}/wasm/oci:v9: manifest v9 not found in wasm/oci`,
        );
      });

      await t.step("a token-protected registry with pull-secret credentials", async () => {
        await pushImage(host, "wasm/front", "v1", "artifact", modules.artifact);
        const front = tokenFront(host);
        try {
          const url = `oci://${front.host}/wasm/front:v1`;
          const auth: RegistryAuth[] = [{
            registry: front.host,
            username: "puller",
            password: "s3cret",
          }];
          const pulled = await new ModuleFetcher().load(source(url, { auth }));
          assert.deepEqual(pulled, modules.artifact);
          const anonymous = await fetchError(new ModuleFetcher().load(source(url)));
          assert.equal(anonymous.kind, "auth");
          assert.equal(anonymous.reason, `token service http://${front.host} answered 401`);
          const wrong = [{ registry: front.host, auth: btoa("puller:wrong") }];
          const refused = await fetchError(new ModuleFetcher().load(source(url, { auth: wrong })));
          assert.equal(refused.kind, "auth");
        } finally {
          await front.close();
        }
      });
    } finally {
      await registry.stop();
    }
  },
});
