/**
 * Pulls a Wasm module from an OCI registry (Docker Registry HTTP API v2 / OCI distribution):
 * manifest by tag or digest, an image index narrowed to linux/amd64 (or its only entry), then the
 * module from one of the three layouts Istio accepts (l7.md §4.1, `pkg/wasm/imagefetcher.go`):
 *
 * - OCI artifact: a layer `application/vnd.module.wasm.content.layer.v1+wasm` holding the module;
 * - OCI image: one `application/vnd.oci.image.layer.v1.tar+gzip` layer with `plugin.wasm`;
 * - Docker image: one `application/vnd.docker.image.rootfs.diff.tar.gzip` layer with `plugin.wasm`.
 *
 * Credentials: a `Bearer` challenge sends us to its token realm (with basic credentials from the
 * pull secret when it has some), a `Basic` challenge gets them directly. Every manifest and blob
 * is checked against its digest and bounded in size.
 */
import { isWasm, UnpackError, unpackModule } from "./_unpack.ts";
import { registryHost } from "./_pull_secret.ts";
import { readBody, sha256Hex } from "./_http.ts";
import { WasmFetchError } from "./fetch_error.ts";
import type { RegistryAuth } from "./spec.ts";

/** What a pull needs besides the url. */
export interface OciPullOptions {
  readonly auth?: readonly RegistryAuth[];
  /** Whether a registry host (`host:port`) is reached over plain http. */
  readonly insecure: (host: string) => boolean;
  /** Bound on each blob and on the module. */
  readonly maxBytes: number;
  readonly signal: AbortSignal;
}

/** A pulled module and the digest of the manifest the url named (what `sha256` is checked against). */
export interface OciModule {
  readonly module: Uint8Array;
  /** Lowercase hex sha256 of the manifest (or index) the reference resolved to. */
  readonly digest: string;
}

/** A parsed `oci://` reference. */
export interface OciReference {
  readonly registry: string;
  readonly repository: string;
  /** Tag or `sha256:<hex>` digest. */
  readonly reference: string;
}

const WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm";
const TAR_GZIP_LAYERS = [
  "application/vnd.oci.image.layer.v1.tar+gzip",
  "application/vnd.docker.image.rootfs.diff.tar.gzip",
];
const MANIFEST_TYPES = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MAX_MANIFEST = 4 << 20;
const DOCKER_HUB = "index.docker.io";

/**
 * Splits `oci://host[:port]/repo[:tag][@sha256:hex]`. A first path part without a dot, colon or
 * `localhost` is a Docker Hub repository, as `docker pull` reads it.
 *
 * @throws WasmFetchError (url) when no repository is named
 */
export function parseReference(url: string): OciReference {
  const rest = url.replace(/^oci:\/\//, "");
  const at = rest.indexOf("@");
  let name = at < 0 ? rest : rest.slice(0, at);
  let reference = at < 0 ? "latest" : rest.slice(at + 1);
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) {
    if (at < 0) reference = name.slice(colon + 1);
    name = name.slice(0, colon);
  }
  const parts = name.split("/");
  const first = parts[0];
  const hosted = parts.length > 1 && (/[.:]/.test(first) || first === "localhost");
  const registry = hosted ? first : DOCKER_HUB;
  const path = hosted ? parts.slice(1) : parts;
  if (path.length === 0 || path.some((p) => p === "")) {
    throw new WasmFetchError("url", url, "no repository in the OCI reference");
  }
  if (!hosted && path.length === 1) path.unshift("library");
  return { registry, repository: path.join("/"), reference };
}

/**
 * Pulls the module an `oci://` url names.
 *
 * @param url `oci://` url as the WasmPlugin wrote it
 * @param options Credentials, insecure hosts, size bound and the load's abort signal
 * @returns The module and the manifest digest
 * @throws WasmFetchError naming the url and the reason
 */
