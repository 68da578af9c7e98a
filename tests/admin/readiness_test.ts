import assert from "node:assert/strict";
import { readinessApp } from "../../admin/readiness.ts";
import { log } from "../../log/mod.ts";

Deno.test("readinessApp() answers /healthz/ready from isReady()", async () => {
  const cases: [string, string, string, boolean, number, string][] = [
    ["ready answers 200 with an empty body", "GET", "/healthz/ready", true, 200, ""],
    ["not ready answers 503", "GET", "/healthz/ready", false, 503, "not ready"],
    ["HEAD works like GET", "HEAD", "/healthz/ready", true, 200, ""],
    ["another path is 404", "GET", "/healthz/live", true, 404, "404 Not Found"],
    ["POST is 404", "POST", "/healthz/ready", true, 404, "404 Not Found"],
  ];
  for (const [name, method, path, ready, status, body] of cases) {
    const res = await readinessApp(() => ready).request(path, { method });
    assert.equal(res.status, status, name);
    assert.equal(await res.text(), body, name);
  }
});

Deno.test("readinessApp() reads isReady() on every probe", async () => {
  let ready = false;
  const app = readinessApp(() => ready);
  assert.equal((await app.request("/healthz/ready")).status, 503);
  ready = true;
  assert.equal((await app.request("/healthz/ready")).status, 200);
});

Deno.test("readinessApp() answers 500 when isReady() throws", async () => {
  const app = readinessApp(() => {
    throw new Error("Boom");
  });
  const res = await app.request("/healthz/ready");
  assert.equal(res.status, 500);
  assert.equal(await res.text(), "Internal error");
  await log.drain();
});
