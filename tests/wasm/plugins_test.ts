import assert from "node:assert/strict";
import { parseConfigText, type Problem } from "../../mesh/mod.ts";
import type { PolicyTarget } from "../../policy/mod.ts";
import { compileWasmPlugins, EMPTY_WASM_PLUGINS } from "../../wasm/plugins.ts";
import type { WasmPhase } from "../../wasm/spec.ts";
import { policyContext } from "../policy/_fixtures.ts";

const GATEWAY = { group: "gateway.networking.k8s.io", kind: "Gateway", name: "waypoint" };
const CLASS = { group: "gateway.networking.k8s.io", kind: "GatewayClass", name: "istio-waypoint" };
const SERVICE_A = { kind: "Service", group: "", name: "a" };
const TO_A: PolicyTarget = { kind: "Service", namespace: "mesh", name: "a" };
const TO_B: PolicyTarget = { kind: "Service", namespace: "mesh", name: "b" };
const TO_C: PolicyTarget = { kind: "Service", namespace: "other", name: "c" };
const WORKLOAD: PolicyTarget = { kind: "workload" };
const DIGEST = "a".repeat(64);

function plugin(
  name: string,
  spec: Record<string, unknown>,
  namespace = "mesh",
  metadata: Record<string, unknown> = {},
): string {
  return `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: ${JSON.stringify({ name, namespace, ...metadata })}
spec: ${JSON.stringify({ url: `oci://reg.example/${name}:v1`, ...spec })}`;
}

function compile(docs: string[], env: Record<string, string> = {}) {
  const { documents, problems: parse } = parseConfigText(docs.join("\n---\n"), "wasm.yaml");
  assert.deepEqual(parse, []);
  return compileWasmPlugins(documents, { ...policyContext(), env });
}

function names(docs: string[], target: PolicyTarget, phase: WasmPhase = "UNSPECIFIED_PHASE") {
  return compile(docs).plugins.pluginsFor(target, phase).map((p) => p.ref);
}

function messages(problems: Problem[]): string[] {
  return problems.map((p) => `${p.severity} ${p.where} ${p.resource}: ${p.message}`);
}

Deno.test("compileWasmPlugins() attaches by Gateway, GatewayClass and Service like policies", () => {
  const docs = [
    plugin("wide", { targetRefs: [GATEWAY] }),
    plugin("mesh-class", { targetRefs: [CLASS] }, "istio-system"),
    plugin("only-a", { targetRefs: [SERVICE_A] }),
    plugin("other-gw", { targetRefs: [{ ...GATEWAY, name: "someone-else" }] }),
  ];
  // Same priority (unset): our namespace first, then by name; the root namespace after.
  assert.deepEqual(names(docs, TO_A), ["mesh/only-a", "mesh/wide", "istio-system/mesh-class"]);
  assert.deepEqual(names(docs, TO_B), ["mesh/wide", "istio-system/mesh-class"]);
  assert.deepEqual(names(docs, WORKLOAD), ["mesh/wide", "istio-system/mesh-class"]);
});

Deno.test("compileWasmPlugins() takes a GatewayClass ref only from the root namespace", () => {
  const { plugins, problems } = compile([plugin("class", { targetRefs: [CLASS] })]);
  assert.deepEqual(plugins.all, []);
  assert.match(messages(problems).join("\n"), /warning wasm.yaml:1 WasmPlugin mesh\/class: .*root/);
});

Deno.test("compileWasmPlugins() ignores selector plugins with a warning", () => {
  const { plugins, problems } = compile([
    plugin("sidecar", { selector: { matchLabels: { app: "a" } } }),
    plugin("nothing", {}),
  ]);
  assert.deepEqual(plugins.all, []);
  assert.deepEqual(messages(problems), [
    "warning wasm.yaml:1 WasmPlugin mesh/sidecar: Not attached: spec.selector is ignored by waypoints (it selects sidecars and gateways)",
    "warning wasm.yaml:6 WasmPlugin mesh/nothing: Not attached: no spec.targetRefs: a waypoint only runs plugins that target its Gateway, GatewayClass or a Service",
  ]);
});

