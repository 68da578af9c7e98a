/**
 * HBONE server: TLS 1.3 with a required client certificate, HTTP/2, one CONNECT stream per
 * tunnelled connection. It knows nothing of the mesh: each stream is handed to a handler with the
 * peer's identity, and the handler answers it with {@link refuse} or {@link accept}.
 *
 * Invariants:
 * - Only peers whose certificate chains to our root and whose SPIFFE id is in an accepted trust
 *   domain get an HTTP/2 session; others are dropped right after the handshake.
 * - Certificate reloads apply to new handshakes only; live sessions keep going.
 * - `close()` stops accepting, sends GOAWAY to every session and waits for streams to finish.
 */
import http2 from "node:http2";
import type { IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from "node:http2";
import type { TLSSocket } from "node:tls";
import { log } from "../log/mod.ts";
import { CIPHERS, h2Settings, type TunnelConfig } from "./config.ts";
import { IdentitySource, spiffeIdOf } from "./identity.ts";
import { keepAlive } from "./keepalive.ts";
import { parseSpiffeId } from "./spiffe.ts";

/** The authenticated peer of a session. */
export interface Peer {
  /** SPIFFE id from the client certificate. */
  readonly identity: string;
  readonly address: string;
  readonly port: number;
}

/** One incoming stream, before it is answered. */
export interface ConnectRequest {
  readonly method: string;
  /** `:authority` as sent, not yet parsed. */
  readonly authority: string;
  readonly headers: IncomingHttpHeaders;
  readonly peer: Peer;
  /** The address and port the TCP connection arrived on. */
  readonly localAddress: string;
  readonly localPort: number;
  readonly stream: ServerHttp2Stream;
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
  const server = http2.createSecureServer({
    ...tlsOptions(identity),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
    ciphers: CIPHERS,
    ALPNProtocols: ["h2"],
    allowHTTP1: false,
    handshakeTimeout: config.handshakeTimeoutMs,
    settings: h2Settings(config),
    maxSessionMemory: 64,
  });
  const unsubscribe = identity.subscribe(() => server.setSecureContext(tlsOptions(identity)));
  const sessions = new Set<ServerHttp2Session>();

  server.on("secureConnection", (socket: TLSSocket) => {
    const id = spiffeIdOf(socket.getPeerCertificate()?.subjectaltname);
    const td = id ? parseSpiffeId(id)?.trustDomain : undefined;
    if (!td || !trustDomains().includes(td)) {
      log.warn("HBONE peer refused: trust domain not accepted", {
        peer: `${socket.remoteAddress}:${socket.remotePort}`,
        identity: id ?? null,
      });
      socket.destroy();
    }
  });
  server.on("session", (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    session.on("error", (e) => log.debug("HBONE session error", { reason: e }));
    try {
      session.setLocalWindowSize(config.connectionWindow);
    } catch {
      // Not fatal: the peer then sees the default connection window.
    }
    keepAlive(session, config, () => {
      log.warn("HBONE peer dropped: keepalive timed out", { peer: peerText(session) });
    });
  });
  // The peer certificate is parsed once per session, not per stream (it showed in profiles).
  const peers = new WeakMap<object, Peer & { localAddress: string; localPort: number }>();
  server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    const session = stream.session;
    const socket = session?.socket as TLSSocket | undefined;
    if (!session || !socket) return stream.close(http2.constants.NGHTTP2_CANCEL);
    let peer = peers.get(session);
    if (!peer) {
      peer = {
        identity: spiffeIdOf(socket.getPeerCertificate()?.subjectaltname) ?? "",
        address: socket.remoteAddress ?? "",
        port: socket.remotePort ?? 0,
        localAddress: socket.localAddress ?? "",
        localPort: socket.localPort ?? 0,
      };
      peers.set(session, peer);
    }
    const request: ConnectRequest = {
      method: String(headers[":method"] ?? ""),
      authority: String(headers[":authority"] ?? ""),
      headers,
      peer,
      localAddress: peer.localAddress,
      localPort: peer.localPort,
      stream,
    };
    stream.on("error", (e) => log.debug("HBONE stream error", { reason: e }));
    try {
      handler(request);
    } catch (e) {
      log.error("HBONE stream handler failed", { authority: request.authority, reason: e });
      refuse(stream, 500);
    }
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
        close: (graceMs = 5_000) => closeServer(server, sessions, graceMs, unsubscribe),
      });
    });
  });
}

/** Answers a stream with a non-200 status and ends it, as ztunnel does (HEADERS + END_STREAM). */
export function refuse(stream: ServerHttp2Stream, status: number): void {
  if (stream.destroyed || stream.headersSent) return;
  try {
    stream.respond({ ":status": status }, { endStream: true });
  } catch {
    stream.destroy();
  }
}

/** Answers 200 with optional headers; after this the stream carries the tunnelled bytes. */
export function accept(stream: ServerHttp2Stream, headers: Record<string, string> = {}): void {
  stream.respond({ ":status": 200, ...headers });
}

function tlsOptions(identity: IdentitySource) {
  const m = identity.current;
  return { key: m.key, cert: m.certChain, ca: m.root };
}

function peerText(session: ServerHttp2Session): string {
  const s = session.socket;
  return `${s?.remoteAddress}:${s?.remotePort}`;
}

async function closeServer(
  server: http2.Http2SecureServer,
  sessions: Set<ServerHttp2Session>,
  graceMs: number,
  unsubscribe: () => void,
): Promise<void> {
  unsubscribe();
  const stopped = new Promise<void>((r) => server.close(() => r()));
  for (const s of sessions) s.close();
  const deadline = Date.now() + graceMs;
  while (sessions.size > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  for (const s of sessions) s.destroy();
  await stopped;
}
