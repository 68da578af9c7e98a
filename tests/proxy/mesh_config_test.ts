import assert from "node:assert/strict";
import { parseMeshConfig } from "../../proxy/mesh_config.ts";

Deno.test("parseMeshConfig() reads envoyExtAuthzGrpc providers with Istio's defaults", () => {
  const config = parseMeshConfig(
    `extensionProviders:
  - name: authz-grpc
    envoyExtAuthzGrpc: { service: ns1/authz.ns1.svc.cluster.local, port: 9000 }
  - name: strict
    envoyExtAuthzGrpc:
      service: authz.ns1.svc.cluster.local
      port: "9001"
      timeout: 1.5s
      failOpen: true
      statusOnError: 503
      includeRequestBodyInCheck: { maxRequestBytes: 1024 }
  - name: authz-http
    envoyExtAuthzHttp: { service: http.ns1.svc.cluster.local, port: 8000 }
  - name: prometheus
    prometheus: {}`,
    "mesh.yaml",
  );
  assert.deepEqual(config.extAuthz.get("authz-grpc"), {
    kind: "grpc",
    name: "authz-grpc",
    service: "ns1/authz.ns1.svc.cluster.local",
    port: 9000,
    timeoutMs: 600_000,
    failOpen: false,
    statusOnError: 403,
  });
  assert.deepEqual(config.extAuthz.get("strict"), {
    kind: "grpc",
    name: "strict",
    service: "authz.ns1.svc.cluster.local",
    port: 9001,
    timeoutMs: 1_500,
    failOpen: true,
    statusOnError: 503,
  });
  assert.equal(config.extAuthz.get("authz-http")?.kind, "http");
  assert.equal(config.extAuthz.has("prometheus"), false);
  assert.deepEqual(config.providerNames, ["authz-grpc", "strict", "authz-http", "prometheus"]);
  assert.deepEqual(config.warnings, [
    "mesh.yaml: extensionProviders[1] (strict): envoyExtAuthzGrpc.includeRequestBodyInCheck is ignored, no body is sent",
  ]);
});

Deno.test("parseMeshConfig() refuses an ext_authz provider without service or port", () => {
  assert.throws(
    () =>
      parseMeshConfig(
        `extensionProviders: [{ name: g, envoyExtAuthzGrpc: { service: a, port: 0 } }]`,
        "mesh.yaml",
      ),
    /mesh\.yaml: extensionProviders\[0\] \(g\) needs envoyExtAuthzGrpc\.service and port/,
  );
});

Deno.test("parseMeshConfig() reads opentelemetry providers and defaultProviders.tracing", () => {
  Deno.env.set("WAYPOINT_TEST_OTEL_TOKEN", "s3cret");
  const config = parseMeshConfig(
    `extensionProviders:
  - name: otel-http
    opentelemetry:
      service: observability/otel.observability.svc.cluster.local
      port: 4318
      http:
        path: /otlp/v1/traces
        timeout: 2s
        headers:
          - { name: x-tenant, value: mesh }
          - { name: authorization, envName: WAYPOINT_TEST_OTEL_TOKEN }
  - name: otel-defaults
    opentelemetry: { service: otel, port: 4318, http: {} }
  - name: otel-grpc
    opentelemetry: { service: otel, port: 4317, resourceDetectors: { environment: {} } }
defaultProviders:
  tracing: [otel-http]
  metrics: [prometheus]`,
    "mesh.yaml",
  );
  Deno.env.delete("WAYPOINT_TEST_OTEL_TOKEN");
  assert.deepEqual(config.tracing.get("otel-http"), {
    name: "otel-http",
    service: "observability/otel.observability.svc.cluster.local",
    port: 4318,
    http: {
      path: "/otlp/v1/traces",
      timeoutMs: 2_000,
      headers: [["x-tenant", "mesh"], ["authorization", "s3cret"]],
    },
  });
  assert.deepEqual(config.tracing.get("otel-defaults")?.http, {
    path: "/v1/traces",
    timeoutMs: 5_000,
    headers: [],
  });
  assert.deepEqual(config.tracing.get("otel-grpc"), {
    name: "otel-grpc",
    service: "otel",
    port: 4317,
  });
  assert.deepEqual(config.defaultProviders, {
    tracing: ["otel-http"],
    metrics: ["prometheus"],
    accessLogging: [],
  });
  assert.deepEqual(config.warnings, [
    "mesh.yaml: extensionProviders[2] (otel-grpc): opentelemetry.resourceDetectors is ignored",
    "mesh.yaml: extensionProviders[2] (otel-grpc): opentelemetry without http exports with gRPC, which is not supported",
  ]);
  assert.throws(
    () => parseMeshConfig(`extensionProviders: [{ name: o, opentelemetry: { port: 4318 } }]`, "m"),
    /m: extensionProviders\[0\] \(o\) needs opentelemetry\.service and port/,
  );
});

Deno.test("parseMeshConfig() reads access-log and Prometheus providers, defaults and the legacy accessLogFile", () => {
  const config = parseMeshConfig(
    `accessLogFile: /var/log/access.log
accessLogEncoding: JSON
extensionProviders:
  - { name: prom, prometheus: {} }
  - name: audit
    envoyFileAccessLog:
      path: /tmp/audit.log
      logFormat: { labels: { code: "%RESPONSE_CODE%", who: "%DOWNSTREAM_PEER_URI_SAN%" } }
  - { name: plain, envoyFileAccessLog: { path: /dev/stdout, logFormat: { text: "%RESPONSE_CODE%" } } }
defaultProviders: { metrics: [prom] }`,
    "mesh.yaml",
  );
  assert.deepEqual(config.prometheus, ["prometheus", "prom"]);
  assert.deepEqual([...config.accessLog.keys()], ["envoy", "audit", "plain", "accessLogFile"]);
  assert.deepEqual(config.accessLog.get("envoy"), { name: "envoy", path: "/dev/stdout" });
  assert.equal(config.accessLog.get("audit")?.labels?.who, "%DOWNSTREAM_PEER_URI_SAN%");
  assert.equal(config.accessLog.get("plain")?.text, "%RESPONSE_CODE%");
  assert.equal(config.accessLog.get("accessLogFile")?.path, "/var/log/access.log");
  assert.equal(config.accessLog.get("accessLogFile")?.labels?.response_code, "%RESPONSE_CODE%");
  assert.deepEqual(config.defaultProviders, {
    tracing: [],
    metrics: ["prom"],
    accessLogging: ["accessLogFile"],
  });
  assert.throws(
    () =>
      parseMeshConfig(
        `extensionProviders: [{ name: bad, envoyFileAccessLog: { logFormat: { text: "%NOPE%" } } }]`,
        "m",
      ),
    /m: extensionProviders\[0\] \(bad\): envoyFileAccessLog provider bad: %NOPE% is not a supported command operator/,
  );
});
