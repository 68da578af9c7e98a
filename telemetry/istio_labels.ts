/**
 * The labels of Istio's standard metrics: their names in Envoy's order (istio/proxy
 * `istio_stats.cc`), the values of a source and a destination in that order, and the response
 * flag as Envoy reports it.
 *
 * Invariants:
 * - `response_flags` only carries Envoy's short flags; anything else (our `RBAC`) becomes `-`,
 *   since Envoy's RBAC filter denies with 403 and no flag (`rbac_access_denied_matched_policy`
 *   is response code details, not a flag).
 */
import { labelText } from "./registry.ts";
import type { PeerLabels } from "./peer_labels.ts";

/** Envoy's response flag short strings (`ResponseFlagUtils`). */
const ENVOY_FLAGS = new Set(
  "UH UF UO NR URX NC DT DC LH UT LR UR UC DI FI RL UAEX RLSE IH SI DPE UPE UMSDR OM DF DO DR UDO"
    .split(" "),
);

export const SOURCE_LABELS = [
  "reporter",
  "source_workload",
  "source_canonical_service",
  "source_canonical_revision",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "source_version",
  "source_cluster",
] as const;
export const DESTINATION_LABELS = [
  "destination_workload",
  "destination_workload_namespace",
  "destination_principal",
  "destination_app",
  "destination_version",
  "destination_service",
  "destination_canonical_service",
  "destination_canonical_revision",
  "destination_service_name",
  "destination_service_namespace",
  "destination_cluster",
] as const;
export const HTTP_OUTCOME_LABELS = [
  "request_protocol",
  "response_code",
  "grpc_response_status",
  "response_flags",
  "connection_security_policy",
] as const;
export const TCP_OUTCOME_LABELS = [
  "request_protocol",
  "response_flags",
  "connection_security_policy",
] as const;

/** HTTP label names in Envoy's order. */
export const HTTP_LABELS: readonly string[] = Object.freeze([
  ...SOURCE_LABELS,
  ...DESTINATION_LABELS,
  ...HTTP_OUTCOME_LABELS,
]);
/** gRPC message counter label names: the source and destination parts only. */
export const MESSAGE_LABELS: readonly string[] = Object.freeze([
  ...SOURCE_LABELS,
  ...DESTINATION_LABELS,
]);
/** TCP label names in Envoy's order (no `response_code`, `grpc_response_status`). */
export const TCP_LABELS: readonly string[] = Object.freeze([
  ...SOURCE_LABELS,
  ...DESTINATION_LABELS,
  ...TCP_OUTCOME_LABELS,
]);

/** The downstream peer: its labels plus the SPIFFE id from its certificate. */
export interface SourceLabels extends PeerLabels {
  /** `source_principal`; `unknown` without a certificate. */
  readonly principal: string;
}

/** The upstream endpoint and service. */
export interface DestinationLabels extends PeerLabels {
  /** The endpoint's SPIFFE id. */
  readonly principal: string;
  /** Service FQDN. */
  readonly service: string;
  readonly serviceName: string;
  readonly serviceNamespace: string;
}
/**
 * Renders the source part of a pair: `reporter="waypoint"` … `source_cluster`.
 *
 * @param s The source labels
 */
export function sourceText(s: SourceLabels): string {
  return labelText(SOURCE_LABELS, sourceValues(s));
}

/**
 * The source label values in {@link HTTP_LABELS} order.
 *
 * @param s The source labels
 */
export function sourceValues(s: SourceLabels): string[] {
  return [
    "waypoint",
    s.workload,
    s.canonicalService,
    s.canonicalRevision,
    s.namespace,
    s.principal,
    s.app,
    s.version,
    s.cluster,
  ];
}

/**
 * Renders the destination part of a pair: `destination_workload` … `destination_cluster`.
 *
 * @param d The destination labels
 */
export function destinationText(d: DestinationLabels): string {
  return labelText(DESTINATION_LABELS, destinationValues(d));
}

/**
 * The destination label values in {@link HTTP_LABELS} order.
 *
 * @param d The destination labels
 */
export function destinationValues(d: DestinationLabels): string[] {
  return [
    d.workload,
    d.namespace,
    d.principal,
    d.app,
    d.version,
    d.service,
    d.canonicalService,
    d.canonicalRevision,
    d.serviceName,
    d.serviceNamespace,
    d.cluster,
  ];
}

/** `connection_security_policy` of a source principal. */
export function securityOf(principal: string): string {
  return principal !== "unknown" ? "mutual_tls" : "none";
}

/**
 * Our flag as Envoy would report it: its short strings kept (comma lists too), others `-`.
 *
 * @param flag Our response flag
 */
export function envoyFlag(flag: string): string {
  if (flag === "-" || ENVOY_FLAGS.has(flag)) return flag;
  const kept = flag.split(",").filter((f) => ENVOY_FLAGS.has(f));
  return kept.length > 0 ? kept.join(",") : "-";
}
