import assert from "node:assert/strict";
import type { Problem } from "../../mesh/model.ts";
import {
  DEFAULT_RETRY,
  EMPTY_ROUTE_TABLE,
  type RouteSourceDoc,
  type RouteTable,
} from "../../routes/mod.ts";
import {
  backend,
  backendName,
  compile,
  doc,
  GATEWAY,
  httpRoute,
  meshServices,
  parent,
  service,
} from "./_fixtures.ts";

/** Which `service:port` keys answer with which kind, for a fixed list of ports. */
function attached(table: RouteTable, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of keys) {
    const [service, port] = key.split(":");
    const http = table.httpRoutesFor(service, Number(port));
    const tcp = table.tcpRoutesFor(service, Number(port));
    out[key] = http
      ? `${http.kind} ${[...new Set(http.entries.map((e) => e.rule.route.name))].join("+")}`
      : tcp
      ? `TCPRoute ${tcp.route.name}`
      : "-";
  }
  return out;
}

const ALL_PORTS = [
  "ns1/echo:80",
  "ns1/echo:8080",
  "ns1/echo:9090",
  "ns1/echo:7070",
  "ns1/echo-v1:80",
  "ns2/api:80",
  "ns2/api:9000",
];

/** Every HTTP-carrying port of the bound Services of {@link services}, answered by one route. */
function everyBoundPort(answer: string): Record<string, string> {
  const ports = ALL_PORTS.filter((k) => k !== "ns1/echo:9090");
  return Object.fromEntries(ports.map((k) => [k, answer]));
}

function services() {
  return [
    ...meshServices(),
    service("ns2/api", [[80], [9000, "unknown"]]),
    service("ns3/off", [[80]], { bound: false }),
  ];
}

const simple = { backendRefs: [backend("echo-v1")] };

function messages(problems: Problem[]): string[] {
  return problems.map((p) => `${p.severity} ${p.where} ${p.resource} ${p.message}`);
}

