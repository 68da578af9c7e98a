/**
 * Offline checks (`waypoint check`): one described request, a "case", goes through the filters
 * that serve live traffic (RequestAuthentication, AuthorizationPolicy, then the router's own
 * planner), and nothing is sent. The answer is the decision, the policy that made it, and the
 * route and backend the router would use.
 *
 * Invariants:
 * - One implementation: decisions come from `authnFilter`, `authzFilter` and `planHttp` run by
 *   `compose` and `runChain`, and TCP cases use the `authorize` call of `relayTcp`. This file only
 *   builds their input and reads what they leave in the context.
 * - CUSTOM providers are reported ("would ask"), never called. The check assumes they allow.
 * - Weighted backends are picked with `random() = 0`, which gives the first backend with
 *   weight > 0. Runs repeat, and the other candidates are listed beside it.
 * - No I/O besides key lookups through the given {@link JwksSource} and, when WasmPlugins are
 *   attached, the module loads of the given runtime.
 */
import { importJWK, type JWK, SignJWT } from "jose";
import {
  compose,
  EMPTY_BODY,
  type Filter,
  HeaderMap,
  HttpContext,
  LocalReply,
  type RequestHead,
  runChain,
} from "../http/mod.ts";
import { bind, type Destination, type PortProtocol } from "../mesh/mod.ts";
import { authorize, type CustomCheck, customChecks, type JwksSource } from "../policy/mod.ts";
import type { Backend, HttpRule } from "../routes/mod.ts";
import { parseAuthority } from "../tunnel/mod.ts";
import type { ProxyConfig } from "./config.ts";
import { resolveHost } from "./dev_http.ts";
import { nodeText } from "./forwarded.ts";
import { ensureRequestId, stripHopByHop } from "./http_headers.ts";
import { planHttp } from "./http_plan.ts";
import { downstreamCodec } from "./http_serve.ts";
import type { HttpCodec, RequestState } from "./http_state.ts";
import { describe } from "./outbound.ts";
import { authnFilter, authzFilter, authzRequest, tcpAuthzRequest } from "./policy_filters.ts";
import { noHealthyUpstream } from "./router.ts";
import { wasmFilter } from "./wasm_filter.ts";
import type { WasmPhase, WasmRuntime } from "../wasm/mod.ts";
import { tcpTarget } from "./tcp_plan.ts";

/** What a case expects: the policy decision, or the status the waypoint answers (200: forwarded). */
export type CheckExpect = "allow" | "deny" | number;

/** Who sends the request; at most one of `principal` and `namespace`. */
export interface CheckSource {
  /** Peer SPIFFE id; `spiffe://` is added when missing. */
  readonly principal?: string;
  /** Stands for `spiffe://<trust domain>/ns/<namespace>/sa/default`. */
  readonly namespace?: string;
  /** Original client IP (`source.ip`, `remoteIpBlocks`). */
  readonly ip?: string;
}

/** One request to check. */
export interface CheckCase {
  readonly name: string;
  /** `host[:port]` as the Host header names a service (port 80 by default), or `ip:port`. */
  readonly destination: string;
  /** @default "GET" */
  readonly method?: string;
  /** @default "/" */
  readonly path?: string;
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  /** @default no principal, no IP */
  readonly source?: CheckSource;
  /** A compact JWT, sent as `authorization: Bearer <jwt>`. */
  readonly jwt?: string;
  /** Claims to sign with the dev key ({@link signDevToken}) and send like `jwt`. */
  readonly claims?: Readonly<Record<string, unknown>>;
  /** @default from the port: `tcp`/`tls` ports are tcp, others http */
  readonly protocol?: "http" | "tcp";
  /** Omitted: the case is reported and counts as passed. */
  readonly expect?: CheckExpect;
}

/** The route rule that matched. */
export interface CheckRoute {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** Position of the rule in the route's `rules`. */
  readonly rule: number;
}

/** What the waypoint would do with a case. */
export interface CheckResult {
  readonly name: string;
  /** `Kind ns/name:port` of the bound destination, or the case's text when none. */
  readonly destination: string;
  readonly protocol: "http" | "tcp";
  /** `error`: the case cannot be carried (unknown host, unbound target, protocol mismatch). */
  readonly decision: "allow" | "deny" | "error";
  /** The status the waypoint answers itself; absent when the request would be forwarded. */
  readonly status?: number;
  /** Why: Envoy's response details, `RequestAuthentication: <jwt status>`, a route problem. */
  readonly reason?: string;
  /** `ns[<ns>]-policy[<name>]-rule[<i>]` of the deciding rule; absent for "no ALLOW rule matched". */
  readonly policy?: string;
  /** CUSTOM providers the live waypoint would ask before anything else. */
  readonly custom?: readonly CustomCheck[];
  readonly route?: CheckRoute;
  /** `Kind ns/name:port` of the backend chosen. */
  readonly backend?: string;
  /** The rule's weighted backends, when there was a choice. */
  readonly backends?: readonly { readonly backend: string; readonly weight: number }[];
  readonly expect?: CheckExpect;
  /** Whether the result meets `expect` (true without one). */
  readonly pass: boolean;
}

