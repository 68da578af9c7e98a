import assert from "node:assert/strict";
import type { Problem } from "../../mesh/mod.ts";
import { authorize } from "../../policy/mod.ts";
import { authzPolicy as ap, compileAuthz, request, TO_A } from "./_fixtures.ts";

interface ProblemCase {
  name: string;
  docs: string[];
  /** Each expected problem as `severity where: piece of the message`. */
  expect: string[];
}

const TO_MESH_CLASS = {
  targetRefs: [{
    kind: "GatewayClass",
    group: "gateway.networking.k8s.io",
    name: "istio-waypoint",
  }],
};
const filler = ap("fine", { ...TO_A, rules: [{}] });

const problemCases: ProblemCase[] = [
  {
    name: "compileAuthorizationPolicies() reports nothing for a valid policy",
    docs: [filler],
    expect: [],
  },
  {
    name: "compileAuthorizationPolicies() rejects an unknown action with its file and line",
    docs: [filler, ap("bad", { ...TO_A, action: "PERMIT", rules: [{}] })],
    expect: ['error policies.yaml:7: Invalid value: spec.action is "PERMIT"'],
  },
  {
    name: "compileAuthorizationPolicies() rejects a policy whose rules are not a list",
    docs: [ap("bad", { ...TO_A, rules: "all" })],
    expect: [
      'error policies.yaml:2: Wrong type: spec.rules is "all" (want a list); the policy is skipped',
    ],
  },
  {
    name: "compileAuthorizationPolicies() reports a bad CIDR as Istio's webhook words it",
    docs: [ap("cidr", { ...TO_A, rules: [{ from: [{ source: { ipBlocks: ["10.0.0.0/33"] } }] }] })],
    expect: [
      "error policies.yaml:2: Invalid policy: bad CIDR range (10.0.0.0/33)",
      "warning policies.yaml:2: Rule skipped: ns[mesh]-policy[cidr]-rule[0]: invalid CIDR 10.0.0.0/33 (it allows nothing)",
    ],
  },
  {
    name: "compileAuthorizationPolicies() reports an unknown when key and the rule it drops",
    docs: [
      ap("key", {
        ...TO_A,
        action: "DENY",
        rules: [{ when: [{ key: "destination.name", values: ["a"] }] }],
      }),
    ],
    expect: [
      "error policies.yaml:2: Invalid policy: invalid `value` for `key` destination.name: unknown attribute",
      "warning policies.yaml:2: Rule skipped: ns[mesh]-policy[key]-rule[0]: unknown attribute destination.name (it never matches)",
    ],
  },
  {
    name:
      "compileAuthorizationPolicies() warns that a DENY rule with only HTTP fields denies all TCP",
    docs: [
      ap("deny-get", {
        ...TO_A,
        action: "DENY",
        rules: [{ to: [{ operation: { methods: ["GET"] } }] }],
      }),
    ],
    expect: [
      "warning policies.yaml:2: configured AuthorizationPolicy will deny all traffic to TCP ports",
    ],
  },
  {
    name:
      "compileAuthorizationPolicies() warns about an ALLOW rule skipped on a service's TCP port",
    docs: [ap("get", { ...TO_A, rules: [{ to: [{ operation: { methods: ["GET"] } }] }] })],
    expect: [
      'warning policies.yaml:2: Rule skipped on TCP ports: ns[mesh]-policy[get]-rule[0]: "methods" is HTTP only',
    ],
  },
  {
    name: "compileAuthorizationPolicies() does not warn about TCP for a service without TCP ports",
    docs: [
      ap("get", {
        targetRefs: [{ kind: "Service", name: "b" }],
        rules: [{ to: [{ operation: { methods: ["GET"] } }] }],
      }),
    ],
    expect: [],
  },
  {
    name:
      "compileAuthorizationPolicies() warns about a GatewayClass ref outside the root namespace",
    docs: [ap("class", { ...TO_MESH_CLASS, rules: [{}] })],
    expect: [
      "warning policies.yaml:2: Invalid target: spec.targetRefs[0] names a GatewayClass, which needs the policy in the root namespace istio-system",
    ],
  },
  {
    name: "compileAuthorizationPolicies() warns about a Service that is not in the config",
    docs: [ap("ghost", { targetRefs: [{ kind: "Service", name: "ghost" }], rules: [{}] })],
    expect: [
      "warning policies.yaml:2: Target not found: spec.targetRefs[0] names Service mesh/ghost",
    ],
  },
  {
    name: "compileAuthorizationPolicies() says nothing about a selector policy",
    docs: [ap("sel", { selector: { matchLabels: { app: "a" } }, rules: [{}] })],
    expect: [],
  },
  {
    name: "compileAuthorizationPolicies() reports a selector beside targetRefs",
    docs: [ap("both", { ...TO_A, selector: { matchLabels: { app: "a" } }, rules: [{}] })],
    expect: [
      "error policies.yaml:2: Invalid policy: only one of targetRefs or workloadSelector can be set",
    ],
  },
  {
    name: "compileAuthorizationPolicies() reports a targetRef with a namespace",
    docs: [
      ap("ns", { targetRefs: [{ kind: "Service", name: "a", namespace: "mesh" }], rules: [{}] }),
    ],
    expect: ["error policies.yaml:2: Invalid policy: spec.targetRefs[0].namespace must not be set"],
  },
  {
    name: "compileAuthorizationPolicies() reports a targetRef of a kind policies cannot target",
    docs: [
      ap("route", {
        targetRefs: [{ kind: "HTTPRoute", group: "gateway.networking.k8s.io", name: "r" }],
        rules: [{}],
      }),
    ],
    expect: [
      "error policies.yaml:2: Invalid policy: spec.targetRefs[0] must be a Service, ServiceEntry, Gateway or GatewayClass",
    ],
  },
  {
    name: "compileAuthorizationPolicies() reports CUSTOM without a provider",
    docs: [ap("custom", { ...TO_A, action: "CUSTOM", rules: [{}] })],
    expect: ["error policies.yaml:2: Invalid policy: `provider.name` must not be empty"],
  },
  {
    name: "compileAuthorizationPolicies() reports a provider on an ALLOW policy",
    docs: [ap("allow-ext", { ...TO_A, provider: { name: "opa" }, rules: [{}] })],
    expect: [
      "error policies.yaml:2: Invalid policy: `provider` must not be with non CUSTOM action, found ALLOW",
    ],
  },
  {
    name: "compileAuthorizationPolicies() reports principals in a CUSTOM policy",
    docs: [
      ap("custom", {
        ...TO_A,
        action: "CUSTOM",
        provider: { name: "opa" },
        rules: [{ from: [{ source: { principals: ["x"] } }] }],
      }),
    ],
    expect: [
      "error policies.yaml:2: Invalid policy: spec.rules[0].from[0].source.principals is currently not supported with CUSTOM action",
    ],
  },
  {
    name: "compileAuthorizationPolicies() reports DENY without rules",
    docs: [ap("deny", { ...TO_A, action: "DENY" })],
    expect: ["error policies.yaml:2: Invalid policy: DENY action without `rules` is meaningless"],
  },
  {
    name: "compileAuthorizationPolicies() reports an empty source",
    docs: [ap("empty", { ...TO_A, rules: [{ from: [{ source: {} }] }] })],
    expect: [
      "error policies.yaml:2: Invalid policy: `from.source` must not be empty, found at rule 0",
    ],
  },
  {
    name: "compileAuthorizationPolicies() reports serviceAccounts beside principals",
    docs: [
      ap("mix", {
        ...TO_A,
        rules: [{ from: [{ source: { principals: ["a"], serviceAccounts: ["b"] } }] }],
      }),
    ],
    expect: [
      "error policies.yaml:2: Invalid policy: cannot set serviceAccounts with namespaces or principals, found at rule 0",
    ],
  },
  {
    name: "compileAuthorizationPolicies() reports an invalid path template",
    docs: [ap("tpl", { ...TO_A, rules: [{ to: [{ operation: { paths: ["/a/{**}/b/{*}"] } }] }] })],
    expect: [
      "error policies.yaml:2: Invalid policy: invalid or unsupported path /a/{**}/b/{*}, found in paths: {**} is not the last operator",
      "warning policies.yaml:2: Rule skipped: ns[mesh]-policy[tpl]-rule[0]",
    ],
  },
  {
    name: "compileAuthorizationPolicies() reports a when entry without values",
    docs: [ap("when", { ...TO_A, rules: [{ when: [{ key: "source.ip" }] }] })],
    expect: [
      "error policies.yaml:2: Invalid policy: at least one of `values` or `notValues` must be set for key source.ip",
    ],
  },
  {
    name: "compileAuthorizationPolicies() warns about an unknown field",
    docs: [ap("typo", { ...TO_A, rules: [{ from: [{ source: { principal: ["x"] } }] }] })],
    expect: [
      "warning policies.yaml:2: Unknown field: spec.rules[0].from[0].source.principal is ignored",
      "error policies.yaml:2: Invalid policy: `from.source` must not be empty",
    ],
  },
  {
    name: "compileAuthorizationPolicies() reads numeric ports with a warning",
    docs: [ap("num", { ...TO_A, rules: [{ to: [{ operation: { ports: [80] } }] }] })],
    expect: [
      "warning policies.yaml:2: Number for a string: spec.rules[0].to[0].operation.ports[0] is 80",
    ],
  },
  {
    name: "compileAuthorizationPolicies() keeps the first of two policies with one name",
    docs: [filler, filler],
    expect: [
      "error policies.yaml:7: Duplicate resource: AuthorizationPolicy mesh/fine is defined twice",
    ],
  },
  {
    name: "compileAuthorizationPolicies() skips a policy without a name",
    docs: [
      `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { namespace: mesh }\nspec: {}`,
    ],
    expect: ["error policies.yaml:2: Missing field: metadata.name"],
  },
];

