/**
 * The policy set of `http-policy`: 20 AuthorizationPolicies with 100 rules and one
 * RequestAuthentication, all targeting Service `bench/backend`, written as YAML next to the mesh.
 *
 * Design (so that a measured request costs the engine its worst allowed case):
 * - 17 ALLOW policies of 5 rules for a plausible set of callers (principals with and without
 *   wildcards, namespaces, `requestPrincipals`, paths with prefixes, suffixes and `{*}` / `{**}`
 *   templates, methods, hosts, ports, headers, `when` on `request.auth.claims[...]`,
 *   `source.namespace`, `destination.port`). Only the last rule in Envoy's order
 *   ({@link MATCHING_RULE}) matches the bench request; 16 of the others fail it on their last,
 *   costliest test (the `groups` claim), so every one of the 85 ALLOW rules is tried.
 * - 3 DENY policies of 5 rules that never match the bench request: all 15 are tried.
 * - Every rule that could allow the bench request needs `requestPrincipals: ["*"]` or a claim,
 *   so the same request without a token is denied 403 ("no ALLOW rule matched").
 * - The JWT is Istio's public test token (`samples/demo.jwt`, issuer `testing@secure.istio.io`,
 *   claim `foo: bar`, exp 2118) checked against its inline JWKS (`samples/jwks.json`), both read
 *   from `../shared/fixtures/jwt/` at run time and never copied into this repository.
 */
import { stringify } from "yaml";
import { IDS, NET } from "./_stack.ts";

/** The shared fixtures of Istio's public JWT test data (a sibling of the repository). */
const FIXTURES = new URL("../../shared/fixtures/jwt/samples/", import.meta.url);

/** What the load client sends, besides the token, and what the matching rule expects. */
export const BENCH_REQUEST = {
  method: "GET",
  /** One `{*}` segment under `/api/v1/items/`. */
  path: "/api/v1/items/42",
  /** Header the matching rule tests (`request.headers[x-tenant]`). */
  tenant: "bench",
} as const;

/** Envoy's name of the one ALLOW rule that matches the bench request: the last of 85. */
export const MATCHING_RULE = "ns[bench]-policy[allow-17-bench-client]-rule[4]";

/** Istio's public test token and its key set. */
export interface JwtFixture {
  /** `samples/demo.jwt`, trimmed. */
  readonly token: string;
  /** `samples/jwks.json`, as one line of JSON. */
  readonly jwks: string;
  readonly issuer: string;
}

/**
 * Reads the token and JWKS from the shared fixtures.
 *
 * @throws Error naming the folder when the fixtures are not there
 */
export async function readJwtFixture(): Promise<JwtFixture> {
  try {
    const token = (await Deno.readTextFile(new URL("demo.jwt", FIXTURES))).trim();
    const jwks = JSON.stringify(
      JSON.parse(await Deno.readTextFile(new URL("jwks.json", FIXTURES))),
    );
    return { token, jwks, issuer: "testing@secure.istio.io" };
  } catch (e) {
    throw new Error(
      `Istio's JWT test fixtures are missing under ${FIXTURES.pathname} ` +
        `(the shared fixtures, a sibling of the repository): ${e instanceof Error ? e.message : e}`,
    );
  }
}

type Rule = Record<string, unknown>;