Deno.test("pluginsFor() orders by priority, unset last, then namespace, time and name", () => {
  const at = (t: string) => ({ creationTimestamp: t });
  const docs = [
    plugin("unset", { targetRefs: [GATEWAY] }),
    plugin("low", { targetRefs: [GATEWAY], priority: -100 }),
    plugin("svc-c", { targetRefs: [{ kind: "Service", name: "c" }], priority: 10 }, "other"),
    plugin("root", { targetRefs: [CLASS], priority: 10 }, "istio-system"),
    plugin("late", { targetRefs: [GATEWAY], priority: 10 }, "mesh", at("2024-02-01T00:00:00Z")),
    plugin("early", { targetRefs: [GATEWAY], priority: 10 }, "mesh", at("2024-01-01T00:00:00Z")),
    plugin("high", { targetRefs: [GATEWAY], priority: 1000 }),
  ];
  assert.deepEqual(names(docs, TO_C), [
    "mesh/high",
    "mesh/early",
    "mesh/late",
    "istio-system/root",
    "other/svc-c",
    "mesh/low",
    "mesh/unset",
  ]);
});

Deno.test("pluginsFor() keeps phases apart", () => {
  const docs = [
    plugin("authn", { targetRefs: [GATEWAY], phase: "AUTHN" }),
    plugin("authz", { targetRefs: [GATEWAY], phase: "AUTHZ" }),
    plugin("stats", { targetRefs: [GATEWAY], phase: "STATS" }),
    plugin("plain", { targetRefs: [GATEWAY] }),
  ];
  const { plugins } = compile(docs);
  const phases: WasmPhase[] = ["AUTHN", "AUTHZ", "STATS", "UNSPECIFIED_PHASE"];
  assert.deepEqual(
    phases.map((phase) => plugins.pluginsFor(TO_A, phase).map((p) => p.ref)),
    [["mesh/authn"], ["mesh/authz"], ["mesh/stats"], ["mesh/plain"]],
  );
  assert.equal(plugins.pluginsFor(TO_A, "AUTHN"), plugins.pluginsFor(TO_A, "AUTHN"));
  assert.deepEqual(EMPTY_WASM_PLUGINS.pluginsFor(TO_A, "AUTHN"), []);
});

Deno.test("compileWasmPlugins() fills Istio's defaults", () => {
  const { plugins, problems } = compile([
    plugin("d", { targetRefs: [GATEWAY], url: "reg.example/d:latest" }),
  ]);
  assert.deepEqual(problems, []);
  const [spec] = plugins.all;
  assert.equal(spec.name, "mesh.d");
  assert.equal(spec.rootId, "");
  assert.equal(spec.phase, "UNSPECIFIED_PHASE");
  assert.equal(spec.priority, undefined);
  assert.equal(spec.failStrategy, "FAIL_CLOSE");
  assert.equal(spec.pluginConfig, "");
  assert.deepEqual(spec.env, {});
  assert.equal(spec.source.url, "oci://reg.example/d:latest");
  assert.equal(spec.source.pullPolicy, "Always");
  assert.match(spec.source.revision, /^[0-9a-f]{16}$/);
});

