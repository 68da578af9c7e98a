/**
 * RequestAuthentication for one request, as Envoy's jwt_authn filter behaves with the config istiod
 * generates (`provider OR allow_missing` per rule):
 *
 * - a request without a token in any configured location passes, without a request principal;
 * - every token found must verify against a rule that looks at its location and names its
 *   issuer; parse, issuer, time (60 s skew) and audience are checked before the signature;
 * - a failure answers 401 with jwt_verify_lib's status text and `WWW-Authenticate`, or 403 for
 *   `Audiences in Jwt are not allowed`;
 * - a CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) is not checked.
 *
 * Pure apart from key lookup through a {@link JwksSource}; the clock is a parameter.
 */
import type { HeaderMap } from "../http/types.ts";
import type { PolicyTarget } from "./_attach.ts";
import { verifySignature } from "./_jwks_keys.ts";
import {
  audienceAllowed,
  type Jwt,
  JwtStatus,
  type JwtStatusText,
  parseJwt,
  timeStatus,
} from "./_jwt.ts";
import { extractTokens, type FoundToken, removeParam } from "./_tokens.ts";
import type { RequestAuth } from "./authz.ts";
import type { JwksSource } from "./jwks.ts";
import type { CompiledAuthn, JwtRule } from "./request_authn.ts";

/** The parts of a request authentication reads. */
export interface AuthnRequest {
  readonly headers: HeaderMap;
  /** Request target with query (`/a?access_token=...`). */
  readonly path: string;
  /** For the CORS preflight bypass. */
  readonly method?: string;
  /** `:authority`, for the `WWW-Authenticate` realm; Host is used when absent. */
  readonly authority?: string;
  /** Scheme for the realm when there is no `x-forwarded-proto`. @default "http" */
  readonly scheme?: string;
}

/** A change to the request headers after successful authentication, in order. */
export type HeaderEdit =
  | { readonly op: "remove"; readonly name: string }
  | { readonly op: "add"; readonly name: string; readonly value: string };

/** The outcome of {@link authenticate}. */
export type AuthnResult =
  | {
    readonly ok: true;
    /** Set when a token verified: what `request.auth.*` matches. */
    readonly auth?: RequestAuth;
    /** Removals (sanitized output headers, forwarded tokens) and added output headers. */
    readonly headerEdits: readonly HeaderEdit[];
    /** The new request target when a token was taken out of the query. */
    readonly path?: string;
  }
  | {
    readonly ok: false;
    readonly status: 401 | 403;
    /** jwt_verify_lib's status text, such as `Jwt is expired`. */
    readonly body: string;
    /** `www-authenticate`. */
    readonly headers: Readonly<Record<string, string>>;
  };

/** A token that verified, with the rule that accepted it. */
interface Verified {
  readonly found: FoundToken;
  readonly rule: JwtRule;
  readonly jwt: Jwt;
}

type TokenResult = { ok: true; rule: JwtRule; jwt: Jwt } | { ok: false; status: JwtStatusText };

const PASS: AuthnResult = Object.freeze({
  ok: true as const,
  headerEdits: Object.freeze([]) as readonly HeaderEdit[],
});
const MAX_REALM_PATH = 256;

/**
 * Authenticates one request.
 *
 * @example
 * ```ts
 * const result = await authenticate(authn, { kind: "Service", namespace: "ns", name: "app" },
 *   { headers, path: "/x", method: "GET" }, jwks, Date.now());
 * if (!result.ok) reply(result.status, result.body, result.headers);
 * ```
 * @param authn Compiled by `compileRequestAuthentications`
 * @param target The service (or workload) the request is addressed to
 * @param request Headers and path
 * @param keys Where remote key sets come from
 * @param now Current time, milliseconds since the epoch
 * @returns Pass (with request principal and header edits) or the response to send
 */
export async function authenticate(
  authn: CompiledAuthn,
  target: PolicyTarget,
  request: AuthnRequest,
  keys: JwksSource,
  now: number,
): Promise<AuthnResult> {
  const { rules, locations, sanitize } = authn.index.lookup(target);
  if (rules.length === 0 || isCorsPreflight(request)) return PASS;
  const edits: HeaderEdit[] = [];
  for (const name of sanitize) if (request.headers.has(name)) edits.push({ op: "remove", name });
  const tokens = extractTokens(locations, request.headers, request.path);
  const verified: Verified[] = [];
  for (const found of tokens) {
    const result = await verifyToken(found, keys, Math.floor(now / 1000));
    if (!result.ok) return failure(result.status, request);
    verified.push({ found, rule: result.rule, jwt: result.jwt });
  }
  if (verified.length === 0) return edits.length === 0 ? PASS : { ok: true, headerEdits: edits };
  const path = applyOutputs(verified, request.path, edits);
  const first = verified[0];
  return {
    ok: true,
    auth: requestAuth(first.jwt, first.rule),
    headerEdits: edits,
    ...(path === request.path ? {} : { path }),
  };
}

