import assert from "node:assert/strict";
import { HeaderMap, type ResponseHead } from "../../http/types.ts";
import {
  corsDecision,
  type Filter,
  type HttpRouteMatch,
  matchHttp,
  modifyHeaders,
  modifyResponseHeaders,
  planRequest,
  planResponse,
  redirectRequest,
  requestForBackend,
  requestMirrors,
  rewritePath,
  rewriteRequest,
} from "../../routes/mod.ts";
import { backend, backendName, compile, httpRoute, request } from "./_fixtures.ts";

/** Compiles one rule on `ns1/echo:80` and returns the hit for a request. */
function hitFor(
  rule: Record<string, unknown>,
  path = "/",
  method = "GET",
  headers: [string, string][] = [],
): HttpRouteMatch {
  const { table, problems } = compile([httpRoute("f", [rule])]);
  assert.deepEqual(problems.filter((p) => p.severity === "error"), []);
  const hit = matchHttp(table.httpRoutesFor("ns1/echo", 80)!, {
    method,
    path,
    headers: new HeaderMap(headers),
  });
  assert.ok(hit, `a rule matches ${path}`);
  return hit;
}

function filterOf<T extends Filter["type"]>(
  hit: HttpRouteMatch,
  type: T,
): Extract<Filter, { type: T }> {
  const found = hit.rule.filters.find((f) => f.type === type);
  assert.ok(found, `a ${type} filter`);
  return found as Extract<Filter, { type: T }>;
}

Deno.test("modifyHeaders() sets, adds and removes like the mesh conformance cases", () => {
  const edit = (filter: unknown) =>
    filterOf(
      hitFor({
        filters: [{ type: "RequestHeaderModifier", requestHeaderModifier: filter }],
        backendRefs: [backend("echo-v1")],
      }),
      "RequestHeaderModifier",
    ).modifier;
  const cases: [string, unknown, [string, string][], [string, string][]][] = [
    [
      "set adds a missing header",
      { set: [{ name: "X-Header-Set", value: "set-overwrites-values" }] },
      [],
      [["x-header-set", "set-overwrites-values"]],
    ],
    [
      "set replaces every value",
      { set: [{ name: "X-Header-Set", value: "set-overwrites-values" }] },
      [["x-header-set", "some-other-value"], ["x-header-set", "more"]],
      [["x-header-set", "set-overwrites-values"]],
    ],
    [
      "add appends to an existing header",
      { add: [{ name: "X-Header-Add", value: "add-appends-values" }] },
      [["x-header-add", "some-other-value"]],
      [["x-header-add", "some-other-value"], ["x-header-add", "add-appends-values"]],
    ],
    ["remove drops every value", { remove: ["X-Header-Remove"] }, [["x-header-remove", "a"], [
      "x-header-remove",
      "b",
    ], ["keep", "1"]], [["keep", "1"]]],
    [
      "names are case-insensitive and the first entry of a name wins",
      {
        set: [{ name: "X-Header-Set-1", value: "one" }, {
          name: "x-header-set-1",
          value: "ignored",
        }],
      },
      [["X-HEADER-SET-1", "old"]],
      [["x-header-set-1", "one"]],
    ],
    [
      "remove, set and add together",
      { set: [{ name: "a", value: "1" }], add: [{ name: "b", value: "2" }], remove: ["c"] },
      [["a", "0"], ["b", "1"], ["c", "x"]],
      [["a", "1"], ["b", "1"], ["b", "2"]],
    ],
  ];
  for (const [name, filter, before, after] of cases) {
    const original = new HeaderMap(before);
    assert.deepEqual(modifyHeaders(original, edit(filter)).entries(), after, name);
    assert.deepEqual(
      original.entries(),
      new HeaderMap(before).entries(),
      `${name}: the input is unchanged`,
    );
  }
});

Deno.test("modifyResponseHeaders() edits a response head", () => {
  const hit = hitFor({
    filters: [{
      type: "ResponseHeaderModifier",
      responseHeaderModifier: { set: [{ name: "X-Header-Set", value: "set" }] },
    }],
    backendRefs: [backend("echo-v2")],
  });
  const response: ResponseHead = {
    status: 200,
    headers: new HeaderMap([["x-header-set", "old"], ["server", "x"]]),
  };
  const out = modifyResponseHeaders(response, filterOf(hit, "ResponseHeaderModifier").modifier);
  assert.deepEqual(out.headers.entries(), [["x-header-set", "set"], ["server", "x"]]);
  assert.equal(out.status, 200);
});

