/**
 * Inbound leg: one CONNECT from a ztunnel, over HBONE or over the sandwich listener (PROXY v2).
 * Phases, as in ztunnel's `inbound.rs`:
 * 1. `planInbound` (pure) checks the method, parses `:authority` and asks the mesh whether the
 *    target is bound to this waypoint, failing with a status before any data flows;
 * 2. the upstream tunnel is opened, and only if it answers 200 do we answer 200 (TCP ports);
 * 3. bytes are spliced, and the connection ends in exactly one result log line.
 */
import type { Duplex } from "node:stream";
import { log } from "../log/mod.ts";
import { bind, type Destination, type Snapshot } from "../mesh/mod.ts";
import { authorize } from "../policy/mod.ts";
import {
  accept,
  type ConnectRequest,
  parseAuthority,
  type Peer,
  refuse,
  type SandwichConnection,
  splice,
  TunnelError,
} from "../tunnel/mod.ts";
import type { ProxyConfig } from "./config.ts";
import { forwardedFor, nodeText } from "./forwarded.ts";
import { tcpAuthzRequest } from "./policy_filters.ts";
import { NoEndpointError, type Outbound, type Upstream } from "./outbound.ts";
import { downstreamCodec, type HttpInputs, serveHttp } from "./http_serve.ts";
import { sniff } from "./sniff.ts";
import {
  type AccessLogs,
  type IstioMetrics,
  recordTcp,
  type TcpConnection,
} from "../telemetry/mod.ts";
import { tcpTarget } from "./tcp_plan.ts";

/** A CONNECT that may proceed. */
export interface InboundPlan {
  readonly ok: true;
  readonly destination: Destination;
  /** Original client node: `forwarded: for=` from ztunnel, else the TCP peer. */
  readonly client: string;
  /** Service FQDN for the upstream `forwarded: host=`. */
  readonly host?: string;
  /** The parsed CONNECT target. */
  readonly target: { readonly address: string; readonly port: number };
}

/** A CONNECT refused before any data, with the status to answer. */
export interface InboundRejection {
  readonly ok: false;
  readonly status: 400 | 404 | 405;
  readonly reason: string;
}

/** The parts of a CONNECT that planning reads. */
export type InboundRequest = Pick<ConnectRequest, "method" | "authority" | "headers" | "peer">;

/** A CONNECT from either listener, with the two ways to answer it. */
export interface InboundStream extends InboundRequest {
  /** Ends the stream with a non-200 status (HBONE) or closes it (sandwich). */
  refuse(status: number): void;
  /** Answers 200 when the transport has one; returns the byte stream to splice. */
  accept(): Duplex;
  /** Whether the client already went away. */
  readonly gone: boolean;
}

/** Adapts an HBONE CONNECT stream. */
export function fromHbone(request: ConnectRequest): InboundStream {
  const { stream } = request;
  return {
    ...request,
    refuse: (status) => refuse(stream, status),
    accept: () => {
      accept(stream);
      return stream;
    },
    get gone() {
      return stream.destroyed;
    },
  };
}

/**
 * Adapts a sandwich connection: the PROXY header's destination is the target, its source the
 * client, TLV 0xD0 the identity; refusing closes the socket since there is no status to send.
 */
export function fromSandwich(connection: SandwichConnection): InboundStream {
  const { header, socket } = connection;
  const dst = header.destination!, src = header.source!;
  const peer: Peer = {
    identity: connection.identity,
    address: socket.remoteAddress ?? "",
    port: socket.remotePort ?? 0,
  };
  return {
    method: "CONNECT",
    authority: nodeText(dst.address, dst.port),
    headers: { forwarded: `for="${nodeText(src.address, src.port)}"` },
    peer,
    refuse: () => socket.destroy(),
    accept: () => {
      socket.resume();
      return socket;
    },
    get gone() {
      return socket.destroyed;
    },
  };
}

/**
 * Decides what to do with a CONNECT: 405 for another method, 400 for an unparsable authority,
 * 404 for a target not bound to this waypoint.
 *
 * @param request Method, authority, headers and peer of the stream
 * @param snapshot The mesh as this request sees it
 */
export function planInbound(
  request: InboundRequest,
  snapshot: Snapshot,
): InboundPlan | InboundRejection {
  if (request.method !== "CONNECT") {
    return { ok: false, status: 405, reason: `method ${request.method} is not CONNECT` };
  }
  const target = parseAuthority(request.authority);
  if (!target) {
    return { ok: false, status: 400, reason: `authority "${request.authority}" is not ip:port` };
  }
  const binding = bind(snapshot, target.host, target.port);
  if (!binding.ok) return { ok: false, status: 404, reason: binding.reason };
  const destination = binding.destination;
  const fwd = request.headers["forwarded"];
  return {
    ok: true,
    destination,
    client: forwardedFor(Array.isArray(fwd) ? fwd[0] : fwd) ??
      nodeText(request.peer.address, request.peer.port),
    host: destination.kind === "service" ? destination.service.hostname : undefined,
    target: { address: target.host, port: target.port },
  };
}

/** What the inbound handler needs. */
export interface InboundInputs {
  /** The current config; read once per CONNECT, and per request by HTTP when `http.current`. */
  readonly config: () => ProxyConfig;
  readonly outbound: Outbound;
  /** The HTTP chain, for HTTP ports and sniffed HTTP. */
  readonly http: HttpInputs;
  /** Wait for a client's first bytes on ports of unknown protocol. @default 1000 */
  readonly sniffTimeoutMs?: number;
  /** Istio's standard metrics, for TCP connections (HTTP is the chain's metrics filter). */
  readonly metrics?: IstioMetrics;
  /** Telemetry access logs, for TCP connections (HTTP's are the metrics filter's). */
  readonly accessLogs?: AccessLogs;
}

