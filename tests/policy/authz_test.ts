import assert from "node:assert/strict";
import { authorize, customChecks } from "../../policy/mod.ts";
import { authzPolicy as ap, compileAuthz, request, TO_A, TO_GATEWAY } from "./_fixtures.ts";
import { allowA, type Case, denyA, from, n, rule, runCases, to } from "./_authz_cases.ts";

const WAYPOINT_CLASS = [
  { kind: "GatewayClass", group: "gateway.networking.k8s.io", name: "istio-waypoint" },
];

/** A DENY-everything policy with these targetRefs. */
const denyAllAt = (name: string, targetRefs: unknown[], namespace = "mesh") =>
  ap(name, { targetRefs, action: "DENY", rules: [{}] }, namespace);

/** A CUSTOM policy on Service mesh/a. */
const custom = (name: string, provider: string, rules: unknown[] = [{}]) =>
  ap(name, { ...TO_A, action: "CUSTOM", provider: { name: provider }, rules });

const evaluationCases: Case[] = [
  {
    name: "authorize() allows when no policy applies",
    policies: [],
    expect: { allow: true, policy: null },
  },
  {
    name: "authorize() denies everything under an ALLOW policy without rules",
    policies: [ap("allow-nothing", TO_A)],
    expect: { allow: false, policy: null, status: 403 },
  },
  {
    name: "authorize() allows everything with an empty ALLOW rule",
    policies: [allowA("allow-all", {})],
    expect: { allow: true, policy: n("allow-all") },
  },
  {
    name: "authorize() denies everything with an empty DENY rule",
    policies: [denyA("deny-all", {})],
    expect: { allow: false, policy: n("deny-all"), status: 403 },
  },
  {
    name: "authorize() ignores a DENY policy without rules",
    policies: [ap("deny-nothing", { ...TO_A, action: "DENY" })],
    expect: { allow: true, policy: null },
  },
  {
    name: "authorize() ignores an AUDIT policy without rules",
    policies: [ap("audit-nothing", { ...TO_A, action: "AUDIT" })],
    expect: { allow: true, audit: undefined },
  },
  {
    name: "authorize() denies when a DENY policy matches even if an ALLOW policy matches too",
    policies: [allowA("allow-all", {}), denyA("deny-get", to({ methods: ["GET"] }))],
    expect: { allow: false, policy: n("deny-get") },
  },
  {
    name: "authorize() denies when ALLOW policies exist and none matches",
    policies: [allowA("allow-post", to({ methods: ["POST"] }))],
    expect: { allow: false, policy: null },
  },
  {
    name: "authorize() allows when one of two ALLOW policies matches",
    policies: [
      allowA("allow-post", to({ methods: ["POST"] })),
      allowA("allow-get", to({ methods: ["GET"] })),
    ],
    expect: { allow: true, policy: n("allow-get") },
  },
  {
    name: "authorize() reports the first DENY rule in Envoy's name order",
    policies: [
      ap("z-deny", { ...TO_A, action: "DENY", rules: [{}] }),
      ap("a-deny", {
        ...TO_A,
        action: "DENY",
        rules: [...Array(10).fill(to({ methods: ["PUT"] })), {}, {}],
      }),
    ],
    expect: { allow: false, policy: n("a-deny", 10) },
  },
  {
    name: "authorize() asks the CUSTOM provider when its rule matches",
    policies: [
      custom("ext", "opa", [to({ paths: ["/admin*"] })]),
    ],
    request: { path: "/admin/x" },
    expect: { allow: true, custom: [{ provider: "opa", policy: n("ext") }] },
  },
  {
    name: "authorize() does not ask the CUSTOM provider when its rule does not match",
    policies: [
      custom("ext", "opa", [to({ paths: ["/admin*"] })]),
    ],
    request: { path: "/public" },
    expect: { allow: true, custom: undefined },
  },
  {
    name: "authorize() denies a CUSTOM match when a DENY policy matches too",
    policies: [
      custom("ext", "opa"),
      denyA("deny-all", {}),
    ],
    expect: { allow: false, policy: n("deny-all"), custom: undefined },
  },
  {
    name: "authorize() denies CUSTOM matches of a provider the mesh does not define",
    policies: [custom("ext", "nope")],
    context: { extensionProviders: ["opa"] },
    expect: {
      allow: false,
      policy: `istio-ext-authz-nope-${n("ext")}-deny-due-to-bad-CUSTOM-action`,
    },
  },
  {
    name: "authorize() denies CUSTOM matches of two providers without the multiple-providers flag",
    policies: [
      custom("ext1", "opa"),
      custom("ext2", "oauth"),
    ],
    expect: {
      allow: false,
      policy: `istio-ext-authz-oauth-${n("ext2")}-deny-due-to-bad-CUSTOM-action`,
    },
  },
  {
    name: "authorize() asks both CUSTOM providers with the multiple-providers flag",
    policies: [
      custom("ext1", "opa"),
      custom("ext2", "oauth"),
    ],
    context: { multipleCustomProviders: true },
    expect: {
      allow: true,
      custom: [{ provider: "oauth", policy: n("ext2") }, { provider: "opa", policy: n("ext1") }],
    },
  },
  {
    name: "authorize() marks an AUDIT match without changing the decision",
    policies: [
      ap("audit-get", rule(to({ methods: ["GET"] }), { action: "AUDIT" })),
      denyA("deny-all", {}),
    ],
    expect: { allow: false, policy: n("deny-all"), audit: n("audit-get") },
  },
  {
    name: "authorize() never denies for a dry-run DENY policy and reports what it would do",
    policies: [ap("shadow", rule({}, { action: "DENY" }), "mesh", { "istio.io/dry-run": "true" })],
    expect: {
      allow: true,
      policy: null,
      dryRun: { deny: { result: "denied", policy: n("shadow") } },
    },
  },
  {
    name: "authorize() does not count a dry-run ALLOW policy as an ALLOW policy",
    policies: [
      ap("shadow", rule(to({ methods: ["POST"] })), "mesh", { "istio.io/dry-run": "true" }),
    ],
    expect: { allow: true, policy: null, dryRun: { allow: { result: "denied" } } },
  },
  {
    name: "authorize() skips a nil rule but keeps the index of the next one",
    policies: [ap("with-nil", { ...TO_A, rules: [null, {}] })],
    expect: { allow: true, policy: n("with-nil", 1) },
  },
];

