/**
 * `http-policy`: what AuthorizationPolicy and JWT authentication add to each request on the live
 * path (issue 4's number; issue 8's scenario 5). `http-1k`'s waypoint loads (1,000 rps over 2, 4,
 * 16 and 64 connections, 16 connections at 100 and 500 rps, saturation) go through two waypoints
 * of the same run, one with the mesh only ("off", 127.0.9.100) and one with the mesh plus the policy
 * set of `_policy_config.ts` ("on", 127.0.9.101), rows alternating off/on. Both get identical
 * requests, token included, and both record Istio's request metrics (the note says what their
 * `istio_requests_total` counted), so the difference is the policy work alone.
 *
 * Before any load the policy set must pass `validate` (no error, no warning other than HTTP rules
 * skipped on the Service's TCP ports), `check` must find the bench request allowed by the last
 * ALLOW rule and refused without a token, and curl through the "on" listener must see 200 with
 * the token, 403 without it and 401 with a tampered one: so the run measures enforced policies.
 */
import {
  httpCells,
  httpColumns,
  httpLoads,
  type HttpPath,
  measure,
  startConnect,
  toolRun,
  waitHttp,
} from "./_http.ts";
import { latencyPlot } from "./_http_scenarios.ts";
import {
  BENCH_REQUEST,
  type JwtFixture,
  MATCHING_RULE,
  policyYaml,
  readJwtFixture,
} from "./_policy_config.ts";
import type { Proc } from "./_procs.ts";
import { cpuPer1k, fmt, type Scenario, type ScenarioContext, withStack } from "./_scenario.ts";
import { IDS, NET, PATHS, startWaypoint } from "./_stack.ts";
import type { ToolResult } from "./_tools.ts";
import type { WindowResult } from "./_window.ts";

const DENO = Deno.execPath();
/** `validate` warnings that are expected: the Service's ports 9000 and 9001 are TCP. */
const TCP_SKIP = /: warning: AuthorizationPolicy bench\/[^:]+: Rule skipped on TCP ports: /;

interface Variant extends HttpPath {
  readonly name: "off" | "on";
  readonly waypoint: Proc;
  /** Where its metrics listener is (`--metrics <address>:15020`). */
  readonly address: string;
  readonly connect: Proc;
}

/** What a waypoint's metrics said after the run, against what the loads sent it. */
interface Counted {
  readonly variant: "off" | "on";
  /** Sum of `istio_requests_total`; undefined when the waypoint does not export it. */
  readonly istioRequests?: number;
  /** Requests the load tools counted through this waypoint (h2load leaves out its warm-up). */
  readonly loadRequests: number;
}

interface Measured {
  readonly load: string;
  readonly policy: "off" | "on";
  readonly result: ToolResult;
  readonly window: WindowResult;
}

/** One request through a listener, as curl saw it. */
interface CurlCheck {
  readonly variant: "off" | "on";
  readonly request: string;
  readonly expect: number;
  readonly status: number;
  readonly body: string;
}

