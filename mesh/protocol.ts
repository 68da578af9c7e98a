/**
 * Port protocol of a Service or ServiceEntry port (hbone.md §3.5), mirroring istio
 * `pkg/config/kube/conversion.go` `ConvertProtocol` and `pkg/config/protocol/instance.go` `Parse`,
 * folded into the coarser {@link PortProtocol} the request path switches on (as WDS
 * `toAppProtocolFromProtocol` does: HTTPS → TLS; Mongo, MySQL, Redis → TCP).
 */
import type { PortProtocol } from "./model.ts";

/** Istio protocol names, lower-cased, and what this waypoint does with them. */
const PROTOCOL_NAMES: Readonly<Record<string, PortProtocol>> = {
  tcp: "tcp",
  http: "http",
  http_proxy: "http",
  // gRPC-Web is HTTP/1.1 or HTTP/2 from browsers; Envoy serves it with its HTTP chain.
  "grpc-web": "http",
  http2: "http2",
  grpc: "grpc",
  https: "tls",
  tls: "tls",
  mongo: "tcp",
  mysql: "tcp",
  redis: "tcp",
};

/** Kubernetes standard application protocols (KEP-3726), honoured only in `appProtocol`. */
const KUBERNETES_APP_PROTOCOLS: Readonly<Record<string, PortProtocol>> = {
  "kubernetes.io/h2c": "http2",
  "kubernetes.io/ws": "http",
  "kubernetes.io/wss": "tls",
};

/** SMTP, DNS, MySQL, MongoDB: server-first protocols that sniffing would stall, so TCP. */
const WELL_KNOWN_TCP_PORTS: ReadonlySet<number> = new Set([25, 53, 3306, 27017]);

/** The fields of a Kubernetes Service port that decide its protocol. */
export interface ProtocolPort {
  readonly name?: string;
  readonly appProtocol?: string;
  readonly port: number;
}

/**
 * The protocol of a Kubernetes Service port.
 *
 * As in Istio, a set `appProtocol` replaces the port name entirely (an unknown `appProtocol` does
 * not fall back to the name). The name or `appProtocol` counts up to its first `-`, except for the
 * `grpc-web` prefix. Unknown protocols are `unknown` (sniffed) unless the port is 25, 53, 3306 or
 * 27017.
 *
 * @example
 * ```ts
 * portProtocol({ name: "http-web", port: 8080 }); // "http"
 * portProtocol({ name: "web", appProtocol: "kubernetes.io/h2c", port: 80 }); // "http2"
 * portProtocol({ name: "db", port: 3306 }); // "tcp"
 * ```
 * @param port The port's name, appProtocol and number
 * @returns The protocol the waypoint applies to that port
 */
export function portProtocol(port: ProtocolPort): PortProtocol {
  const source = port.appProtocol || port.name || "";
  const standard = KUBERNETES_APP_PROTOCOLS[source];
  if (standard) return standard;
  const parsed = protocolOfPrefix(source);
  if (parsed === "unknown" && WELL_KNOWN_TCP_PORTS.has(port.port)) return "tcp";
  return parsed;
}

/**
 * The protocol of a ServiceEntry port, from its `protocol` field (`HTTP`, `HTTP2`, `GRPC`, `TCP`,
 * `TLS`, `HTTPS`, `MONGO`… in any case). As in Istio the field is taken whole, with no name
 * prefix fallback: an absent or unrecognised `protocol` is `unknown` (sniffed).
 *
 * @param protocol The port's `protocol` field
 * @returns The protocol the waypoint applies to that port
 */
export function serviceEntryProtocol(protocol: string | undefined): PortProtocol {
  return protocolName(protocol ?? "") ?? "unknown";
}

/**
 * Looks up one Istio protocol name, ignoring case.
 *
 * @param name A protocol name such as `HTTP2` or `grpc-web`
 * @returns The protocol, or undefined when Istio would not recognise the name
 */
export function protocolName(name: string): PortProtocol | undefined {
  return Object.hasOwn(PROTOCOL_NAMES, name.toLowerCase())
    ? PROTOCOL_NAMES[name.toLowerCase()]
    : undefined;
}

function protocolOfPrefix(name: string): PortProtocol {
  if (name.toLowerCase().startsWith("grpc-web")) return "http";
  const dash = name.indexOf("-");
  return protocolName(dash >= 0 ? name.slice(0, dash) : name) ?? "unknown";
}
