/**
 * The `run` flags that take the waypoint's certificate from an Istio CA instead of `--certs`,
 * named after ztunnel's settings (`CA_ADDRESS`, `ALT_CA_HOSTNAME`; hbone.md §5) with the paths
 * Istio's waypoint template mounts as defaults.
 */
import {
  type CaClientOptions,
  DEFAULT_CA_ROOT_FILE,
  DEFAULT_CA_TOKEN_FILE,
  type RotationOptions,
} from "../tunnel/mod.ts";
import { UsageError } from "./flags.ts";

/** Flag table entries, spread into `run`'s. */
export const CA_FLAGS = {
  "ca-address": { type: "string" },
  "ca-hostname": { type: "string" },
  "ca-token": { type: "string" },
  "ca-root": { type: "string" },
} as const;

/** The parsed values of {@link CA_FLAGS}. */
export interface CaFlagValues {
  readonly "ca-address"?: string;
  readonly "ca-hostname"?: string;
  readonly "ca-token"?: string;
  readonly "ca-root"?: string;
}

/** Who we are, for the CSR's SPIFFE id and the `clusterid` header. */
export interface CaSubject {
  readonly trustDomain: string;
  readonly namespace: string;
  /** @default "default" */
  readonly serviceAccount?: string;
  /** @default "Kubernetes" */
  readonly clusterId?: string;
}

/**
 * The CA options of `run`, or none when neither `--ca-address` nor `CA_ADDRESS` is set.
 *
 * @param f Parsed flags
 * @param subject Trust domain, namespace, service account and cluster
 * @param env Reads an environment variable (`CA_ADDRESS`, `ALT_CA_HOSTNAME`)
 * @throws UsageError when `--ca-*` flags come without an address
 */
export function caRunOptions(
  f: CaFlagValues,
  subject: CaSubject,
  env: (name: string) => string | undefined,
): (CaClientOptions & RotationOptions) | undefined {
  const address = f["ca-address"] ?? env("CA_ADDRESS");
  if (!address) {
    const stray = Object.keys(CA_FLAGS).find((k) => f[k as keyof CaFlagValues] !== undefined);
    if (stray) throw new UsageError(`--${stray} needs --ca-address`);
    return undefined;
  }
  if (!/^.+:\d{1,5}$/.test(address)) {
    throw new UsageError(`--ca-address wants host:port: got "${address}"`);
  }
  const sa = subject.serviceAccount ?? "default";
  return {
    address,
    hostname: f["ca-hostname"] ?? env("ALT_CA_HOSTNAME"),
    tokenFile: f["ca-token"] ?? DEFAULT_CA_TOKEN_FILE,
    rootFile: f["ca-root"] ?? DEFAULT_CA_ROOT_FILE,
    identity: `spiffe://${subject.trustDomain}/ns/${subject.namespace}/sa/${sa}`,
    clusterId: subject.clusterId,
  };
}
