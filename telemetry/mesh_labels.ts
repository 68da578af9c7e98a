/**
 * Source and destination labels from the mesh model, as an Envoy waypoint fills them
 * (istio/proxy `istio_stats.cc`, `populatePeerInfo` for `SERVER_GATEWAY`): the source from the
 * workload at the client's address, else ztunnel's `baggage`, with the principal from the peer
 * certificate; the destination from the endpoint that served and the service it belongs to.
 *
 * Invariants:
 * - Pure: plain data in, plain data out; no clock, no global.
 * - The source namespace comes from the SPIFFE id first, then from what the model or baggage
 *   knows, as Envoy prefers the SAN's namespace.
 * - An unknown source still reports revision `latest` (Envoy's fallback for sources); an unknown
 *   destination reports `unknown` for all of its workload labels.
 */
import type { Destination, Endpoint, Service, Snapshot } from "../mesh/mod.ts";
import type { DestinationLabels, SourceLabels } from "./istio_labels.ts";
import {
  namespaceOfIdentity,
  peerFromBaggage,
  peerFromWorkload,
  UNKNOWN,
  UNKNOWN_PEER,
} from "./peer_labels.ts";

/** What a connection tells about its source. */
export interface SourceFacts {
  /** SPIFFE id from the peer certificate; empty when there is none. */
  readonly identity: string;
  /** The original client `ip:port` (`forwarded: for=` from ztunnel, else the TCP peer). */
  readonly client: string;
  /** The CONNECT's `baggage` header, if any. */
  readonly baggage?: string;
}

/**
 * Labels of the source of a connection.
 *
 * @example
 * ```ts
 * sourceLabels(snapshot, { identity: "spiffe://cluster.local/ns/a/sa/b", client: "10.0.0.9:4711" }, "Kubernetes");
 * ```
 *
 * @param mesh The snapshot the connection started with
 * @param facts Identity, client address and baggage
 * @param cluster The cluster the model describes
 * @returns The source labels
 */
export function sourceLabels(mesh: Snapshot, facts: SourceFacts, cluster: string): SourceLabels {
  const workload = mesh.workloadsByAddress.get(hostOf(facts.client));
  const peer = workload
    ? peerFromWorkload(workload, cluster)
    : peerFromBaggage(facts.baggage) ?? { ...UNKNOWN_PEER, canonicalRevision: "latest" };
  return {
    ...peer,
    namespace: namespaceOfIdentity(facts.identity) ?? peer.namespace,
    principal: facts.identity || UNKNOWN,
  };
}

/**
 * Labels of the destination of a request or connection.
 *
 * @param mesh The snapshot the endpoint came from
 * @param service The service that was routed to, if any
 * @param endpoint The endpoint of the last try, if one was picked
 * @param cluster The cluster the model describes
 * @returns The destination labels
 */
export function destinationLabels(
  mesh: Snapshot,
  service: Service | undefined,
  endpoint: Endpoint | undefined,
  cluster: string,
): DestinationLabels {
  const workload = endpoint ? mesh.workloadsByAddress.get(endpoint.address) : undefined;
  const peer = workload ? peerFromWorkload(workload, cluster) : endpoint
    ? {
      ...UNKNOWN_PEER,
      workload: endpoint.workload.kind === "ServiceEntry" ? UNKNOWN : endpoint.workload.name,
      namespace: endpoint.workload.namespace || UNKNOWN,
      cluster,
    }
    : { ...UNKNOWN_PEER, cluster };
  return {
    ...peer,
    principal: endpoint?.identity || UNKNOWN,
    // Envoy falls back to the canonical service when the cluster names no service.
    service: service?.hostname ?? peer.canonicalService,
    serviceName: service?.name ?? peer.canonicalService,
    serviceNamespace: service?.namespace ?? UNKNOWN,
  };
}

/** The service and endpoint a destination resolved to. */
export interface ServedBy {
  readonly service?: Service;
  readonly endpoint?: Endpoint;
}

/**
 * Which service and endpoint to label: the routed backend and the endpoint of the last try when
 * known, else what the CONNECT target was (its service, or the workload as its own endpoint).
 *
 * @param destination The CONNECT's destination
 * @param routed The backend service and endpoint the router chose, if it ran
 * @returns The service and endpoint for the labels
 */
export function servedBy(destination: Destination, routed: ServedBy = {}): ServedBy {
  return {
    service: routed.service ?? (destination.kind === "service" ? destination.service : undefined),
    endpoint: routed.endpoint ??
      (destination.kind === "workload" ? destination.endpoint : undefined),
  };
}

/** The host of `ip:port` or `[v6]:port`. */
export function hostOf(node: string): string {
  if (node.startsWith("[")) return node.slice(1, node.indexOf("]"));
  const colon = node.lastIndexOf(":");
  return colon < 0 || node.indexOf(":") !== colon ? node : node.slice(0, colon);
}
