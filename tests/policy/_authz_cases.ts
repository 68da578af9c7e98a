/** Table-driven AuthorizationPolicy cases: builders for rules and the runner. */
import assert from "node:assert/strict";
import { authorize, type AuthzDecision, type PolicyContext } from "../../policy/mod.ts";
import {
  authzPolicy as ap,
  compileAuthz,
  meshSnapshot,
  request,
  type RequestOverrides,
  TO_A,
} from "./_fixtures.ts";

/** What a case checks of a decision; `policy: null` means "no policy named". */
export interface Expect {
  allow: boolean;
  policy?: string | null;
  status?: number;
  custom?: { provider: string; policy: string }[];
  audit?: string;
  dryRun?: unknown;
}

export interface Case {
  name: string;
  policies: string[];
  request?: RequestOverrides;
  context?: Partial<PolicyContext>;
  expect: Expect;
}

export const rule = (r: unknown, extra: Record<string, unknown> = {}) => ({
  ...TO_A,
  ...extra,
  rules: [r],
});
export const allowA = (name: string, r: unknown) => ap(name, rule(r));
export const denyA = (name: string, r: unknown) => ap(name, rule(r, { action: "DENY" }));
export const n = (name: string, i = 0) => `ns[mesh]-policy[${name}]-rule[${i}]`;
export const ISSUER1 = { iss: "test-issuer-1@istio.io", sub: "sub-1" };
export const from = (source: unknown) => ({ from: [{ source }] });
export const to = (operation: unknown) => ({ to: [{ operation }] });
export const when = (key: string, values?: string[], notValues?: string[]) => ({
  when: [{ key, ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) }],
});
export const ALIASED = meshSnapshot({ trustDomain: "new-td", trustDomainAliases: ["old-td"] });

/** Registers one Deno test a case. */
export function runCases(cases: readonly Case[]): void {
  for (const c of cases) {
    Deno.test(c.name, () => {
      const { policies } = compileAuthz(c.policies, c.context);
      const decision = authorize(policies, request(c.request));
      assert.deepEqual(pick(decision, c.expect), c.expect, JSON.stringify(decision));
    });
  }
}

/** The fields of a decision a case names, with `policy: null` for "absent". */
function pick(decision: AuthzDecision, expect: Expect): Expect {
  const out: Expect = { allow: decision.allow };
  const d = decision as unknown as Record<string, unknown>;
  for (const key of Object.keys(expect) as (keyof Expect)[]) {
    if (key === "allow") continue;
    const value = d[key];
    (out as unknown as Record<string, unknown>)[key] =
      key === "policy" && value === undefined && expect.policy === null ? null : value;
  }
  return out;
}
