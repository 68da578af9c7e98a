import assert from "node:assert/strict";
import { HeaderMap } from "../../http/types.ts";
import { type CompiledHttpRoutes, matchHttp, type RouteSourceDoc } from "../../routes/mod.ts";
import { backend, backendName, compile, doc, httpRoute, parent } from "./_fixtures.ts";

/** Compiles documents and returns the rules on `ns1/echo` at a port. */
function routesOn(docs: RouteSourceDoc[], port = 80): CompiledHttpRoutes {
  const { table, problems } = compile(docs);
  assert.deepEqual(problems, []);
  const routes = table.httpRoutesFor("ns1/echo", port);
  assert.ok(routes, "routes attach to ns1/echo");
  return routes;
}

/** Where a request goes: the first backend of the matching rule, or 404. */
function target(
  routes: CompiledHttpRoutes,
  method: string,
  path: string,
  headers: [string, string][] = [],
): string {
  const hit = matchHttp(routes, { method, path, headers: new HeaderMap(headers) });
  if (!hit) return "404";
  return backendName(hit.rule.backends[0].backend);
}

type Case = [name: string, method: string, path: string, headers: [string, string][], want: string];

function check(routes: CompiledHttpRoutes, cases: Case[]): void {
  for (const [name, method, path, headers, want] of cases) {
    assert.equal(target(routes, method, path, headers), want, name);
  }
}

Deno.test("matchHttp() follows the mesh conformance example for prefix and header precedence", () => {
  // gateway-api conformance/tests/mesh/httproute-matching.yaml
  const routes = routesOn([httpRoute("mesh-matching", [
    {
      matches: [{ path: { type: "PathPrefix", value: "/" } }, {
        headers: [{ name: "version", value: "one" }],
      }],
      backendRefs: [backend("echo-v1", 8080)],
    },
    {
      matches: [{ path: { type: "PathPrefix", value: "/v2" } }, {
        headers: [{ name: "version", value: "two" }],
      }],
      backendRefs: [backend("echo-v2", 8080)],
    },
  ])]);
  check(routes, [
    ["the root goes to v1", "GET", "/", [], "ns1/echo-v1:8080"],
    ["another path goes to v1", "GET", "/example", [], "ns1/echo-v1:8080"],
    ["the /v2 prefix goes to v2", "GET", "/v2", [], "ns1/echo-v2:8080"],
    ["a path under /v2 goes to v2", "GET", "/v2/example", [], "ns1/echo-v2:8080"],
    ["/v2/ with a trailing slash goes to v2", "GET", "/v2/", [], "ns1/echo-v2:8080"],
    ["/v2example is not under /v2", "GET", "/v2example", [], "ns1/echo-v1:8080"],
    ["/v2 deeper in the path does not count", "GET", "/foo/v2/example", [], "ns1/echo-v1:8080"],
    [
      "the header match outranks the bare / prefix",
      "GET",
      "/",
      [["version", "two"]],
      "ns1/echo-v2:8080",
    ],
  ]);
});