Deno.test("compileRoutes() attaches routes to Service ports as GEP-1294 and Istio waypoints do", () => {
  const cases: [string, RouteSourceDoc[], Record<string, string>, string[]][] = [
    [
      "a port pins one Service port",
      [doc("HTTPRoute", "r", { parentRefs: [parent("echo", 80)], rules: [simple] })],
      { "ns1/echo:80": "HTTPRoute r" },
      [],
    ],
    [
      "no port means every port that carries HTTP",
      [doc("HTTPRoute", "r", { parentRefs: [parent("echo")], rules: [simple] })],
      {
        "ns1/echo:80": "HTTPRoute r",
        "ns1/echo:8080": "HTTPRoute r",
        "ns1/echo:7070": "HTTPRoute r",
      },
      [],
    ],
    [
      "sectionName picks the port by name",
      [doc("HTTPRoute", "r", {
        parentRefs: [{ ...parent("echo"), sectionName: "http-alt" }],
        rules: [simple],
      })],
      { "ns1/echo:8080": "HTTPRoute r" },
      [],
    ],
    [
      "a route in the waypoint's namespace may target another namespace",
      [doc("HTTPRoute", "r", {
        parentRefs: [{ ...parent("api"), namespace: "ns2" }],
        rules: [simple],
      })],
      { "ns2/api:80": "HTTPRoute r", "ns2/api:9000": "HTTPRoute r" },
      [],
    ],
    [
      "a consumer route from a third namespace does not attach",
      [doc("HTTPRoute", "r", {
        parentRefs: [{ ...parent("echo"), namespace: "ns1" }],
        rules: [simple],
      }, { namespace: "ns2" })],
      {},
      ["warning routes.yaml:1 HTTPRoute ns2/r NoMatchingParent: spec.parentRefs[0] Service ns1/echo: consumer routes"],
    ],
    [
      "a missing Service",
      [doc("HTTPRoute", "r", { parentRefs: [parent("nope")], rules: [simple] }, { line: 7 })],
      {},
      ["warning routes.yaml:7 HTTPRoute ns1/r NoMatchingParent: spec.parentRefs[0] Service ns1/nope not found"],
    ],
    [
      "a port the Service lacks",
      [doc("HTTPRoute", "r", { parentRefs: [parent("echo", 81)], rules: [simple] })],
      {},
      ["warning routes.yaml:1 HTTPRoute ns1/r NoMatchingParent: spec.parentRefs[0] Service ns1/echo has no port 81"],
    ],
    [
      "our Gateway means every bound Service",
      [doc("HTTPRoute", "r", { parentRefs: [{ name: GATEWAY.name }], rules: [simple] })],
      everyBoundPort("HTTPRoute r"),
      [],
    ],
    [
      "our Gateway admits routes from its own namespace by default",
      [
        doc("HTTPRoute", "r", {
          parentRefs: [{ name: GATEWAY.name, namespace: GATEWAY.namespace }],
          rules: [simple],
        }, { namespace: "ns2" }),
      ],
      {},
      [
        "warning routes.yaml:1 HTTPRoute ns2/r NotAllowedByListeners: spec.parentRefs[0] Gateway ns1/waypoint admits routes from its own namespace only",
      ],
    ],
    [
      "our Gateway admits every namespace with allowedRoutes from All",
      [
        doc("HTTPRoute", "r", {
          parentRefs: [{ name: GATEWAY.name, namespace: GATEWAY.namespace }],
          rules: [{ backendRefs: [{ ...backend("echo-v1"), namespace: "ns1" }] }],
        }, { namespace: "ns2" }),
        doc("Gateway", GATEWAY.name, {
          gatewayClassName: "istio-waypoint",
          listeners: [{
            name: "mesh",
            port: 15008,
            protocol: "HBONE",
            allowedRoutes: { namespaces: { from: "All" } },
          }],
        }),
      ],
      everyBoundPort("HTTPRoute r"),
      [
        "warning routes.yaml:1 HTTPRoute ns2/r RefNotPermitted: spec.rules[0].backendRefs[0] Service ns1/echo-v1 needs a ReferenceGrant in ns1",
      ],
    ],
    [
      "another Gateway is ignored silently",
      [doc("HTTPRoute", "r", { parentRefs: [{ name: "ingress" }], rules: [simple] })],
      {},
      [],
    ],
    [
      "our Gateway on another port",
      [doc("HTTPRoute", "r", { parentRefs: [{ name: GATEWAY.name, port: 80 }], rules: [simple] })],
      {},
      ["warning routes.yaml:1 HTTPRoute ns1/r NoMatchingParent: spec.parentRefs[0] Gateway ns1/waypoint has no listener on port 80"],
    ],
    [
      "Service routes replace Gateway routes on their ports",
      [
        doc("HTTPRoute", "gw", { parentRefs: [{ name: GATEWAY.name }], rules: [simple] }),
        doc("HTTPRoute", "svc", { parentRefs: [parent("echo", 80)], rules: [simple] }),
      ],
      { ...everyBoundPort("HTTPRoute gw"), "ns1/echo:80": "HTTPRoute svc" },
      [],
    ],
  ];
  for (const [name, docs, want, problems] of cases) {
    const result = compile(docs, services());
    const expected = Object.fromEntries(ALL_PORTS.map((k) => [k, want[k] ?? "-"]));
    assert.deepEqual(attached(result.table, ALL_PORTS), expected, name);
    const got = messages(result.problems);
    assert.equal(got.length, problems.length, `${name}: ${got.join("\n")}`);
    problems.forEach((p, i) => assert.ok(got[i].startsWith(p), `${name}: ${got[i]}`));
  }
});

