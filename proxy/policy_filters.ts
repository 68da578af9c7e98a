/**
 * Istio's request policies as chain filters, in the waypoint's order (l7.md §4.3): CUSTOM
 * (ext_authz) first, then RequestAuthentication (JWT), then AuthorizationPolicy (DENY, ALLOW,
 * AUDIT). The decisions themselves live in `policy/`; these filters only feed them request
 * attributes and turn their answers into local replies.
 */
import { type Filter, HttpContext, LocalReply } from "../http/mod.ts";
import { log } from "../log/mod.ts";
import type { Destination } from "../mesh/mod.ts";
import {
  authenticate,
  authorize,
  type AuthzRequest,
  customChecks,
  type JwksSource,
  type PolicyTarget,
} from "../policy/mod.ts";
import type { ExtAuthz } from "./ext_authz.ts";
import { ipOf } from "./forwarded.ts";
import { applyHeaderEdits } from "./http_headers.ts";
import type { RequestState } from "./http_state.ts";

/** The policy target of a destination: its service, or "a workload". */
export function policyTarget(d: Destination): PolicyTarget {
  return d.kind === "service"
    ? { kind: d.service.kind, namespace: d.service.namespace, name: d.service.name }
    : { kind: "workload" };
}

/** The attributes of a request that AuthorizationPolicy tests. */
export function authzRequest(ctx: HttpContext<RequestState>): AuthzRequest {
  const { state } = ctx;
  const head = ctx.request.head;
  const ip = ipOf(state.client);
  return {
    target: policyTarget(state.destination),
    protocol: "http",
    destinationIp: state.target.address,
    destinationPort: state.target.port,
    sourcePrincipal: state.peer.identity,
    sourceIp: ip,
    remoteIp: ip,
    method: head.method,
    host: head.authority,
    path: head.path,
    headers: head.headers,
    auth: state.auth,
  };
}

/** The attributes of a TCP connection that AuthorizationPolicy tests (no HTTP fields). */
export function tcpAuthzRequest(
  session: Pick<RequestState, "destination" | "target" | "peer" | "client">,
): AuthzRequest {
  return {
    target: policyTarget(session.destination),
    protocol: "tcp",
    destinationIp: session.target.address,
    destinationPort: session.target.port,
    sourcePrincipal: session.peer.identity,
    sourceIp: ipOf(session.client),
  };
}

/**
 * CUSTOM AuthorizationPolicy: asks the matching ext_authz providers, in order; any denial wins.
 *
 * @param extAuthz The providers' client
 */
export function customAuthzFilter(extAuthz: ExtAuthz): Filter<RequestState> {
  // Without any AuthorizationPolicy the filter passes straight on: no request attributes, no
  // async frame (most requests of most meshes).
  return (ctx, next) => ctx.state.config.authz.count === 0 ? next() : customAuthz(ctx, next);
  async function customAuthz(ctx: HttpContext<RequestState>, next: () => Promise<void>) {
    const checks = customChecks(ctx.state.config.authz, authzRequest(ctx));
    if ("allow" in checks) {
      throw denial(ctx, checks.status, checks.body, checks.policy, checks.details);
    }
    for (const check of checks) {
      const verdict = await extAuthz.check(check.provider, ctx);
      if (!verdict.allow) {
        ctx.state.policy = check.policy;
        throw new LocalReply(verdict.status, verdict.body, {
          headers: verdict.headers,
          flag: "UAEX",
          detail: `ext_authz ${check.provider} denied (${check.policy}): ${verdict.reason}`,
        });
      }
      applyHeaderEdits(ctx.request.head.headers, verdict.upstreamHeaders);
      (ctx.state.responseHeaders ??= []).push(...verdict.downstreamHeaders);
    }
    await next();
    const extra = ctx.state.responseHeaders;
    if (extra && ctx.response) applyHeaderEdits(ctx.response.head.headers, extra);
  }
}

/**
 * RequestAuthentication: verifies tokens, applies header edits, records `request.auth.*`.
 *
 * @param keys JWKS lookups (cached, refreshed in the background)
 */
export function authnFilter(keys: JwksSource): Filter<RequestState> {
  return (ctx, next) => ctx.state.config.authn.count === 0 ? next() : jwtAuthn(ctx, next);
  async function jwtAuthn(ctx: HttpContext<RequestState>, next: () => Promise<void>) {
    const head = ctx.request.head;
    const result = await authenticate(
      ctx.state.config.authn,
      policyTarget(ctx.state.destination),
      {
        headers: head.headers,
        path: head.path,
        method: head.method,
        authority: head.authority,
        scheme: head.scheme,
      },
      keys,
      Date.now(),
    );
    if (!result.ok) {
      throw new LocalReply(result.status, result.body, {
        headers: Object.entries(result.headers),
        detail: `RequestAuthentication: ${result.body}`,
      });
    }
    for (const edit of result.headerEdits) {
      if (edit.op === "remove") head.headers.delete(edit.name);
      else head.headers.add(edit.name, edit.value);
    }
    if (result.path !== undefined) head.path = result.path;
    ctx.state.auth = result.auth;
    await next();
  }
}

/** AuthorizationPolicy DENY/ALLOW/AUDIT: 403 `RBAC: access denied` on a denial. */
export function authzFilter(): Filter<RequestState> {
  return (ctx, next) => ctx.state.config.authz.count === 0 ? next() : rbac(ctx, next);
  async function rbac(ctx: HttpContext<RequestState>, next: () => Promise<void>) {
    const decision = authorize(ctx.state.config.authz, authzRequest(ctx));
    if (decision.audit) {
      log.info("Audit", { requestId: ctx.state.requestId, policy: decision.audit });
    }
    if (!decision.allow) {
      throw denial(ctx, decision.status, decision.body, decision.policy, decision.details);
    }
    ctx.state.policy = decision.policy;
    if (log.enabled("debug")) {
      log.debug("Authorization allowed", {
        requestId: ctx.state.requestId,
        policy: decision.policy ?? null,
      });
    }
    await next();
  }
}

function denial(
  ctx: HttpContext<RequestState>,
  status: number,
  body: string,
  policy: string | undefined,
  details: string,
): LocalReply {
  ctx.state.policy = policy;
  log.debug("Authorization denied", {
    requestId: ctx.state.requestId,
    policy: policy ?? null,
    details,
  });
  return new LocalReply(status, body, { flag: "RBAC", detail: details });
}
