/**
 * WasmPlugins in the chain (l7.md §4.3): one filter per phase runs the plugins attached to the
 * request's destination for that phase, in priority order, each as its own onion layer, so
 * requests see them A, B, C and responses C, B, A as Envoy's decoder/encoder filters do.
 *
 * Invariants:
 * - No plugin for the phase: the filter only calls `next` (no per-request work beyond the lookup).
 * - A local reply from a later filter (authz 403, router 503) goes back through the response
 *   callbacks of the plugins already run, as Envoy's encoder filters see local replies.
 * - A plugin failure ends in exactly one fail-strategy action (l7.md §4.1): FAIL_OPEN skips the
 *   plugin; a module that never ran denies (403 `RBAC: access denied`); a VM that failed while
 *   running answers 503 with an empty body and detail `wasm_fail_stream`.
 */
import { type Filter, type HttpContext, LocalReply } from "../http/mod.ts";
import { log } from "../log/mod.ts";
import {
  failAction,
  HttpStream,
  type PropertyTree,
  type StreamFacts,
  WasmHostError,
  type WasmPhase,
  type WasmPluginSpec,
  type WasmRuntime,
  type WasmVm,
} from "../wasm/mod.ts";
import { ipOf } from "./forwarded.ts";
import type { RequestState } from "./http_state.ts";
import { policyTarget } from "./policy_filters.ts";

/** Options of {@link wasmFilter}. */
export interface WasmFilterOptions {
  /** Dynamic metadata shown as the `metadata` property. @default none */
  readonly metadata?: (state: RequestState) => PropertyTree | undefined;
}

/**
 * Makes the filter of one phase.
 *
 * @example
 * ```ts
 * const runtime = new WasmRuntime({ loader });
 * compose([wasmFilter(runtime, "AUTHN"), authnFilter(keys), wasmFilter(runtime, "AUTHZ"), ...]);
 * ```
 *
 * @param runtime The VMs
 * @param phase Which plugins this filter runs
 * @param options Metadata for properties
 * @returns The filter
 */
export function wasmFilter(
  runtime: WasmRuntime,
  phase: WasmPhase,
  options: WasmFilterOptions = {},
): Filter<RequestState> {
  return function wasm(ctx, next) {
    const plugins = ctx.state.config.wasm.pluginsFor(policyTarget(ctx.state.destination), phase);
    if (plugins.length === 0) return next();
    const facts = streamFacts(ctx, options);
    const run = (i: number): Promise<void> =>
      i < plugins.length ? runPlugin(runtime, plugins[i], ctx, () => run(i + 1), facts) : next();
    return run(0);
  };
}

/** One plugin as one onion layer. */
async function runPlugin(
  runtime: WasmRuntime,
  spec: WasmPluginSpec,
  ctx: HttpContext<RequestState>,
  next: () => Promise<void>,
  facts: StreamFacts,
): Promise<void> {
  let vm: WasmVm;
  try {
    vm = await runtime.vm(spec);
  } catch (e) {
    if (!(e instanceof WasmHostError)) throw e;
    return failed(e, spec, ctx, next, false);
  }
  let stream: HttpStream | undefined;
  let nextCalled = false;
  try {
    stream = new HttpStream(vm, ctx.request.head, facts, {
      ...runtime.limits,
      failOpen: spec.failStrategy === "FAIL_OPEN",
    });
    const request = await stream.onRequest(ctx.request);
    if ("reply" in request) throw request.reply;
    ctx.request.body = request.body;
    nextCalled = true;
    await inner(ctx, next, stream);
    const res = ctx.response;
    if (!res) return;
    const response = await stream.onResponse(res);
    if ("reply" in response) {
      res.body.cancel();
      ctx.reply(response.reply);
    } else res.body = response.body;
  } catch (e) {
    if (!(e instanceof WasmHostError)) throw e;
    runtime.failed(spec, vm);
    await failed(e, spec, ctx, next, nextCalled);
  } finally {
    stream?.end();
  }
}

/** The rest of the chain; its local replies (and this plugin's, sent mid-body) become the response. */
async function inner(
  ctx: HttpContext<RequestState>,
  next: () => Promise<void>,
  stream: HttpStream,
): Promise<void> {
  try {
    await next();
  } catch (e) {
    if (e instanceof WasmHostError) throw e;
    const reply = stream.localReply ?? (e instanceof LocalReply ? e : undefined);
    if (!reply) throw e;
    ctx.request.body.cancel();
    ctx.reply(reply);
  }
}

async function failed(
  e: WasmHostError,
  spec: WasmPluginSpec,
  ctx: HttpContext<RequestState>,
  next: () => Promise<void>,
  nextCalled: boolean,
): Promise<void> {
  const action = failAction(spec.failStrategy, e);
  log.debug("WasmPlugin failed", {
    requestId: ctx.state.requestId,
    wasmPlugin: spec.ref,
    action,
    reason: e.message,
  });
  if (action === "skip") {
    if (!nextCalled) await next();
    return;
  }
  const reply = action === "deny"
    ? new LocalReply(403, "RBAC: access denied", { flag: "RBAC", detail: e.message })
    : new LocalReply(503, "", { detail: `wasm_fail_stream: ${e.message}` });
  if (!nextCalled || !ctx.response) throw reply;
  ctx.response.body.cancel();
  ctx.reply(reply);
}

/** What the plugins of one request may read as properties. */
function streamFacts(ctx: HttpContext<RequestState>, options: WasmFilterOptions): StreamFacts {
  const s = ctx.state;
  return {
    source: {
      address: ipOf(s.client),
      port: Number(s.client.slice(s.client.lastIndexOf(":") + 1)) || 0,
      principal: s.peer.identity || undefined,
    },
    destination: s.target,
    requestId: s.requestId,
    startNs: BigInt(Math.round((performance.timeOrigin + ctx.startedAt) * 1e6)),
    clusterName: () => {
      const d = s.destination;
      return d.kind === "service"
        ? `inbound-vip|${s.target.port}|http|${d.service.hostname}`
        : `inbound|${s.target.port}||`;
    },
    routeName: () => s.route && `${s.route.rule.route.namespace}.${s.route.rule.route.name}`,
    upstream: () => s.endpoint,
    metadata: options.metadata?.(s),
  };
}