Deno.test("rewritePath() follows the ReplacePrefixMatch table of the API doc", () => {
  // gateway-api apis/v1/httproute_types.go, HTTPPathModifier.ReplacePrefixMatch
  const table: [
    requestPath: string,
    prefixMatch: string,
    replacePrefix: string,
    modifiedPath: string,
  ][] = [
    ["/foo/bar", "/foo", "/xyz", "/xyz/bar"],
    ["/foo/bar", "/foo", "/xyz/", "/xyz/bar"],
    ["/foo/bar", "/foo/", "/xyz", "/xyz/bar"],
    ["/foo/bar", "/foo/", "/xyz/", "/xyz/bar"],
    ["/foo", "/foo", "/xyz", "/xyz"],
    ["/foo/", "/foo", "/xyz", "/xyz/"],
    ["/foo/bar", "/foo", "", "/bar"],
    ["/foo/", "/foo", "", "/"],
    ["/foo", "/foo", "", "/"],
    ["/foo/", "/foo", "/", "/"],
    ["/foo", "/foo", "/", "/"],
  ];
  for (const [path, prefix, replacement, want] of table) {
    const hit = hitFor({
      matches: [{ path: { type: "PathPrefix", value: prefix } }],
      filters: [{
        type: "URLRewrite",
        urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: replacement } },
      }],
      backendRefs: [backend("echo-v1")],
    }, path);
    const { rewrite } = filterOf(hit, "URLRewrite");
    assert.equal(
      rewritePath(path, rewrite.path!, hit),
      want,
      `${path} | ${prefix} | ${JSON.stringify(replacement)}`,
    );
  }
});

Deno.test("rewritePath() handles the mesh conformance rewrites, full paths and queries", () => {
  const prefix = (value: string) => ({ type: "ReplacePrefixMatch" as const, value });
  const full = (value: string) => ({ type: "ReplaceFullPath" as const, value });
  const match = (value: string) => ({
    kind: "http" as const,
    path: { type: "PathPrefix" as const, value },
    headers: [],
    queryParams: [],
  });
  const cases: [string, string, ReturnType<typeof prefix | typeof full>, string, string][] = [
    ["a shorter prefix", "/prefix/one/two", prefix("/one"), "/prefix/one", "/one/two"],
    ["/ strips the prefix (Istio)", "/strip-prefix/three", prefix("/"), "/strip-prefix", "/three"],
    ["stripping the whole path leaves /", "/strip-prefix", prefix("/"), "/strip-prefix", "/"],
    ["a full path replacement", "/full/one/two", full("/one"), "/full/one", "/one"],
    [
      "the query survives a prefix rewrite",
      "/foo/bar?x=1&y",
      prefix("/xyz"),
      "/foo",
      "/xyz/bar?x=1&y",
    ],
    ["the query survives a full rewrite", "/foo/bar?x=1", full("/test"), "/foo", "/test?x=1"],
    ["a / prefix is replaced element-wise", "/bar", prefix("/xyz"), "/", "/xyz/bar"],
  ];
  for (const [name, path, modifier, matched, want] of cases) {
    assert.equal(rewritePath(path, modifier, { match: match(matched) }), want, name);
  }
});

Deno.test("rewriteRequest() sets the authority and Host and keeps the input", () => {
  const hit = hitFor({
    matches: [{ path: { value: "/prefix" } }],
    filters: [{
      type: "URLRewrite",
      urlRewrite: {
        hostname: "mirror.example",
        path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/p" },
      },
    }],
    backendRefs: [backend("echo-v1")],
  }, "/prefix/x");
  const original = request("GET", "/prefix/x?q=1", { host: "echo" });
  const out = rewriteRequest(original, filterOf(hit, "URLRewrite").rewrite, hit);
  assert.equal(out.authority, "mirror.example");
  assert.equal(out.headers.get("host"), "mirror.example");
  assert.equal(out.path, "/p/x?q=1");
  assert.equal(original.path, "/prefix/x?q=1");
  assert.equal(original.headers.get("host"), "echo");
});

