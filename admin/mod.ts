/**
 * @module
 * The admin ports, as Istio's proxies have them: readiness on 15021 (`/healthz/ready`), Prometheus
 * metrics on 15020 (`/stats/prometheus`) and the admin app on 15000 (loopback only,
 * `/config_dump`). Each is a small Hono app built from the few functions it reads, tested with
 * `app.request()`, and served by {@link serveApp}.
 *
 * Must not: reach into the request path or hold state of its own; it only reads what `main.ts`
 * hands it (a readiness flag, a metrics renderer, a snapshot reader).
 */
export { readinessApp } from "./readiness.ts";
export { adminApp, type AdminAppOptions } from "./admin.ts";
export { metricsApp, PROMETHEUS_CONTENT_TYPE } from "./metrics.ts";
export { type HostPort, parseHostPort, serveApp, type ServedApp } from "./serve.ts";
