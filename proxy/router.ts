/**
 * The last filter of the chain: carries out the routing plan. It picks endpoints by the plan's
 * load-balancing policy (avoiding ones already tried, as Envoy's `previous_hosts`), sends over
 * pooled upstream connections, retries per policy, enforces timeouts, fires mirrors, and turns
 * upstream failures into Envoy's local replies and response flags.
 *
 * Invariants:
 * - A request with a body is retried only when the failed try never reached the upstream
 *   (connect failure), because its body is streamed, not kept.
 * - Every picked endpoint is released exactly once; a failed try's response body is cancelled.
 */
import {
  EMPTY_BODY,
  type Filter,
  HttpCodecError,
  HttpContext,
  LocalReply,
  type ResponseHead,
} from "../http/mod.ts";
import { log } from "../log/mod.ts";
import type { Endpoint } from "../mesh/mod.ts";
import { type Balancer, planResponse, shouldRetry, type TryOutcome } from "../routes/mod.ts";
import { TunnelError } from "../tunnel/mod.ts";
import type { HttpUpstreams } from "./http_pool.ts";
import { type ForwardPlan, planHttp } from "./http_plan.ts";
import type { RequestState } from "./http_state.ts";
import { onBodyEnd } from "./http_pool.ts";

/** Inputs of {@link router}. */
export interface RouterInputs {
  readonly upstreams: HttpUpstreams;
  readonly balancer: Balancer;
  /** @default Math.random */
  readonly random?: () => number;
  /** How long an endpoint that refused a connection is passed over. @default 5000 */
  readonly ejectMs?: number;
}

/** Envoy's local reply when a backend has no endpoint to send to (flag UH). */
export function noHealthyUpstream(label: string): LocalReply {
  return new LocalReply(503, "no healthy upstream", {
    flag: "UH",
    detail: `No endpoint for ${label}`,
  });
}

const RESET_BODY = "upstream connect error or disconnect/reset before headers. reset reason: ";

/**
 * Makes the router filter.
 *
 * @param inputs Upstream pool and balancer
 * @returns The filter that produces `ctx.response`
 */
export function router(inputs: RouterInputs): Filter<RequestState> {
  const random = inputs.random ?? Math.random;
  return async function route(ctx) {
    const plan = planHttp(ctx.state, ctx.request.head, random);
    if (plan.kind === "respond") {
      ctx.reply(new LocalReply(plan.status, "", { headers: plan.headers }));
      return;
    }
    ctx.state.backend = plan.label;
    if (plan.backend?.kind === "service") ctx.state.backendService = plan.backend.service;
    if (isUpgrade(plan)) return await upgrade(inputs, ctx, plan);
    if (plan.routePlan) fireMirrors(inputs, ctx, plan, random);
    const response = await withTimeout(plan.timeouts.requestMs, () => tries(inputs, ctx, plan));
    ctx.response = plan.routePlan
      ? {
        head: planResponse(response.head, plan.routePlan, { backend: plan.backend }),
        body: response.body,
      }
      : response;
  };
}

async function tries(
  inputs: RouterInputs,
  ctx: HttpContext<RequestState>,
  plan: ForwardPlan,
): Promise<{ head: ResponseHead; body: import("../http/mod.ts").Body }> {
  let tried: Set<Endpoint> | undefined; // Made only when a retry needs it.
  const body = ctx.request.body;
  for (let attempt = 1;; attempt++) {
    const pick = inputs.balancer.pick(plan.endpoints, tried, plan.lbPolicy);
    if (!pick) throw noHealthyUpstream(plan.label);
    ctx.state.endpoint = pick.endpoint;
    ctx.state.attempts = attempt;
    let outcome: TryOutcome;
    let failure: LocalReply;
    try {
      const res = await withTimeout(
        plan.timeouts.backendRequestMs,
        () => inputs.upstreams.send(pick.endpoint, plan.codec, plan.host, plan.request, body),
      );
      const grpc = res.head.headers.get("grpc-status");
      outcome = {
        status: res.head.status,
        grpcStatus: grpc === undefined ? undefined : Number(grpc),
      };
      const retriable = shouldRetry(plan.retry, outcome, attempt) && body.length === 0 &&
        (res.head.status >= 500 || grpc !== undefined && grpc !== "0");
      if (!retriable) return { head: res.head, body: onBodyEnd(res.body, pick.done) };
      res.body.cancel();
      pick.done();
      failure = new LocalReply(res.head.status, "", { flag: "URX" });
    } catch (e) {
      pick.done();
      ({ outcome, failure } = classify(e, plan, pick.endpoint, inputs));
      const untouched = outcome.connectFailure === true || body.length === 0;
      if (!(untouched && shouldRetry(plan.retry, outcome, attempt))) {
        throw attempt > 1
          ? new LocalReply(failure.status, failure.body, { flag: "URX", detail: failure.detail })
          : failure;
      }
    }
    (tried ??= new Set()).add(pick.endpoint);
    log.debug("Retrying upstream", {
      backend: plan.label,
      attempt,
      endpoint: pick.endpoint.address,
    });
    if (plan.retry.backoffMs > 0) {
      await new Promise((r) => setTimeout(r, plan.retry.backoffMs * attempt));
    }
  }
}

