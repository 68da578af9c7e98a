/**
 * `authorize()` on a realistic set: 20 policies with 100 rules over services `mesh/a` and `mesh/b`
 * and the waypoint's Gateway, mixing every kind of field. Run with
 * `deno bench -A tests/policy/authz_bench.ts`; decisions per second = 1e9 / (ns per iteration).
 */
import { authorize, type AuthzRequest } from "../../policy/mod.ts";
import { authzPolicy, compileAuthz, request, TO_A, TO_GATEWAY, tokenAuth } from "./_fixtures.ts";

const TO_B = { targetRefs: [{ kind: "Service", group: "", name: "b" }] };
const docs: string[] = [];
let rules = 0;

/** Five rules of one shape per policy, varied by index. */
function policy(name: string, target: object, action: string, make: (i: number) => unknown): void {
  const list = Array.from({ length: 5 }, (_, i) => make(i));
  rules += list.length;
  docs.push(authzPolicy(name, { ...target, action, rules: list }));
}

for (let p = 0; p < 4; p++) {
  policy(`deny-paths-${p}`, TO_A, "DENY", (i) => ({
    to: [{
      operation: {
        paths: [`/internal/${p}/${i}/*`, `*/secret-${p}${i}`],
        methods: ["DELETE", "PUT"],
      },
    }],
  }));
  policy(`deny-ips-${p}`, TO_GATEWAY, "DENY", (i) => ({
    from: [{ source: { ipBlocks: [`192.168.${p}.${i * 16}/28`], notNamespaces: ["mesh"] } }],
  }));
  policy(`allow-principals-${p}`, TO_A, "ALLOW", (i) => ({
    from: [{
      source: {
        principals: [`cluster.local/ns/team-${p}/sa/app-${i}`, `cluster.local/ns/ops-${p}${i}/*`],
      },
    }],
    to: [{
      operation: { methods: ["GET", "POST"], paths: [`/api/v${i}/{*}/items`, `/team-${p}/*`] },
    }],
  }));
  policy(`allow-jwt-${p}`, TO_A, "ALLOW", (i) => ({
    from: [{ source: { requestPrincipals: [`issuer-${p}/*`] } }],
    to: [{ operation: { hosts: [`*.team-${p}.example.com`, "a.mesh.svc.cluster.local"] } }],
    when: [
      { key: "request.auth.claims[groups]", values: [`group-${p}-${i}`] },
      { key: "request.headers[x-tenant]", values: [`tenant-${i}*`] },
    ],
  }));
  policy(`allow-b-${p}`, TO_B, "ALLOW", (i) => ({
    from: [{ source: { namespaces: [`ns-${p}-${i}`] } }],
    to: [{ operation: { ports: [`${8000 + i}`] } }],
  }));
}

const { policies, problems } = compileAuthz(docs);
if (problems.some((p) => p.severity === "error")) throw new Error(JSON.stringify(problems));
if (docs.length !== 20 || rules !== 100) {
  throw new Error(`Expected 20 policies and 100 rules, have ${docs.length}/${rules}`);
}

/** Requests that walk most rules before the deciding one. */
const requests: AuthzRequest[] = [
  request({
    sourcePrincipal: "spiffe://cluster.local/ns/team-3/sa/app-4",
    path: "/api/v4/x/items?page=2",
  }),
  request({
    sourcePrincipal: "spiffe://cluster.local/ns/other/sa/x",
    auth: tokenAuth({ iss: "issuer-3", sub: "u", groups: ["group-3-4"] }),
    headers: [["x-tenant", "tenant-4-blue"]],
    path: "/orders",
  }),
  request({ path: "/internal/3/4/secret-34", method: "DELETE" }),
  request({ sourcePrincipal: "spiffe://cluster.local/ns/nobody/sa/x", path: "/a/./b/../c" }),
];
const expected = requests.map((r) => authorize(policies, r).allow).join(",");
if (expected !== "true,true,false,false") throw new Error(`Unexpected decisions: ${expected}`);

let next = 0;
Deno.bench("authorize() on 20 policies / 100 rules (mixed requests)", () => {
  authorize(policies, requests[next++ & 3]);
});

const unprotected = request({ target: { kind: "ServiceEntry", namespace: "mesh", name: "ext" } });
Deno.bench("authorize() on a target with only the 20 Gateway-wide rules", () => {
  authorize(policies, unprotected);
});
