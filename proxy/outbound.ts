/**
 * Outbound leg: from a destination to an established tunnel to one of its endpoints' ztunnel.
 * `planUpstream` decides (pure); `Outbound.connect` carries the plan out over the pool.
 */
import type { Destination, Endpoint } from "../mesh/mod.ts";
import type { Balancer, LbPolicy } from "../routes/mod.ts";
import type { Tunnel, TunnelTarget } from "../tunnel/mod.ts";
import { buildForwarded, nodeText } from "./forwarded.ts";

/** Who the original client was and which service it meant, carried to the destination. */
export interface UpstreamContext {
  /** Original client node (`ip:port`). */
  readonly client: string;
  /** Destination service FQDN, when traffic was addressed to a service. */
  readonly host?: string;
}

/**
 * The tunnel to open for an endpoint: TCP to `podIP:<ztunnelPort>`, CONNECT `podIP:targetPort`,
 * server identity = the endpoint's workload identity (hbone.md §1.3, §4).
 *
 * @param endpoint The chosen endpoint
 * @param context Original client and service host
 * @param ztunnelPort HBONE port of destination ztunnels
 */
export function planUpstream(
  endpoint: Endpoint,
  context: UpstreamContext,
  ztunnelPort: number,
): TunnelTarget {
  return {
    address: endpoint.address,
    port: ztunnelPort,
    identity: endpoint.identity,
    authority: nodeText(endpoint.address, endpoint.port),
    headers: { forwarded: buildForwarded(context.client, context.host) },
  };
}

/** The endpoints a destination may be served by. */
export function endpointsOf(destination: Destination): readonly Endpoint[] {
  return destination.kind === "service" ? destination.port.endpoints : [destination.endpoint];
}

/** Where a TCP connection may go: endpoints to balance over and how, and a label for logs. */
export interface TcpTarget {
  readonly endpoints: readonly Endpoint[];
  /** The service port's DestinationRule policy; least request for a workload. */
  readonly lbPolicy: LbPolicy;
  /** `Kind ns/name:port`. */
  readonly label: string;
}

/** What {@link Outbound} needs from the tunnel layer. */
export interface TunnelOpener {
  open(target: TunnelTarget): Promise<Tunnel>;
}

/** Inputs of {@link Outbound}. */
export interface OutboundInputs {
  readonly opener: TunnelOpener;
  readonly balancer: Balancer;
  /** @default 15008 */
  readonly ztunnelPort: number;
}

/** A connected upstream; `done` must be called when the connection ends. */
export interface Upstream {
  readonly tunnel: Tunnel;
  readonly endpoint: Endpoint;
  readonly target: TunnelTarget;
  readonly done: () => void;
}

/** Thrown when a destination has no endpoint to send to. */
export class NoEndpointError extends Error {
  constructor(destination: string) {
    super(`No ready endpoint for ${destination}`);
    this.name = "NoEndpointError";
  }
}

/** Opens tunnels to endpoints chosen by the balancer. */
export class Outbound {
  #inputs: OutboundInputs;

  constructor(inputs: OutboundInputs) {
    this.#inputs = inputs;
  }

  /**
   * Picks one of the target's endpoints by its policy and opens a tunnel to it.
   *
   * @param target The endpoints to choose from, the policy, and a label for errors
   * @param context Original client and service host
   * @throws NoEndpointError when there is no endpoint; TunnelError when the tunnel fails
   */
  async connect(target: TcpTarget, context: UpstreamContext): Promise<Upstream> {
    const pick = this.#inputs.balancer.pick(target.endpoints, undefined, target.lbPolicy);
    if (!pick) throw new NoEndpointError(target.label);
    const plan = planUpstream(pick.endpoint, context, this.#inputs.ztunnelPort);
    try {
      const tunnel = await this.#inputs.opener.open(plan);
      return { tunnel, endpoint: pick.endpoint, target: plan, done: pick.done };
    } catch (e) {
      pick.done();
      throw e;
    }
  }
}

/** `Service ns/name:port` or `Pod ns/name:port`, for logs. */
export function describe(destination: Destination): string {
  return destination.kind === "service"
    ? `${destination.service.kind} ${destination.service.namespace}/${destination.service.name}:${destination.port.port}`
    : `${destination.workload.kind} ${destination.workload.namespace}/${destination.workload.name}:${destination.port}`;
}