/** `http-policy`: `http-1k`'s loads through a waypoint without and with 20 policies and a JWT. */
export const httpPolicy: Scenario = {
  name: "http-policy",
  summary: "http-1k's waypoint loads (1,000 rps over 2/4/16/64 conns, 100/500 rps over 16, " +
    "saturation over 64) through the waypoint with no policy and with 20 " +
    "AuthorizationPolicies (100 rules) + RequestAuthentication (RS256, token on every " +
    "request); CPU s/1k req, p50/p99, req/s, added CPU µs/req",
  run: async (ctx) => {
    const { loads, seconds, notes } = await httpLoads(ctx);
    if (loads.length === 0) return { tables: [], data: [], skipped: notes.join("; ") };
    const jwt = await readJwtFixture();
    const set = policyYaml(jwt);
    const policyFile = `${ctx.ws.dir}/policy.yaml`;
    await Deno.writeTextFile(policyFile, set.yaml);
    const validated = await validatePolicies(ctx, policyFile);
    ctx.progress(`http-policy: validate: ${validated.summary}`);
    const decisions = await checkOffline(ctx, policyFile, jwt);
    ctx.progress(`http-policy: check: the bench request is allowed by ${MATCHING_RULE}`);
    const tokenHeaders = { authorization: `Bearer ${jwt.token}`, "x-tenant": BENCH_REQUEST.tenant };
    const headers = Object.entries(tokenHeaders).map(([name, value]) => `${name}: ${value}`);
    const toVip = PATHS.find((p) => p.name === "waypoint")!;
    // Only the policy waypoint runs under --cpu-prof: that is the profile worth reading.
    const run = await withStack({ ...ctx, cpuProfDir: undefined }, async (stack) => {
      const on = await startWaypoint(ctx.ws, {
        name: "waypoint-policy",
        address: NET.policyWaypoint,
        extraConfig: [policyFile],
        cpuProfDir: ctx.cpuProfDir,
      });
      const variants: Variant[] = [];
      const variant = (name: Variant["name"], waypoint: Proc, address: string, port: number) => {
        const via = `${address}:${NET.hbonePort}`;
        const hbone = { via, identity: IDS.waypoint, authority: toVip.http };
        const { listen, connect } = startConnect(ctx, `policy-${name}`, hbone, port);
        const url = `http://${listen}${BENCH_REQUEST.path}`;
        variants.push({ name, waypoint, address, connect, url });
      };
      try {
        variant("off", stack.waypoint, NET.waypoint, 8010);
        variant("on", on, NET.policyWaypoint, 8011);
        for (const v of variants) await waitHttp(v, stack, 30_000, tokenHeaders);
        const live = await checkLive(variants, jwt);
        ctx.progress(`http-policy: curl: ${live.map(curlText).join(", ")}`);
        // No separate warm-up: each h2load row warms up on its own connections first.
        const sentBy = { off: 0, on: 0 };
        const out: Measured[] = [];
        for (const l of loads) {
          for (const v of variants) {
            ctx.progress(`http-policy: ${l.name}, policy ${v.name}, ${seconds} s`);
            const idle = variants.find((o) => o !== v)!;
            const pids = {
              ...stack.pids,
              waypoint: v.waypoint.pid,
              "tunnel connect": v.connect.pid,
              "idle waypoint": idle.waypoint.pid,
              "idle tunnel connect": idle.connect.pid,
            };
            const load = { ...l.load, url: v.url, headers };
            const m = await measure(
              ctx,
              stack,
              pids,
              (ticks, measuring) => toolRun(l.tool, load, ticks, measuring),
            );
            if (on.done) throw on.failure("ended during the measurement");
            out.push({ load: l.name, policy: v.name, ...m });
            sentBy[v.name] += m.result.requests;
          }
        }
        const counted: Counted[] = [];
        for (const v of variants) {
          const istioRequests = await istioRequestsTotal(v.address);
          counted.push({ variant: v.name, istioRequests, loadRequests: sentBy[v.name] });
        }
        return { out, live, counted };
      } finally {
        await Promise.all(variants.map((v) => v.connect.stop()));
        await on.stop(ctx.cpuProfDir ? 30_000 : 3_000);
      }
    });
    const measured = run.out;
    return {
      tables: [{
        title: `http-policy: HTTP/1.1 GET ${BENCH_REQUEST.path}, 1 KiB response, through the ` +
          `waypoint without (off) and with (on) ${set.policies} AuthorizationPolicies ` +
          `(${set.rules} rules) and a JWT rule, ${seconds} s per row`,
        columns: httpColumns("policy", ["added CPU µs/req"]),
        rows: measured.map((m) => policyRow(m, measured, ctx.nproc)),
        notes: [
          ...notes,
          `on = ${set.policies} AuthorizationPolicies (${set.allow} ALLOW, ${set.deny} DENY; ` +
          `${set.rules} rules) and a RequestAuthentication (issuer \`testing@secure.istio.io\`, ` +
          "inline JWKS, RS256) on Service bench/backend, from `../shared/fixtures/jwt/samples/`. " +
          "Every request carries Istio's `demo.jwt` as `authorization: Bearer` and " +
          "`x-tenant: bench`; it is allowed by the last ALLOW rule in Envoy's order " +
          `(\`${MATCHING_RULE}\`), so each request is verified (the RS256 signature check ` +
          `is remembered per key set after the first request; claims, time and audience are ` +
          `checked every time) and tested against all ${set.rules} rules; no DENY rule matches.`,
          "off = the mesh alone in a second waypoint process of the same run (127.0.9.100; on " +
          "is 127.0.9.101), sent the identical requests, token included. Rows alternate off/on.",
          "added = on minus off at the same load; added CPU µs/req = (CPU s/1k req on − off) × " +
          "1,000, with the share of off in brackets.",
          `checked before the load: \`validate\` (mesh + policies) said \`${validated.summary}\`, ` +
          "every warning an HTTP rule skipped on the Service's TCP ports 9000/9001 (as Istio " +
          "does; nothing is skipped on port 80, the only one used here); `check` allowed the " +
          `request by \`${decisions.allowedBy}\` and answered ${decisions.withoutToken} without ` +
          `the token and ${decisions.tampered} with a tampered one; curl through the listeners: ` +
          `${run.live.map(curlText).join(", ")}.`,
          metricsNote(run.counted),
          ...(ctx.cpuProfDir
            ? [
              "With --cpu-prof only the `on` waypoint ran under the profiler: its CPU is inflated.",
            ]
            : []),
        ],
      }],
      plot: latencyPlot(
        "http-policy",
        measured.map((m) => ({ load: m.load, path: `policy ${m.policy}`, result: m.result })),
      ),
      data: {
        policySet: { policies: set.policies, rules: set.rules, matchingRule: MATCHING_RULE },
        validated,
        decisions,
        live: run.live,
        metrics: run.counted,
        rows: measured,
      },
    };
  },
};

