/**
 * The standalone `--dev-http` listener: plaintext HTTP on loopback where each request is treated
 * as if it came over HBONE from a fixed identity to the service named by its Host header
 * (`svc`, `svc.ns`, `svc.ns.svc.cluster.local`, a ServiceEntry host, with or without port), so
 * people can `curl` their routes and policies with no cluster and no ztunnel. It drains like the
 * HBONE listener: on `http.drain` each connection closes after its response in flight, and
 * `close(graceMs)` lets those responses finish.
 */
import { type Exchange, LocalReply, serveH1 } from "../http/mod.ts";
import { bind, type Destination, type Service, type Snapshot } from "../mesh/mod.ts";
import { listenTcp, type TcpListener } from "../tunnel/mod.ts";
import type { ProxyConfig } from "./config.ts";
import { nodeText } from "./forwarded.ts";
import { handleExchange, type HttpInputs } from "./http_serve.ts";

/** Options of {@link listenDevHttp}. */
export interface DevHttpOptions {
  readonly hostname: string;
  readonly port: number;
  /** SPIFFE id the requests are treated as coming from. */
  readonly identity: string;
  readonly config: () => ProxyConfig;
  readonly http: HttpInputs;
}

/**
 * Resolves a Host header to a bound destination (pure).
 *
 * @param mesh The mesh snapshot
 * @param host `name[.ns[.svc.cluster.local]][:port]` or a ServiceEntry host; port defaults to 80
 * @returns The destination, or the reason it cannot be served
 */
export function resolveHost(
  mesh: Snapshot,
  host: string,
): { ok: true; destination: Destination } | { ok: false; reason: string } {
  const m = /^(.*?)(?::([0-9]{1,5}))?$/.exec(host.toLowerCase())!;
  const name = m[1], port = m[2] ? Number(m[2]) : 80;
  const service = findService(mesh, name);
  if (!service) return { ok: false, reason: `no service is named by host "${host}"` };
  const address = service.addresses[0];
  if (address) {
    const b = bind(mesh, address, port);
    return b.ok ? { ok: true, destination: b.destination } : { ok: false, reason: b.reason };
  }
  const p = service.ports.find((x) => x.port === port);
  if (!service.bound) return { ok: false, reason: service.unboundReason };
  if (!p) {
    return {
      ok: false,
      reason: `${service.kind} ${service.namespace}/${service.name} has no port ${port}`,
    };
  }
  return { ok: true, destination: { kind: "service", service, port: p } };
}

/** A service by FQDN or ServiceEntry host, else by `name`, `name.ns` or `name.ns.svc`. */
function findService(mesh: Snapshot, name: string): Service | undefined {
  for (const s of mesh.servicesByName.values()) if (s.hostname === name) return s;
  const parts = name.split(".");
  if (parts.length > 3 || (parts.length === 3 && parts[2] !== "svc")) return undefined;
  const found = mesh.servicesByName.get(`${parts[1] ?? mesh.self.namespace}/${parts[0]}`);
  return found?.kind === "Service" ? found : undefined;
}

/**
 * Starts the dev listener.
 *
 * @returns The bound address and a close function
 */
export function listenDevHttp(options: DevHttpOptions): Promise<TcpListener> {
  return listenTcp(options.hostname, options.port, (socket) => {
    socket.on("error", () => {});
    const client = nodeText(socket.remoteAddress ?? "", socket.remotePort ?? 0);
    const peer = {
      identity: options.identity,
      address: socket.remoteAddress ?? "",
      port: socket.remotePort ?? 0,
    };
    void serveH1(socket, (ex: Exchange) => {
      const config = options.config();
      const target = resolveHost(config.mesh, ex.request.authority);
      if (!target.ok) {
        const reply = new LocalReply(404, `${target.reason}\n`).toResponse();
        return ex.respond(reply.head, reply.body);
      }
      const session = {
        config,
        destination: target.destination,
        peer,
        client,
        target: targetOf(target.destination),
        codec: "http1" as const,
      };
      return handleExchange(ex, session, options.http);
    }, { drain: options.http.drain });
  });
}

/** The address a destination is known by: the service's first VIP, or the workload IP. */
function targetOf(d: Destination): { address: string; port: number } {
  return d.kind === "service"
    ? { address: d.service.addresses[0] ?? "", port: d.port.port }
    : { address: d.workload.address, port: d.port };
}