const TARGET = [{ kind: "Service", group: "", name: "backend" }];
/** The bench client's principal as policies write it (no `spiffe://`). */
const CLIENT = IDS.client.replace(/^spiffe:\/\//, "");
const HTTP_PORT = `${NET.vipHttpPort}`;

/**
 * Areas of the API and the workload that owns each. The 17th policy is the bench client's; its
 * area's owner is another workload of namespace `bench`, so rules 0–3 miss the bench client too.
 */
const AREAS: readonly { area: string; ns: string; sa: string }[] = [
  { area: "items", ns: "frontend", sa: "web" },
  { area: "orders", ns: "checkout", sa: "cart" },
  { area: "payments", ns: "payments", sa: "ledger" },
  { area: "search", ns: "search", sa: "indexer" },
  { area: "reports", ns: "reporting", sa: "exporter" },
  { area: "users", ns: "accounts", sa: "auth" },
  { area: "carts", ns: "mobile", sa: "bff" },
  { area: "partners", ns: "partners", sa: "gateway" },
  { area: "invoices", ns: "billing", sa: "invoicer" },
  { area: "shipments", ns: "shipping", sa: "tracker" },
  { area: "reviews", ns: "reviews", sa: "moderator" },
  { area: "prices", ns: "pricing", sa: "engine" },
  { area: "catalog", ns: "catalog", sa: "sync" },
  { area: "inventory", ns: "warehouse", sa: "stock" },
  { area: "notifications", ns: "notify", sa: "mailer" },
  { area: "exports", ns: "analytics", sa: "etl" },
  { area: "items", ns: "bench", sa: "admin" },
];

/** Rules 0–3 of an ALLOW policy: none matches the bench request. */
function ownerRules(i: number, area: string, ns: string, sa: string): Rule[] {
  const owner = `cluster.local/ns/${ns}/sa/${sa}`;
  const host = `${area}.bench.svc.cluster.local`;
  return [
    // The owning workload reads its area (exact principal, prefix paths; some pin hosts).
    {
      from: [{ source: { principals: [owner] } }],
      to: [{
        operation: {
          methods: ["GET", "HEAD"],
          paths: [`/api/v1/${area}`, `/api/v1/${area}/*`],
          ...(i % 2 === 0 ? {} : { hosts: [host, `${host}:${HTTP_PORT}`] }),
        },
      }],
    },
    // Its namespace writes with a token that carries the write scope.
    {
      from: [{ source: { namespaces: [ns], requestPrincipals: ["*"] } }],
      to: [{ operation: { methods: ["POST", "PUT", "PATCH"], paths: [`/api/v1/${area}/{*}`] } }],
      when: [{ key: "request.auth.claims[scope]", values: [`${area}:write`] }],
    },
    // Token holders of two tenants read the history, by template.
    {
      from: [{ source: { requestPrincipals: ["testing@secure.istio.io/*"] } }],
      to: [{
        operation: { paths: [`/api/v1/${area}/{*}/history`, `/api/v2/${area}/{**}`] },
      }],
      when: [{ key: "request.headers[x-tenant]", values: ["acme", "globex"] }],
    },
    // Probes and scrapers, on the HTTP port only.
    {
      from: [{ source: { namespaces: ["ops", "monitoring"] } }],
      to: [{
        operation: { methods: ["GET"], paths: [`/${area}/healthz`, "/ready", "*/metrics"] },
      }],
      when: [
        { key: "destination.port", values: [HTTP_PORT] },
        { key: "source.namespace", notValues: ["sandbox"] },
      ],
    },
  ];
}

/**
 * Rule 4 of an ALLOW policy: the bench client reading items with a token. Policies 1–16 also want
 * a `groups` claim the token does not have; the bench client's policy wants `foo: bar`, which it has.
 */
function benchClientRule(area: string, matching: boolean): Rule {
  return {
    from: [{
      source: { principals: [CLIENT], namespaces: ["bench"], requestPrincipals: ["*"] },
    }],
    to: [{
      operation: {
        methods: ["GET", "HEAD"],
        paths: ["/api/v1/items/{*}", "/api/v1/items"],
        ports: [HTTP_PORT],
      },
    }],
    when: [
      { key: "request.headers[x-tenant]", values: [BENCH_REQUEST.tenant] },
      matching
        ? { key: "request.auth.claims[foo]", values: ["bar"] }
        : { key: "request.auth.claims[groups]", values: [`${area}-readers`, `${area}-admins`] },
    ],
  };
}

/** Five DENY rules each; none matches the bench request. Ports keep them off the TCP ports. */
const DENY: readonly { name: string; rules: Rule[] }[] = [
  {
    name: "deny-1-blocked-paths",
    rules: [
      { to: [{ operation: { ports: [HTTP_PORT], paths: ["/internal/*", "/admin/{**}"] } }] },
      { to: [{ operation: { ports: [HTTP_PORT], paths: ["*.php", "*/.env"] } }] },
      { to: [{ operation: { ports: [HTTP_PORT], methods: ["TRACE", "CONNECT"] } }] },
      { to: [{ operation: { ports: [HTTP_PORT], paths: ["/api/v0/*"] } }] },
      {
        to: [{
          operation: { ports: [HTTP_PORT], methods: ["DELETE"], paths: ["/api/v1/items/{*}"] },
        }],
      },
    ],
  },
  {
    name: "deny-2-blocked-sources",
    rules: [
      { from: [{ source: { ipBlocks: ["203.0.113.0/24"] } }] },
      { from: [{ source: { remoteIpBlocks: ["198.51.100.0/24", "192.0.2.0/24"] } }] },
      { from: [{ source: { namespaces: ["quarantine", "sandbox"] } }] },
      { from: [{ source: { principals: ["cluster.local/ns/legacy/*"] } }] },
      {
        from: [{
          source: {
            principals: ["*"],
            notNamespaces: ["bench", "ops", "monitoring", ...new Set(AREAS.map((a) => a.ns))],
          },
        }],
      },
    ],
  },
  {
    name: "deny-3-bad-tokens",
    rules: [
      {
        from: [{ source: { requestPrincipals: ["evil.example/*"] } }],
        to: [{ operation: { ports: [HTTP_PORT] } }],
      },
      {
        from: [{ source: { requestPrincipals: ["testing@secure.istio.io/revoked-*"] } }],
        to: [{ operation: { ports: [HTTP_PORT] } }],
      },
      {
        to: [{ operation: { ports: [HTTP_PORT] } }],
        when: [{ key: "request.auth.claims[foo]", values: ["blocked", "revoked"] }],
      },
      {
        to: [{ operation: { ports: [HTTP_PORT] } }],
        when: [{ key: "request.headers[x-debug-override]", values: ["*"] }],
      },
      {
        to: [{ operation: { ports: [HTTP_PORT], methods: ["POST", "PUT", "PATCH", "DELETE"] } }],
        when: [{ key: "request.auth.claims[scope]", notValues: ["write"] }],
      },
    ],
  },
];

/** The policy set as YAML, with its counts for the report. */
export interface PolicySet {
  readonly yaml: string;
  /** AuthorizationPolicies, and of them ALLOW and DENY. */
  readonly policies: number;
  readonly allow: number;
  readonly deny: number;
  /** Rules over all AuthorizationPolicies. */
  readonly rules: number;
}

/** The YAML documents of the policy set. */
export function policyYaml(jwt: JwtFixture): PolicySet {
  const docs: Record<string, unknown>[] = [{
    apiVersion: "security.istio.io/v1",
    kind: "RequestAuthentication",
    metadata: { name: "bench-jwt", namespace: "bench" },
    spec: { targetRefs: TARGET, jwtRules: [{ issuer: jwt.issuer, jwks: jwt.jwks }] },
  }];
  const policy = (name: string, action: string, rules: Rule[]) => ({
    apiVersion: "security.istio.io/v1",
    kind: "AuthorizationPolicy",
    metadata: { name, namespace: "bench" },
    spec: { targetRefs: TARGET, action, rules },
  });
  AREAS.forEach(({ area, ns, sa }, i) => {
    const last = i === AREAS.length - 1;
    const name = `allow-${String(i + 1).padStart(2, "0")}-${last ? "bench-client" : area}`;
    docs.push(policy(name, "ALLOW", [...ownerRules(i, area, ns, sa), benchClientRule(area, last)]));
  });
  for (const d of DENY) docs.push(policy(d.name, "DENY", d.rules));
  const authz = docs.slice(1) as { spec: { rules: Rule[] } }[];
  const rules = authz.reduce((n, d) => n + d.spec.rules.length, 0);
  const header = "# Generated by bench/_policy_config.ts for the http-policy scenario.\n";
  const yaml = header + docs.map((d) => stringify(d, { lineWidth: 0 })).join("---\n");
  return { yaml, policies: authz.length, allow: AREAS.length, deny: DENY.length, rules };
}
