/**
 * The readiness endpoint kubelet probes on port 15021, as Istio's proxies serve it.
 *
 * Invariants:
 * - `GET /healthz/ready` answers 200 with an empty body when ready, like pilot-agent and Envoy,
 *   and 503 `not ready` otherwise; every other path is 404.
 * - The probe only reads `isReady()`: no I/O, so it answers even when the proxy is busy.
 */
import { Hono } from "hono";
import { onAppError } from "./_errors.ts";

/**
 * Builds the readiness app.
 *
 * @example
 * ```ts
 * const app = readinessApp(() => snapshotLoaded);
 * const res = await app.request("/healthz/ready");
 * ```
 *
 * @param isReady Tells whether the proxy can take traffic (certificates and config loaded).
 * @returns A Hono app serving `GET /healthz/ready` (HEAD too).
 */
export function readinessApp(isReady: () => boolean): Hono {
  const app = new Hono();
  app.onError(onAppError);
  app.get("/healthz/ready", function ready(c) {
    return isReady() ? c.body(null, 200) : c.text("not ready", 503);
  });
  return app;
}
