/**
 * The HTTP side of an accepted CONNECT: the inner protocol is spoken with our codecs (HTTP/1.1 or
 * h2c, sniffed for ports of unknown protocol), each request runs the filter chain in its own
 * context, and the one place here turns whatever the chain produced into the response, including
 * gRPC-shaped local replies and WebSocket-style upgrades.
 */
import type { Duplex } from "node:stream";
import {
  EMPTY_BODY,
  type Exchange,
  type Filter,
  grpcStatusForHttp,
  type H1Exchange,
  HeaderMap,
  HttpContext,
  LocalReply,
  runChain,
  serveH1,
  serveH2c,
} from "../http/mod.ts";
import { log } from "../log/mod.ts";
import { splice } from "../tunnel/mod.ts";
import { ipOf } from "./forwarded.ts";
import { ensureRequestId, stripHopByHop } from "./http_headers.ts";
import type { HttpCodec, HttpSession, RequestState } from "./http_state.ts";
import type { ProxyConfig } from "./config.ts";
import { bind } from "../mesh/mod.ts";

/** What serving HTTP needs. */
export interface HttpInputs {
  /** The composed chain, router last. */
  readonly chain: Filter<RequestState>;
  /**
   * The config in force now. With it, each request of a long-lived connection sees the latest
   * config (a revoked ALLOW applies to the next request, not the next connection); without it the
   * connection keeps the config it was accepted with.
   */
  readonly current?: () => ProxyConfig;
  /**
   * Aborted when the waypoint drains (SIGTERM), as Envoy drains: HTTP/1.1 connections close at
   * the next request boundary (the response in flight says `connection: close`, an idle
   * keep-alive closes at once), h2c connections get GOAWAY and finish their streams.
   */
  readonly drain?: AbortSignal;
}

/**
 * Serves the requests of one tunnelled connection until it closes.
 *
 * @param conn The accepted CONNECT stream
 * @param session The connection's peer, destination, config and codec
 * @param inputs The chain
 */
export async function serveHttp(
  conn: Duplex,
  session: HttpSession,
  inputs: HttpInputs,
): Promise<void> {
  let latest = session;
  const handler = (ex: Exchange) => {
    if (inputs.current) latest = refreshed(latest, inputs.current());
    return handleExchange(ex, latest, inputs);
  };
  const drain = inputs.drain;
  if (session.codec === "h2c") await serveH2c(conn, handler, { drain });
  else await serveH1(conn, handler, { remote: parseNode(session.client), drain });
}

/**
 * One request: context, chain, response, access log.
 *
 * @param ex The exchange from either codec
 * @param session Peer, destination, config and codec of the request
 * @param inputs The chain
 */
export async function handleExchange(
  ex: Exchange,
  session: HttpSession,
  inputs: HttpInputs,
): Promise<void> {
  const started = performance.now();
  const head = ex.request;
  const upgrading = "upgradable" in ex && (ex as H1Exchange).upgradable &&
    head.method !== "CONNECT";
  stripHopByHop(head.headers, upgrading);
  const state: RequestState = { ...session, requestId: ensureRequestId(head.headers), attempts: 0 };
  const ctx = new HttpContext({ head, body: ex.body }, state, started);
  await runChain(
    inputs.chain,
    ctx,
    (e) => log.error("Request failed in the chain", { requestId: state.requestId, reason: e }),
  );
  const res = ctx.response!;
  if (res.head.status === 101 && state.upgraded && upgrading) {
    const down = (ex as H1Exchange).upgrade(res.head);
    accessLog(ctx, started);
    await splice(down, state.upgraded);
    return;
  }
  stripHopByHop(res.head.headers);
  const reply = ctx.localReply && isGrpc(head.headers) ? grpcReply(ctx.localReply) : res;
  try {
    await ex.respond(reply.head, reply.body);
  } catch (e) {
    ctx.setFlag("DC");
    log.debug("Response not delivered", { requestId: state.requestId, reason: e });
  } finally {
    accessLog(ctx, started);
  }
}

function accessLog(ctx: HttpContext<RequestState>, started: number): void {
  if (!log.enabled("info")) return;
  const { head } = ctx.request;
  const s = ctx.state;
  log.info("HTTP request", {
    requestId: s.requestId,
    method: head.method,
    authority: head.authority,
    path: head.path,
    status: ctx.response?.head.status ?? 0,
    flag: ctx.flag,
    src: s.peer.identity,
    client: s.client,
    backend: s.backend ?? null,
    endpoint: s.endpoint ? `${s.endpoint.address}:${s.endpoint.port}` : null,
    attempts: s.attempts,
    route: s.route ? `${s.route.rule.route.namespace}/${s.route.rule.route.name}` : null,
    detail: ctx.localReply?.detail || null,
    durationMs: Math.round((performance.now() - started) * 100) / 100,
  });
}

function isGrpc(headers: HeaderMap): boolean {
  return headers.get("content-type")?.startsWith("application/grpc") ?? false;
}

/** A local reply to a gRPC request as a trailers-only gRPC response (HTTP 200). */
function grpcReply(reply: LocalReply) {
  const message = typeof reply.body === "string"
    ? reply.body
    : new TextDecoder().decode(reply.body);
  const headers = new HeaderMap([
    ["content-type", "application/grpc"],
    ["grpc-status", String(reply.grpcStatus ?? grpcStatusForHttp(reply.status))],
  ]);
  if (message) headers.set("grpc-message", encodeURIComponent(message));
  return { head: { status: 200, headers }, body: EMPTY_BODY };
}

/**
 * The session under a newer config: the target bound again, so that the destination (service,
 * endpoints, policies' target) comes from the same config as the policies. A target that the new
 * config no longer binds to us keeps the config it had: ztunnel sends its new connections
 * elsewhere, and this one ends when its client closes it.
 */
function refreshed(session: HttpSession, config: ProxyConfig): HttpSession {
  if (config === session.config) return session;
  const binding = bind(config.mesh, session.target.address, session.target.port);
  if (!binding.ok) return session;
  return { ...session, config, destination: binding.destination };
}

function parseNode(node: string): { address: string; port: number } {
  return { address: ipOf(node), port: Number(node.slice(node.lastIndexOf(":") + 1)) };
}

/** The downstream codec for a port protocol; undefined when the port must be sniffed. */
export function downstreamCodec(protocol: string): HttpCodec | undefined {
  if (protocol === "http") return "http1";
  if (protocol === "http2" || protocol === "grpc") return "h2c";
  return undefined;
}