Deno.test("redirectRequest() applies the API defaults for status, host, port, scheme and path", () => {
  const cases: [string, Record<string, unknown>, string, string, number, number, string][] = [
    [
      "status 302 and the Host without its port by default",
      {},
      "echo:80",
      "/a?b=1",
      80,
      302,
      "http://echo/a?b=1",
    ],
    [
      "a hostname with the status",
      { hostname: "example.org", statusCode: 301 },
      "echo",
      "/",
      80,
      301,
      "http://example.org/",
    ],
    [
      "the Service port is kept when not 80",
      { hostname: "example.org" },
      "echo:8080",
      "/x",
      8080,
      302,
      "http://example.org:8080/x",
    ],
    ["an explicit port", { port: 8083 }, "echo", "/port", 80, 302, "http://echo:8083/port"],
    [
      "a scheme takes its well-known port",
      { scheme: "https" },
      "echo:8080",
      "/s",
      8080,
      302,
      "https://echo/s",
    ],
    [
      "a scheme with a port",
      { scheme: "https", port: 8443 },
      "echo",
      "/s",
      80,
      302,
      "https://echo:8443/s",
    ],
    [
      "http on 80 omits the port",
      { scheme: "http", port: 80 },
      "echo",
      "/s",
      8080,
      302,
      "http://echo/s",
    ],
    [
      "https on 443 omits the port",
      { scheme: "https", port: 443 },
      "echo",
      "/s",
      80,
      302,
      "https://echo/s",
    ],
    [
      "an IPv6 authority keeps its brackets",
      {},
      "[fd00::1]:8080",
      "/",
      8080,
      302,
      "http://[fd00::1]:8080/",
    ],
    [
      "a full path keeps the query",
      { path: { type: "ReplaceFullPath", replaceFullPath: "/new" } },
      "echo",
      "/old/x?q=1",
      80,
      302,
      "http://echo/new?q=1",
    ],
    [
      "a prefix replacement",
      {
        path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/replacement-prefix" },
        statusCode: 303,
      },
      "echo",
      "/original-prefix/lemon",
      80,
      303,
      "http://echo/replacement-prefix/lemon",
    ],
    ["status 307", { statusCode: 307 }, "echo", "/", 80, 307, "http://echo/"],
    ["status 308", { statusCode: 308 }, "echo", "/", 80, 308, "http://echo/"],
  ];
  for (const [name, filter, authority, path, port, status, location] of cases) {
    const hit = hitFor({
      matches: [{
        path: {
          type: "PathPrefix",
          value: path.startsWith("/original-prefix") ? "/original-prefix" : "/",
        },
      }],
      filters: [{ type: "RequestRedirect", requestRedirect: filter }],
    }, path);
    const decision = redirectRequest(filterOf(hit, "RequestRedirect").redirect, {
      ...request("GET", path),
      authority,
    }, { port, match: hit.match });
    assert.deepEqual(decision, { status, location }, name);
  }
});