export async function pullOciModule(url: string, options: OciPullOptions): Promise<OciModule> {
  const ref = parseReference(url);
  const session = new RegistrySession(url, ref, options);
  const top = await session.manifest(ref.reference);
  const image = top.json.manifests ? await session.manifest(pickPlatform(url, top.json)) : top;
  const layers = (image.json.layers ?? []) as Descriptor[];
  const wasm = layers.find((l) => l.mediaType === WASM_LAYER);
  if (wasm) {
    const module = await session.blob(wasm);
    if (!isWasm(module)) throw new WasmFetchError("format", url, "the wasm layer is not Wasm");
    return { module, digest: top.digest };
  }
  if (layers.length !== 1 || !TAR_GZIP_LAYERS.includes(layers[0].mediaType)) {
    const types = layers.map((l) => l.mediaType).join(", ") || "none";
    throw new WasmFetchError(
      "format",
      url,
      `unknown image layout (layers: ${types}); want one ${WASM_LAYER} layer or one tar+gzip layer holding plugin.wasm`,
    );
  }
  const blob = await session.blob(layers[0]);
  try {
    return {
      module: await unpackModule(blob, options.maxBytes, "plugin.wasm"),
      digest: top.digest,
    };
  } catch (error) {
    if (error instanceof UnpackError) {
      throw new WasmFetchError(error.kind, url, `layer ${layers[0].digest}: ${error.message}`);
    }
    throw error;
  }
}

interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly platform?: { readonly os?: string; readonly architecture?: string };
}

interface Manifest {
  // deno-lint-ignore no-explicit-any
  readonly json: any;
  readonly digest: string;
}

function pickPlatform(url: string, index: { manifests: Descriptor[] }): string {
  const entries = index.manifests;
  const amd64 = entries.find((m) =>
    m.platform?.os === "linux" && m.platform?.architecture === "amd64"
  );
  const chosen = amd64 ?? (entries.length === 1 ? entries[0] : undefined);
  if (!chosen) {
    throw new WasmFetchError("format", url, "the image index has no linux/amd64 entry");
  }
  return chosen.digest;
}

/** One pull's conversation with a registry: base url, credentials, the token it earned. */
class RegistrySession {
  readonly #url: string;
  readonly #ref: OciReference;
  readonly #options: OciPullOptions;
  readonly #base: string;
  #authorization: string | undefined;

  constructor(url: string, ref: OciReference, options: OciPullOptions) {
    this.#url = url;
    this.#ref = ref;
    this.#options = options;
    const scheme = options.insecure(ref.registry) ? "http" : "https";
    const host = ref.registry === DOCKER_HUB ? "registry-1.docker.io" : ref.registry;
    this.#base = `${scheme}://${host}/v2/${ref.repository}`;
  }