/**
 * Makes the stream handler of the waypoint, for either listener.
 *
 * @param inputs Snapshot reader and outbound connector
 * @returns A handler for {@link InboundStream}s
 */
export function inboundHandler(inputs: InboundInputs): (request: InboundStream) => void {
  return (request) => {
    void serveConnect(inputs, request);
  };
}

async function serveConnect(inputs: InboundInputs, request: InboundStream): Promise<void> {
  const started = performance.now();
  const config = inputs.config();
  const plan = planInbound(request, config.mesh);
  const record = {
    src: request.peer.identity,
    peer: nodeText(request.peer.address, request.peer.port),
    authority: request.authority,
  };
  if (!plan.ok) {
    request.refuse(plan.status);
    log.warn("CONNECT refused", { ...record, status: plan.status, reason: plan.reason });
    return;
  }
  const protocol = protocolOf(plan.destination);
  const codec = downstreamCodec(protocol);
  if (!codec && protocol !== "unknown") {
    return await relayTcp(inputs, request, plan, record, started);
  }
  // HTTP ports answer 200 at once; upstream failures become HTTP responses.
  const conn = request.accept();
  const kind = codec ?? await sniff(conn, inputs.sniffTimeoutMs);
  if (kind === "tcp") return await relayTcp(inputs, request, plan, record, started, conn);
  await serveHttp(conn, {
    config,
    destination: plan.destination,
    peer: request.peer,
    client: plan.client,
    target: plan.target,
    codec: kind,
    baggage: baggageOf(request.headers),
  }, inputs.http);
}

/** The port protocol of a destination. */
function protocolOf(destination: Destination): string {
  return destination.kind === "service" ? destination.port.protocol : destination.protocol;
}

/**
 * TCP: open the upstream first and answer 200 only when it answered 200 (as ztunnel does), unless
 * the stream was already accepted for sniffing; then splice.
 */
async function relayTcp(
  inputs: InboundInputs,
  request: InboundStream,
  plan: InboundPlan,
  record: Record<string, string>,
  started: number,
  accepted?: Duplex,
): Promise<void> {
  const config = inputs.config();
  const decision = authorize(
    config.authz,
    tcpAuthzRequest({ ...plan, peer: request.peer }),
  );
  const facts = {
    mesh: config.mesh,
    identity: request.peer.identity,
    client: plan.client,
    baggage: baggageOf(request.headers),
    destination: plan.destination,
    telemetry: config.telemetry,
    target: plan.target,
    sni: request.peer.sni,
  };
  const meter = (extra: Partial<TcpConnection> = {}) =>
    inputs.metrics
      ? recordTcp(inputs.metrics, { ...facts, ...extra }, inputs.accessLogs)
      : undefined;
  if (!decision.allow) {
    // Envoy's network RBAC filter closes with these details.
    const termination = `rbac_access_denied_matched_policy[${decision.policy ?? "none"}]`;
    meter({ termination })?.close({ sent: 0, received: 0 });
    // ztunnel answers an L4 policy denial with 401 on the CONNECT; after a 200 we can only close.
    if (accepted) accepted.destroy();
    else request.refuse(401);
    log.warn("Connection denied", {
      ...record,
      status: 401,
      policy: decision.policy ?? null,
      reason: decision.details,
    });
    return;
  }
  const target = tcpTarget(config, plan.destination, Math.random);
  let upstream: Upstream;
  try {
    upstream = await inputs.outbound.connect(target, { client: plan.client, host: plan.host });
  } catch (e) {
    const failure = e instanceof Error ? e.message : String(e);
    meter({ flag: e instanceof NoEndpointError ? "UH" : "UF", failure })?.close({
      sent: 0,
      received: 0,
    });
    if (accepted) accepted.destroy();
    else request.refuse(503);
    log.warn("Upstream failed", {
      ...record,
      destination: target.label,
      status: 503,
      upstream: e instanceof TunnelError ? e.peer : null,
      reason: e instanceof TunnelError || e instanceof NoEndpointError ? e.message : String(e),
    });
    return;
  }
  // Counted as bytes flow: the periodic TCP report reads it while the splice runs.
  const flow = { aToB: 0, bToA: 0 };
  const bytes = () => ({ sent: flow.bToA, received: flow.aToB });
  const tcp = meter({ endpoint: upstream.endpoint, bytes });
  try {
    if (request.gone) throw new Error("Client went away before the upstream answered");
    const result = await splice(accepted ?? request.accept(), upstream.tunnel.stream, flow);
    log.info("Connection closed", {
      ...record,
      destination: target.label,
      endpoint: upstream.target.authority,
      dst: upstream.endpoint.identity,
      sent: result.bToA,
      received: result.aToB,
      durationMs: Math.round(performance.now() - started),
      error: result.error?.message ?? null,
    });
  } catch (e) {
    upstream.tunnel.stream.destroy();
    log.warn("Connection aborted", { ...record, reason: e });
  } finally {
    tcp?.close(bytes());
    upstream.done();
  }
}

/** The CONNECT's `baggage` header as one string. */
function baggageOf(headers: InboundRequest["headers"]): string | undefined {
  const b = headers["baggage"];
  return Array.isArray(b) ? b.join(",") : b === undefined ? undefined : String(b);
}
