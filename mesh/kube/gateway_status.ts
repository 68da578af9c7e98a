/**
 * Writes our Gateway's status: `status.addresses` and the Accepted and Programmed conditions.
 * ztunnel only sends traffic to a waypoint whose Gateway has a status address (istiod's ambient
 * index skips Gateways without one; hbone.md §3.1), so without istiod's gateway controller
 * writing it for our class, this is what makes the waypoint reachable.
 *
 * Invariants:
 * - Only the Lease holder writes (see `lease.ts`); followers never touch the Gateway.
 * - A write happens only when the status differs from what we would write (addresses, or a
 *   condition's status, reason or observedGeneration), so a steady state costs one GET a resync.
 * - Conditions of other types (set by other controllers) are kept: a merge patch replaces lists
 *   whole, so the patch carries them along.
 */
import { log as defaultLog, type Logger } from "../../log/mod.ts";
import { sleep } from "./_backoff.ts";
import { KubeApiError, KubeClient } from "./client.ts";
import { KubeAccess } from "./kubeconfig.ts";
import { LeaderElector, type LeaseOptions } from "./lease.ts";

/** A Gateway status address. */
export interface GatewayAddress {
  readonly type: "Hostname" | "IPAddress";
  readonly value: string;
}

/** A `metav1.Condition`. */
export interface Condition {
  readonly type: string;
  readonly status: "True" | "False" | "Unknown";
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
  readonly lastTransitionTime: string;
}

/** The Gateway as far as the writer reads it. */
export interface GatewayObject {
  readonly metadata?: { readonly generation?: number };
  readonly status?: {
    readonly addresses?: readonly GatewayAddress[];
    readonly conditions?: readonly Condition[];
  };
}

/** Which Gateway, and the address to publish. */
export interface GatewayStatusOptions {
  readonly namespace: string;
  readonly name: string;
  /** For the Service hostname `<name>.<namespace>.svc.<clusterDomain>`. @default "cluster.local" */
  readonly clusterDomain?: string;
  /** Publish this IP (type IPAddress) instead of the Service hostname. */
  readonly ip?: string;
  /** How often the leader re-checks the status. @default 30_000 */
  readonly resyncMs?: number;
  /** @default the process logger */
  readonly logger?: Logger;
}

const OURS = ["Accepted", "Programmed"];

/**
 * The status the waypoint wants on its Gateway, or undefined when it already has it.
 *
 * @param gateway The Gateway now
 * @param options Our address choice
 * @param now For the lastTransitionTime of a condition that changes
 * @returns The `status` to merge-patch, or undefined when nothing differs
 */
export function statusPatch(
  gateway: GatewayObject,
  options: Pick<GatewayStatusOptions, "namespace" | "name" | "clusterDomain" | "ip">,
  now: Date,
): GatewayObject["status"] | undefined {
  const addresses: GatewayAddress[] = options.ip ? [{ type: "IPAddress", value: options.ip }] : [{
    type: "Hostname",
    value: `${options.name}.${options.namespace}.svc.${options.clusterDomain ?? "cluster.local"}`,
  }];
  const generation = gateway.metadata?.generation;
  const existing = gateway.status?.conditions ?? [];
  let changed = JSON.stringify(gateway.status?.addresses ?? []) !== JSON.stringify(addresses);
  const ours = OURS.map((type): Condition => {
    const old = existing.find((c) => c.type === type);
    const same = old?.status === "True" && old.reason === type;
    if (!same || old.observedGeneration !== generation) changed = true;
    return {
      type,
      status: "True",
      reason: type,
      message: type === "Accepted"
        ? "Accepted by the waypoint"
        : "The waypoint serves this Gateway",
      ...(generation === undefined ? {} : { observedGeneration: generation }),
      lastTransitionTime: same ? old.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, "Z"),
    };
  });
  if (!changed) return undefined;
  return { addresses, conditions: [...existing.filter((c) => !OURS.includes(c.type)), ...ours] };
}

/**
 * Compares the Gateway's status with what we want and merge-patches its status subresource.
 *
 * @param client The API client
 * @param options Which Gateway and its address
 * @returns `written`, `unchanged`, or `missing` when the Gateway does not exist
 * @throws KubeApiError for any other failure
 */
export async function syncGatewayStatus(
  client: KubeClient,
  options: GatewayStatusOptions,
): Promise<"written" | "unchanged" | "missing"> {
  const path = `/apis/gateway.networking.k8s.io/v1/namespaces/${
    encodeURIComponent(options.namespace)
  }/gateways/${encodeURIComponent(options.name)}`;
  let gateway: GatewayObject;
  try {
    gateway = await client.request("GET", path) as GatewayObject;
  } catch (error) {
    if (error instanceof KubeApiError && error.status === 404) return "missing";
    throw error;
  }
  const status = statusPatch(gateway, options, new Date());
  if (!status) return "unchanged";
  await client.request("PATCH", `${path}/status`, {
    body: { status },
    contentType: "application/merge-patch+json",
  });
  return "written";
}

/** A running status writer. */
export interface GatewayStatusWriter {
  /** Whether this replica holds the Lease. */
  readonly isLeader: boolean;
  /** Releases the Lease and stops. */
  close(): Promise<void>;
}

/**
 * Elects a leader among the waypoint's replicas and, while leading, keeps the Gateway's status
 * written.
 *
 * @param options The Gateway, the address, `kubeconfig` (in-cluster when absent), this replica's
 *   `identity` (the pod name) and Lease timings; the Lease is `<gateway>-waypoint-status` in the
 *   Gateway's namespace
 * @returns The writer
 * @throws Error when the API access cannot be set up
 */
export async function startGatewayStatus(
  options: GatewayStatusOptions & {
    readonly kubeconfig?: string;
    readonly identity: string;
    readonly lease?: Partial<Omit<LeaseOptions, "identity" | "onLeading">>;
  },
): Promise<GatewayStatusWriter> {
  const logger = options.logger ?? defaultLog;
  const access = await KubeAccess.fromEnvironment(options.kubeconfig);
  const client = new KubeClient(access);
  let term: { abort: AbortController; loop: Promise<void> } | undefined;
  const lead = (signal: AbortSignal) => async () => {
    while (!signal.aborted) {
      try {
        const outcome = await syncGatewayStatus(client, options);
        if (outcome !== "unchanged") {
          logger.info("Gateway status", {
            gateway: `${options.namespace}/${options.name}`,
            outcome,
          });
        }
      } catch (error) {
        logger.warn("Gateway status not written", {
          gateway: `${options.namespace}/${options.name}`,
          error,
        });
      }
      await sleep(options.resyncMs ?? 30_000, signal);
    }
  };
  const stopTerm = async () => {
    const ending = term;
    term = undefined;
    ending?.abort.abort();
    await ending?.loop;
  };
  const elector = new LeaderElector(client, {
    namespace: options.namespace,
    name: `${options.name}-waypoint-status`,
    ...options.lease,
    identity: options.identity,
    logger,
    onLeading: (leading) => {
      if (leading && !term) {
        const abort = new AbortController();
        term = { abort, loop: lead(abort.signal)() };
      } else if (!leading) {
        void stopTerm();
      }
    },
  });
  elector.start();
  return {
    get isLeader() {
      return elector.isLeader;
    },
    async close() {
      await elector.close();
      await stopTerm();
      access.close();
    },
  };
}
