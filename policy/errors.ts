/**
 * The one error class of `policy/`. Compilation never throws for bad config (it reports
 * {@link Problem}s); this class carries the faults of JWKS retrieval, which happen in the
 * background and end up in logs, and of callers that break an API contract.
 */

/** What went wrong. */
export type PolicyErrorKind =
  /** The JWKS (or OpenID discovery) server did not answer in time. */
  | "jwks-timeout"
  /** The JWKS server could not be reached or answered with a non-200 status. */
  | "jwks-fetch"
  /** The JWKS body is not a key set with at least one usable key. */
  | "jwks-parse";

/** A policy fault, located by the resource (`RequestAuthentication ns/name`, a JWKS URI). */
export class PolicyError extends Error {
  readonly kind: PolicyErrorKind;
  /** The resource or URI at fault. */
  readonly resource: string;
  readonly reason: string;

  /**
   * @param kind What went wrong
   * @param resource What it happened to, such as a JWKS URI
   * @param reason Details, without a final period
   */
  constructor(kind: PolicyErrorKind, resource: string, reason: string) {
    super(`${TITLES[kind]}: ${resource}: ${reason}`);
    this.name = "PolicyError";
    this.kind = kind;
    this.resource = resource;
    this.reason = reason;
  }
}

const TITLES: Readonly<Record<PolicyErrorKind, string>> = {
  "jwks-timeout": "JWKS fetch timed out",
  "jwks-fetch": "JWKS fetch failed",
  "jwks-parse": "JWKS is not usable",
};
