/**
 * SPIFFE identities as Istio uses them: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
 *
 * Invariants:
 * - Only that exact five-segment shape is an identity, as in ztunnel's `Identity::from_str`
 *   (ztunnel `src/identity/manager.rs`): a missing or extra segment is not one.
 * - Characters follow the SPIFFE ID spec (SPIFFE-ID.md §2.1, §2.2): a trust domain is lowercase
 *   `[a-z0-9._-]`, a path segment is `[A-Za-z0-9._-]`, non-empty and neither `.` nor `..`. No
 *   percent-encoding, port, user info, query or fragment.
 */

/** The parts of an Istio workload identity. */
export interface SpiffeId {
  /** For example `cluster.local`. */
  readonly trustDomain: string;
  /** Kubernetes namespace of the workload. */
  readonly namespace: string;
  /** Kubernetes service account of the workload. */
  readonly serviceAccount: string;
}

const PREFIX = "spiffe://";
// SPIFFE-ID.md §2.1: "Trust domain names ... MUST contain only lowercase letters, numbers, dots,
// dashes, and underscores"; §2.3: a SPIFFE ID is at most 2048 bytes, a trust domain at most 255.
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const MAX_ID_LENGTH = 2048;

/**
 * Tells whether a name is a valid SPIFFE trust domain.
 *
 * @example
 * ```ts
 * isTrustDomain("cluster.local"); // true
 * isTrustDomain("Cluster.Local"); // false
 * ```
 *
 * @param name The candidate, without scheme, for example `cluster.local`.
 * @returns `true` when it has only lowercase letters, digits, `.`, `-` and `_`, and 1–255 of them.
 */
export function isTrustDomain(name: string): boolean {
  return TRUST_DOMAIN.test(name);
}

/**
 * Parses an Istio SPIFFE identity, strictly.
 *
 * @example
 * ```ts
 * parseSpiffeId("spiffe://cluster.local/ns/default/sa/sleep");
 * // { trustDomain: "cluster.local", namespace: "default", serviceAccount: "sleep" }
 * parseSpiffeId("spiffe://cluster.local/ns/default"); // undefined
 * ```
 *
 * @param uri A URI SAN value such as `spiffe://cluster.local/ns/default/sa/sleep`.
 * @returns The trust domain, namespace and service account, or `undefined` when the text is not
 * exactly `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
 */
export function parseSpiffeId(uri: string): SpiffeId | undefined {
  if (!uri.startsWith(PREFIX) || uri.length > MAX_ID_LENGTH) return undefined;
  const parts = uri.slice(PREFIX.length).split("/");
  if (parts.length !== 5 || parts[1] !== "ns" || parts[3] !== "sa") return undefined;
  const [trustDomain, , namespace, , serviceAccount] = parts;
  if (!isTrustDomain(trustDomain) || !isSegment(namespace) || !isSegment(serviceAccount)) {
    return undefined;
  }
  return { trustDomain, namespace, serviceAccount };
}

function isSegment(text: string): boolean {
  // SPIFFE-ID.md §2.2: "Individual path segments MUST NOT be relative path modifiers (i.e. '.', '..')"
  return SEGMENT.test(text) && text !== "." && text !== "..";
}