  async manifest(reference: string): Promise<Manifest> {
    const response = await this.#get(`/manifests/${reference}`, MANIFEST_TYPES.join(", "), {
      missing: `manifest ${reference} not found in ${this.#ref.repository}`,
    });
    const body = await this.#read(response, MAX_MANIFEST, `manifest ${reference}`);
    const digest = await sha256Hex(body);
    if (reference.startsWith("sha256:") && reference !== `sha256:${digest}`) {
      throw new WasmFetchError("digest", this.#url, `manifest ${reference} has digest ${digest}`);
    }
    try {
      return { json: JSON.parse(new TextDecoder().decode(body)), digest };
    } catch {
      throw new WasmFetchError("format", this.#url, `manifest ${reference} is not JSON`);
    }
  }

  async blob(layer: Descriptor): Promise<Uint8Array> {
    const { maxBytes } = this.#options;
    if (layer.size > maxBytes) {
      throw new WasmFetchError(
        "size",
        this.#url,
        `layer ${layer.digest} is ${layer.size} bytes, larger than the limit of ${maxBytes} bytes`,
      );
    }
    const response = await this.#get(`/blobs/${layer.digest}`, "*/*", {
      missing: `blob ${layer.digest} not found`,
    });
    const body = await this.#read(response, maxBytes, `layer ${layer.digest}`);
    const digest = `sha256:${await sha256Hex(body)}`;
    if (digest !== layer.digest) {
      throw new WasmFetchError("digest", this.#url, `layer ${layer.digest} has digest ${digest}`);
    }
    return body;
  }

  /** A GET that answers one auth challenge, then fails on any non-2xx status. */
  async #get(path: string, accept: string, words: { missing: string }): Promise<Response> {
    let response = await this.#send(path, accept);
    if (response.status === 401) {
      const challenge = response.headers.get("www-authenticate") ?? "";
      await response.body?.cancel();
      this.#authorization = await this.#answer(challenge);
      response = await this.#send(path, accept);
      if (response.status === 401 || response.status === 403) {
        await response.body?.cancel();
        throw new WasmFetchError(
          "auth",
          this.#url,
          `registry ${this.#ref.registry} refused our credentials (${response.status})`,
        );
      }
    }
    if (response.ok) return response;
    await response.body?.cancel();
    const reason = response.status === 404
      ? words.missing
      : `registry ${this.#ref.registry} answered ${response.status} for ${path}`;
    throw new WasmFetchError("status", this.#url, reason);
  }

  async #send(path: string, accept: string): Promise<Response> {
    const headers: Record<string, string> = { accept };
    if (this.#authorization) headers.authorization = this.#authorization;
    return await this.#fetch(`${this.#base}${path}`, headers);
  }

  async #fetch(url: string, headers: Record<string, string>): Promise<Response> {
    try {
      return await fetch(url, { headers, signal: this.#options.signal });
    } catch (error) {
      if (this.#options.signal.aborted) throw this.#options.signal.reason;
      throw new WasmFetchError("network", this.#url, `${url}: ${(error as Error).message}`);
    }
  }

  async #read(response: Response, max: number, what: string): Promise<Uint8Array> {
    try {
      return await readBody(response, max, what);
    } catch (error) {
      if (error instanceof UnpackError) throw new WasmFetchError("size", this.#url, error.message);
      throw error;
    }
  }

  /** The Authorization value that answers a challenge. */
  async #answer(challenge: string): Promise<string> {
    const basic = this.#basicCredentials();
    const scheme = challenge.split(" ", 1)[0].toLowerCase();
    if (scheme === "basic") {
      if (basic) return `Basic ${basic}`;
      throw new WasmFetchError(
        "auth",
        this.#url,
        `registry ${this.#ref.registry} wants basic credentials and no imagePullSecret has them`,
      );
    }
    if (scheme !== "bearer") {
      throw new WasmFetchError("auth", this.#url, `unusable challenge: ${challenge || "none"}`);
    }
    const params = challengeParams(challenge);
    if (!params.realm) throw new WasmFetchError("auth", this.#url, "bearer challenge has no realm");
    const tokenUrl = new URL(params.realm);
    if (params.service) tokenUrl.searchParams.set("service", params.service);
    tokenUrl.searchParams.set("scope", params.scope ?? `repository:${this.#ref.repository}:pull`);
    const headers: Record<string, string> = {};
    if (basic) headers.authorization = `Basic ${basic}`;
    const response = await this.#fetch(tokenUrl.href, headers);
    if (!response.ok) {
      await response.body?.cancel();
      throw new WasmFetchError(
        "auth",
        this.#url,
        `token service ${tokenUrl.origin} answered ${response.status}`,
      );
    }
    const body = await this.#read(response, 1 << 20, "token answer");
    const answer = JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>;
    const token = answer.token ?? answer.access_token;
    if (typeof token !== "string" || token === "") {
      throw new WasmFetchError("auth", this.#url, `token service ${tokenUrl.origin} sent no token`);
    }
    return `Bearer ${token}`;
  }

  /** base64 `user:password` for this registry from the pull secret, if it has an entry. */
  #basicCredentials(): string | undefined {
    const wanted = this.#ref.registry;
    const hub = [DOCKER_HUB, "docker.io", "registry-1.docker.io"];
    const entry = this.#options.auth?.find((a) => {
      const host = registryHost(a.registry);
      return host === wanted || (hub.includes(wanted) && hub.includes(host));
    });
    if (!entry) return undefined;
    if (entry.auth) return entry.auth;
    if (entry.username === undefined) return undefined;
    const pair = new TextEncoder().encode(`${entry.username}:${entry.password ?? ""}`);
    return btoa(String.fromCharCode(...pair));
  }
}

/** `key="value"` pairs of a `WWW-Authenticate` challenge. */
function challengeParams(challenge: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const match of challenge.matchAll(/(\w+)="([^"]*)"/g)) params[match[1]] = match[2];
  return params;
}
