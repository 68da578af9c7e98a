/**
 * Our TLS identity: the certificate folder in Istio's layout (`cert-chain.pem`, `key.pem`,
 * `root-cert.pem`), the SPIFFE id in its leaf, and reloads when the files change.
 *
 * Invariants:
 * - A reload that fails (missing file, key not matching the cert, no SPIFFE URI SAN) keeps the
 *   last good material; live connections are never touched by a reload.
 * - Subscribers get the new material after it has been validated by building a secure context.
 */
import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import { log } from "../log/mod.ts";
import { parseSpiffeId } from "./spiffe.ts";

/** One consistent set of certificate files. */
export interface TlsMaterial {
  readonly key: string;
  readonly certChain: string;
  readonly root: string;
  /** The leaf's SPIFFE id. */
  readonly identity: string;
  readonly trustDomain: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * Reads and validates a certificate folder.
 *
 * @param dir Folder with `cert-chain.pem`, `key.pem` and `root-cert.pem`
 * @returns The material, checked by building a TLS context from it
 * @throws Error naming the folder and what is wrong
 */
export async function loadTlsMaterial(dir: string): Promise<TlsMaterial> {
  const read = (name: string) => Deno.readTextFile(`${dir}/${name}`);
  let key: string, certChain: string, root: string;
  try {
    [key, certChain, root] = await Promise.all([
      read("key.pem"),
      read("cert-chain.pem"),
      read("root-cert.pem"),
    ]);
  } catch (e) {
    throw new Error(`Cannot read certificates in ${dir}: ${(e as Error).message}`);
  }
  return tlsMaterialOf({ key, certChain, root }, `${dir}/cert-chain.pem`);
}

/**
 * Checks PEM texts and makes them one {@link TlsMaterial}: a SPIFFE URI SAN in the leaf and a key
 * that matches it, proven by building a TLS context. Used for files and for CA responses.
 *
 * @param pem The private key, the chain (leaf first) and the roots
 * @param source Where the certificate came from, for messages (a file, a CA address)
 * @returns The frozen material
 * @throws Error naming `source` and what is wrong
 */
export function tlsMaterialOf(
  pem: { readonly key: string; readonly certChain: string; readonly root: string },
  source: string,
): TlsMaterial {
  const { key, certChain, root } = pem;
  const leaf = new X509Certificate(firstPem(certChain, source));
  const identity = spiffeIdOf(leaf.subjectAltName);
  const parsed = identity ? parseSpiffeId(identity) : undefined;
  if (!identity || !parsed) throw new Error(`Certificate from ${source} has no SPIFFE URI SAN`);
  try {
    tls.createSecureContext({ key, cert: certChain, ca: root });
  } catch (e) {
    throw new Error(
      `Certificate from ${source} and its key do not form a usable pair: ${(e as Error).message}`,
    );
  }
  return Object.freeze({
    key,
    certChain,
    root,
    identity,
    trustDomain: parsed.trustDomain,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
  });
}

/**
 * The first `spiffe://` URI SAN in Node's `subjectaltname` text
 * (`URI:spiffe://td/ns/a/sa/b, DNS:x`), as ztunnel takes the first parsable one.
 */
export function spiffeIdOf(subjectAltName: string | undefined): string | undefined {
  if (!subjectAltName) return undefined;
  for (const part of subjectAltName.split(", ")) {
    if (part.startsWith("URI:spiffe://")) return part.slice(4);
  }
  return undefined;
}

function firstPem(chain: string, source: string): string {
  const end = "-----END CERTIFICATE-----";
  const at = chain.indexOf(end);
  if (at < 0) throw new Error(`No certificate from ${source}`);
  return chain.slice(0, at + end.length);
}

/** Holds the current material and reloads it when its folder changes. */
export class IdentitySource {
  #material: TlsMaterial;
  #listeners = new Set<(m: TlsMaterial) => void>();
  #watcher?: Deno.FsWatcher;

  constructor(material: TlsMaterial) {
    this.#material = material;
  }

  /** Loads `dir` once. @throws Error when the folder is not usable */
  static async fromDir(dir: string): Promise<IdentitySource> {
    return new IdentitySource(await loadTlsMaterial(dir));
  }

  get current(): TlsMaterial {
    return this.#material;
  }

  /** Calls `fn` after every successful reload; returns the unsubscribe function. */
  subscribe(fn: (m: TlsMaterial) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Replaces the material and notifies subscribers. */
  replace(material: TlsMaterial): void {
    this.#material = material;
    for (const fn of this.#listeners) fn(material);
  }

  /** Watches `dir` and reloads on change (debounced); a bad reload keeps the old material. */
  watch(dir: string, debounceMs = 200): void {
    if (this.#watcher) return;
    const watcher = Deno.watchFs(dir);
    this.#watcher = watcher;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const reload = async () => {
      try {
        const next = await loadTlsMaterial(dir);
        if (
          next.certChain === this.#material.certChain && next.key === this.#material.key &&
          next.root === this.#material.root
        ) return;
        this.replace(next);
        log.info("Certificates reloaded", {
          dir,
          identity: next.identity,
          notAfter: next.notAfter,
        });
      } catch (e) {
        log.warn("Certificate reload failed, keeping the current ones", { dir, reason: e });
      }
    };
    (async () => {
      try {
        for await (const _ of watcher) {
          clearTimeout(timer);
          timer = setTimeout(reload, debounceMs);
        }
      } catch {
        // The watcher was closed.
      }
    })();
  }

  /** Stops watching. */
  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }
}
