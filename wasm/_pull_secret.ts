/**
 * Registry credentials for `imagePullSecret`: a `kubernetes.io/dockerconfigjson` Secret in the
 * plugin's namespace, read from the same documents (file mode). Its `.dockerconfigjson` holds
 * `{"auths": {"<registry>": {"username", "password", "auth"}}}`.
 */
import type { SourceDoc } from "../mesh/mod.ts";
import type { RegistryAuth } from "./spec.ts";

const DOCKER_CONFIG_TYPE = "kubernetes.io/dockerconfigjson";
const KEY = ".dockerconfigjson";

/** Secrets of a load by `namespace/name`. */
export type SecretIndex = ReadonlyMap<string, Readonly<Record<string, unknown>>>;

/** Indexes the `v1` Secrets among the documents. */
export function indexSecrets(documents: readonly SourceDoc[]): SecretIndex {
  const secrets = new Map<string, Readonly<Record<string, unknown>>>();
  for (const { object } of documents) {
    if (object.kind !== "Secret" || object.apiVersion !== "v1") continue;
    const meta = object.metadata as { name?: unknown; namespace?: unknown } | undefined;
    if (typeof meta?.name !== "string") continue;
    const namespace = typeof meta.namespace === "string" && meta.namespace
      ? meta.namespace
      : "default";
    const key = `${namespace}/${meta.name}`;
    if (!secrets.has(key)) secrets.set(key, object);
  }
  return secrets;
}

/**
 * The credentials of a pull secret.
 *
 * @param secrets Secrets of the load
 * @param namespace The plugin's namespace (Istio forces the secret into it)
 * @param name `imagePullSecret`
 * @param warn Receives why the secret gives no credentials
 * @returns One entry per registry, or undefined (the pull goes without credentials)
 */
export function pullSecretAuth(
  secrets: SecretIndex,
  namespace: string,
  name: string,
  warn: (message: string) => void,
): readonly RegistryAuth[] | undefined {
  const secret = secrets.get(`${namespace}/${name}`);
  const without = "; pulling without credentials";
  if (!secret) {
    warn(`Secret not found: spec.imagePullSecret names ${namespace}/${name}${without}`);
    return undefined;
  }
  if (secret.type !== DOCKER_CONFIG_TYPE) {
    warn(`Wrong Secret type: ${namespace}/${name} is not ${DOCKER_CONFIG_TYPE}${without}`);
    return undefined;
  }
  try {
    return Object.freeze(parseDockerConfig(configText(secret)));
  } catch (error) {
    warn(`Invalid Secret: ${namespace}/${name} ${KEY}: ${(error as Error).message}${without}`);
    return undefined;
  }
}

function configText(secret: Readonly<Record<string, unknown>>): string {
  const plain = (secret.stringData as Record<string, unknown> | undefined)?.[KEY];
  if (typeof plain === "string") return plain;
  const encoded = (secret.data as Record<string, unknown> | undefined)?.[KEY];
  if (typeof encoded !== "string") throw new Error(`no ${KEY} key in data or stringData`);
  const bytes = Uint8Array.from(atob(encoded.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

function parseDockerConfig(text: string): RegistryAuth[] {
  const config = JSON.parse(text) as { auths?: Record<string, Record<string, unknown>> };
  if (typeof config?.auths !== "object" || config.auths === null) {
    throw new Error("no auths object");
  }
  return Object.entries(config.auths).map(([registry, entry]) => {
    const pick = (field: string) => typeof entry?.[field] === "string" ? entry[field] : undefined;
    const username = pick("username");
    const password = pick("password");
    const auth = pick("auth");
    return Object.freeze({
      registry: registryHost(registry),
      ...(username !== undefined && { username }),
      ...(password !== undefined && { password }),
      ...(auth !== undefined && { auth }),
    });
  });
}

/** `https://index.docker.io/v1/` → `index.docker.io`; `127.0.0.1:5000` stays. */
export function registryHost(written: string): string {
  return written.replace(/^[a-z]+:\/\//, "").replace(/\/.*$/, "");
}
