import assert from "node:assert/strict";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { parseConfigText } from "../../mesh/mod.ts";
import type { JwksSource } from "../../policy/mod.ts";
import {
  type CheckCase,
  checkCase,
  type CheckResult,
  DEV_ISSUER,
  devJwks,
  signDevToken,
} from "../../proxy/check.ts";
import { buildConfig, parseMeshConfig } from "../../proxy/mod.ts";
import * as k8s from "../fixtures/mesh/builders.ts";

const USE = { "istio.io/use-waypoint": "waypoint" };
const TO_REVIEWS = { targetRefs: [{ kind: "Service", group: "", name: "reviews" }] };
const TO_RATINGS = { targetRefs: [{ kind: "Service", group: "", name: "ratings" }] };

const policy = (kind: string, name: string, spec: unknown) =>
  `apiVersion: security.istio.io/v1
kind: ${kind}
metadata: { name: ${name}, namespace: mesh }
spec: ${JSON.stringify(spec)}`;

const port = (name: string, number: number) => ({ name, port: number, targetPort: number });

/**
 * Service `mesh/reviews` (http 9080 with HTTPRoute `reviews-split`, tcp 9000) over two versions,
 * Service `mesh/ratings` (http 80) behind a CUSTOM policy, all bound to `mesh/waypoint`.
 */
const YAML = k8s.yamlDocs(
  k8s.gateway(),
  k8s.namespace("mesh", USE),
  k8s.service("mesh", "reviews", "10.0.0.5", {
    ports: [port("http", 9080), port("tcp-db", 9000)],
  }),
  k8s.service("mesh", "reviews-v1", "10.0.0.6", {
    selector: { app: "reviews", version: "v1" },
    ports: [port("http", 9080)],
  }),
  k8s.service("mesh", "reviews-v2", "10.0.0.7", {
    selector: { app: "reviews", version: "v2" },
    ports: [port("http", 9080)],
  }),
  k8s.service("mesh", "ratings", "10.0.0.8"),
  k8s.pod("mesh", "reviews-v1", "10.1.0.1", { labels: { app: "reviews", version: "v1" } }),
  k8s.pod("mesh", "reviews-v2", "10.1.0.2", { labels: { app: "reviews", version: "v2" } }),
  k8s.pod("mesh", "ratings", "10.1.0.3", { labels: { app: "ratings" } }),
  `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: reviews-split, namespace: mesh }
spec:
  parentRefs: [{ group: "", kind: Service, name: reviews, port: 9080 }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /v2 } }]
      backendRefs: [{ name: reviews-v2, port: 9080 }]
    - backendRefs:
        - { name: reviews-v1, port: 9080, weight: 90 }
        - { name: reviews-v2, port: 9080, weight: 10 }`,
  policy("RequestAuthentication", "reviews-jwt", {
    ...TO_REVIEWS,
    jwtRules: [{ issuer: DEV_ISSUER, jwks: JSON.stringify(devJwks()) }],
  }),
  policy("AuthorizationPolicy", "allow-reads", {
    ...TO_REVIEWS,
    action: "ALLOW",
    rules: [
      { from: [{ source: { namespaces: ["mesh"] } }], to: [{ operation: { methods: ["GET"] } }] },
      { when: [{ key: "request.auth.claims[role]", values: ["admin"] }] },
      { from: [{ source: { namespaces: ["mesh"] } }], to: [{ operation: { ports: ["9000"] } }] },
    ],
  }),
  policy("AuthorizationPolicy", "deny-admin", {
    ...TO_REVIEWS,
    action: "DENY",
    rules: [{ to: [{ operation: { ports: ["9080"], paths: ["/admin"] } }] }],
  }),
  policy("AuthorizationPolicy", "ext", {
    ...TO_RATINGS,
    action: "CUSTOM",
    provider: { name: "opa" },
    rules: [{ to: [{ operation: { paths: ["/private/*"] } }] }],
  }),
);

const MESH_CONFIG = parseMeshConfig(
  `extensionProviders:
  - name: opa
    envoyExtAuthzHttp: { service: opa.mesh.svc.cluster.local, port: 8000 }`,
  "mesh-config.yaml",
);