Deno.test("corsDecision() answers preflights and decorates allowed requests", () => {
  const corsRule = (cors: Record<string, unknown>) =>
    filterOf(
      hitFor({ filters: [{ type: "CORS", cors }], backendRefs: [backend("echo-v1")] }),
      "CORS",
    ).cors;
  const base = {
    allowOrigins: ["https://www.foo.com", "https://*.bar.com", "http://local.test:8080"],
    allowMethods: ["GET", "OPTIONS"],
    allowHeaders: ["x-header-1", "x-header-2"],
    exposeHeaders: ["x-header-3"],
  };
  const preflight = (origin: string, extra: [string, string][] = []) => ({
    method: "OPTIONS",
    headers: new HeaderMap([
      ["origin", origin],
      ["access-control-request-method", "GET"],
      ...extra,
    ]),
  });
  const simple = (origin?: string) => ({
    method: "GET",
    headers: new HeaderMap(origin ? [["origin", origin]] : []),
  });
  const allowed = (origin: string) => [
    ["access-control-allow-origin", origin],
    ["access-control-allow-methods", "GET,OPTIONS"],
    ["access-control-allow-headers", "x-header-1,x-header-2"],
    ["access-control-max-age", "5"],
  ];
  const cases: [
    string,
    Record<string, unknown>,
    { method: string; headers: HeaderMap },
    unknown,
  ][] = [
    ["a preflight from an exact origin", base, preflight("https://www.foo.com"), {
      kind: "preflight",
      status: 200,
      headers: allowed("https://www.foo.com"),
    }],
    ["the default port counts as written", base, preflight("https://www.foo.com:443"), {
      kind: "preflight",
      status: 200,
      headers: allowed("https://www.foo.com:443"),
    }],
    ["a wildcard takes any labels to the left", base, preflight("https://a.b.bar.com"), {
      kind: "preflight",
      status: 200,
      headers: allowed("https://a.b.bar.com"),
    }],
    ["the wildcard does not take the bare domain", base, preflight("https://bar.com"), {
      kind: "preflight",
      status: 200,
      headers: [],
    }],
    ["another scheme is another origin", base, preflight("http://www.foo.com"), {
      kind: "preflight",
      status: 200,
      headers: [],
    }],
    ["another port is another origin", base, preflight("http://local.test"), {
      kind: "preflight",
      status: 200,
      headers: [],
    }],
    ["an explicit port", base, preflight("http://local.test:8080"), {
      kind: "preflight",
      status: 200,
      headers: allowed("http://local.test:8080"),
    }],
    [
      "credentials and a maxAge",
      { ...base, allowCredentials: true, maxAge: 3600 },
      preflight("https://www.foo.com"),
      {
        kind: "preflight",
        status: 200,
        headers: [
          ["access-control-allow-origin", "https://www.foo.com"],
          ["access-control-allow-credentials", "true"],
          ["access-control-allow-methods", "GET,OPTIONS"],
          ["access-control-allow-headers", "x-header-1,x-header-2"],
          ["access-control-max-age", "3600"],
        ],
      },
    ],
    [
      "wildcards without credentials are sent as *",
      { allowOrigins: ["*"], allowMethods: ["*"], allowHeaders: ["*"] },
      preflight("https://any.example"),
      {
        kind: "preflight",
        status: 200,
        headers: [
          ["access-control-allow-origin", "https://any.example"],
          ["access-control-allow-methods", "*"],
          ["access-control-allow-headers", "*"],
          ["access-control-max-age", "5"],
        ],
      },
    ],
    [
      "wildcards with credentials echo the request",
      { allowOrigins: ["*"], allowMethods: ["*"], allowHeaders: ["*"], allowCredentials: true },
      preflight("https://any.example", [["access-control-request-headers", "x-a, x-b"]]),
      {
        kind: "preflight",
        status: 200,
        headers: [
          ["access-control-allow-origin", "https://any.example"],
          ["access-control-allow-credentials", "true"],
          ["access-control-allow-methods", "GET"],
          ["access-control-allow-headers", "x-a, x-b"],
          ["access-control-max-age", "5"],
        ],
      },
    ],
    [
      "a simple request from an allowed origin",
      base,
      simple("https://www.foo.com"),
      {
        kind: "actual",
        headers: [["access-control-allow-origin", "https://www.foo.com"], [
          "access-control-expose-headers",
          "x-header-3",
        ]],
      },
    ],
    [
      "expose * is dropped with credentials",
      { allowOrigins: ["*"], exposeHeaders: ["*"], allowCredentials: true },
      simple("https://a.example"),
      {
        kind: "actual",
        headers: [["access-control-allow-origin", "https://a.example"], [
          "access-control-allow-credentials",
          "true",
        ]],
      },
    ],
    ["a simple request from another origin", base, simple("https://evil.example"), {
      kind: "none",
    }],
    ["a request without Origin", base, simple(), { kind: "none" }],
    ["OPTIONS without a requested method is not a preflight", base, {
      method: "OPTIONS",
      headers: new HeaderMap([["origin", "https://www.foo.com"]]),
    }, {
      kind: "actual",
      headers: [["access-control-allow-origin", "https://www.foo.com"], [
        "access-control-expose-headers",
        "x-header-3",
      ]],
    }],
  ];
  for (const [name, cors, req, want] of cases) {
    assert.deepEqual(corsDecision(corsRule(cors), req), want, name);
  }
});

