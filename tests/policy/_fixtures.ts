/**
 * Builders for policy tests: a small mesh bound to `mesh/waypoint`, policy documents written as
 * YAML (JSON flow style), compile helpers and a base request. Istio's JWT fixtures are read in
 * place from the shared fixtures folder.
 */
import { parseConfigText, type Problem, type Snapshot } from "../../mesh/mod.ts";
import {
  type AuthzRequest,
  compileAuthorizationPolicies,
  type CompiledAuthn,
  type CompiledPolicies,
  compileRequestAuthentications,
  type PolicyContext,
  type RequestAuth,
} from "../../policy/mod.ts";
import { HeaderMap } from "../../http/types.ts";
import * as k8s from "../fixtures/mesh/builders.ts";

/** `shared/fixtures/` beside the repository, as the team's machines and CI lay it out. */
export const SHARED_FIXTURES = new URL("../../../shared/fixtures", import.meta.url).pathname;

/** Istio's JWT test data (read only, never copied). */
export const JWT_FIXTURES = Deno.env.get("WAYPOINT_JWT_FIXTURES") ?? SHARED_FIXTURES + "/jwt";

const USE = { "istio.io/use-waypoint": "waypoint" };

/** A ServiceEntry `mesh/ext` bound to the waypoint. */
const SERVICE_ENTRY = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: mesh, labels: ${JSON.stringify(USE)} }
spec:
  hosts: [api.example.com]
  addresses: [240.0.0.1]
  ports: [{ number: 443, name: tls, protocol: TLS }]
  resolution: STATIC
  endpoints: [{ address: 10.9.0.1 }]`;

/** Services `mesh/a` (http 80, tcp 9000), `mesh/b` (http 80), ServiceEntry `mesh/ext`, `other/c`. */
export const MESH_YAML = k8s.yamlDocs(
  k8s.gateway(),
  k8s.namespace("mesh", USE),
  k8s.namespace("other", { ...USE, "istio.io/use-waypoint-namespace": "mesh" }),
  k8s.service("mesh", "a", "10.0.0.1", {
    ports: [{ name: "http", port: 80, targetPort: 8080 }, { name: "tcp", port: 9000 }],
  }),
  k8s.service("mesh", "b", "10.0.0.2"),
  k8s.service("other", "c", "10.0.0.3"),
  SERVICE_ENTRY,
);

/** The snapshot tests compile against; trust domain `cluster.local`. */
export function meshSnapshot(
  options: { trustDomain?: string; trustDomainAliases?: string[] } = {},
): Snapshot {
  const { snapshot, problems } = k8s.snapshotFromYaml(MESH_YAML, options);
  if (problems.some((p) => p.severity === "error")) {
    throw new Error(`Bad test mesh: ${JSON.stringify(problems)}`);
  }
  return snapshot;
}

const MESH = meshSnapshot();

/** A compile context for `mesh/waypoint` with root namespace `istio-system`. */
export function policyContext(overrides: Partial<PolicyContext> = {}): PolicyContext {
  const mesh = overrides.mesh ?? MESH;
  return { self: mesh.self, rootNamespace: "istio-system", mesh, ...overrides };
}

/** An AuthorizationPolicy document. */
export function authzPolicy(
  name: string,
  spec: unknown,
  namespace = "mesh",
  annotations: Record<string, string> = {},
): string {
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: ${namespace}, annotations: ${JSON.stringify(annotations)} }
spec: ${JSON.stringify(spec)}`;
}

/** A RequestAuthentication document. */
export function authnPolicy(name: string, spec: unknown, namespace = "mesh"): string {
  return `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: ${name}, namespace: ${namespace} }
spec: ${JSON.stringify(spec)}`;
}

/** `targetRefs` to Service `mesh/a`. */
export const TO_A = { targetRefs: [{ kind: "Service", group: "", name: "a" }] };
/** `targetRefs` to this waypoint's Gateway. */
export const TO_GATEWAY = {
  targetRefs: [{ kind: "Gateway", group: "gateway.networking.k8s.io", name: "waypoint" }],
};

/** Compiles AuthorizationPolicies from YAML documents. */
export function compileAuthz(
  docs: readonly string[],
  overrides: Partial<PolicyContext> = {},
): { policies: CompiledPolicies; problems: Problem[] } {
  const { documents, problems } = parseConfigText(k8s.yamlDocs(...docs), "policies.yaml");
  if (problems.length > 0) throw new Error(`Bad test YAML: ${JSON.stringify(problems)}`);
  return compileAuthorizationPolicies(documents, policyContext(overrides));
}

/** Compiles RequestAuthentications from YAML documents. */
export function compileAuthn(
  docs: readonly string[],
): { authn: CompiledAuthn; problems: Problem[] } {
  const { documents, problems } = parseConfigText(k8s.yamlDocs(...docs), "authn.yaml");
  if (problems.length > 0) throw new Error(`Bad test YAML: ${JSON.stringify(problems)}`);
  return compileRequestAuthentications(documents, policyContext());
}

/** Service `mesh/a` as a request target. */
export const SERVICE_A = { kind: "Service", namespace: "mesh", name: "a" } as const;

/** A request option set: any request field, and headers as pairs. */
export type RequestOverrides = Partial<Omit<AuthzRequest, "headers">> & {
  headers?: [string, string][];
};

/** An HTTP GET from `mesh/client` (10.1.0.5) to `a.mesh.svc.cluster.local:80/`, with overrides. */
export function request(overrides: RequestOverrides = {}): AuthzRequest {
  const { headers, ...rest } = overrides;
  return {
    target: SERVICE_A,
    protocol: "http",
    destinationIp: "10.0.0.1",
    destinationPort: 80,
    sourcePrincipal: "spiffe://cluster.local/ns/mesh/sa/client",
    sourceIp: "10.1.0.5",
    method: "GET",
    host: "a.mesh.svc.cluster.local",
    path: "/",
    headers: new HeaderMap(headers ?? []),
    ...rest,
  };
}

/** `request.auth` for a verified token with these claims. */
export function tokenAuth(claims: Record<string, unknown>): RequestAuth {
  const aud = claims.aud;
  return {
    principal: `${claims.iss}/${claims.sub}`,
    audiences: typeof aud === "string" ? [aud] : (aud as string[] | undefined) ?? [],
    ...(typeof claims.azp === "string" ? { presenter: claims.azp } : {}),
    claims,
  };
}

/** Reads one of Istio's fixture files, trimmed. */
export function fixture(path: string): string {
  return Deno.readTextFileSync(`${JWT_FIXTURES}/${path}`).trim();
}