/**
 * `validate` on the mesh plus the policy set: no error, and no warning other than HTTP-only rules
 * skipped on TCP ports (Istio's behaviour; those rules still apply on port 80).
 *
 * @throws Error listing every other problem
 */
async function validatePolicies(
  ctx: ScenarioContext,
  policyFile: string,
): Promise<{ summary: string; tcpSkips: number }> {
  const { success, stdout, stderr } = await run([
    ...["validate", "--config", ctx.ws.config, "--config", policyFile],
    ...["--namespace", "bench", "--name", "waypoint"],
  ]);
  const lines = stdout.trim().split("\n");
  const summary = lines.pop() ?? "";
  const unexpected = lines.filter((l) => !TCP_SKIP.test(l));
  if (!success || unexpected.length > 0 || !/ 0 errors, /.test(summary)) {
    throw new Error(
      `validate found problems in the http-policy policy set:\n${unexpected.join("\n")}\n` +
        `${summary}\n${stderr}`,
    );
  }
  return { summary, tcpSkips: lines.length };
}

/**
 * `check` on the bench request with the token, without it and with a tampered one.
 *
 * @throws Error when a decision is not the designed one
 */
async function checkOffline(
  ctx: ScenarioContext,
  policyFile: string,
  jwt: JwtFixture,
): Promise<{ allowedBy: string; withoutToken: string; tampered: string }> {
  const request = {
    destination: `${NET.vip}:${NET.vipHttpPort}`,
    method: BENCH_REQUEST.method,
    path: BENCH_REQUEST.path,
    headers: { "x-tenant": BENCH_REQUEST.tenant },
    source: { principal: IDS.client },
  };
  const cases = [
    { name: "with token", ...request, jwt: jwt.token, expect: "allow" },
    { name: "without token", ...request, expect: 403 },
    { name: "tampered token", ...request, jwt: tamper(jwt.token), expect: 401 },
  ];
  const file = `${ctx.ws.dir}/policy-cases.json`;
  await Deno.writeTextFile(file, JSON.stringify({ cases })); // JSON is YAML.
  const { stdout, stderr } = await run([
    ...["check", "--config", ctx.ws.config, "--config", policyFile],
    ...["--namespace", "bench", "--name", "waypoint", "--cases", file, "--json"],
  ]);
  let out: { decision: string; status?: number; reason?: string; policy?: string; pass: boolean }[];
  try {
    out = JSON.parse(stdout);
  } catch {
    throw new Error(`check printed no JSON:\n${stdout}\n${stderr}`);
  }
  const [allowed, bare, bad] = out;
  if (out.length !== 3 || !out.every((c) => c.pass) || allowed.policy !== MATCHING_RULE) {
    throw new Error(
      `check did not decide the bench request as designed (allowed by ${MATCHING_RULE}, 403 ` +
        `without the token, 401 with a tampered one):\n${stdout}\n${stderr}`,
    );
  }
  return {
    allowedBy: allowed.policy,
    withoutToken: `${bare.status} (${bare.reason})`,
    tampered: `${bad.status} (${bad.reason})`,
  };
}

/**
 * One request per case with curl through the listeners: the policies are enforced live.
 *
 * @throws Error when a status is not the expected one
 */