Deno.test("compileRoutes() settles kind conflicts per Service port: GRPCRoute > HTTPRoute > TCPRoute", () => {
  const grpc = doc("GRPCRoute", "g", {
    parentRefs: [parent("echo", 7070)],
    rules: [{ backendRefs: [backend("echo-v1", 7070)] }],
  }, { line: 1 });
  const http = doc("HTTPRoute", "h", { parentRefs: [parent("echo")], rules: [simple] }, {
    line: 10,
  });
  const tcp = (name: string, line: number, port: number, created?: string) =>
    doc("TCPRoute", name, {
      parentRefs: [parent(port === 9000 ? "api" : "echo", port)],
      rules: [{ backendRefs: [{ ...backend("echo-v1", 9090), namespace: "ns1" }] }],
    }, {
      line,
      created,
      namespace: port === 9000 ? "ns2" : "ns1",
    });
  const httpOnApi = doc("HTTPRoute", "h2", {
    parentRefs: [parent("api", 9000)],
    rules: [{ backendRefs: [{ ...backend("echo-v1"), namespace: "ns1" }] }],
  }, {
    line: 30,
    namespace: "ns2",
  });
  const httpOnTcp = doc(
    "HTTPRoute",
    "h3",
    { parentRefs: [parent("echo", 9090)], rules: [simple] },
    { line: 40 },
  );
  const { table, problems } = compile([
    grpc,
    http,
    tcp("old", 20, 9090, "2024-01-01T00:00:00Z"),
    tcp("new", 21, 9090, "2024-02-01T00:00:00Z"),
    tcp("t2", 22, 9000),
    httpOnApi,
    httpOnTcp,
  ], services());
  assert.deepEqual(
    attached(table, ["ns1/echo:80", "ns1/echo:7070", "ns1/echo:9090", "ns2/api:9000"]),
    {
      "ns1/echo:80": "HTTPRoute h",
      "ns1/echo:7070": "GRPCRoute g",
      "ns1/echo:9090": "TCPRoute old",
      "ns2/api:9000": "HTTPRoute h2",
    },
  );
  assert.deepEqual(messages(problems), [
    "warning routes.yaml:10 HTTPRoute ns1/h Conflicted: not applied on Service ns1/echo port 7070 (GRPCRoute applies): " +
    "only one route kind applies per Service port (GRPCRoute > HTTPRoute > TCPRoute; of several TCPRoutes the oldest)",
    "warning routes.yaml:21 TCPRoute ns1/new Conflicted: not applied on Service ns1/echo port 9090 (TCPRoute applies): " +
    "only one route kind applies per Service port (GRPCRoute > HTTPRoute > TCPRoute; of several TCPRoutes the oldest)",
    "warning routes.yaml:22 TCPRoute ns2/t2 Conflicted: not applied on Service ns2/api port 9000 (HTTPRoute applies): " +
    "only one route kind applies per Service port (GRPCRoute > HTTPRoute > TCPRoute; of several TCPRoutes the oldest)",
    "warning routes.yaml:40 HTTPRoute ns1/h3 UnsupportedValue: not applied on Service ns1/echo port 9090 (tcp): that protocol does not carry HTTPRoute traffic",
  ]);
});

