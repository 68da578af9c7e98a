/**
 * Decides where one HTTP request goes (pure, STYLE habit 5): attached routes are matched and
 * their filters planned, a backend is picked by weight, and the result is a plain plan the router
 * carries out: answer now, or forward to a set of endpoints with a load-balancing, retry and
 * timeout policy.
 */
import { LocalReply, type RequestHead } from "../http/mod.ts";
import type { Endpoint, PortProtocol, Service, ServicePort } from "../mesh/mod.ts";
import {
  type Backend,
  DEFAULT_RETRY,
  type LbPolicy,
  matchHttp,
  pickBackend,
  planRequest,
  requestForBackend,
  type RequestPlan,
  type RetryPolicy,
  type Timeouts,
} from "../routes/mod.ts";
import type { ProxyConfig } from "./config.ts";
import type { HttpCodec, RequestState } from "./http_state.ts";

/** Where a forwarded request goes. */
export interface ForwardPlan {
  readonly kind: "forward";
  readonly request: RequestHead;
  readonly endpoints: readonly Endpoint[];
  /** How to choose among `endpoints`: the backend service port's DestinationRule policy. */
  readonly lbPolicy: LbPolicy;
  /** Upstream codec, from the backend port's protocol. */
  readonly codec: HttpCodec;
  /** Service FQDN, for the tunnel's `forwarded: host=`. */
  readonly host?: string;
  /** `Kind ns/name:port`, for logs and errors. */
  readonly label: string;
  readonly retry: RetryPolicy;
  readonly timeouts: Timeouts;
  /** The routes' forward plan, for response edits and mirrors; absent without routes. */
  readonly routePlan?: Extract<RequestPlan, { kind: "forward" }>;
  readonly backend?: Backend;
}

/** An answer decided before any upstream: a redirect or a CORS preflight. */
export interface RespondPlan {
  readonly kind: "respond";
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
}

const NO_TIMEOUTS: Timeouts = Object.freeze({});

/** What a service port resolves to in one config, whatever the request: looked up once. */
interface PortPlan {
  readonly routes: ReturnType<ProxyConfig["routes"]["httpRoutesFor"]>;
  /** The plan without routes, minus the request, per downstream codec. */
  readonly direct: Partial<Record<HttpCodec, Omit<ForwardPlan, "request">>>;
}

/**
 * Port plans per config (a snapshot is immutable, so its answers are too) and service port
 * object: the route-table key, the DestinationRule lookup and the label strings are built once
 * per port and config instead of once per request.
 */
const portPlans = new WeakMap<ProxyConfig, WeakMap<ServicePort, PortPlan>>();

function portPlanOf(state: RequestState, service: Service, port: ServicePort): PortPlan {
  let byPort = portPlans.get(state.config);
  if (!byPort) portPlans.set(state.config, byPort = new WeakMap());
  let plan = byPort.get(port);
  if (!plan) {
    const routes = state.config.routes.httpRoutesFor(
      `${service.namespace}/${service.name}`,
      port.port,
    );
    byPort.set(port, plan = { routes, direct: {} });
  }
  return plan;
}

/**
 * Plans a request.
 *
 * @param state The request's session and config
 * @param request The request head after the chain's edits
 * @param random Randomness for weighted backends
 * @returns The plan
 * @throws LocalReply 404 (NR) when routes are attached but none matches; 500 for a route whose
 *   backend cannot be used (Gateway API's rule)
 */
export function planHttp(
  state: RequestState,
  request: RequestHead,
  random: () => number,
): ForwardPlan | RespondPlan {
  const d = state.destination;
  if (d.kind === "workload") {
    return {
      kind: "forward",
      request,
      endpoints: [d.endpoint],
      lbPolicy: "LEAST_REQUEST",
      codec: codecFor(d.protocol, state.codec),
      label: `${d.workload.kind} ${d.workload.namespace}/${d.workload.name}:${d.port}`,
      retry: DEFAULT_RETRY,
      timeouts: NO_TIMEOUTS,
    };
  }
  const service = d.service;
  const portPlan = portPlanOf(state, service, d.port);
  const routes = portPlan.routes;
  if (!routes) {
    const direct = portPlan.direct[state.codec] ??= {
      kind: "forward",
      endpoints: d.port.endpoints,
      lbPolicy: state.config.lb.lbPolicyFor(service.hostname, d.port.port),
      codec: codecFor(d.port.protocol, state.codec),
      host: service.hostname,
      label: `${service.kind} ${service.namespace}/${service.name}:${d.port.port}`,
      retry: DEFAULT_RETRY,
      timeouts: NO_TIMEOUTS,
    };
    return { ...direct, request };
  }
  const hit = matchHttp(routes, request);
  if (!hit) {
    throw new LocalReply(404, "", {
      flag: "NR",
      detail: `No route of ${routes.service}:${routes.port} matched`,
    });
  }
  state.route = hit;
  const plan = planRequest(hit, request, { port: d.port.port });
  if (plan.kind === "respond") {
    return { kind: "respond", status: plan.status, headers: plan.headers };
  }
  const backend = pickBackend(hit.rule, random);
  if (backend.kind === "error") {
    throw new LocalReply(500, "", { detail: `${routeName(hit.rule.route)}: ${backend.reason}` });
  }
  const s = backend.service;
  return {
    kind: "forward",
    request: requestForBackend(plan.request, backend),
    endpoints: backend.port.endpoints,
    lbPolicy: state.config.lb.lbPolicyFor(s.hostname, backend.port.port),
    codec: codecFor(backend.port.protocol, state.codec),
    host: s.hostname,
    label: `${s.kind} ${s.namespace}/${s.name}:${backend.port.port}`,
    retry: hit.rule.retry,
    timeouts: hit.rule.timeouts,
    routePlan: plan,
    backend,
  };
}

/** HTTP/1.1 for `http` ports, h2c for `http2`/`grpc`, the downstream codec for sniffed ports. */
export function codecFor(protocol: PortProtocol, downstream: HttpCodec): HttpCodec {
  if (protocol === "http") return "http1";
  if (protocol === "http2" || protocol === "grpc") return "h2c";
  return downstream;
}

function routeName(ref: { kind: string; namespace: string; name: string }): string {
  return `${ref.kind} ${ref.namespace}/${ref.name}`;
}
