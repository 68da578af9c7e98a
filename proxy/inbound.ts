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
import { describe, NoEndpointError, type Outbound, type Upstream } from "./outbound.ts";

/** A CONNECT that may proceed. */
export interface InboundPlan {
  readonly ok: true;
  readonly destination: Destination;
  /** Original client node: `forwarded: for=` from ztunnel, else the TCP peer. */
  readonly client: string;
  /** Service FQDN for the upstream `forwarded: host=`. */
  readonly host?: string;
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
  };
}

/** What the inbound handler needs. */
export interface InboundInputs {
  /** The current config; read once per CONNECT. */
  readonly config: () => ProxyConfig;
  readonly outbound: Outbound;
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
  const plan = planInbound(request, inputs.config().mesh);
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
  let upstream: Upstream;
  try {
    upstream = await inputs.outbound.connect(plan.destination, {
      client: plan.client,
      host: plan.host,
    });
  } catch (e) {
    request.refuse(503);
    log.warn("Upstream failed", {
      ...record,
      destination: describe(plan.destination),
      status: 503,
      upstream: e instanceof TunnelError ? e.peer : null,
      reason: e instanceof TunnelError || e instanceof NoEndpointError ? e.message : String(e),
    });
    return;
  }
  await relay(request, upstream, record, plan.destination, started);
}

async function relay(
  request: InboundStream,
  upstream: Upstream,
  record: Record<string, string>,
  destination: Destination,
  started: number,
): Promise<void> {
  try {
    if (request.gone) throw new Error("Client went away before the upstream answered");
    const result = await splice(request.accept(), upstream.tunnel.stream);
    log.info("Connection closed", {
      ...record,
      destination: describe(destination),
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
    upstream.done();
  }
}