Deno.test("matchHttp() follows the mesh conformance example for query parameters", () => {
  // gateway-api conformance/tests/mesh/httproute-query-param-matching.yaml
  const q = (value: string) => [{ name: "animal", value }];
  const routes = routesOn([httpRoute("mesh-query-param-matching", [
    { matches: [{ queryParams: q("whale") }], backendRefs: [backend("echo-v1", 8080)] },
    { matches: [{ queryParams: q("dolphin") }], backendRefs: [backend("echo-v2", 8080)] },
    {
      matches: [{ path: { value: "/path1" }, queryParams: q("whale") }],
      backendRefs: [backend("echo-v1", 8080)],
    },
    {
      matches: [{ headers: [{ name: "version", value: "one" }], queryParams: q("whale") }],
      backendRefs: [backend("echo-v2", 8080)],
    },
    {
      matches: [
        { path: { value: "/path3" }, queryParams: q("shark") },
        {
          path: { value: "/path4" },
          headers: [{ name: "version", value: "three" }],
          queryParams: q("kraken"),
        },
      ],
      backendRefs: [backend("echo-v1", 8080)],
    },
    { matches: [{ path: { value: "/path5" } }], backendRefs: [backend("echo-v1", 8080)] },
    { matches: [{ queryParams: q("hydra") }], backendRefs: [backend("echo-v2", 8080)] },
  ])]);
  check(routes, [
    ["whale goes to v1", "GET", "/?animal=whale", [], "ns1/echo-v1:8080"],
    ["dolphin goes to v2", "GET", "/?animal=dolphin", [], "ns1/echo-v2:8080"],
    [
      "other parameters are ignored",
      "GET",
      "/?animal=whale&otherparam=irrelevant",
      [],
      "ns1/echo-v1:8080",
    ],
    [
      "other parameters are ignored for dolphin",
      "GET",
      "/?animal=dolphin&color=yellow",
      [],
      "ns1/echo-v2:8080",
    ],
    ["an unknown parameter is 404", "GET", "/?color=blue", [], "404"],
    ["an unknown value is 404", "GET", "/?animal=dog", [], "404"],
    ["values match whole", "GET", "/?animal=whaledolphin", [], "404"],
    ["no parameters is 404", "GET", "/", [], "404"],
    ["path and query together", "GET", "/path1?animal=whale", [], "ns1/echo-v1:8080"],
    [
      "header and query outrank query alone",
      "GET",
      "/?animal=whale",
      [["version", "one"]],
      "ns1/echo-v2:8080",
    ],
    ["the first ANDed group of an OR", "GET", "/path3?animal=shark", [], "ns1/echo-v1:8080"],
    [
      "the second ANDed group of an OR",
      "GET",
      "/path4?animal=kraken",
      [["version", "three"]],
      "ns1/echo-v1:8080",
    ],
    ["half of a group is not enough", "GET", "/?animal=shark", [], "404"],
    ["a group missing its header", "GET", "/path4?animal=kraken", [], "404"],
    [
      "a longer prefix outranks a query match",
      "GET",
      "/path5?animal=hydra",
      [],
      "ns1/echo-v1:8080",
    ],
  ]);
});

Deno.test("matchHttp() orders rules of several routes by Gateway API precedence", () => {
  const rule = (match: unknown, to: string) => ({ matches: [match], backendRefs: [backend(to)] });
  const routes = routesOn([
    httpRoute("zeta", [
      rule({ path: { type: "PathPrefix", value: "/a" } }, "echo-v1"),
      rule({ path: { type: "Exact", value: "/a/b" } }, "echo-v2"),
    ], { created: "2024-01-02T00:00:00Z" }),
    httpRoute("alpha", [
      rule({ path: { type: "PathPrefix", value: "/a/b" } }, "echo-v3"),
      rule({ path: { type: "PathPrefix", value: "/m" }, method: "POST" }, "echo-v2"),
      rule(
        { path: { type: "PathPrefix", value: "/m" }, headers: [{ name: "x", value: "1" }] },
        "echo-v1",
      ),
      rule({ path: { type: "RegularExpression", value: "/r/.*" } }, "echo-v3"),
    ], { created: "2024-01-02T00:00:00Z" }),
    httpRoute("older", [rule({ path: { value: "/tie" } }, "echo-v1")], {
      created: "2024-01-01T00:00:00Z",
    }),
    httpRoute("newer", [rule({ path: { value: "/tie" } }, "echo-v2")], {
      created: "2024-01-03T00:00:00Z",
    }),
    httpRoute("b-name", [rule({ path: { value: "/same" } }, "echo-v2")]),
    httpRoute("a-name", [
      rule({ path: { value: "/same" } }, "echo-v1"),
      rule({ path: { value: "/same" } }, "echo-v3"),
      rule({ path: { value: "/r" } }, "echo-v1"),
    ]),
  ].map((d, i) => ({ ...d, line: i + 1 })));
  check(routes, [
    ["Exact beats a longer-or-equal prefix", "GET", "/a/b", [], "ns1/echo-v2:80"],
    ["a longer prefix beats a shorter one", "GET", "/a/b/c", [], "ns1/echo-v3:80"],
    ["the shorter prefix still serves its own paths", "GET", "/a/c", [], "ns1/echo-v1:80"],
    ["a method match beats a header match", "POST", "/m", [["x", "1"]], "ns1/echo-v2:80"],
    ["the header match applies without the method", "GET", "/m", [["x", "1"]], "ns1/echo-v1:80"],
    ["the oldest route wins a tie", "GET", "/tie", [], "ns1/echo-v1:80"],
    ["namespace/name order breaks a tie of equal age", "GET", "/same", [], "ns1/echo-v1:80"],
    ["a prefix match beats a regex match", "GET", "/r/x", [], "ns1/echo-v1:80"],
    ["rule order breaks a tie within a route", "GET", "/same/x", [], "ns1/echo-v1:80"],
  ]);
  const regexOnly = routesOn([
    httpRoute("re", [rule({ path: { type: "RegularExpression", value: "/r/.*" } }, "echo-v3")]),
  ]);
  check(regexOnly, [["a regex is a full match", "GET", "/r/x", [], "ns1/echo-v3:80"], [
    "anchored",
    "GET",
    "/x/r/x",
    [],
    "404",
  ]]);
});