Deno.test("compileRoutes() skips invalid routes with an error at their file and line", () => {
  const redirect = { type: "RequestRedirect", requestRedirect: { hostname: "x" } };
  const rewritePrefix = {
    type: "URLRewrite",
    urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/x" } },
  };
  const rule = (extra: Record<string, unknown>) => ({ ...simple, ...extra });
  const cases: [string, RouteSourceDoc, string][] = [
    [
      "a redirect with backendRefs",
      httpRoute("r", [rule({ filters: [redirect] })]),
      "InvalidFilter: spec.rules[0] has a RequestRedirect filter and backendRefs",
    ],
    [
      "a redirect and a rewrite",
      httpRoute("r", [{
        filters: [redirect, { type: "URLRewrite", urlRewrite: { hostname: "y" } }],
      }]),
      "InvalidFilter: spec.rules[0].filters has both RequestRedirect and URLRewrite",
    ],
    [
      "ReplacePrefixMatch with an Exact match",
      httpRoute("r", [
        rule({ matches: [{ path: { type: "Exact", value: "/a" } }], filters: [rewritePrefix] }),
      ]),
      "InvalidFilter: spec.rules[0] uses ReplacePrefixMatch, which needs exactly one PathPrefix match",
    ],
    [
      "ReplacePrefixMatch with two matches",
      httpRoute("r", [
        rule({
          matches: [{ path: { value: "/a" } }, { path: { value: "/b" } }],
          filters: [rewritePrefix],
        }),
      ]),
      "InvalidFilter: spec.rules[0] uses ReplacePrefixMatch",
    ],
    [
      "a lookahead regex",
      httpRoute("r", [
        rule({ matches: [{ path: { type: "RegularExpression", value: "/(?=a)" } }] }),
      ]),
      'UnsupportedValue: spec.rules[0].matches[0].path.value "/(?=a)" uses lookahead',
    ],
    [
      "an RE2-only named group",
      httpRoute("r", [
        rule({
          matches: [{ headers: [{ type: "RegularExpression", name: "x", value: "(?P<n>a)" }] }],
        }),
      ]),
      "UnsupportedValue: spec.rules[0].matches[0].headers[0].value",
    ],
    [
      "a regex that does not compile",
      httpRoute("r", [
        rule({
          matches: [{ queryParams: [{ type: "RegularExpression", name: "q", value: "a(" }] }],
        }),
      ]),
      'UnsupportedValue: spec.rules[0].matches[0].queryParams[0].value "a(" is not a valid regex',
    ],
    [
      "an ExtensionRef filter",
      httpRoute("r", [
        rule({
          filters: [{ type: "ExtensionRef", extensionRef: { group: "g", kind: "K", name: "n" } }],
        }),
      ]),
      "InvalidFilter: spec.rules[0].filters[0] is an ExtensionRef filter",
    ],
    [
      "an ExternalAuth filter",
      httpRoute("r", [rule({ filters: [{ type: "ExternalAuth", externalAuth: {} }] })]),
      "InvalidFilter: spec.rules[0].filters[0] is an ExternalAuth filter",
    ],
    [
      "an unknown filter",
      httpRoute("r", [rule({ filters: [{ type: "Teleport" }] })]),
      'InvalidFilter: spec.rules[0].filters[0] has unsupported filter type "Teleport"',
    ],
    [
      "a repeated filter",
      httpRoute("r", [rule({
        filters: [
          { type: "RequestHeaderModifier", requestHeaderModifier: {} },
          { type: "RequestHeaderModifier", requestHeaderModifier: {} },
        ],
      })]),
      "InvalidFilter: spec.rules[0].filters[1] repeats the RequestHeaderModifier filter",
    ],
    [
      "a filter without its body",
      httpRoute("r", [rule({ filters: [{ type: "CORS" }] })]),
      "UnsupportedValue: spec.rules[0].filters[0].cors is missing",
    ],
    [
      "a bad duration",
      httpRoute("r", [rule({ timeouts: { request: "1.5s" } })]),
      'UnsupportedValue: spec.rules[0].timeouts.request is "1.5s" (want a GEP-2257 duration',
    ],
    [
      "backendRequest longer than request",
      httpRoute("r", [rule({ timeouts: { request: "1s", backendRequest: "2s" } })]),
      "UnsupportedValue: spec.rules[0].timeouts.backendRequest is longer than spec.rules[0].timeouts.request",
    ],
    [
      "a redirect status outside the enum",
      httpRoute("r", [{
        filters: [{ type: "RequestRedirect", requestRedirect: { statusCode: 305 } }],
      }]),
      "UnsupportedValue: spec.rules[0].filters[0].requestRedirect.statusCode is 305",
    ],
    [
      "an unknown method",
      httpRoute("r", [rule({ matches: [{ method: "FETCH" }] })]),
      'UnsupportedValue: spec.rules[0].matches[0].method is "FETCH"',
    ],
    [
      "a relative path",
      httpRoute("r", [rule({ matches: [{ path: { value: "api" } }] })]),
      'UnsupportedValue: spec.rules[0].matches[0].path.value "api" must start with /',
    ],
    [
      "a backend without a port",
      httpRoute("r", [{ backendRefs: [{ name: "echo-v1" }] }]),
      "UnsupportedValue: spec.rules[0].backendRefs[0].port is missing",
    ],
    [
      "a weight out of range",
      httpRoute("r", [{ backendRefs: [backend("echo-v1", 80, -1)] }]),
      "UnsupportedValue: spec.rules[0].backendRefs[0].weight is -1",
    ],
    [
      "a header value with a control character",
      httpRoute("r", [
        rule({
          filters: [{
            type: "RequestHeaderModifier",
            requestHeaderModifier: { set: [{ name: "a", value: "x\ny" }] },
          }],
        }),
      ]),
      "InvalidFilter: spec.rules[0].filters[0].requestHeaderModifier.set[0].value",
    ],
    [
      "a GRPCRoute with URLRewrite",
      doc("GRPCRoute", "r", {
        parentRefs: [parent("echo", 7070)],
        rules: [{ filters: [{ type: "URLRewrite", urlRewrite: {} }] }],
      }),
      'InvalidFilter: spec.rules[0].filters[0] has unsupported filter type "URLRewrite" here',
    ],
    [
      "a GRPCRoute with a bad exact service name",
      doc("GRPCRoute", "r", {
        parentRefs: [parent("echo", 7070)],
        rules: [{ matches: [{ method: { service: "a/b" } }] }],
      }),
      'UnsupportedValue: spec.rules[0].matches[0].method.service "a/b" is not a valid gRPC service name',
    ],
    [
      "a TCPRoute with two rules",
      doc("TCPRoute", "r", {
        parentRefs: [parent("echo", 9090)],
        rules: [{ backendRefs: [backend("echo-v1", 9090)] }, { backendRefs: [] }],
      }),
      "UnsupportedValue: spec.rules has 2 rules (want exactly 1)",
    ],
  ];
  for (const [name, routeDoc, message] of cases) {
    const { table, problems } = compile([{ ...routeDoc, line: 12 }]);
    const kind = routeDoc.object.kind;
    const errors = problems.filter((p) => p.severity === "error");
    assert.equal(errors.length, 1, `${name}: ${messages(problems).join("\n")}`);
    assert.equal(errors[0].where, "routes.yaml:12", name);
    assert.equal(errors[0].resource, `${kind} ns1/r`, name);
    assert.ok(errors[0].message.startsWith(message), `${name}: ${errors[0].message}`);
    assert.ok(errors[0].message.endsWith("; the route is not applied"), name);
    assert.equal(
      table.httpRoutesFor("ns1/echo", 80) ?? table.httpRoutesFor("ns1/echo", 7070) ??
        table.tcpRoutesFor("ns1/echo", 9090),
      undefined,
      name,
    );
  }
});