for (const c of problemCases) {
  Deno.test(c.name, () => {
    const { problems } = compileAuthz(c.docs);
    const got = problems.map(show);
    assert.equal(got.length, c.expect.length, got.join("\n"));
    for (const piece of c.expect) {
      assert.ok(got.some((g) => g.startsWith(piece)), `missing "${piece}" in\n${got.join("\n")}`);
    }
  });
}

function show(p: Problem): string {
  return `${p.severity} ${p.where}: ${p.message}`;
}

Deno.test("compileAuthorizationPolicies() names the resource in every problem of a policy", () => {
  const { problems } = compileAuthz([
    ap("cidr", { ...TO_A, rules: [{ from: [{ source: { ipBlocks: ["x"] } }] }] }),
  ]);
  assert.ok(problems.length > 0);
  for (const p of problems) assert.equal(p.resource, "AuthorizationPolicy mesh/cidr");
});

Deno.test("compileAuthorizationPolicies() skips a policy the schema rejects, so it never denies", () => {
  const { policies } = compileAuthz([ap("bad", { ...TO_A, action: "DENY", rules: [{ to: "x" }] })]);
  assert.equal(authorize(policies, request()).allow, true);
  assert.equal(policies.count, 0);
});

Deno.test("compileAuthorizationPolicies() counts the policies that attach to this waypoint", () => {
  const { policies } = compileAuthz([
    filler,
    ap("gw-other", {
      targetRefs: [{ kind: "Gateway", group: "gateway.networking.k8s.io", name: "x" }],
      rules: [{}],
    }),
    ap("sel", { selector: { matchLabels: { app: "a" } }, rules: [{}] }),
  ]);
  assert.equal(policies.count, 1);
});

Deno.test("compileAuthorizationPolicies() accepts security.istio.io/v1beta1 and ignores other kinds", () => {
  const beta = ap("beta", { ...TO_A, action: "DENY", rules: [{}] }).replace(
    "security.istio.io/v1",
    "security.istio.io/v1beta1",
  );
  const other = `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x, namespace: mesh }\ndata: {}`;
  const { policies, problems } = compileAuthz([beta, other]);
  assert.deepEqual(problems, []);
  assert.equal(authorize(policies, request()).allow, false);
});