Deno.test("requestMirrors() lists mirror targets with their percentages", () => {
  const hit = hitFor({
    filters: [
      { type: "RequestMirror", requestMirror: { backendRef: { name: "echo-v2", port: 80 } } },
      {
        type: "RequestMirror",
        requestMirror: { backendRef: { name: "echo-v3", port: 80 }, percent: 25 },
      },
      {
        type: "RequestMirror",
        requestMirror: {
          backendRef: { name: "echo-v2", port: 8080 },
          fraction: { numerator: 1, denominator: 8 },
        },
      },
    ],
    backendRefs: [backend("echo-v1")],
  });
  const mirrors = requestMirrors(hit.rule.filters).map((m) => [backendName(m.backend), m.percent]);
  assert.deepEqual(mirrors, [["ns1/echo-v2:80", 100], ["ns1/echo-v3:80", 25], [
    "ns1/echo-v2:8080",
    12.5,
  ]]);
});

Deno.test("planRequest() runs filters in order and answers redirects and preflights", () => {
  const forward = hitFor({
    matches: [{ path: { value: "/api" } }],
    filters: [
      {
        type: "RequestHeaderModifier",
        requestHeaderModifier: { set: [{ name: "x-step", value: "1" }] },
      },
      {
        type: "URLRewrite",
        urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/v2" } },
      },
      { type: "CORS", cors: { allowOrigins: ["https://app.example"] } },
      {
        type: "ResponseHeaderModifier",
        responseHeaderModifier: { add: [{ name: "x-rule", value: "r" }] },
      },
      {
        type: "RequestMirror",
        requestMirror: { backendRef: { name: "echo-v2", port: 80 }, percent: 10 },
      },
    ],
    backendRefs: [{
      ...backend("echo-v1"),
      filters: [
        {
          type: "RequestHeaderModifier",
          requestHeaderModifier: { add: [{ name: "x-backend", value: "b" }] },
        },
        {
          type: "ResponseHeaderModifier",
          responseHeaderModifier: { set: [{ name: "x-rule", value: "backend" }] },
        },
      ],
    }],
  }, "/api/items");
  const plan = planRequest(
    forward,
    request("GET", "/api/items?x=1", { origin: "https://app.example" }),
    { port: 80 },
  );
  assert.equal(plan.kind, "forward");
  if (plan.kind !== "forward") return;
  assert.equal(plan.request.path, "/v2/items?x=1");
  assert.equal(plan.request.headers.get("x-step"), "1");
  assert.deepEqual(plan.mirrors.map((m) => m.percent), [10]);
  const chosen = forward.rule.backends[0].backend;
  assert.equal(requestForBackend(plan.request, chosen).headers.get("x-backend"), "b");
  const response = planResponse(
    { status: 200, headers: new HeaderMap([["x-rule", "upstream"]]) },
    plan,
    { backend: chosen },
  );
  assert.deepEqual(response.headers.entries(), [
    ["x-rule", "backend"],
    ["x-rule", "r"],
    ["access-control-allow-origin", "https://app.example"],
  ]);

  const redirect = hitFor({
    filters: [{ type: "RequestRedirect", requestRedirect: { hostname: "example.org" } }],
  }, "/x");
  assert.deepEqual(planRequest(redirect, request("GET", "/x"), { port: 80 }), {
    kind: "respond",
    status: 302,
    headers: [["location", "http://example.org/x"]],
  });

  const cors = hitFor({
    filters: [{ type: "CORS", cors: { allowOrigins: ["*"] } }],
    backendRefs: [backend("echo-v1")],
  });
  const preflight = request("OPTIONS", "/", {
    origin: "https://a.example",
    "access-control-request-method": "PUT",
  });
  assert.deepEqual(planRequest(cors, preflight, { port: 80 }), {
    kind: "respond",
    status: 200,
    headers: [["access-control-allow-origin", "https://a.example"], [
      "access-control-max-age",
      "5",
    ]],
  });
});