async function checkLive(variants: readonly Variant[], jwt: JwtFixture): Promise<CurlCheck[]> {
  const tenant = `x-tenant: ${BENCH_REQUEST.tenant}`;
  const cases = [
    {
      variant: "on",
      request: "token",
      headers: [`authorization: Bearer ${jwt.token}`],
      expect: 200,
    },
    { variant: "on", request: "no token", headers: [], expect: 403 },
    {
      variant: "on",
      request: "tampered token",
      headers: [`authorization: Bearer ${tamper(jwt.token)}`],
      expect: 401,
    },
    {
      variant: "off",
      request: "token",
      headers: [`authorization: Bearer ${jwt.token}`],
      expect: 200,
    },
  ] as const;
  const out: CurlCheck[] = [];
  for (const c of cases) {
    const v = variants.find((x) => x.name === c.variant)!;
    const args = ["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"];
    for (const h of [...c.headers, tenant]) args.push("-H", h);
    let r: Deno.CommandOutput;
    try {
      r = await new Deno.Command("curl", { args: [...args, v.url] }).output();
    } catch (e) {
      throw new Error(`curl is needed to check the policies live: ${e}`);
    }
    const text = new TextDecoder().decode(r.stdout);
    const cut = text.lastIndexOf("\n");
    const check = {
      variant: c.variant,
      request: c.request,
      expect: c.expect,
      status: Number(text.slice(cut + 1)),
      body: c.expect === 200 ? "" : text.slice(0, cut).trim(),
    };
    if (check.status !== c.expect) {
      throw new Error(
        `curl through the ${c.variant} waypoint with ${c.request}: HTTP ${check.status}, ` +
          `expected ${c.expect}: ${text.slice(0, 200)} ${new TextDecoder().decode(r.stderr)}\n` +
          `waypoint said:\n${v.waypoint.tail}`,
      );
    }
    out.push(check);
  }
  return out;
}

/** The sum of `istio_requests_total` on a waypoint's metrics listener, if it exports it. */
async function istioRequestsTotal(address: string): Promise<number | undefined> {
  const r = await fetch(`http://${address}:15020/stats/prometheus`).catch(() => undefined);
  if (!r?.ok) {
    await r?.body?.cancel();
    return undefined;
  }
  let total: number | undefined;
  for (const m of (await r.text()).matchAll(/^istio_requests_total(?:\{.*\})?\s+(\S+)/gm)) {
    total = (total ?? 0) + Number(m[1]);
  }
  return total;
}

/** Whether Istio's request metrics were recorded during the run, from what each waypoint says. */
function metricsNote(counted: readonly Counted[]): string {
  if (counted.some((c) => c.istioRequests === undefined)) {
    return "Metrics are not wired into the waypoint yet (no `istio_requests_total` on " +
      "`/stats/prometheus`; issue 8's scenario 5 also asks for them on): these rows measure " +
      "authorization and JWT only.";
  }
  const n = (x: number) => x.toLocaleString("en-US");
  const [totals, loads] = [
    counted.map((c) => n(c.istioRequests!)),
    counted.map((c) => n(c.loadRequests)),
  ];
  return "Istio's request metrics are on in both waypoints (the waypoint always records them; " +
    "nothing scrapes them during the rows), so `on` is issue 8's scenario 5 (policies, JWT and " +
    "metrics) and on − off is the policies alone. `istio_requests_total` after the run: " +
    `${counted.map((c, i) => `${c.variant} ${totals[i]}`).join(", ")}, against ` +
    `${loads.join(" and ")} requests the loads counted (the rest: the checks, h2load's warm-ups, ` +
    "which it does not count, and requests in flight when a tool stopped).";
}

function curlText(c: CurlCheck): string {
  return `${c.variant} + ${c.request} → ${c.status}${c.body ? ` \`${c.body}\`` : ""}`;
}

/** The token with one character of its signature changed: it must fail verification. */
function tamper(token: string): string {
  const i = token.lastIndexOf(".") + 20;
  return token.slice(0, i) + (token[i] === "A" ? "B" : "A") + token.slice(i + 1);
}

/** `deno run -A main.ts ...args` to its end, output decoded. */
async function run(
  args: readonly string[],
): Promise<{ success: boolean; stdout: string; stderr: string }> {
  const r = await new Deno.Command(DENO, {
    args: ["run", "-A", "main.ts", ...args],
    env: { WAYPOINT_LOG_LEVEL: "warn" },
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { success: r.success, stdout: text(r.stdout), stderr: text(r.stderr) };
}

function policyRow(m: Measured, all: readonly Measured[], nproc: number): (string | number)[] {
  // On an "on" row, the "off" row of the same load: what the policies added.
  const base = m.policy === "on"
    ? all.find((o) => o.load === m.load && o.policy === "off")
    : undefined;
  const cpu = cpuPer1k(m.window, "waypoint", m.result.requests);
  const cpuOff = base && cpuPer1k(base.window, "waypoint", base.result.requests);
  const addedCpu = cpu !== undefined && cpuOff !== undefined
    ? `${fmt((cpu - cpuOff) * 1000, 0)} (${cpu >= cpuOff ? "+" : ""}${
      fmt((cpu / cpuOff - 1) * 100, 0)
    } %)`
    : "–";
  return httpCells([m.load, m.policy], m, base?.result, [addedCpu], nproc);
}