/** Options of {@link checkCase}. */
export interface CheckOptions {
  /** Remote JWKS for `jwksUri` rules, as the live chain uses them (`RemoteJwks`). */
  readonly keys: JwksSource;
  /** Runs the attached WasmPlugins in their phases, as live; without it they are not run. */
  readonly wasm?: WasmRuntime;
}

/** Issuer given to signed claims that carry no `iss`. */
export const DEV_ISSUER = "waypoint-check-dev";

/**
 * PUBLIC DEV KEY, NOT A SECRET: an ES256 key published in this source so that `check` can sign
 * `claims`. Any RequestAuthentication trusting it accepts tokens anybody can make; paste its JWKS
 * (`waypoint check --print-dev-jwks`) into test configs only, never into a real mesh.
 */
const DEV_KEY: JWK = Object.freeze({
  kty: "EC",
  crv: "P-256",
  kid: "waypoint-check-dev",
  x: "XP6HQpbr69T-YsU0W744yoohiGMX5RB-d9hxy2RC8Tw",
  y: "yCtV1HNrUC-tGn_15ew1DlUwlWEly66QP-sftReRYPE",
  d: "oePb9-Z_dyfoOUpVL7GXMZGVhmvYhJd7y_9KpeKExRM",
});

/**
 * The public JWKS of the dev key, for a RequestAuthentication `jwks` field.
 *
 * @returns `{ keys: [<public JWK>] }`
 */
export function devJwks(): { keys: JWK[] } {
  const { d: _private, ...pub } = DEV_KEY;
  return { keys: [{ ...pub, alg: "ES256", use: "sig" }] };
}

/**
 * Signs claims with the dev key. `iss` defaults to {@link DEV_ISSUER}, `iat` to now and `exp` to an
 * hour later; a claim given as `null` is left out.
 *
 * @example
 * ```ts
 * const jwt = await signDevToken({ sub: "alice", groups: ["admins"] }, Date.now());
 * ```
 * @param claims The payload
 * @param now Milliseconds since the epoch
 * @returns A compact JWS
 */
export async function signDevToken(
  claims: Readonly<Record<string, unknown>>,
  now: number,
): Promise<string> {
  const iat = Math.floor(now / 1000);
  const merged: Record<string, unknown> = { iss: DEV_ISSUER, iat, exp: iat + 3600, ...claims };
  const payload = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== null));
  return await new SignJWT(payload)
    .setProtectedHeader({ alg: "ES256", kid: DEV_KEY.kid, typ: "JWT" })
    .sign(await importJWK(DEV_KEY, "ES256"));
}

/**
 * Checks one case against a config.
 *
 * @param config Built by `buildConfig`, as `run` builds it
 * @param c The case
 * @param options Key lookups for RequestAuthentication
 * @returns The decision, the deciding policy, route and backend, and whether `expect` was met
 */
export async function checkCase(
  config: ProxyConfig,
  c: CheckCase,
  options: CheckOptions,
): Promise<CheckResult> {
  const found = resolveDestination(config, c.destination);
  const wanted = c.protocol ?? "http";
  if (!found.ok) {
    const head = { name: c.name, destination: c.destination, protocol: wanted };
    return finish(head, { decision: "error", status: 404, reason: found.reason }, c.expect);
  }
  const { destination } = found;
  const protocol = protocolOf(destination, c.protocol);
  const head = { name: c.name, destination: describe(destination) };
  if (typeof protocol !== "string") {
    const outcome: Outcome = { decision: "error", reason: protocol.error };
    return finish({ ...head, protocol: wanted }, outcome, c.expect);
  }
  const session = sessionOf(config, c, found);
  const outcome = protocol === "tcp" ? checkTcp(session) : await checkHttp(session, c, options);
  return finish({ ...head, protocol }, outcome, c.expect);
}

type Outcome = Omit<CheckResult, "name" | "destination" | "protocol" | "expect" | "pass">;
type Session = Omit<RequestState, "requestId" | "attempts" | "codec">;