const tcpAndInvalidCases: Case[] = [
  {
    name: "authorize() skips an ALLOW rule with methods on a TCP port",
    policies: [allowA("p", { ...to({ methods: ["GET"], ports: ["9000"] }) })],
    request: { protocol: "tcp", destinationPort: 9000, method: undefined, path: undefined },
    expect: { allow: false, policy: null },
  },
  {
    name: "authorize() keeps the port of a DENY rule with methods on a TCP port",
    policies: [denyA("d", to({ methods: ["POST"], ports: ["9000"] }))],
    request: { protocol: "tcp", destinationPort: 9000, method: undefined, path: undefined },
    expect: { allow: false, policy: n("d") },
  },
  {
    name: "authorize() denies all TCP traffic for a DENY rule with only HTTP fields",
    policies: [denyA("d", to({ methods: ["POST"] }))],
    request: { protocol: "tcp", destinationPort: 9000, method: undefined, path: undefined },
    expect: { allow: false, policy: n("d") },
  },
  {
    name: "authorize() allows TCP with an ALLOW rule on ports and principals",
    policies: [
      allowA("p", {
        ...to({ ports: ["9000"] }),
        ...from({ principals: ["cluster.local/ns/mesh/sa/client"] }),
      }),
    ],
    request: { protocol: "tcp", destinationPort: 9000, method: undefined, path: undefined },
    expect: { allow: true, policy: n("p") },
  },
  {
    name: "authorize() skips an ALLOW rule with a bad CIDR entirely",
    policies: [allowA("p", from({ ipBlocks: ["10.1.0.0/16", "10.1.0.0/99"] }))],
    expect: { allow: false },
  },
  {
    name: "authorize() keeps the valid CIDRs of a DENY rule with a bad one",
    policies: [denyA("d", from({ ipBlocks: ["not-an-ip", "10.1.0.0/16"] }))],
    expect: { allow: false, policy: n("d") },
  },
  {
    name: "authorize() drops a DENY field whose values are all invalid",
    policies: [denyA("d", { ...from({ ipBlocks: ["nope"] }), ...to({ methods: ["GET"] }) })],
    expect: { allow: false, policy: n("d") },
  },
];