Deno.test("compileWasmPlugins() reads every field", () => {
  const { plugins, problems } = compile([
    plugin(
      "full",
      {
        targetRefs: [SERVICE_A],
        url: `oci://reg.example/full@sha256:${DIGEST}`,
        sha256: DIGEST,
        pluginName: "headers",
        phase: "AUTHZ",
        priority: 7,
        failStrategy: "FAIL_OPEN",
        imagePullPolicy: "Always",
        pluginConfig: { request: "hello", nested: { n: 1 } },
        vmConfig: {
          env: [
            { name: "A", value: "inline" },
            { name: "HOME_DIR", valueFrom: "HOST" },
            { name: "ABSENT", valueFrom: "HOST" },
          ],
        },
        match: [{ mode: "SERVER" }],
      },
      "mesh",
      { resourceVersion: "42" },
    ),
  ]);
  assert.deepEqual(problems, []);
  const [spec] = plugins.all;
  assert.equal(spec.rootId, "headers");
  assert.equal(spec.phase, "AUTHZ");
  assert.equal(spec.priority, 7);
  assert.equal(spec.failStrategy, "FAIL_OPEN");
  assert.equal(spec.pluginConfig, '{"request":"hello","nested":{"n":1}}');
  assert.equal(spec.source.sha256, DIGEST);
  assert.equal(spec.source.pullPolicy, "Always");
  assert.equal(spec.source.revision, "42");
  const withEnv = compile([plugin("e", {
    targetRefs: [GATEWAY],
    vmConfig: {
      env: [{ name: "HOME_DIR", valueFrom: "HOST" }, { name: "NOPE", valueFrom: "HOST" }],
    },
  })], { HOME_DIR: "/home/w" });
  assert.deepEqual(withEnv.plugins.all[0].env, { HOME_DIR: "/home/w" });
});

Deno.test("compileWasmPlugins() gives equal VM keys to equal modules and configs only", () => {
  const { plugins } = compile([
    plugin("one", { targetRefs: [GATEWAY], url: "oci://reg.example/m:v1", pluginConfig: { a: 1 } }),
    plugin("two", { targetRefs: [GATEWAY], url: "oci://reg.example/m:v1", pluginConfig: { a: 1 } }),
    plugin("three", {
      targetRefs: [GATEWAY],
      url: "oci://reg.example/m:v1",
      pluginConfig: { a: 2 },
    }),
  ]);
  const [one, two, three] = plugins.all;
  assert.equal(one.vmKey, two.vmKey);
  assert.notEqual(one.vmKey, three.vmKey);
});

Deno.test("compileWasmPlugins() keeps IfNotPresent for tags other than latest and for http", () => {
  const { plugins } = compile([
    plugin("tag", { targetRefs: [GATEWAY], url: "oci://reg.example/m:v2" }),
    plugin("web", { targetRefs: [GATEWAY], url: "https://files.example/latest" }),
  ]);
  assert.deepEqual(plugins.all.map((p) => p.source.pullPolicy), ["IfNotPresent", "IfNotPresent"]);
});

interface RefusalCase {
  name: string;
  spec: Record<string, unknown>;
  expect: string;
}

const REFUSALS: RefusalCase[] = [
  {
    name: "type NETWORK",
    spec: { type: "NETWORK" },
    expect: "error: Unsupported: spec.type NETWORK (an L4 filter) cannot run in this waypoint",
  },
  {
    name: "a short sha256",
    spec: { sha256: "abc" },
    expect: 'error: Invalid value: spec.sha256 "abc" is not 64 lowercase hex digits',
  },
  {
    name: "a sha256 other than the url digest",
    spec: { url: `reg.example/m@sha256:${DIGEST}`, sha256: "b".repeat(64) },
    expect: "error: Invalid value: spec.sha256 bbbb",
  },
  {
    name: "an ftp url",
    spec: { url: "ftp://files.example/m.wasm" },
    expect: "error: Invalid value: spec.url scheme ftp (want oci, file, http or https)",
  },
  {
    name: "match on ports",
    spec: { match: [{ ports: [{ number: 8080 }] }] },
    expect: "warning: Never matches: spec.match[0].ports never match on a waypoint",
  },
  {
    name: "match mode CLIENT",
    spec: { match: [{ mode: "CLIENT" }] },
    expect: "warning: Never matches: spec.match[0].mode CLIENT does not apply on a waypoint",
  },
  {
    name: "a HOST env entry with a value",
    spec: { vmConfig: { env: [{ name: "X", valueFrom: "HOST", value: "v" }] } },
    expect: "error: Invalid value: spec.vmConfig.env[0].value is only allowed with INLINE",
  },
  {
    name: "a priority that is not an integer",
    spec: { priority: 1.5 },
    expect:
      "error: Wrong type: spec.priority is 1.5 (want a 32-bit integer); the policy is skipped",
  },
  {
    name: "an unknown phase",
    spec: { phase: "LATE" },
    expect: 'error: Invalid value: spec.phase is "LATE" (want one of UNSPECIFIED_PHASE',
  },
];