Deno.test("compileRoutes() reports malformed and duplicate documents", () => {
  const nameless: RouteSourceDoc = {
    file: "a.yaml",
    line: 3,
    object: {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "HTTPRoute",
      metadata: {},
      spec: {},
    },
  };
  const first = httpRoute("dup", [simple], { line: 5 });
  const second = httpRoute("dup", [simple], { line: 9 });
  const { table, problems } = compile([nameless, first, second]);
  assert.deepEqual(messages(problems), [
    "error a.yaml:3 HTTPRoute default/? UnsupportedValue: metadata.name is missing; it is not applied",
    "error routes.yaml:9 HTTPRoute ns1/dup Duplicate resource: HTTPRoute ns1/dup is already defined at routes.yaml:5",
  ]);
  assert.equal(table.httpRoutesFor("ns1/echo", 80)?.entries.length, 1);
});

Deno.test("compileRoutes() makes unresolvable backends 500 backends with a warning", () => {
  const gatewayRoute = (name: string, namespace: string) =>
    doc("HTTPRoute", name, {
      parentRefs: [{ name: GATEWAY.name, namespace: GATEWAY.namespace }],
      rules: [{ backendRefs: [{ ...backend("api"), namespace: "ns2" }] }],
    }, { namespace });
  const grant = doc("ReferenceGrant", "allow", {
    from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: "ns1" }],
    to: [{ group: "", kind: "Service" }],
  }, {
    namespace: "ns2",
    apiVersion: "gateway.networking.k8s.io/v1beta1",
  });
  const cases: [string, RouteSourceDoc[], string, string[]][] = [
    ["a missing Service", [httpRoute("r", [{ backendRefs: [backend("missing")] }])], "500", [
      "warning routes.yaml:1 HTTPRoute ns1/r BackendNotFound: spec.rules[0].backendRefs[0] Service ns1/missing not found; its share of traffic gets 500",
    ]],
    ["a missing port", [httpRoute("r", [{ backendRefs: [backend("echo-v1", 81)] }])], "500", [
      "warning routes.yaml:1 HTTPRoute ns1/r BackendNotFound: spec.rules[0].backendRefs[0] Service ns1/echo-v1 has no port 81; its share of traffic gets 500",
    ]],
    [
      "another kind",
      [httpRoute("r", [{
        backendRefs: [{ ...backend("x"), group: "example.com", kind: "Bucket" }],
      }])],
      "500",
      [
        "warning routes.yaml:1 HTTPRoute ns1/r InvalidKind: spec.rules[0].backendRefs[0] refers to example.com/Bucket (want a Service); its share of traffic gets 500",
      ],
    ],
    [
      "a mesh route may cross namespaces",
      [httpRoute("r", [{ backendRefs: [{ ...backend("api"), namespace: "ns2" }] }])],
      "ns2/api:80",
      [],
    ],
    ["a Gateway route needs a ReferenceGrant", [gatewayRoute("r", "ns1")], "500", [
      "warning routes.yaml:1 HTTPRoute ns1/r RefNotPermitted: spec.rules[0].backendRefs[0] Service ns2/api needs a ReferenceGrant in ns2; its share of traffic gets 500",
    ]],
    ["a ReferenceGrant permits it", [gatewayRoute("r", "ns1"), grant], "ns2/api:80", []],
  ];
  for (const [name, docs, want, problems] of cases) {
    const result = compile(docs, services());
    const routes = result.table.httpRoutesFor("ns1/echo", 80)!;
    assert.equal(backendName(routes.entries[0].rule.backends[0].backend), want, name);
    assert.deepEqual(messages(result.problems), problems, name);
  }
});

