/**
 * @module
 * Istio's request policies for the waypoint: AuthorizationPolicy (CUSTOM → DENY → ALLOW with
 * AUDIT and dry-run, every source, operation and `when` attribute, path normalization and
 * templates) and RequestAuthentication (JWT extraction and verification with `npm:jose`, JWKS
 * retrieval and caching). Policies attach to this waypoint through `targetRefs` (its Gateway, the
 * `istio-waypoint` GatewayClass from the root namespace, or a Service/ServiceEntry); `selector`
 * policies are ztunnel's and are ignored here, as in Istio.
 *
 * Compile once per snapshot (`compileAuthorizationPolicies`, `compileRequestAuthentications`),
 * then decide per request (`authorize`, `authenticate`): the decision functions take and return
 * plain data. The resource head reader and `targetRefs` attachment (`readHeads`, `attachmentOf`,
 * `TargetIndex`) are shared with other kinds that attach like policies (WasmPlugin).
 *
 * Must not: reach the network except to fetch JWKS (`RemoteJwks`, in the background and behind
 * {@link JwksSource}), or read a clock or global state while deciding.
 */
export {
  authorize,
  type AuthzAllow,
  type AuthzDecision,
  type AuthzDeny,
  type AuthzRequest,
  type CustomCheck,
  customChecks,
  type DryRunResult,
  type PolicyTarget,
  type RequestAuth,
} from "./authz.ts";
export {
  compileAuthorizationPolicies,
  type CompiledPolicies,
  type PolicyContext,
} from "./authz_compile.ts";
export { authenticate, type AuthnRequest, type AuthnResult, type HeaderEdit } from "./authn.ts";
export {
  type CompiledAuthn,
  compileRequestAuthentications,
  type JwtRule,
  type TokenLocation,
} from "./request_authn.ts";
export {
  type JwksRef,
  type JwksSource,
  type KeySet,
  RemoteJwks,
  type RemoteJwksOptions,
} from "./jwks.ts";
export { normalizePath, type PathNormalization, urlPath } from "./path.ts";
export { PolicyError, type PolicyErrorKind } from "./errors.ts";
export {
  located,
  type PolicyHead,
  type PolicySource,
  readHeads,
  reportHead,
  type TargetRef,
} from "./_resource.ts";
export { type AttachContext, type Attachment, attachmentOf, TargetIndex } from "./_attach.ts";
export { type Fields, Schema, show } from "./_schema.ts";
