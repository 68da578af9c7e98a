/**
 * Fetches Wasm modules for WasmPlugins (Istio's agent-side `pkg/wasm` cache): `file://` paths,
 * `http(s)://` downloads (raw, gzip, tar, tar.gz), `oci://` images (`oci.ts`), verified, bounded and
 * cached. It runs in the background, never on the request path.
 *
 * Invariants:
 * - `sha256` checks the module bytes for file and http(s), and the manifest digest for OCI (what
 *   Istio compares it with, and what an `@sha256:` url names); a mismatch is an error.
 * - Every body, layer and inflated module is bounded by `maxBytes`, and a whole load by
 *   `timeoutMs` (Istio: 30 s).
 * - Memory cache by url and sha256: a hit when the identity is pinned (sha256 or `@sha256:`), when
 *   the policy is `IfNotPresent`, or when the resource revision is unchanged; `Always` re-pulls a
 *   changed resource. Disk cache (optional) by pinned identity, written atomically.
 * - Concurrent loads of the same source share one download.
 */
import { join } from "node:path";
import { log } from "../log/mod.ts";
import { readBody, sha256Hex } from "./_http.ts";
import { UnpackError, unpackModule } from "./_unpack.ts";
import { WasmFetchError } from "./fetch_error.ts";
import { pullOciModule } from "./oci.ts";
import type { ModuleLoader, ModuleSource } from "./spec.ts";

/** How modules are fetched and kept. */
export interface ModuleFetcherOptions {
  /** Folder for modules named by their pinned digest. @default none (memory only) */
  readonly cacheDir?: string;
  /** Bound on a download, a layer and an inflated module. @default 64 MiB */
  readonly maxBytes?: number;
  /** Bound on one whole load, all requests included. @default 30_000 */
  readonly timeoutMs?: number;
  /**
   * Registries (`host:port`) reached over plain http; `"*"` for all. `localhost`, `127.x` and
   * `[::1]` always are. @default []
   */
  readonly insecureRegistries?: readonly string[];
  /** Retries of an http(s) download after a network error or a retryable 5xx. @default 2 */
  readonly retries?: number;
  /** Modules kept in memory. @default 64 */
  readonly memoryEntries?: number;
}

interface Cached {
  readonly revision: string;
  readonly bytes: Uint8Array;
}

const MiB = 1 << 20;
const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/;
const NOT_RETRYABLE = [501, 505, 511];

/** A {@link ModuleLoader} over file, http(s) and OCI sources. */
export class ModuleFetcher implements ModuleLoader {
  readonly #cacheDir: string | undefined;
  readonly #maxBytes: number;
  readonly #timeoutMs: number;
  readonly #insecure: ReadonlySet<string>;
  readonly #retries: number;
  readonly #memoryEntries: number;
  readonly #memory = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<Uint8Array>>();

  /** @param options Cache folder, bounds, insecure registries */
  constructor(options: ModuleFetcherOptions = {}) {
    this.#cacheDir = options.cacheDir;
    this.#maxBytes = options.maxBytes ?? 64 * MiB;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#insecure = new Set(options.insecureRegistries ?? []);
    this.#retries = options.retries ?? 2;
    this.#memoryEntries = options.memoryEntries ?? 64;
  }