function finish(
  head: Pick<CheckResult, "name" | "destination" | "protocol">,
  outcome: Outcome,
  expect: CheckExpect | undefined,
): CheckResult {
  const expected = expect === undefined ? {} : { expect };
  return { ...head, ...outcome, ...expected, pass: meetsExpect(outcome, expect) };
}

/** `allow`/`deny` compare the decision; a number the status, a forwarded request being 200. */
function meetsExpect(o: Outcome, expect: CheckExpect | undefined): boolean {
  if (expect === undefined) return true;
  if (typeof expect === "string") return o.decision === expect;
  return (o.status ?? (o.decision === "allow" ? 200 : undefined)) === expect;
}

type Found = {
  ok: true;
  destination: Destination;
  target: { address: string; port: number };
} | { ok: false; reason: string };

/** `ip:port` binds as a CONNECT target does; anything else resolves as `--dev-http` Hosts do. */
function resolveDestination(config: ProxyConfig, text: string): Found {
  const ip = parseAuthority(text);
  if (ip) {
    const b = bind(config.mesh, ip.host, ip.port);
    if (!b.ok) return b;
    return { ok: true, destination: b.destination, target: { address: ip.host, port: ip.port } };
  }
  const r = resolveHost(config.mesh, text);
  if (!r.ok) return r;
  const d = r.destination;
  const target = d.kind === "service"
    ? { address: d.service.addresses[0] ?? "", port: d.port.port }
    : { address: d.workload.address, port: d.port };
  return { ok: true, destination: d, target };
}

/** HTTP ports are HTTP, `tcp`/`tls` ports TCP; a port of unknown protocol is what the case says. */
function protocolOf(d: Destination, wanted?: "http" | "tcp"): "http" | "tcp" | { error: string } {
  const port = portProtocol(d);
  if (port === "unknown") return wanted ?? "http";
  const actual = downstreamCodec(port) ? "http" : "tcp";
  if (wanted === undefined || wanted === actual) return actual;
  return { error: `${describe(d)} is a ${port} port: the waypoint treats it as ${actual}` };
}

function portProtocol(d: Destination): PortProtocol {
  return d.kind === "service" ? d.port.protocol : d.protocol;
}

function sessionOf(
  config: ProxyConfig,
  c: CheckCase,
  found: Extract<Found, { ok: true }>,
): Session {
  const source = c.source ?? {};
  const td = config.mesh.self.trustDomain;
  const principal = source.namespace !== undefined
    ? `spiffe://${td}/ns/${source.namespace}/sa/default`
    : source.principal;
  const identity = principal === undefined || principal.startsWith("spiffe://")
    ? principal ?? ""
    : `spiffe://${principal}`;
  const client = source.ip === undefined ? "" : nodeText(source.ip, 0);
  return {
    config,
    destination: found.destination,
    peer: { identity, address: source.ip ?? "", port: 0 },
    client,
    target: found.target,
  };
}

/** The `authorize` call of `relayTcp`, then the TCPRoute backend `tcpTarget` picks. */
function checkTcp(s: Session): Outcome {
  const decision = authorize(s.config.authz, tcpAuthzRequest(s));
  const policy = decision.policy === undefined ? {} : { policy: decision.policy };
  if (!decision.allow) return { decision: "deny", reason: decision.details, ...policy };
  const target = tcpTarget(s.config, s.destination, FIRST);
  const d = s.destination;
  const route = d.kind === "service"
    ? s.config.routes.tcpRoutesFor(`${d.service.namespace}/${d.service.name}`, d.port.port)
    : undefined;
  return {
    decision: "allow",
    ...policy,
    ...(route ? { route: { ...refOf(route.route), rule: 0 } } : {}),
    backend: target.label,
    ...(route ? choices(route.backends) : {}),
    ...(target.endpoints.length === 0
      ? { status: 503, reason: `No endpoint for ${target.label}` }
      : {}),
  };
}

/** What the check filters saw, beside what the live filters leave in the context. */
interface Seen {
  /** The policies let the request reach the router. */
  routed: boolean;
  custom?: readonly CustomCheck[];
}