/**
 * Output headers of each verified token, and the token taken out of the request unless its rule
 * forwards it (a cookie stays, as in Envoy).
 *
 * @returns The request target, without token query parameters
 */
function applyOutputs(verified: readonly Verified[], path: string, edits: HeaderEdit[]): string {
  for (const { found, rule, jwt } of verified) {
    if (rule.outputPayloadToHeader) {
      edits.push({ op: "add", name: rule.outputPayloadToHeader, value: jwt.payloadSegment });
    }
    for (const { header, claim } of rule.claimToHeaders) {
      const value = claimText(jwt.payload, claim);
      if (value !== undefined) edits.push({ op: "add", name: header, value });
    }
    if (rule.forwardOriginalToken) continue;
    const { location } = found;
    if (location.kind === "param") path = removeParam(path, location.name);
    const removed = edits.some((e) => e.op === "remove" && e.name === location.name);
    if (location.kind === "header" && !removed) edits.push({ op: "remove", name: location.name });
  }
  return path;
}

/** Verifies one token against the rules that found it; the first rule that accepts it wins. */
async function verifyToken(
  found: FoundToken,
  keys: JwksSource,
  nowSeconds: number,
): Promise<TokenResult> {
  const jwt = parseJwt(found.token);
  if (typeof jwt === "string") return { ok: false, status: jwt };
  const candidates = found.rules.filter((r) => r.issuer === "" || r.issuer === jwt.iss);
  if (candidates.length === 0) return { ok: false, status: JwtStatus.JwtUnknownIssuer };
  const time = timeStatus(jwt, nowSeconds);
  if (time) return { ok: false, status: time };
  let first: JwtStatusText | undefined;
  for (const rule of candidates) {
    const status = await verifyWithRule(jwt, rule, keys);
    if (status === undefined) return { ok: true, rule, jwt };
    first ??= status;
  }
  return { ok: false, status: first! };
}

async function verifyWithRule(
  jwt: Jwt,
  rule: JwtRule,
  keys: JwksSource,
): Promise<JwtStatusText | undefined> {
  if (!audienceAllowed(jwt, rule.audiences)) return JwtStatus.JwtAudienceNotAllowed;
  if (rule.inlineKeys !== undefined) {
    // Envoy drops an inline JWKS that does not parse, and then has no key for the issuer.
    if (typeof rule.inlineKeys === "string") return JwtStatus.JwksNoValidKeys;
    return await verifySignature(jwt, rule.inlineKeys);
  }
  const set = await keys.keys(rule.remote!, jwt.kid === "" ? undefined : jwt.kid);
  // istiod inlines a key nobody can sign for when it cannot fetch a JWKS: every token fails so.
  if (!set) return JwtStatus.JwtVerificationFail;
  return await verifySignature(jwt, set);
}

function requestAuth(jwt: Jwt, rule: JwtRule): RequestAuth {
  const claims: Record<string, unknown> = { ...jwt.payload };
  for (const name of rule.spaceDelimitedClaims) {
    const value = claims[name];
    if (typeof value === "string") claims[name] = value.split(" ").filter((s) => s !== "");
  }
  const azp = jwt.payload.azp;
  return {
    principal: `${jwt.iss}/${jwt.sub}`,
    audiences: jwt.audiences,
    ...(typeof azp === "string" ? { presenter: azp } : {}),
    claims,
  };
}

/** A claim as Envoy's `claim_to_headers` writes it: strings, numbers and booleans only. */
function claimText(payload: Readonly<Record<string, unknown>>, claim: string): string | undefined {
  let value: unknown = payload;
  for (const name of claim.split(".")) {
    if (
      typeof value !== "object" || value === null || Array.isArray(value) ||
      !Object.hasOwn(value, name)
    ) return undefined;
    value = (value as Record<string, unknown>)[name];
  }
  if (typeof value === "string") return value === "" ? undefined : value;
  if (typeof value === "boolean") return String(value);
  if (typeof value !== "number") return undefined;
  // `convertClaimDoubleToString`: whole non-negative numbers as integers, others as `%f`.
  return value >= 0 && value < 2 ** 64 && Number.isInteger(value)
    ? BigInt(value).toString()
    : value.toFixed(6);
}

function failure(status: JwtStatusText, request: AuthnRequest): AuthnResult {
  const headers = request.headers;
  const scheme = headers.get("x-forwarded-proto") ?? request.scheme ?? "http";
  const host = request.authority ?? headers.get("host") ?? "";
  const realm = `${scheme}://${host}${request.path.slice(0, MAX_REALM_PATH)}`;
  return {
    ok: false,
    status: status === JwtStatus.JwtAudienceNotAllowed ? 403 : 401,
    body: status,
    headers: { "www-authenticate": `Bearer realm="${realm}", error="invalid_token"` },
  };
}

function isCorsPreflight(request: AuthnRequest): boolean {
  return request.method === "OPTIONS" && !!request.headers.get("origin") &&
    !!request.headers.get("access-control-request-method");
}