const attachmentCases: Case[] = [
  {
    name: "authorize() applies a Gateway-attached policy to every service",
    policies: [ap("gw", { ...TO_GATEWAY, action: "DENY", rules: [{}] })],
    request: { target: { kind: "Service", namespace: "mesh", name: "b" } },
    expect: { allow: false, policy: n("gw") },
  },
  {
    name: "authorize() applies a GatewayClass istio-waypoint policy from the root namespace",
    policies: [denyAllAt("root", WAYPOINT_CLASS, "istio-system")],
    expect: { allow: false, policy: "ns[istio-system]-policy[root]-rule[0]" },
  },
  {
    name: "authorize() ignores a GatewayClass policy outside the root namespace",
    policies: [denyAllAt("not-root", WAYPOINT_CLASS)],
    expect: { allow: true },
  },
  {
    name: "authorize() applies a Service-attached policy only to that service",
    policies: [denyA("only-a", {})],
    request: { target: { kind: "Service", namespace: "mesh", name: "b" } },
    expect: { allow: true },
  },
  {
    name: "authorize() reads a Service targetRef in the policy's own namespace",
    policies: [ap("elsewhere", { ...TO_A, action: "DENY", rules: [{}] }, "other")],
    expect: { allow: true },
  },
  {
    name: "authorize() ignores selector policies",
    policies: [ap("sel", { selector: { matchLabels: { app: "a" } }, action: "DENY", rules: [{}] })],
    expect: { allow: true },
  },
  {
    name: "authorize() ignores the Gateway of another waypoint",
    policies: [
      denyAllAt("other-gw", [{
        kind: "Gateway",
        group: "gateway.networking.k8s.io",
        name: "other-waypoint",
      }]),
    ],
    expect: { allow: true },
  },
  {
    name: "authorize() applies a ServiceEntry-attached policy",
    policies: [
      denyAllAt("se", [{ kind: "ServiceEntry", group: "networking.istio.io", name: "ext" }]),
    ],
    request: {
      target: { kind: "ServiceEntry", namespace: "mesh", name: "ext" },
      destinationIp: "240.0.0.1",
    },
    expect: { allow: false, policy: n("se") },
  },
  {
    name: "authorize() does not apply a Service targetRef to a ServiceEntry of that name",
    policies: [
      ap("svc", { targetRefs: [{ kind: "Service", name: "ext" }], action: "DENY", rules: [{}] }),
    ],
    request: { target: { kind: "ServiceEntry", namespace: "mesh", name: "ext" } },
    expect: { allow: true },
  },
  {
    name: "authorize() applies only Gateway policies to workload-addressed traffic",
    policies: [
      denyA("svc", {}),
      ap("gw", { ...TO_GATEWAY, rules: [from({ namespaces: ["mesh"] })] }),
    ],
    request: { target: { kind: "workload" }, destinationIp: "10.1.0.9" },
    expect: { allow: true, policy: n("gw") },
  },
  {
    name: "authorize() reads the deprecated targetRef",
    policies: [
      ap("single", {
        targetRef: { kind: "Service", group: "", name: "a" },
        action: "DENY",
        rules: [{}],
      }),
    ],
    expect: { allow: false, policy: n("single") },
  },
];

runCases([...evaluationCases, ...tcpAndInvalidCases, ...attachmentCases]);

Deno.test("authorize() answers a denial with Istio's RBAC body and gRPC status", () => {
  const { policies } = compileAuthz([denyA("deny-all", {})]);
  assert.deepEqual(authorize(policies, request()), {
    allow: false,
    status: 403,
    body: "RBAC: access denied",
    grpcStatus: 7,
    grpcMessage: "PERMISSION_DENIED",
    policy: "ns[mesh]-policy[deny-all]-rule[0]",
    details: "rbac_access_denied_matched_policy[ns[mesh]-policy[deny-all]-rule[0]]",
  });
});

Deno.test("authorize() returns the same decision object for repeated plain outcomes", () => {
  const { policies } = compileAuthz([allowA("p", to({ methods: ["GET"] }))]);
  assert.equal(authorize(policies, request()), authorize(policies, request()));
  assert.equal(
    authorize(policies, request({ method: "PUT" })),
    authorize(policies, request({ method: "PUT" })),
  );
});

Deno.test("customChecks() names the providers to ask before authentication", () => {
  const { policies } = compileAuthz([custom("ext", "opa", [to({ paths: ["/admin*"] })])]);
  assert.deepEqual(customChecks(policies, request({ path: "/admin/./x" })), [
    { provider: "opa", policy: n("ext") },
  ]);
  assert.deepEqual(customChecks(policies, request({ path: "/public" })), []);
});

Deno.test("customChecks() denies for a provider the mesh does not define", () => {
  const { policies } = compileAuthz([custom("ext", "nope")], { extensionProviders: ["opa"] });
  const result = customChecks(policies, request());
  assert.ok(!Array.isArray(result) && "status" in result);
  assert.equal(result.status, 403);
});