Deno.test("matchHttp() matches paths exactly, element-wise or by full regex, without the query", () => {
  const route = (path: unknown) =>
    routesOn([httpRoute("p", [{ matches: [{ path }], backendRefs: [backend("echo-v1")] }])]);
  const cases: [string, unknown, string, boolean][] = [
    ["Exact matches the same path", { type: "Exact", value: "/abc" }, "/abc", true],
    ["Exact ignores the query", { type: "Exact", value: "/abc" }, "/abc?x=1", true],
    ["Exact is case-sensitive", { type: "Exact", value: "/abc" }, "/Abc", false],
    ["Exact does not take a trailing slash", { type: "Exact", value: "/abc" }, "/abc/", false],
    ["PathPrefix matches the path itself", { type: "PathPrefix", value: "/abc" }, "/abc", true],
    [
      "PathPrefix matches with a trailing slash",
      { type: "PathPrefix", value: "/abc" },
      "/abc/",
      true,
    ],
    ["PathPrefix matches deeper paths", { type: "PathPrefix", value: "/abc" }, "/abc/def", true],
    ["PathPrefix is element-wise", { type: "PathPrefix", value: "/abc" }, "/abcd", false],
    [
      "a trailing slash in the prefix is ignored",
      { type: "PathPrefix", value: "/abc/" },
      "/abc",
      true,
    ],
    ["PathPrefix ignores the query", { type: "PathPrefix", value: "/abc" }, "/abc?x=/abcd", true],
    [
      "a regex must match the whole path",
      { type: "RegularExpression", value: "/a.c" },
      "/abcd",
      false,
    ],
    ["a regex matches the whole path", { type: "RegularExpression", value: "/a.c" }, "/abc", true],
    [
      "a regex does not see the query",
      { type: "RegularExpression", value: "/abc\\?x=1" },
      "/abc?x=1",
      false,
    ],
    [
      "a leading (?i) makes a regex case-insensitive",
      { type: "RegularExpression", value: "(?i)/abc" },
      "/ABC",
      true,
    ],
  ];
  for (const [name, path, requestPath, want] of cases) {
    assert.equal(target(route(path), "GET", requestPath) !== "404", want, name);
  }
});

Deno.test("matchHttp() matches headers and query parameters", () => {
  const route = (match: unknown) =>
    routesOn([httpRoute("h", [{ matches: [match], backendRefs: [backend("echo-v1")] }])]);
  const exact = { headers: [{ name: "X-Env", value: "prod" }] };
  const cases: [string, unknown, string, [string, string][], boolean][] = [
    ["header names are case-insensitive", exact, "/", [["x-env", "prod"]], true],
    ["header values are case-sensitive", exact, "/", [["x-env", "Prod"]], false],
    ["a missing header does not match", exact, "/", [], false],
    ["repeated headers are compared joined with a comma", exact, "/", [["x-env", "prod"], [
      "x-env",
      "dev",
    ]], false],
    [
      "the joined value can be matched",
      { headers: [{ name: "x-env", value: "prod,dev" }] },
      "/",
      [["x-env", "prod"], ["x-env", "dev"]],
      true,
    ],
    [
      "a header regex is a full match",
      { headers: [{ type: "RegularExpression", name: "x-v", value: "v[0-9]+" }] },
      "/",
      [["x-v", "v12"]],
      true,
    ],
    [
      "a header regex does not match a part",
      { headers: [{ type: "RegularExpression", name: "x-v", value: "v[0-9]" }] },
      "/",
      [["x-v", "v12"]],
      false,
    ],
    [
      "only the first of repeated header matchers counts",
      { headers: [{ name: "x-a", value: "1" }, { name: "X-A", value: "2" }] },
      "/",
      [["x-a", "1"]],
      true,
    ],
    [
      "the first query value counts",
      { queryParams: [{ name: "a", value: "1" }] },
      "/?a=1&a=2",
      [],
      true,
    ],
    [
      "a later query value does not",
      { queryParams: [{ name: "a", value: "2" }] },
      "/?a=1&a=2",
      [],
      false,
    ],
    [
      "query names are case-sensitive",
      { queryParams: [{ name: "a", value: "1" }] },
      "/?A=1",
      [],
      false,
    ],
    [
      "query values are percent-decoded",
      { queryParams: [{ name: "q", value: "a b" }] },
      "/?q=a%20b",
      [],
      true,
    ],
    [
      "a malformed escape is kept as written",
      { queryParams: [{ name: "q", value: "%FF x" }] },
      "/?q=%FF%20x",
      [],
      true,
    ],
    [
      "a query regex",
      { queryParams: [{ type: "RegularExpression", name: "id", value: "[0-9]+" }] },
      "/?id=42",
      [],
      true,
    ],
    ["a method match", { method: "PUT" }, "/", [], false],
  ];
  for (const [name, match, path, headers, want] of cases) {
    assert.equal(target(route(match), "GET", path, headers) !== "404", want, name);
  }
});

