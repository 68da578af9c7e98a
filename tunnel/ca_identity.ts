/**
 * Our identity from an Istio CA instead of files: the first certificate is fetched before the
 * waypoint starts, then {@link CertificateRotation} keeps it fresh.
 *
 * Invariants:
 * - Start-up waits out an unreachable CA (istiod may start after us), retrying with backoff and
 *   logging each failure; a refused token or an unusable answer fails start-up at once, since
 *   waiting will not fix it.
 */
import { log } from "../log/mod.ts";
import { type CaClientOptions, CaError, IstioCaClient } from "./ca_client.ts";
import { backoffDelay, CertificateRotation, type RotationOptions } from "./cert_rotation.ts";
import { IdentitySource } from "./identity.ts";

/** A CA-backed identity. */
export interface CaIdentity {
  readonly identity: IdentitySource;
  readonly rotation: CertificateRotation;
  /** `host:port` of the CA. */
  readonly address: string;
  /** Stops renewing. */
  close(): void;
}

/**
 * Fetches the first certificate and starts renewing it.
 *
 * @param options CA address, token, roots, identity, lifetime and renewal timing
 * @returns The identity holder and its rotation
 * @throws CaError of kind token, unauthenticated, rejected or response
 */
export async function startCaIdentity(
  options: CaClientOptions & RotationOptions,
): Promise<CaIdentity> {
  const client = new IstioCaClient(options);
  for (let attempt = 1;; attempt++) {
    try {
      const identity = new IdentitySource(await client.fetch());
      const rotation = new CertificateRotation(() => client.fetch(), identity, {
        ...options,
        ca: client.address,
      });
      return { identity, rotation, address: client.address, close: () => rotation.close() };
    } catch (e) {
      if (!(e instanceof CaError) || e.kind !== "unreachable") throw e;
      const retryMs = backoffDelay(attempt, Math.random(), options);
      log.warn("Waiting for the CA", {
        ca: client.address,
        reason: e.message,
        retryInMs: Math.round(retryMs),
      });
      await new Promise((r) => setTimeout(r, retryMs));
    }
  }
}