Deno.test("compileRoutes() drops a mirror whose backend is missing and keeps the route", () => {
  const { table, problems } = compile([httpRoute("m", [{
    filters: [{ type: "RequestMirror", requestMirror: { backendRef: backend("gone") } }],
    backendRefs: [backend("echo-v1")],
  }])]);
  assert.deepEqual(messages(problems), [
    "warning routes.yaml:1 HTTPRoute ns1/m BackendNotFound: spec.rules[0].filters[0].requestMirror.backendRef Service ns1/gone not found; the mirror is dropped",
  ]);
  assert.deepEqual(table.httpRoutesFor("ns1/echo", 80)!.entries[0].rule.filters, []);
});

Deno.test("compileRoutes() reads the served apiVersions and ignores other documents", () => {
  const versions = [
    "gateway.networking.k8s.io/v1",
    "gateway.networking.k8s.io/v1beta1",
    "gateway.networking.k8s.io/v1alpha2",
  ];
  for (const apiVersion of versions) {
    const { table } = compile([{ ...httpRoute("r", [simple], { apiVersion }) }]);
    assert.ok(table.httpRoutesFor("ns1/echo", 80), apiVersion);
  }
  const others: RouteSourceDoc[] = [
    httpRoute("r", [simple], { apiVersion: "example.com/v1" }),
    {
      file: "x.yaml",
      line: 1,
      object: { apiVersion: "v1", kind: "Service", metadata: { name: "s" } },
    },
    { file: "x.yaml", line: 2, object: null },
  ];
  const { table, problems } = compile(others);
  assert.equal(table.httpRoutesFor("ns1/echo", 80), undefined);
  assert.deepEqual(problems, []);
});

