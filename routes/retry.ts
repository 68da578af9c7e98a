/**
 * Retry decisions. The proxy runs the tries; this file only says whether one more is allowed.
 *
 * Istio's waypoint default (hbone.md §4; istio `pilot/pkg/networking/core/route/retry/retry.go`):
 * `num_retries: 2`, `retry_on: connect-failure,refused-stream,unavailable,cancelled,
 * retriable-status-codes` with **no** status codes, `retry_host_predicate: previous_hosts` (each
 * retry prefers another endpoint). A Gateway API `retry` stanza keeps the same conditions and adds
 * its `codes` (Istio `conversion.go`: `retryOn = connect-failure,refused-stream,unavailable,
 * cancelled,<codes>`, attempts 2 when unset).
 */
import type { RetryPolicy } from "./model.ts";

/** Envoy's base retry interval when none is configured (`retry_back_off.base_interval` 25 ms). */
export const DEFAULT_BACKOFF_MS = 25;

/** Istio's waypoint default retry policy: 2 retries, no retriable status codes. */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  attempts: 2,
  codes: Object.freeze([]),
  backoffMs: DEFAULT_BACKOFF_MS,
});

/** gRPC statuses Istio retries: `cancelled` (1) and `unavailable` (14). */
const RETRIED_GRPC_STATUSES: ReadonlySet<number> = new Set([1, 14]);

/** How one try ended, as the proxy saw it. */
export interface TryOutcome {
  /** HTTP status of the response, when one arrived. */
  readonly status?: number;
  /** `grpc-status` of a gRPC response (headers or trailers-only), when present. */
  readonly grpcStatus?: number;
  /** The connection (or tunnel) to the endpoint could not be opened. */
  readonly connectFailure?: boolean;
  /** The stream was refused or reset before any response header arrived. */
  readonly reset?: boolean;
  /** The per-try (`backendRequest`) timeout fired; counted as a 504 for `codes`. */
  readonly timeout?: boolean;
}

/**
 * Whether to try again after a failed try.
 *
 * @example
 * ```ts
 * shouldRetry(DEFAULT_RETRY, { connectFailure: true }, 1); // true
 * shouldRetry(DEFAULT_RETRY, { status: 503 }, 1); // false: no codes by default
 * shouldRetry(DEFAULT_RETRY, { connectFailure: true }, 3); // false: 2 retries used
 * ```
 * @param policy The rule's policy (or {@link DEFAULT_RETRY})
 * @param outcome How the try ended
 * @param attempt The 1-based number of the try that just ended (1 is the first try)
 * @returns True when the condition is retriable and a retry is left (`attempt <= attempts`)
 */
export function shouldRetry(policy: RetryPolicy, outcome: TryOutcome, attempt: number): boolean {
  if (attempt > policy.attempts) return false;
  if (outcome.connectFailure || outcome.reset) return true;
  if (outcome.grpcStatus !== undefined && RETRIED_GRPC_STATUSES.has(outcome.grpcStatus)) {
    return true;
  }
  const status = outcome.timeout ? 504 : outcome.status;
  return status !== undefined && policy.codes.includes(status);
}
