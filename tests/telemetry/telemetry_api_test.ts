import assert from "node:assert/strict";
import { bytesBody, type Filter, HeaderMap, LocalReply } from "../../http/mod.ts";
import { parseConfigText, type Problem } from "../../mesh/mod.ts";
import {
  AccessLogs,
  compileTelemetry,
  DEFAULT_PROVIDERS,
  IstioMetrics,
  prometheusRenderer,
  type TelemetryProviders,
} from "../../telemetry/mod.ts";
import {
  connection,
  endpointOf,
  Harness,
  request,
  serviceDestination,
  type TestState,
} from "./_helpers.ts";

const PROVIDERS: TelemetryProviders = {
  ...DEFAULT_PROVIDERS,
  accessLog: new Set(["envoy", "audit"]),
  all: new Set(["prometheus", "envoy", "audit", "otel"]),
  tracing: new Set(["otel"]),
};

function compile(yaml: string, providers = PROVIDERS) {
  const { documents } = parseConfigText(yaml, "telemetry.yaml");
  return compileTelemetry(documents, {
    self: { namespace: "mesh", name: "waypoint" },
    rootNamespace: "istio-system",
    providers,
    env: (name) => (name === "CLUSTER" ? "east" : undefined),
  });
}

function telemetryYaml(ns: string, name: string, spec: string): string {
  return `---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: ${name}, namespace: ${ns} }
spec:
${spec.replace(/^/gm, "  ")}
`;
}

const REVIEWS_REF = "targetRefs: [{ kind: Service, group: '', name: reviews }]";

/** The router answering 200 (or `status`) from the first endpoint of `service`. */
function answer(service: string, status = 200): Filter<TestState> {
  return (ctx) => {
    ctx.state.endpoint = endpointOf(service);
    ctx.response = {
      head: { status, headers: new HeaderMap([["content-type", "text/plain"]]) },
      body: bytesBody("hello"),
    };
    return Promise.resolve();
  };
}

async function scrape(metrics: IstioMetrics): Promise<string> {
  return await prometheusRenderer(metrics.registry)();
}

function linesOf(text: string, name: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(`${name}{`));
}

Deno.test("compileTelemetry() merges root, namespace and targetRef levels in Istio's order", () => {
  const { telemetry, problems } = compile(
    telemetryYaml(
      "istio-system",
      "mesh-default",
      `metrics:
  - overrides:
      - match: { metric: ALL_METRICS }
        tagOverrides: { source_principal: { operation: REMOVE } }
accessLogging:
  - providers: [{ name: envoy }]
tracing:
  - randomSamplingPercentage: 10
    customTags: { cluster: { environment: { name: CLUSTER } } }`,
    ) +
      telemetryYaml(
        "mesh",
        "ns-default",
        `metrics:
  - overrides:
      - match: { metric: REQUEST_COUNT, mode: CLIENT }
        disabled: true
accessLogging:
  - filter: { expression: "response.code >= 400" }`,
      ) +
      telemetryYaml(
        "mesh",
        "reviews",
        `${REVIEWS_REF}
metrics:
  - overrides:
      - match: { metric: REQUEST_COUNT }
        tagOverrides: { source_principal: { value: "'kept'" } }
tracing:
  - randomSamplingPercentage: 100
    disableSpanReporting: true`,
      ),
  );
  assert.deepEqual(problems, []);
  const wide = telemetry.lookup(serviceDestination("echo"));
  const reviews = telemetry.lookup(serviceDestination("reviews"));
  // The root removal applies everywhere; the CLIENT-mode disable applies nowhere.
  assert.equal(wide.metrics.overrides.get("istio_requests_total")?.disabled, false);
  assert.equal(
    wide.metrics.overrides.get("istio_requests_total")?.tags.get("source_principal"),
    null,
  );
  // The Service's Telemetry upserts again what the root removed, for REQUEST_COUNT only.
  assert.equal(
    reviews.metrics.overrides.get("istio_requests_total")?.tags.get("source_principal")?.source,
    "'kept'",
  );
  assert.equal(
    reviews.metrics.overrides.get("istio_request_bytes")?.tags.get("source_principal"),
    null,
  );
  // Access logs: the provider from the root, the filter from the namespace.
  assert.deepEqual(wide.accessLogs.map((l) => [l.provider, l.filter?.source]), [
    ["envoy", "response.code >= 400"],
  ]);
  assert.deepEqual(wide.tracing, {
    provider: undefined,
    sampling: 10,
    customTags: [{ name: "cluster", kind: "literal", value: "east" }],
    disableSpanReporting: false,
  });
  assert.equal(reviews.tracing.sampling, 100);
  assert.equal(reviews.tracing.disableSpanReporting, true);
  assert.equal(reviews.tracing.customTags.length, 1, "customTags are inherited when not set");
});