for (const c of REFUSALS) {
  Deno.test(`compileWasmPlugins() refuses ${c.name}`, () => {
    const { plugins, problems } = compile([plugin("p", { targetRefs: [GATEWAY], ...c.spec })]);
    assert.deepEqual(plugins.all, []);
    const text = problems.map((p) => `${p.severity}: ${p.message}`).join("\n");
    assert.ok(text.includes(c.expect), `want ${c.expect}\ngot ${text}`);
  });
}

Deno.test("compileWasmPlugins() keeps a plugin when one match selector can apply", () => {
  const { plugins, problems } = compile([
    plugin("p", { targetRefs: [GATEWAY], match: [{ mode: "CLIENT" }, { mode: "SERVER" }] }),
  ]);
  assert.equal(plugins.all.length, 1);
  assert.equal(problems.length, 1);
  assert.equal(problems[0].severity, "warning");
});

const SECRET = (type: string, config: unknown) =>
  `apiVersion: v1
kind: Secret
metadata: { name: pull, namespace: mesh }
type: ${type}
data: { .dockerconfigjson: ${btoa(JSON.stringify(config))} }`;

Deno.test("compileWasmPlugins() resolves imagePullSecret from a dockerconfigjson Secret", () => {
  const config = {
    auths: {
      "127.0.21.1:5000": { username: "u", password: "p", auth: btoa("u:p") },
      "https://index.docker.io/v1/": { auth: btoa("x:y") },
    },
  };
  const { plugins, problems } = compile([
    SECRET("kubernetes.io/dockerconfigjson", config),
    plugin("p", { targetRefs: [GATEWAY], imagePullSecret: "pull" }),
  ]);
  assert.deepEqual(problems, []);
  assert.deepEqual(plugins.all[0].source.auth, [
    { registry: "127.0.21.1:5000", username: "u", password: "p", auth: btoa("u:p") },
    { registry: "index.docker.io", auth: btoa("x:y") },
  ]);
});

Deno.test("compileWasmPlugins() pulls without credentials when the Secret is unusable", () => {
  const cases: [string[], RegExp][] = [
    [[], /Secret not found: spec.imagePullSecret names mesh\/pull/],
    [
      [SECRET("Opaque", {})],
      /Wrong Secret type: mesh\/pull is not kubernetes.io\/dockerconfigjson/,
    ],
    [[SECRET("kubernetes.io/dockerconfigjson", [])], /Invalid Secret: mesh\/pull/],
  ];
  for (const [secrets, expect] of cases) {
    const { plugins, problems } = compile([
      ...secrets,
      plugin("p", { targetRefs: [GATEWAY], imagePullSecret: "pull" }),
    ]);
    assert.equal(plugins.all.length, 1);
    assert.equal(plugins.all[0].source.auth, undefined);
    assert.match(messages(problems).join("\n"), expect);
  }
});

Deno.test("compileWasmPlugins() reports duplicates and unknown fields with file:line", () => {
  const { plugins, problems } = compile([
    plugin("p", { targetRefs: [GATEWAY], extra: true }),
    plugin("p", { targetRefs: [GATEWAY] }),
  ]);
  assert.equal(plugins.all.length, 1);
  assert.deepEqual(messages(problems), [
    "error wasm.yaml:6 WasmPlugin mesh/p: Duplicate resource: WasmPlugin mesh/p is defined twice; this one is skipped",
    "warning wasm.yaml:1 WasmPlugin mesh/p: Unknown field: spec.extra is ignored",
  ]);
});