function config() {
  const { documents, problems } = parseConfigText(YAML, "check.yaml");
  assert.deepEqual(problems, []);
  const built = buildConfig(documents, 1, {
    ...k8s.WAYPOINT,
    trustDomain: "cluster.local",
    meshConfig: MESH_CONFIG,
  });
  const errors = built.problems.filter((p) => p.severity === "error");
  assert.deepEqual(errors, []);
  return built.snapshot;
}

const CONFIG = config();
const NO_KEYS: JwksSource = { keys: () => Promise.resolve(undefined) };
const FROM_MESH = { namespace: "mesh" };
const FROM_OTHER = { namespace: "other" };
const ADMIN_TOKEN = await signDevToken({ sub: "bob", role: "admin" }, Date.now());
/** The admin token with the signature of another token: parses, but does not verify. */
const FORGED_TOKEN = signedPart(ADMIN_TOKEN) + signature(await signDevToken({ sub: "eve" }, 0));
function signedPart(jwt: string): string {
  return jwt.slice(0, jwt.lastIndexOf("."));
}
function signature(jwt: string): string {
  return jwt.slice(jwt.lastIndexOf("."));
}
const REVIEWS_SPLIT = { kind: "HTTPRoute", namespace: "mesh", name: "reviews-split" };

interface Case {
  readonly name: string;
  readonly input: Omit<CheckCase, "name">;
  /** Fields of the result to compare; `undefined` asserts absence. */
  readonly want: Partial<CheckResult>;
}

const cases: Case[] = [
  {
    name: "checkCase() allows a mesh workload's GET and reports the weighted backend",
    input: { destination: "reviews.mesh:9080", source: FROM_MESH, expect: "allow" },
    want: {
      destination: "Service mesh/reviews:9080",
      protocol: "http",
      decision: "allow",
      status: undefined,
      policy: "ns[mesh]-policy[allow-reads]-rule[0]",
      route: { ...REVIEWS_SPLIT, rule: 1 },
      backend: "Service mesh/reviews-v1:9080",
      backends: [
        { backend: "Service mesh/reviews-v1:9080", weight: 90 },
        { backend: "Service mesh/reviews-v2:9080", weight: 10 },
      ],
      pass: true,
    },
  },
  {
    name: "checkCase() reports the route rule and single backend chosen by path",
    input: { destination: "10.0.0.5:9080", path: "/v2/books", source: FROM_MESH, expect: 200 },
    want: {
      decision: "allow",
      route: { ...REVIEWS_SPLIT, rule: 0 },
      backend: "Service mesh/reviews-v2:9080",
      backends: undefined,
      pass: true,
    },
  },
  {
    name: "checkCase() lets a DENY rule win over a matching ALLOW rule",
    input: { destination: "reviews.mesh:9080", path: "/admin", source: FROM_MESH },
    want: {
      decision: "deny",
      status: 403,
      policy: "ns[mesh]-policy[deny-admin]-rule[0]",
      route: undefined,
      backend: undefined,
      pass: true,
    },
  },
  {
    name: "checkCase() denies without a policy when no ALLOW rule matches",
    input: { destination: "reviews.mesh:9080", source: FROM_OTHER, expect: "allow" },
    want: {
      decision: "deny",
      status: 403,
      reason: "rbac_access_denied_matched_policy[none]",
      policy: undefined,
      pass: false,
    },
  },
  {
    name: "checkCase() answers 401 with the reason for a JWT that does not verify",
    input: { destination: "reviews.mesh:9080", jwt: FORGED_TOKEN, expect: 401 },
    want: {
      decision: "deny",
      status: 401,
      reason: "RequestAuthentication: Jwt verification fails",
      policy: undefined,
      pass: true,
    },
  },
  {
    name: "checkCase() matches request.auth.claims of claims signed with the dev key",
    input: {
      destination: "reviews.mesh:9080",
      method: "POST",
      claims: { sub: "bob", role: "admin" },
      source: FROM_OTHER,
      expect: "allow",
    },
    want: { decision: "allow", policy: "ns[mesh]-policy[allow-reads]-rule[1]", pass: true },
  },
  {
    name: "checkCase() accepts a compact token given as jwt",
    input: { destination: "reviews.mesh:9080", method: "PUT", jwt: ADMIN_TOKEN },
    want: { decision: "allow", policy: "ns[mesh]-policy[allow-reads]-rule[1]" },
  },
  {
    name: "checkCase() reports the CUSTOM provider it would ask, without asking",
    input: { destination: "ratings.mesh", path: "/private/x", expect: "allow" },
    want: {
      decision: "allow",
      custom: [{ provider: "opa", policy: "ns[mesh]-policy[ext]-rule[0]" }],
      backend: "Service mesh/ratings:80",
      pass: true,
    },
  },
  {
    name: "checkCase() asks no CUSTOM provider when no CUSTOM rule matches",
    input: { destination: "ratings.mesh", path: "/public" },
    want: { decision: "allow", custom: undefined, policy: undefined },
  },
  {
    name: "checkCase() authorizes a TCP port as a connection",
    input: { destination: "10.0.0.5:9000", source: FROM_MESH, expect: "allow" },
    want: {
      protocol: "tcp",
      decision: "allow",
      policy: "ns[mesh]-policy[allow-reads]-rule[2]",
      backend: "Service mesh/reviews:9000",
      pass: true,
    },
  },
  {
    name: "checkCase() refuses a TCP connection no ALLOW rule matches",
    input: { destination: "reviews.mesh:9000", source: FROM_OTHER, expect: "deny" },
    want: { protocol: "tcp", decision: "deny", status: undefined, policy: undefined, pass: true },
  },
  {
    name: "checkCase() reports an unknown host as an error with 404",
    input: { destination: "nope.mesh", expect: "deny" },
    want: {
      destination: "nope.mesh",
      decision: "error",
      status: 404,
      reason: 'no service is named by host "nope.mesh"',
      pass: false,
    },
  },
  {
    name: "checkCase() refuses to treat an HTTP port as TCP",
    input: { destination: "reviews.mesh:9080", protocol: "tcp", source: FROM_MESH },
    want: {
      decision: "error",
      reason: "Service mesh/reviews:9080 is a http port: the waypoint treats it as http",
    },
  },
  {
    name: "checkCase() fails a numeric expect that the answer does not meet",
    input: { destination: "reviews.mesh:9080", source: FROM_MESH, expect: 404 },
    want: { decision: "allow", pass: false },
  },
];