  /**
   * The module bytes of a source, from a cache or fetched.
   *
   * @param source Url, sha256, pull policy, credentials and resource revision
   * @returns The verified module bytes
   * @throws WasmFetchError naming the url and the reason
   */
  load(source: ModuleSource): Promise<Uint8Array> {
    const key = `${source.url}\0${source.sha256 ?? ""}`;
    const cached = this.#memory.get(key);
    if (
      cached && (pinned(source) || source.pullPolicy === "IfNotPresent" ||
        cached.revision === source.revision)
    ) {
      this.#memory.delete(key);
      this.#memory.set(key, cached);
      return Promise.resolve(cached.bytes);
    }
    const flight = `${key}\0${source.revision}`;
    const running = this.#inflight.get(flight);
    if (running) return running;
    const loading = this.#fetch(source).then((bytes) => {
      this.#remember(key, { revision: source.revision, bytes });
      return bytes;
    }).finally(() => this.#inflight.delete(flight));
    this.#inflight.set(flight, loading);
    return loading;
  }

  async #fetch(source: ModuleSource): Promise<Uint8Array> {
    const { url } = source;
    const started = performance.now();
    const pin = pinned(source);
    const fromDisk = pin ? await this.#readDisk(pin, source) : undefined;
    if (fromDisk) return fromDisk;
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let fetched: { module: Uint8Array; identity: string };
    try {
      fetched = await this.#fetchBy(source, signal);
    } catch (error) {
      if (signal.aborted && !(error instanceof WasmFetchError)) {
        throw new WasmFetchError("timeout", url, `no module after ${this.#timeoutMs} ms`);
      }
      if (error instanceof UnpackError) throw new WasmFetchError(error.kind, url, error.message);
      throw error;
    }
    if (source.sha256 !== undefined && fetched.identity !== source.sha256) {
      const what = url.startsWith("oci://") ? "image digest" : "module sha256";
      throw new WasmFetchError(
        "digest",
        url,
        `${what} is ${fetched.identity}, but the WasmPlugin's sha256 is ${source.sha256}`,
      );
    }
    await this.#writeDisk(fetched.identity, fetched.module);
    log.info("Wasm module fetched", {
      url,
      bytes: fetched.module.length,
      ms: Math.round(performance.now() - started),
    });
    return fetched.module;
  }

  /** The module and the identity `sha256` is checked against. */
  async #fetchBy(
    source: ModuleSource,
    signal: AbortSignal,
  ): Promise<{ module: Uint8Array; identity: string }> {
    const { url } = source;
    const scheme = url.slice(0, url.indexOf("://"));
    if (scheme === "oci") {
      const pulled = await pullOciModule(url, {
        auth: source.auth,
        insecure: (host) =>
          this.#insecure.has("*") || this.#insecure.has(host) || LOOPBACK.test(host),
        maxBytes: this.#maxBytes,
        signal,
      });
      return { module: pulled.module, identity: pulled.digest };
    }
    let raw: Uint8Array;
    if (scheme === "file") raw = await this.#readFile(url);
    else if (scheme === "http" || scheme === "https") raw = await this.#download(url, signal);
    else throw new WasmFetchError("url", url, `unsupported scheme ${scheme || "(none)"}`);
    const module = await unpackModule(raw, this.#maxBytes);
    return { module, identity: await sha256Hex(module) };
  }

  async #readFile(url: string): Promise<Uint8Array> {
    const path = decodeURIComponent(new URL(url).pathname);
    try {
      const info = await Deno.stat(path);
      if (info.size > this.#maxBytes) {
        throw new WasmFetchError(
          "size",
          url,
          `file is ${info.size} bytes, larger than the limit of ${this.#maxBytes} bytes`,
        );
      }
      return await Deno.readFile(path);
    } catch (error) {
      if (error instanceof WasmFetchError) throw error;
      throw new WasmFetchError("url", url, `cannot read ${path}: ${(error as Error).message}`);
    }
  }

  /** GET with retries on network errors and retryable 5xx, as Istio's http fetcher. */
  async #download(url: string, signal: AbortSignal): Promise<Uint8Array> {
    let last = "";
    for (let attempt = 0; attempt <= this.#retries; attempt++) {
      if (attempt > 0) await pause(250 * 2 ** (attempt - 1), signal);
      let response: Response;
      try {
        response = await fetch(url, { signal });
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        last = (error as Error).message;
        continue;
      }
      if (response.ok) return await readBody(response, this.#maxBytes, "download");
      await response.body?.cancel();
      last = `status ${response.status}`;
      if (response.status < 500 || NOT_RETRYABLE.includes(response.status)) {
        throw new WasmFetchError("status", url, `server answered ${response.status}`);
      }
    }
    const kind = last.startsWith("status") ? "status" : "network";
    throw new WasmFetchError(kind, url, `failed after ${this.#retries + 1} attempts: ${last}`);
  }

  async #readDisk(pin: string, source: ModuleSource): Promise<Uint8Array | undefined> {
    if (!this.#cacheDir) return undefined;
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(join(this.#cacheDir, `${pin}.wasm`));
    } catch {
      return undefined;
    }
    // A module pinned by its own sha256 is checked again; an OCI digest names the manifest.
    if (source.url.startsWith("oci://") || await sha256Hex(bytes) === pin) return bytes;
    return undefined;
  }

  async #writeDisk(identity: string, module: Uint8Array): Promise<void> {
    if (!this.#cacheDir) return;
    try {
      await Deno.mkdir(this.#cacheDir, { recursive: true });
      const temp = await Deno.makeTempFile({ dir: this.#cacheDir, suffix: ".part" });
      await Deno.writeFile(temp, module);
      await Deno.rename(temp, join(this.#cacheDir, `${identity}.wasm`));
    } catch (error) {
      log.warn("Wasm module cache write failed", {
        dir: this.#cacheDir,
        error: (error as Error).message,
      });
    }
  }

  #remember(key: string, entry: Cached): void {
    this.#memory.delete(key);
    this.#memory.set(key, entry);
    while (this.#memory.size > this.#memoryEntries) {
      this.#memory.delete(this.#memory.keys().next().value!);
    }
  }
}

/** The digest a source is pinned to: its sha256, or an `@sha256:` in an OCI url. */
function pinned(source: ModuleSource): string | undefined {
  return source.sha256 ?? /^oci:\/\/.*@sha256:([a-f0-9]{64})$/.exec(source.url)?.[1];
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const abort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", abort);
      resolve();
    }, ms);
    signal.addEventListener("abort", abort, { once: true });
  });
}