async function checkHttp(s: Session, c: CheckCase, options: CheckOptions): Promise<Outcome> {
  const seen: Seen = { routed: false };
  // A port of unknown protocol is sniffed live; a case's request reads as HTTP/1.1 there.
  const codec: HttpCodec = downstreamCodec(portProtocol(s.destination)) ?? "http1";
  const head = await requestHead(c, codec);
  const state: RequestState = {
    ...s,
    codec,
    requestId: ensureRequestId(head.headers),
    attempts: 0,
  };
  const ctx = new HttpContext({ head, body: EMPTY_BODY }, state);
  const { wasm } = options;
  const phase = (p: WasmPhase) => wasm ? [wasmFilter(wasm, p)] : [];
  const chain = compose<RequestState>([
    customReport(seen),
    ...phase("AUTHN"),
    authnFilter(options.keys),
    ...phase("AUTHZ"),
    authzFilter(),
    ...phase("STATS"),
    ...phase("UNSPECIFIED_PHASE"),
    planner(seen),
  ]);
  await runChain(chain, ctx);
  const reply = ctx.localReply;
  const rule = state.route?.rule;
  return {
    decision: seen.routed ? "allow" : "deny",
    ...(reply ? { status: reply.status, reason: reasonOf(reply) } : {}),
    ...(state.policy === undefined ? {} : { policy: state.policy }),
    ...(seen.custom ? { custom: seen.custom } : {}),
    ...(rule ? { route: { ...refOf(rule.route), rule: rule.index } } : {}),
    ...(state.backend === undefined ? {} : { backend: state.backend }),
    ...(rule && state.backend !== undefined ? choices(rule.backends) : {}),
  };
}

/** The request head as a codec would hand it to the chain, hop-by-hop fields stripped. */
async function requestHead(c: CheckCase, codec: HttpCodec): Promise<RequestHead> {
  const fields: [string, string][] = [];
  for (const [name, value] of Object.entries(c.headers ?? {})) {
    for (const v of typeof value === "string" ? [value] : value) fields.push([name, v]);
  }
  const headers = new HeaderMap(fields);
  const token = c.jwt ?? (c.claims ? await signDevToken(c.claims, Date.now()) : undefined);
  if (token !== undefined) headers.set("authorization", `Bearer ${token}`);
  const authority = headers.get("host") ?? c.destination;
  if (codec === "http1" && !headers.has("host")) headers.set("host", authority);
  if (codec === "h2c") headers.delete("host");
  stripHopByHop(headers);
  return {
    method: c.method ?? "GET",
    path: c.path ?? "/",
    authority,
    scheme: "http",
    version: codec === "h2c" ? "2" : "1.1",
    headers,
  };
}

/** CUSTOM, where the live chain asks ext_authz: records the providers, or denies as live does. */
function customReport(seen: Seen): Filter<RequestState> {
  return function custom(ctx, next) {
    const checks = customChecks(ctx.state.config.authz, authzRequest(ctx));
    if ("allow" in checks) {
      ctx.state.policy = checks.policy;
      throw new LocalReply(checks.status, checks.body, { flag: "RBAC", detail: checks.details });
    }
    if (checks.length > 0) seen.custom = checks;
    return next();
  };
}

/** The router's planning step (`planHttp`) without the sending: records the route and backend. */
function planner(seen: Seen): Filter<RequestState> {
  return function plan(ctx) {
    seen.routed = true;
    const plan = planHttp(ctx.state, ctx.request.head, FIRST);
    if (plan.kind === "respond") {
      ctx.reply(new LocalReply(plan.status, "", { headers: plan.headers }));
      return Promise.resolve();
    }
    ctx.state.backend = plan.label;
    if (plan.endpoints.length === 0) {
      throw noHealthyUpstream(plan.label);
    }
    ctx.response = { head: { status: 200, headers: new HeaderMap() }, body: EMPTY_BODY };
    return Promise.resolve();
  };
}

const FIRST = () => 0;

function reasonOf(reply: LocalReply): string {
  if (reply.detail) return reply.detail;
  const location = reply.headers.get("location");
  if (location !== undefined) return `redirect to ${location}`;
  return typeof reply.body === "string" ? reply.body : new TextDecoder().decode(reply.body);
}

function refOf(ref: { kind: string; namespace: string; name: string }) {
  return { kind: ref.kind, namespace: ref.namespace, name: ref.name };
}

/** The candidates of a weighted choice, when there were several. */
function choices(backends: HttpRule["backends"]): Pick<CheckResult, "backends"> {
  const live = backends.filter((b) => b.weight > 0);
  if (live.length < 2) return {};
  return { backends: live.map((b) => ({ backend: backendLabel(b.backend), weight: b.weight })) };
}

function backendLabel(b: Backend): string {
  return b.kind === "service"
    ? `${b.service.kind} ${b.service.namespace}/${b.service.name}:${b.port.port}`
    : `error: ${b.reason}`;
}
