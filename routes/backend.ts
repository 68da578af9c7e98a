/**
 * Weighted backend choice for HTTP and gRPC rules and TCP routes (l7.md §6.4).
 *
 * - Proportion is weight / sum of weights; weight 0 is never picked.
 * - An unresolved backend is an `error` backend that keeps its weight, so its share of requests gets
 *   500 (TCP: its share of connections is refused).
 * - No backends, or all weights 0, answers 500 (Istio `conversion.go`: `weightSum == 0` ⇒ direct
 *   response 500; for TCP a blackhole, i.e. a refused connection).
 */
import type { Backend, HasBackends } from "./model.ts";

const NO_BACKENDS: Backend = Object.freeze({
  kind: "error",
  status: 500,
  reason: "The rule has no backendRefs",
});
const ZERO_WEIGHT: Backend = Object.freeze({
  kind: "error",
  status: 500,
  reason: "Every backendRef of the rule has weight 0",
});

/**
 * Picks a backend by weight.
 *
 * @example
 * ```ts
 * const backend = pickBackend(hit.rule, Math.random);
 * if (backend.kind === "error") respond(backend.status);
 * ```
 * @param rule Anything with weighted backends: an HTTP/gRPC rule or a TCP route
 * @param random Source of randomness in [0, 1)
 * @returns The chosen backend, or a 500 error backend when nothing can be chosen
 */
export function pickBackend(rule: HasBackends, random: () => number): Backend {
  const { backends } = rule;
  if (backends.length === 0) return NO_BACKENDS;
  let total = 0;
  for (const b of backends) total += b.weight;
  if (total === 0) return ZERO_WEIGHT;
  let point = random() * total;
  for (const b of backends) {
    if (b.weight === 0) continue;
    if (point < b.weight) return b.backend;
    point -= b.weight;
  }
  // Only reached through rounding at the very top of the range: the last non-zero backend.
  return backends.findLast((b) => b.weight > 0)!.backend;
}
