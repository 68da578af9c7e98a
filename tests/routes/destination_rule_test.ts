import assert from "node:assert/strict";
import type { Problem } from "../../mesh/model.ts";
import {
  compileDestinationRules,
  type LbPolicy,
  NO_LB_POLICIES,
  type RouteSourceDoc,
} from "../../routes/mod.ts";
import { doc, type DocOptions } from "./_fixtures.ts";

const REVIEWS = "reviews.ns1.svc.cluster.local";

/** A DestinationRule in `routes.yaml`, namespace `ns1` unless given. */
function rule(name: string, spec: unknown, options: DocOptions = {}): RouteSourceDoc {
  return doc("DestinationRule", name, spec, {
    apiVersion: "networking.istio.io/v1",
    ...options,
  });
}

function simple(value: string, more: Record<string, unknown> = {}) {
  return { loadBalancer: { simple: value }, ...more };
}

function messages(problems: readonly Problem[]): string[] {
  return problems.map((p) => `${p.severity} ${p.where} ${p.resource} ${p.message}`);
}

Deno.test("compileDestinationRules() answers the policy of a host and port", () => {
  const cases: [string, RouteSourceDoc[], [string, number, LbPolicy][]][] = [
    ["no rule means least request", [], [[REVIEWS, 9080, "LEAST_REQUEST"]]],
    [
      "an FQDN host sets every port of that host only",
      [rule("r", { host: REVIEWS, trafficPolicy: simple("ROUND_ROBIN") })],
      [
        [REVIEWS, 9080, "ROUND_ROBIN"],
        [REVIEWS, 1, "ROUND_ROBIN"],
        ["ratings.ns1.svc.cluster.local", 9080, "LEAST_REQUEST"],
      ],
    ],
    [
      "a short host resolves in the rule's namespace",
      [rule("r", { host: "reviews", trafficPolicy: simple("RANDOM") }, { namespace: "ns2" })],
      [["reviews.ns2.svc.cluster.local", 80, "RANDOM"], [REVIEWS, 80, "LEAST_REQUEST"]],
    ],
    [
      "a dotted host is taken as written, not completed",
      [rule("r", { host: "reviews.ns1", trafficPolicy: simple("RANDOM") })],
      [[REVIEWS, 80, "LEAST_REQUEST"], ["reviews.ns1", 80, "RANDOM"]],
    ],
    [
      "a port-level setting overrides its port and replaces the rule's policy as a whole",
      [rule("r", {
        host: REVIEWS,
        trafficPolicy: simple("RANDOM", {
          portLevelSettings: [
            { port: { number: 9080 }, loadBalancer: { simple: "ROUND_ROBIN" } },
            { port: { number: 9081 }, connectionPool: { tcp: { maxConnections: 10 } } },
          ],
        }),
      })],
      [[REVIEWS, 9080, "ROUND_ROBIN"], [REVIEWS, 9081, "LEAST_REQUEST"], [REVIEWS, 80, "RANDOM"]],
    ],
    [
      "UNSPECIFIED, LEAST_CONN and an absent loadBalancer mean least request",
      [
        rule("a", { host: "a", trafficPolicy: simple("UNSPECIFIED") }),
        rule("b", { host: "b", trafficPolicy: simple("LEAST_CONN") }),
        rule("c", { host: "c", trafficPolicy: {} }),
      ],
      [
        ["a.ns1.svc.cluster.local", 80, "LEAST_REQUEST"],
        ["b.ns1.svc.cluster.local", 80, "LEAST_REQUEST"],
        ["c.ns1.svc.cluster.local", 80, "LEAST_REQUEST"],
      ],
    ],
    [
      "v1beta1 and v1alpha3 are read; other groups are not",
      [
        rule("a", { host: "a", trafficPolicy: simple("RANDOM") }, {
          apiVersion: "networking.istio.io/v1beta1",
        }),
        rule("b", { host: "b", trafficPolicy: simple("RANDOM") }, {
          apiVersion: "networking.istio.io/v1alpha3",
        }),
        rule("c", { host: "c", trafficPolicy: simple("RANDOM") }, { apiVersion: "example.com/v1" }),
      ],
      [
        ["a.ns1.svc.cluster.local", 80, "RANDOM"],
        ["b.ns1.svc.cluster.local", 80, "RANDOM"],
        ["c.ns1.svc.cluster.local", 80, "LEAST_REQUEST"],
      ],
    ],
    [
      "an exact host beats a wildcard, and a longer wildcard beats a shorter one",
      [
        rule("all", { host: "*", trafficPolicy: simple("RANDOM") }),
        rule("ns1", { host: "*.ns1.svc.cluster.local", trafficPolicy: simple("ROUND_ROBIN") }),
        rule("exact", { host: REVIEWS, trafficPolicy: simple("LEAST_REQUEST") }),
      ],
      [
        [REVIEWS, 80, "LEAST_REQUEST"],
        ["ratings.ns1.svc.cluster.local", 80, "ROUND_ROBIN"],
        ["ratings.ns2.svc.cluster.local", 80, "RANDOM"],
        ["ns1.svc.cluster.local", 80, "RANDOM"],
      ],
    ],
  ];
  for (const [name, docs, expected] of cases) {
    const { lb, problems } = compileDestinationRules(docs);
    assert.deepEqual(problems, [], name);
    for (const [host, port, policy] of expected) {
      assert.equal(lb.lbPolicyFor(host, port), policy, `${name}: ${host}:${port}`);
    }
  }
});

