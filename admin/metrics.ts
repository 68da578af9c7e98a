/**
 * The Prometheus scrape endpoint on port 15020, at Istio's path and the conventional one.
 *
 * Invariants:
 * - `GET /stats/prometheus` (what Istio's `prometheus.io/path` annotation names) and `GET /metrics`
 *   answer the same text in the Prometheus text format 0.0.4.
 * - The app owns no metrics: it renders whatever `render()` returns at scrape time.
 */
import { Hono } from "hono";
import { onAppError } from "./_errors.ts";

/** Content type of the Prometheus text exposition format (Prometheus `expfmt.FmtText`). */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * Builds the metrics app.
 *
 * @example
 * ```ts
 * const app = metricsApp(() => "# TYPE waypoint_up gauge\nwaypoint_up 1\n");
 * const text = await (await app.request("/stats/prometheus")).text();
 * ```
 *
 * @param render Produces the exposition at each scrape: text, or a byte stream so that a large
 * registry is sent as it renders and a scrape never holds the event loop for long.
 * @returns A Hono app serving `GET /stats/prometheus` and `GET /metrics`.
 */
export function metricsApp(
  render: () => string | Promise<string> | ReadableStream<Uint8Array>,
): Hono {
  const app = new Hono();
  app.onError(onAppError);
  async function scrape(): Promise<Response> {
    return new Response(await render(), {
      headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
    });
  }
  app.get("/stats/prometheus", scrape);
  app.get("/metrics", scrape);
  return app;
}