function isUpgrade(plan: ForwardPlan): boolean {
  return plan.codec === "http1" && plan.request.headers.has("upgrade") &&
    /(^|,)\s*upgrade\s*(,|$)/i.test(plan.request.headers.joined("connection") ?? "");
}

/** A WebSocket-style upgrade: one try over its own connection; a 101 hands over the stream. */
async function upgrade(inputs: RouterInputs, ctx: HttpContext<RequestState>, plan: ForwardPlan) {
  const pick = inputs.balancer.pick(plan.endpoints, undefined, plan.lbPolicy);
  if (!pick) throw noHealthyUpstream(plan.label);
  ctx.state.endpoint = pick.endpoint;
  ctx.state.attempts = 1;
  try {
    const res = await inputs.upstreams.upgrade(
      pick.endpoint,
      plan.host,
      plan.request,
      ctx.request.body,
    );
    if (res.upgraded) {
      ctx.state.upgraded = res.upgraded;
      res.upgraded.once("close", pick.done);
      ctx.response = { head: res.head, body: EMPTY_BODY };
    } else {
      ctx.response = { head: res.head, body: onBodyEnd(res.body, pick.done) };
    }
  } catch (e) {
    pick.done();
    throw classify(e, plan, pick.endpoint, inputs).failure;
  }
}

function classify(
  e: unknown,
  plan: ForwardPlan,
  endpoint: Endpoint,
  inputs: RouterInputs,
): { outcome: TryOutcome; failure: LocalReply } {
  const where = `${plan.label} endpoint ${endpoint.address}:${endpoint.port}`;
  if (e instanceof LocalReply) return { outcome: { timeout: e.status === 504 }, failure: e };
  if (e instanceof TunnelError) {
    inputs.balancer.eject(endpoint, inputs.ejectMs ?? 5_000);
    return {
      outcome: { connectFailure: true },
      failure: new LocalReply(503, RESET_BODY + "connection failure", {
        flag: "UF",
        detail: `${where}: ${e.message}`,
      }),
    };
  }
  const reason = e instanceof HttpCodecError ? e.message : String(e);
  return {
    outcome: { reset: true },
    failure: new LocalReply(503, RESET_BODY + "connection termination", {
      flag: "UC",
      detail: `${where}: ${reason}`,
    }),
  };
}

/** Runs `fn`, failing with a 504 local reply (flag UT) after `ms`; no bound when undefined. */
function withTimeout<T>(ms: number | undefined, fn: () => Promise<T>): Promise<T> {
  if (!ms) return fn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new LocalReply(504, "upstream request timeout", {
            flag: "UT",
            detail: `No response in ${ms} ms`,
          }),
        ),
      ms,
    );
  });
  return Promise.race([fn(), expired]).finally(() => clearTimeout(timer));
}

/** Fire-and-forget copies for RequestMirror; only body-less requests are mirrored. */
function fireMirrors(
  inputs: RouterInputs,
  ctx: HttpContext<RequestState>,
  plan: ForwardPlan,
  random: () => number,
): void {
  if (ctx.request.body.length !== 0) return;
  for (const m of plan.routePlan?.mirrors ?? []) {
    if (random() * 100 >= m.percent) continue;
    const { service, port } = m.backend;
    const policy = ctx.state.config.lb.lbPolicyFor(service.hostname, port.port);
    const pick = inputs.balancer.pick(port.endpoints, undefined, policy);
    if (!pick) continue;
    const head = { ...plan.request, headers: plan.request.headers.clone() };
    inputs.upstreams.send(pick.endpoint, plan.codec, service.hostname, head, EMPTY_BODY)
      .then((res) => res.body.cancel(), () => {})
      .finally(pick.done);
  }
}