Deno.test("compileDestinationRules() lets the oldest rule with a traffic policy win a host", () => {
  const at = (t: string) => ({ created: `2024-01-0${t}T00:00:00Z` });
  const cases: [string, RouteSourceDoc[], LbPolicy, string[]][] = [
    [
      "the older rule wins wherever it is written",
      [
        rule("new", { host: "reviews", trafficPolicy: simple("RANDOM") }, { ...at("2"), line: 1 }),
        rule("old", { host: REVIEWS, trafficPolicy: simple("ROUND_ROBIN") }, {
          ...at("1"),
          line: 9,
        }),
      ],
      "ROUND_ROBIN",
      [
        "warning routes.yaml:1 DestinationRule ns1/new Conflicted: spec.trafficPolicy is not " +
        "applied: DestinationRule ns1/old (routes.yaml:9) is older and already sets the traffic " +
        `policy of ${REVIEWS}`,
      ],
    ],
    [
      "equal ages fall back to namespace/name",
      [
        rule("b", { host: REVIEWS, trafficPolicy: simple("RANDOM") }, at("1")),
        rule("a", { host: REVIEWS, trafficPolicy: simple("ROUND_ROBIN") }, at("1")),
      ],
      "ROUND_ROBIN",
      ["warning routes.yaml:1 DestinationRule ns1/b Conflicted"],
    ],
    [
      "a rule without creationTimestamp counts as newest",
      [
        rule("a", { host: REVIEWS, trafficPolicy: simple("RANDOM") }),
        rule("z", { host: REVIEWS, trafficPolicy: simple("ROUND_ROBIN") }, at("9")),
      ],
      "ROUND_ROBIN",
      ["warning routes.yaml:1 DestinationRule ns1/a Conflicted"],
    ],
    [
      "an older rule without a traffic policy (subsets only) does not hide a newer one",
      [
        rule("subsets", { host: REVIEWS, subsets: [{ name: "v1" }] }, at("1")),
        rule("policy", { host: REVIEWS, trafficPolicy: simple("RANDOM") }, at("2")),
      ],
      "RANDOM",
      [],
    ],
  ];
  for (const [name, docs, policy, expected] of cases) {
    const { lb, problems } = compileDestinationRules(docs);
    assert.equal(lb.lbPolicyFor(REVIEWS, 9080), policy, name);
    const got = messages(problems);
    assert.equal(got.length, expected.length, `${name}: ${got.join("\n")}`);
    got.forEach((m, i) => assert.ok(m.startsWith(expected[i]), `${name}: ${m}`));
  }
});

