/**
 * HBONE server: TLS 1.3 with a required client certificate, HTTP/2 (our own, `h2/`), one CONNECT
 * stream per tunnelled connection. It knows nothing of the mesh: each stream is handed to a handler with the
 * peer's identity, and the handler answers it with {@link refuse} or {@link accept}.
 *
 * Invariants:
 * - Only peers whose certificate chains to our root and whose SPIFFE id is in an accepted trust
 *   domain get an HTTP/2 session; others are dropped right after the handshake.
 * - Certificate reloads apply to new handshakes only; live sessions keep going.
 * - `drain()` sends every session a shutdown notice, then (1 s later) the final GOAWAY, and keeps
 *   accepting: a session that starts while draining gets GOAWAY right after its first stream, so
 *   a ztunnel that has not yet heard that we are going away is still served, and is told to go
 *   elsewhere for the next stream (Envoy's `drain_listeners?graceful` with Istio's
 *   `--drain-strategy immediate`).
 * - `close()` stops accepting, drains, and resolves as soon as the last session is gone; sessions
 *   still open after the grace are destroyed. Open streams (TCP splices included) are never cut
 *   before the grace ends.
 */
import tls from "node:tls";
import type { TLSSocket } from "node:tls";
import { type H2Headers, type H2Session, type H2Stream, serveH2 } from "../h2/mod.ts";
import { log } from "../log/mod.ts";
import { CIPHERS, h2Options, type TunnelConfig } from "./config.ts";
import { IdentitySource, spiffeIdOf } from "./identity.ts";
import { parseSpiffeId } from "./spiffe.ts";

/** The authenticated peer of a session. */
export interface Peer {
  /** SPIFFE id from the client certificate. */
  readonly identity: string;
  readonly address: string;
  readonly port: number;
  /** The server name (SNI) the client's TLS handshake asked for, if any. */
  readonly sni?: string;
}

/** One incoming stream, before it is answered. */
export interface ConnectRequest {
  readonly method: string;
  /** `:authority` as sent, not yet parsed. */
  readonly authority: string;
  readonly headers: H2Headers;
  readonly peer: Peer;
  /** The address and port the TCP connection arrived on. */
  readonly localAddress: string;
  readonly localPort: number;
  readonly stream: H2Stream;
}

/** Options for {@link listenHbone}. */
export interface HboneServerOptions {
  /** Our certificate and roots; reloads are applied to new handshakes. */
  identity: IdentitySource;
  /** Trust domains whose peers are accepted. @default [our own trust domain] */
  trustDomains?: () => readonly string[];
  config: TunnelConfig;
  /** Called once per stream; must answer it. */
  handler: (request: ConnectRequest) => void;
}