Deno.test("compileRoutes() puts retry and timeouts on the rule as data", () => {
  const { table, problems } = compile([httpRoute("t", [
    { matches: [{ path: { value: "/a" } }], backendRefs: [backend("echo-v1")] },
    {
      matches: [{ path: { value: "/b" } }],
      timeouts: { request: "1h30m", backendRequest: "500ms" },
      retry: { codes: [500, 503], backoff: "100ms" },
      backendRefs: [backend("echo-v1")],
    },
    {
      matches: [{ path: { value: "/c" } }],
      timeouts: { request: "0s", backendRequest: "2s" },
      retry: { attempts: 5 },
      backendRefs: [backend("echo-v1")],
    },
  ])]);
  assert.deepEqual(problems, []);
  const rules = Object.fromEntries(
    table.httpRoutesFor("ns1/echo", 80)!.entries.map((
      e,
    ) => [e.match.kind === "http" ? e.match.path.value : "", e.rule]),
  );
  assert.deepEqual(rules["/a"].timeouts, {});
  assert.equal(rules["/a"].retry, DEFAULT_RETRY);
  assert.deepEqual(rules["/b"].timeouts, { requestMs: 5_400_000, backendRequestMs: 500 });
  assert.deepEqual(rules["/b"].retry, { attempts: 2, codes: [500, 503], backoffMs: 100 });
  assert.deepEqual(rules["/c"].timeouts, { requestMs: undefined, backendRequestMs: 2000 });
  assert.deepEqual(rules["/c"].retry, { attempts: 5, codes: [], backoffMs: 25 });
});

Deno.test("compileRoutes() builds a frozen table that dumps sorted", () => {
  const { table } = compile([
    httpRoute("b", [{
      matches: [{ path: { value: "/x" } }],
      backendRefs: [backend("echo-v1", 80, 3)],
    }]),
    doc("TCPRoute", "t", {
      parentRefs: [parent("echo", 9090)],
      rules: [{ backendRefs: [backend("echo-v2", 9090)] }],
    }),
  ]);
  const routes = table.httpRoutesFor("ns1/echo", 80)!;
  for (
    const value of [
      table,
      routes,
      routes.entries,
      routes.entries[0],
      routes.entries[0].rule,
      routes.entries[0].rule.backends[0],
    ]
  ) {
    assert.ok(Object.isFrozen(value));
  }
  assert.deepEqual(JSON.parse(JSON.stringify(table)), [
    {
      service: "ns1/echo",
      port: 80,
      kind: "HTTPRoute",
      entries: [{
        route: "HTTPRoute ns1/b",
        rule: 0,
        match: "PathPrefix /x",
        backends: ["3 ns1/echo-v1:80"],
      }],
    },
    {
      service: "ns1/echo",
      port: 9090,
      kind: "TCPRoute",
      route: "TCPRoute ns1/t",
      backends: ["1 ns1/echo-v2:9090"],
    },
  ]);
  assert.equal(EMPTY_ROUTE_TABLE.httpRoutesFor("ns1/echo", 80), undefined);
});

Deno.test("compileRoutes() accepts regex syntax RE2 and JS share and refuses the rest", () => {
  const cases: [string, string, string | undefined][] = [
    ["classes and quantifiers", "/api/v[0-9]{1,3}/.+", undefined],
    ["escapes", "/a\\.b\\d+\\w*\\s?", undefined],
    ["a named group", "/(?<id>[a-z]+)", undefined],
    ["a modifier group", "/(?i:abc)", undefined],
    ["a leading (?i)", "(?i)/abc", undefined],
    ["lookahead", "/(?!admin)", "lookahead"],
    ["lookbehind", "/(?<=a)b", "lookbehind"],
    ["a backreference", "/(a)\\1", "backreferences"],
    ["a named backreference", "/(?<n>a)\\k<n>", "named backreferences"],
    ["a Python named group", "/(?P<n>a)", "(?P…) groups"],
    ["a flag group", "/(?s)a.b", "flag groups"],
    ["\\A", "\\A/a", "\\A"],
    ["\\z", "/a\\z", "\\z"],
    ["a POSIX class", "/[[:alpha:]]+", "POSIX classes"],
    ["a Unicode class", "/\\pL+", "Unicode classes"],
    ["\\x{…}", "/\\x{41}", "\\x{…}"],
    ["an unclosed group", "/(a", "is not a valid regex"],
  ];
  for (const [name, pattern, refused] of cases) {
    const route = httpRoute("re", [{
      ...simple,
      matches: [{ path: { type: "RegularExpression", value: pattern } }],
    }]);
    const { problems } = compile([route]);
    if (refused === undefined) assert.deepEqual(problems, [], name);
    else assert.ok(problems[0]?.message.includes(refused), `${name}: ${problems[0]?.message}`);
  }
});