Deno.test("compileTelemetry() reports what it cannot use, with file:line", () => {
  const cases: [string, string, Problem["severity"], RegExp][] = [
    [
      "a tag value that is not CEL",
      `metrics:\n  - overrides:\n      - tagOverrides: { x: { value: "request.host ==" } }`,
      "error",
      /spec\.metrics\[0\]\.overrides\[0\]\.tagOverrides\.x\.value "request\.host ==": Unexpected "end of expression"/,
    ],
    [
      "a filter reading filter_state",
      `accessLogging:\n  - filter: { expression: "filter_state['x'] == 'y'" }`,
      "error",
      /filter_state is not available/,
    ],
    [
      "an unknown provider",
      `accessLogging:\n  - providers: [{ name: nowhere }]`,
      "warning",
      /provider "nowhere" is not among the MeshConfig's extensionProviders/,
    ],
    [
      "a provider of the wrong kind",
      `accessLogging:\n  - providers: [{ name: otel }]`,
      "warning",
      /provider "otel" is not of a kind this section uses/,
    ],
    [
      "a selector",
      `selector: { matchLabels: { app: reviews } }\naccessLogging:\n  - {}`,
      "warning",
      /selector does not apply to waypoints/,
    ],
    [
      "a sampling percentage over 100",
      `tracing:\n  - randomSamplingPercentage: 150`,
      "error",
      /randomSamplingPercentage 150 is not within 0–100/,
    ],
  ];
  for (const [name, spec, severity, message] of cases) {
    const { problems } = compile(telemetryYaml("mesh", "bad", spec));
    assert.equal(problems.length, 1, `${name}: ${JSON.stringify(problems)}`);
    assert.equal(problems[0].severity, severity, name);
    assert.equal(problems[0].where, "telemetry.yaml:2", name);
    assert.equal(problems[0].resource, "Telemetry mesh/bad", name);
    assert.match(problems[0].message, message, name);
  }
});

Deno.test("metricsFilter() applies Istio's TestCustomizeMetrics overrides to the waypoint's series", async () => {
  const { telemetry: compiled } = compile(telemetryYaml(
    "mesh",
    "custom",
    `${REVIEWS_REF}
metrics:
  - providers: [{ name: prometheus }]
    overrides:
      - match: { metric: REQUEST_COUNT, mode: CLIENT_AND_SERVER }
        tagOverrides:
          custom_dimension: { value: "'test'" }
          source_principal: { operation: REMOVE }
          request_host: { value: "request.host" }
          destination_service: { value: "'reviews.renamed'" }
      - match: { metric: REQUEST_SIZE }
        disabled: true`,
  ));
  const h = new Harness();
  const reviews = connection({ service: "reviews", telemetry: compiled });
  await h.send(reviews(), request("GET", "/a"), answer("reviews"));
  await h.send(reviews(), request("GET", "/b"), answer("reviews"));
  const text = await scrape(h.metrics);
  const [requests, ...more] = linesOf(text, "istio_requests_total");
  assert.equal(more.length, 0);
  assert.doesNotMatch(requests, /source_principal=/);
  assert.match(requests, /destination_service="reviews\.renamed",/);
  // Added labels come after Istio's, in the order written.
  assert.match(
    requests,
    /connection_security_policy="mutual_tls",custom_dimension="test",request_host="reviews\.mesh\.svc\.cluster\.local:9080"\} 2$/,
  );
  assert.deepEqual(linesOf(text, "istio_request_bytes_bucket"), [], "REQUEST_SIZE is disabled");
  const duration = linesOf(text, "istio_request_duration_milliseconds_count");
  assert.equal(duration.length, 1);
  assert.match(
    duration[0],
    /source_principal="spiffe:\/\/cluster\.local\/ns\/mesh\/sa\/bookinfo-productpage"/,
  );
  assert.doesNotMatch(duration[0], /custom_dimension/);
});