/** A listening HBONE server. */
export interface HboneServer {
  /** `ip:port` actually bound. */
  readonly address: string;
  readonly port: number;
  /** Open sessions right now. */
  readonly sessions: number;
  /** Sessions we ended for a peer's fault, by reason (floods, protocol errors), since start. */
  readonly goaways: ReadonlyMap<string, number>;
  /** GOAWAY to live sessions and to each new one after its first stream; keeps accepting. */
  drain(): void;
  /** Stops accepting, GOAWAYs live sessions, resolves when they are gone or after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts an HBONE server.
 *
 * @param hostname Address to bind
 * @param port Port to bind (0 picks one)
 * @param options Identity, accepted trust domains, tunables and the stream handler
 * @returns The server once it is listening
 * @throws Error when the address cannot be bound
 */
export function listenHbone(
  hostname: string,
  port: number,
  options: HboneServerOptions,
): Promise<HboneServer> {
  const { identity, config, handler } = options;
  const trustDomains = options.trustDomains ?? (() => [identity.current.trustDomain]);
  const server = tls.createServer({
    ...tlsOptions(identity),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
    ciphers: CIPHERS,
    ALPNProtocols: ["h2"],
    handshakeTimeout: config.handshakeTimeoutMs,
  });
  const unsubscribe = identity.subscribe(() => server.setSecureContext(tlsOptions(identity)));
  const sessions = new Set<H2Session>();
  const goaways = new Map<string, number>();
  const h2 = h2Options(config);
  const state = { draining: false, closed: false };

  server.on("secureConnection", (socket: TLSSocket) => {
    const id = spiffeIdOf(socket.getPeerCertificate()?.subjectaltname);
    const td = id ? parseSpiffeId(id)?.trustDomain : undefined;
    const peerText = `${socket.remoteAddress}:${socket.remotePort}`;
    // A handshake that finished after close(): nothing would wait for or end its session.
    if (state.closed) return void socket.destroy();
    if (!td || !trustDomains().includes(td) || socket.alpnProtocol !== "h2") {
      log.warn("HBONE peer refused", {
        peer: peerText,
        identity: id ?? null,
        reason: socket.alpnProtocol !== "h2" ? "ALPN is not h2" : "trust domain not accepted",
      });
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.on("error", (e) => log.debug("HBONE connection error", { peer: peerText, reason: e }));
    // The peer is the same for every stream of the session: read the certificate once.
    const peer: Peer = {
      identity: id!,
      address: socket.remoteAddress ?? "",
      port: socket.remotePort ?? 0,
      // Set by node:tls on server sockets, missing from its type definitions.
      sni: (socket as TLSSocket & { servername?: string | false }).servername || undefined,
    };
    const local = { address: socket.localAddress ?? "", port: socket.localPort ?? 0 };
    const session = serveH2(socket, h2, (stream, headers) => {
      stream.on("error", (e) => log.debug("HBONE stream error", { peer: peerText, reason: e }));
      const request: ConnectRequest = {
        method: String(headers[":method"] ?? ""),
        authority: String(headers[":authority"] ?? ""),
        headers,
        peer,
        localAddress: local.address,
        localPort: local.port,
        stream,
      };
      try {
        handler(request);
      } catch (e) {
        log.error("HBONE stream handler failed", { authority: request.authority, reason: e });
        refuse(stream, 500);
      }
      if (state.draining) void session.close();
    });
    sessions.add(session);
    session.on("close", () => {
      sessions.delete(session);
      const reason = session.stats.goawayReason;
      if (reason) goaways.set(reason, (goaways.get(reason) ?? 0) + 1);
    });
    session.on(
      "error",
      (e: Error) => log.debug("HBONE session error", { peer: peerText, reason: e }),
    );
  });
  server.on("tlsClientError", (e: Error, socket: TLSSocket) => {
    log.debug("HBONE handshake failed", { peer: socket.remoteAddress ?? null, reason: e });
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      server.off("error", reject);
      server.on("error", (e) => log.error("HBONE server error", { reason: e }));
      const bound = server.address() as { address: string; port: number };
      resolve({
        address: bound.address,
        port: bound.port,
        get sessions() {
          return sessions.size;
        },
        goaways,
        drain: () => {
          state.draining = true;
          // Notice first, final GOAWAY a moment later: a CONNECT that crossed our notice on the
          // wire is still served rather than refused (Envoy's two-step drain).
          for (const s of sessions) s.shutdownNotice();
          const final = setTimeout(() => {
            for (const s of sessions) void s.close();
          }, NOTICE_MS);
          Deno.unrefTimer(final);
        },
        close: (graceMs = 5_000) => {
          state.draining = state.closed = true;
          return closeServer(server, sessions, graceMs, unsubscribe);
        },
      });
    });
  });
}

/** Between the shutdown notice and the final GOAWAY of a drain: several round trips of a mesh. */
const NOTICE_MS = 1_000;

/** Answers a stream with a non-200 status and ends it, as ztunnel does (HEADERS + END_STREAM). */
export function refuse(stream: H2Stream, status: number): void {
  if (stream.destroyed || stream.headersSent) return;
  try {
    stream.respond(status, {}, { endStream: true });
  } catch {
    stream.destroy();
  }
}

/** Answers 200 with optional headers; after this the stream carries the tunnelled bytes. */
export function accept(stream: H2Stream, headers: Record<string, string> = {}): void {
  stream.respond(200, headers);
}

function tlsOptions(identity: IdentitySource) {
  const m = identity.current;
  return { key: m.key, cert: m.certChain, ca: m.root };
}

async function closeServer(
  server: tls.Server,
  sessions: Set<H2Session>,
  graceMs: number,
  unsubscribe: () => void,
): Promise<void> {
  unsubscribe();
  const stopped = new Promise<void>((r) => server.close(() => r()));
  const drained = Promise.all([...sessions].map((s) => s.close()));
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([drained, new Promise((r) => timer = setTimeout(r, graceMs))]);
  clearTimeout(timer);
  for (const s of sessions) s.destroy();
  await stopped;
}
