import assert from "node:assert/strict";
import { metricsApp } from "../../admin/metrics.ts";

const TEXT = "# TYPE waypoint_up gauge\nwaypoint_up 1\n";

Deno.test("metricsApp() serves the rendered text in the Prometheus format", async () => {
  const cases: [string, () => string | Promise<string>, string][] = [
    ["Istio's path with a sync renderer", () => TEXT, "/stats/prometheus"],
    ["the conventional path with a sync renderer", () => TEXT, "/metrics"],
    ["Istio's path with an async renderer", () => Promise.resolve(TEXT), "/stats/prometheus"],
  ];
  for (const [name, render, path] of cases) {
    const res = await metricsApp(render).request(path);
    assert.equal(res.status, 200, name);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/, name);
    assert.equal(await res.text(), TEXT, name);
  }
});

Deno.test("metricsApp() renders at each scrape and 404s other paths", async () => {
  let scrapes = 0;
  const app = metricsApp(() => `waypoint_scrapes ${++scrapes}\n`);
  assert.equal(await (await app.request("/metrics")).text(), "waypoint_scrapes 1\n");
  assert.equal(await (await app.request("/stats/prometheus")).text(), "waypoint_scrapes 2\n");
  assert.equal((await app.request("/stats")).status, 404);
  assert.equal(scrapes, 2);
});