Deno.test("compileDestinationRules() reports invalid and unsupported values with file:line", () => {
  const site = "routes.yaml:7 DestinationRule ns1/r";
  const lbAt = "spec.trafficPolicy.loadBalancer";
  const cases: [string, unknown, LbPolicy, string][] = [
    [
      "an unknown simple value rejects the rule",
      { host: REVIEWS, trafficPolicy: simple("FASTEST") },
      "LEAST_REQUEST",
      `error ${site} UnsupportedValue: ${lbAt}.simple is "FASTEST" (want UNSPECIFIED, ` +
      "LEAST_CONN, ROUND_ROBIN, RANDOM, PASSTHROUGH, LEAST_REQUEST); the DestinationRule is " +
      "not applied",
    ],
    [
      "an unknown port-level value rejects the rule too",
      {
        host: REVIEWS,
        trafficPolicy: simple("RANDOM", {
          portLevelSettings: [{ port: { number: 9080 }, loadBalancer: { simple: "rr" } }],
        }),
      },
      "LEAST_REQUEST",
      `error ${site} UnsupportedValue: spec.trafficPolicy.portLevelSettings[0].loadBalancer` +
      '.simple is "rr"',
    ],
    [
      "a port-level setting needs a port number",
      { host: REVIEWS, trafficPolicy: { portLevelSettings: [{ port: {} }] } },
      "LEAST_REQUEST",
      `error ${site} UnsupportedValue: spec.trafficPolicy.portLevelSettings[0].port.number is ` +
      "missing; the DestinationRule is not applied",
    ],
    [
      "a rule needs a host",
      { trafficPolicy: simple("RANDOM") },
      "LEAST_REQUEST",
      `error ${site} UnsupportedValue: spec.host is missing; the DestinationRule is not applied`,
    ],
    [
      "a host must be a hostname",
      { host: "reviews/ns1", trafficPolicy: simple("RANDOM") },
      "LEAST_REQUEST",
      `error ${site} UnsupportedValue: spec.host is "reviews/ns1"`,
    ],
    [
      "PASSTHROUGH is not carried out: the default is used",
      { host: REVIEWS, trafficPolicy: simple("PASSTHROUGH") },
      "LEAST_REQUEST",
      `warning ${site} UnsupportedValue: ${lbAt}.simple PASSTHROUGH is not supported by the ` +
      "waypoint; LEAST_REQUEST is used",
    ],
    [
      "consistentHash is not carried out: the default is used",
      { host: REVIEWS, trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true } } } },
      "LEAST_REQUEST",
      `warning ${site} UnsupportedValue: ${lbAt}.consistentHash is not supported`,
    ],
    [
      "a second entry for one port is ignored",
      {
        host: REVIEWS,
        trafficPolicy: {
          portLevelSettings: [
            { port: { number: 9080 }, loadBalancer: { simple: "RANDOM" } },
            { port: { number: 9080 }, loadBalancer: { simple: "ROUND_ROBIN" } },
          ],
        },
      },
      "RANDOM",
      `warning ${site} Conflicted: spec.trafficPolicy.portLevelSettings[1] is not applied`,
    ],
    [
      "a workloadSelector rule targets sidecars and is not applied",
      {
        host: REVIEWS,
        workloadSelector: { matchLabels: { app: "client" } },
        trafficPolicy: simple("RANDOM"),
      },
      "LEAST_REQUEST",
      `warning ${site} UnsupportedValue: spec.workloadSelector selects client sidecars`,
    ],
  ];
  for (const [name, spec, policy, expected] of cases) {
    const { lb, problems } = compileDestinationRules([rule("r", spec, { line: 7 })]);
    assert.equal(lb.lbPolicyFor(REVIEWS, 9080), policy, name);
    const got = messages(problems);
    assert.equal(got.length, 1, `${name}: ${got.join("\n")}`);
    assert.ok(got[0].startsWith(expected), `${name}: ${got[0]}`);
  }
});

Deno.test("compileDestinationRules() rejects a second rule of the same namespace/name", () => {
  const { lb, problems } = compileDestinationRules([
    rule("r", { host: REVIEWS, trafficPolicy: simple("RANDOM") }, { line: 1 }),
    rule("r", { host: REVIEWS, trafficPolicy: simple("ROUND_ROBIN") }, { line: 5 }),
  ]);
  assert.equal(lb.lbPolicyFor(REVIEWS, 80), "RANDOM");
  assert.deepEqual(messages(problems), [
    "error routes.yaml:5 DestinationRule ns1/r Duplicate resource: DestinationRule ns1/r is " +
    "already defined at routes.yaml:1",
  ]);
});

Deno.test("compileDestinationRules() lookup dumps itself sorted by host", () => {
  const { lb } = compileDestinationRules([
    rule("z", {
      host: "reviews",
      trafficPolicy: simple("ROUND_ROBIN", {
        portLevelSettings: [
          { port: { number: 9090 }, loadBalancer: { simple: "RANDOM" } },
          { port: { number: 80 } },
        ],
      }),
    }),
    rule("a", { host: "*.example.com", trafficPolicy: simple("RANDOM") }),
  ]);
  assert.deepEqual(JSON.parse(JSON.stringify(lb)), [
    { host: "*.example.com", from: "DestinationRule ns1/a", policy: "RANDOM", ports: {} },
    {
      host: REVIEWS,
      from: "DestinationRule ns1/z",
      policy: "ROUND_ROBIN",
      ports: { 80: "LEAST_REQUEST", 9090: "RANDOM" },
    },
  ]);
  assert.deepEqual(NO_LB_POLICIES.toJSON(), []);
  assert.ok(Object.isFrozen(lb));
});