for (const t of cases) {
  Deno.test(t.name, async () => {
    const result = await checkCase(CONFIG, { name: t.name, ...t.input }, { keys: NO_KEYS });
    const seen = Object.fromEntries(
      Object.keys(t.want).map((k) => [k, result[k as keyof CheckResult]]),
    );
    assert.deepEqual(seen, t.want);
  });
}

Deno.test("checkCase() takes the source namespace as principal spiffe://<td>/ns/<ns>/sa/default", async () => {
  const principal = "spiffe://cluster.local/ns/mesh/sa/default";
  for (const source of [{ namespace: "mesh" }, { principal }, { principal: principal.slice(9) }]) {
    const r = await checkCase(CONFIG, { name: "x", destination: "reviews.mesh:9080", source }, {
      keys: NO_KEYS,
    });
    assert.equal(r.policy, "ns[mesh]-policy[allow-reads]-rule[0]", JSON.stringify(source));
  }
});

Deno.test("signDevToken() fills iss, iat and exp and drops null claims", async () => {
  const token = await signDevToken({ sub: "a", exp: null }, 1_700_000_000_000);
  const header = decodeProtectedHeader(token);
  const payload = decodeJwt(token);
  assert.deepEqual(header, { alg: "ES256", kid: "waypoint-check-dev", typ: "JWT" });
  assert.deepEqual(payload, { iss: DEV_ISSUER, iat: 1_700_000_000, sub: "a" });
});

Deno.test("devJwks() publishes the public key only", () => {
  const [key] = devJwks().keys;
  assert.equal(key.d, undefined);
  assert.equal(key.kid, "waypoint-check-dev");
});