Deno.test("matchHttp() reads a host header match from the authority when headers lack it", () => {
  const routes = routesOn([httpRoute("host", [
    {
      matches: [{ headers: [{ name: "host", value: "echo-v1" }] }],
      backendRefs: [backend("echo-v1")],
    },
  ])]);
  const h2 = { method: "GET", path: "/", headers: new HeaderMap(), authority: "echo-v1" };
  assert.ok(matchHttp(routes, h2), "HTTP/2 authority");
  assert.ok(
    matchHttp(routes, { ...h2, headers: new HeaderMap([["host", "echo-v1"]]), authority: "x" }),
    "Host",
  );
  assert.equal(matchHttp(routes, { ...h2, authority: "echo-v2" }), undefined, "another host");
});

Deno.test("matchHttp() returns the match that hit for ReplacePrefixMatch", () => {
  const routes = routesOn([httpRoute("m", [
    {
      matches: [{ path: { value: "/a" } }, { path: { value: "/bb" } }],
      backendRefs: [backend("echo-v1")],
    },
  ])]);
  const hit = matchHttp(routes, { method: "GET", path: "/bb/c", headers: new HeaderMap() });
  assert.equal(hit?.match.kind === "http" && hit.match.path.value, "/bb");
});

Deno.test("matchHttp() matches GRPCRoute service, method and headers", () => {
  const grpc = (name: string, rules: unknown[], created?: string) =>
    doc("GRPCRoute", name, { parentRefs: [parent("echo", 7070)], rules }, { created });
  const to = (name: string) => [{ name, port: 7070 }];
  const { table, problems } = compile([
    grpc("g", [
      { matches: [{ method: { service: "pkg.Echo", method: "Say" } }], backendRefs: to("echo-v1") },
      { matches: [{ method: { service: "pkg.Echo" } }], backendRefs: to("echo-v2") },
      { matches: [{ method: { method: "Ping" } }], backendRefs: to("echo-v3") },
      {
        matches: [{
          method: { type: "RegularExpression", service: "pkg\\.(Admin|Ops)", method: "Get.*" },
        }],
        backendRefs: to("echo-v1"),
      },
      {
        matches: [{ headers: [{ name: "x-test-case", value: "set" }] }],
        backendRefs: to("echo-v2"),
      },
    ]),
  ]);
  assert.deepEqual(problems, []);
  const routes = table.httpRoutesFor("ns1/echo", 7070)!;
  assert.equal(routes.kind, "GRPCRoute");
  check(routes, [
    ["service and method", "POST", "/pkg.Echo/Say", [], "ns1/echo-v1:7070"],
    ["service only", "POST", "/pkg.Echo/Other", [], "ns1/echo-v2:7070"],
    ["method only in any service", "POST", "/other.Svc/Ping", [], "ns1/echo-v3:7070"],
    ["regex service and method", "POST", "/pkg.Ops/GetAll", [], "ns1/echo-v1:7070"],
    ["a regex is a full match", "POST", "/pkg.Opsx/GetAll", [], "404"],
    ["names are case-sensitive", "POST", "/pkg.echo/Say", [], "404"],
    [
      "header-only match on any path",
      "POST",
      "/x.Y/Z",
      [["x-test-case", "set"]],
      "ns1/echo-v2:7070",
    ],
    ["a method match needs a gRPC path", "POST", "/pkg.Echo/Say/extra", [], "404"],
    ["nothing matches", "POST", "/x.Y/Z", [], "404"],
  ]);
});

Deno.test("matchHttp() matches every request for a GRPCRoute rule without matches", () => {
  const { table } = compile([
    doc("GRPCRoute", "all", {
      parentRefs: [parent("echo", 7070)],
      rules: [{ backendRefs: [{ name: "echo-v1", port: 7070 }] }],
    }),
  ]);
  assert.equal(
    target(table.httpRoutesFor("ns1/echo", 7070)!, "POST", "/a.B/C"),
    "ns1/echo-v1:7070",
  );
});
