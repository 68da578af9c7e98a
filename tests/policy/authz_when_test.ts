import { tokenAuth } from "./_fixtures.ts";
import { allowA, type Case, denyA, ISSUER1, n, runCases, when } from "./_authz_cases.ts";

const whenCases: Case[] = [
  {
    name: "authorize() reads request.headers names without case",
    policies: [allowA("p", when("request.headers[X-Env]", ["prod"]))],
    request: { headers: [["x-env", "prod"]] },
    expect: { allow: true },
  },
  {
    name: "authorize() compares request.headers values with case",
    policies: [allowA("p", when("request.headers[x-env]", ["Prod"]))],
    request: { headers: [["x-env", "prod"]] },
    expect: { allow: false },
  },
  {
    name: "authorize() treats request.headers * as presence, even of an empty value",
    policies: [allowA("p", when("request.headers[x-token]", ["*"]))],
    request: { headers: [["x-token", ""]] },
    expect: { allow: true },
  },
  {
    name: "authorize() joins repeated headers with commas",
    policies: [allowA("p", when("request.headers[x-tag]", ["a,b"]))],
    request: { headers: [["x-tag", "a"], ["x-tag", "b"]] },
    expect: { allow: true },
  },
  {
    name: "authorize() matches request.headers notValues when the header is absent",
    policies: [allowA("p", when("request.headers[x-env]", undefined, ["prod"]))],
    expect: { allow: true },
  },
  {
    name: "authorize() matches source.ip in when",
    policies: [allowA("p", when("source.ip", ["10.1.0.0/24"]))],
    expect: { allow: true },
  },
  {
    name: "authorize() matches destination.ip in when",
    policies: [denyA("d", when("destination.ip", ["10.0.0.0/30"]))],
    expect: { allow: false, policy: n("d") },
  },
  {
    name: "authorize() matches destination.port in when",
    policies: [allowA("p", when("destination.port", ["9000"]))],
    expect: { allow: false },
  },
  {
    name: "authorize() matches connection.sni in when",
    policies: [allowA("p", when("connection.sni", ["*.example.com"]))],
    request: { sni: "api.example.com" },
    expect: { allow: true },
  },
  {
    name: "authorize() matches source.namespace and source.principal in when",
    policies: [allowA("p", {
      when: [
        { key: "source.namespace", values: ["mesh"] },
        { key: "source.principal", values: ["cluster.local/ns/mesh/sa/client"] },
      ],
    })],
    expect: { allow: true },
  },
  {
    name: "authorize() matches a list claim when any element matches",
    policies: [allowA("p", when("request.auth.claims[groups]", ["group-2"]))],
    request: { auth: tokenAuth({ ...ISSUER1, groups: ["group-1", "group-2"] }) },
    expect: { allow: true },
  },
  {
    name: "authorize() matches a nested claim",
    policies: [allowA("p", when("request.auth.claims[nested][nested-2][key1]", ["valueA"]))],
    request: {
      auth: tokenAuth({ ...ISSUER1, nested: { "nested-2": { key1: ["valueA", "valueB"] } } }),
    },
    expect: { allow: true },
  },
  {
    name: "authorize() does not match a nested claim that is not there",
    policies: [allowA("p", when("request.auth.claims[nested][non-exist]", ["valueC"]))],
    request: { auth: tokenAuth({ ...ISSUER1, nested: { key2: "valueC" } }) },
    expect: { allow: false },
  },
  {
    name: "authorize() matches a claim name that holds a slash",
    policies: [allowA("p", when("request.auth.claims[test-issuer-1@istio.io/simple]", ["valueC"]))],
    request: { auth: tokenAuth({ ...ISSUER1, "test-issuer-1@istio.io/simple": "valueC" }) },
    expect: { allow: true },
  },
  {
    name: "authorize() matches a space-delimited scope split into a list",
    policies: [allowA("p", when("request.auth.claims[scope]", ["read"]))],
    request: { auth: tokenAuth({ ...ISSUER1, scope: ["write", "read"] }) },
    expect: { allow: true },
  },
  {
    name: "authorize() never matches a number claim",
    policies: [allowA("p", when("request.auth.claims[exp]", ["4715782722"]))],
    request: { auth: tokenAuth({ ...ISSUER1, exp: 4715782722 }) },
    expect: { allow: false },
  },
  {
    name: "authorize() matches request.auth.audiences in a list",
    policies: [allowA("p", when("request.auth.audiences", ["buzz"]))],
    request: { auth: tokenAuth({ ...ISSUER1, aud: ["foo", "buzz"] }) },
    expect: { allow: true },
  },
  {
    name: "authorize() matches request.auth.presenter",
    policies: [allowA("p", when("request.auth.presenter", ["bar"]))],
    request: { auth: tokenAuth({ ...ISSUER1, azp: "bar" }) },
    expect: { allow: true },
  },
  {
    name: "authorize() matches request.auth.principal * for any verified token",
    policies: [allowA("p", when("request.auth.principal", ["*"]))],
    request: { auth: tokenAuth(ISSUER1) },
    expect: { allow: true },
  },
  {
    name: "authorize() treats Envoy filter metadata as absent",
    policies: [
      allowA(
        "p",
        when("experimental.envoy.filters.network.mysql_proxy[db.table]", undefined, ["[update]"]),
      ),
    ],
    expect: { allow: true },
  },
  {
    name: "authorize() skips an ALLOW rule with an unknown when key",
    policies: [allowA("p", when("destination.labels[app]", ["a"]))],
    expect: { allow: false },
  },
  {
    name: "authorize() skips a DENY rule with an unknown when key",
    policies: [denyA("d", when("request.regex.headers[x]", ["a"]))],
    expect: { allow: true },
  },
];

runCases(whenCases);