Deno.test("metricsFilter() keys series by the values of per-request tag expressions", async () => {
  const { telemetry: compiled } = compile(telemetryYaml(
    "mesh",
    "by-method",
    `metrics:
  - overrides:
      - match: { metric: REQUEST_COUNT }
        tagOverrides: { method: { value: "request.method" }, agent: { value: "request.headers['user-agent']" } }`,
  ));
  const h = new Harness();
  const reviews = connection({ service: "reviews", telemetry: compiled });
  await h.send(reviews(), request("GET", "/a"), answer("reviews"));
  await h.send(reviews(), request("POST", "/a"), answer("reviews"));
  await h.send(reviews(), request("GET", "/b", [["user-agent", "curl"]]), answer("reviews"));
  const lines = linesOf(await scrape(h.metrics), "istio_requests_total");
  assert.deepEqual(lines.map((l) => l.slice(l.indexOf("method="))), [
    'method="GET",agent="unknown"} 1',
    'method="POST",agent="unknown"} 1',
    'method="GET",agent="curl"} 1',
  ]);
});

Deno.test("metricsFilter() records nothing for a destination whose metrics are disabled", async () => {
  const { telemetry: compiled } = compile(telemetryYaml(
    "mesh",
    "off",
    `${REVIEWS_REF}
metrics:
  - overrides:
      - match: { metric: ALL_METRICS }
        disabled: true`,
  ));
  const h = new Harness();
  await h.send(
    connection({ service: "reviews", telemetry: compiled })(),
    request("GET", "/"),
    answer("reviews"),
  );
  await h.send(
    connection({ service: "echo", telemetry: compiled })(),
    request("GET", "/"),
    answer("echo"),
  );
  const lines = linesOf(await scrape(h.metrics), "istio_requests_total");
  assert.equal(lines.length, 1);
  assert.match(lines[0], /destination_service="echo\.mesh\.svc\.cluster\.local"/);
});

/** An access-log provider set writing into memory. */
function memoryLogs(providers = [{ name: "envoy", path: "/dev/stdout" }]) {
  const lines: string[] = [];
  const decoder = new TextDecoder();
  const logs = new AccessLogs(providers, {
    open: () => ({
      write: (b: Uint8Array) => {
        lines.push(...decoder.decode(b).split("\n").filter((l) => l));
        return Promise.resolve(b.length);
      },
    }),
  });
  return { logs, lines };
}

Deno.test("metricsFilter() writes access logs that pass the Telemetry filter expression", async () => {
  const { telemetry: compiled } = compile(telemetryYaml(
    "mesh",
    "errors-only",
    `accessLogging:
  - providers: [{ name: envoy }]
    filter: { expression: "response.code >= 400" }`,
  ));
  const { logs, lines } = memoryLogs();
  const h = new Harness(undefined, { accessLogs: logs });
  const reviews = connection({ service: "reviews", telemetry: compiled });
  await h.send(reviews(), request("GET", "/fine"), answer("reviews"));
  await h.send(reviews(), request("GET", "/missing"), answer("reviews", 404));
  await h.send(
    reviews(),
    request("GET", "/admin"),
    () => Promise.reject(new LocalReply(403, "RBAC: access denied", { flag: "RBAC" })),
  );
  await logs.drain();
  assert.equal(lines.length, 2);
  assert.match(lines[0], /"GET \/missing HTTP\/1\.1" 404 /);
  assert.match(
    lines[1],
    /"GET \/admin HTTP\/1\.1" 403 - rbac_access_denied_matched_policy\[none\] /,
  );
});

Deno.test("metricsFilter() writes no access log without a provider in force", async () => {
  const { logs, lines } = memoryLogs();
  const h = new Harness(undefined, { accessLogs: logs });
  await h.send(connection({ service: "reviews" })(), request("GET", "/"), answer("reviews"));
  await logs.drain();
  assert.deepEqual(lines, []);
});
