/**
 * The typed state every HTTP request carries through the chain (STYLE habit 17): who sent it,
 * where it is going, the config it started with, and what routing decided.
 */
import type { Duplex } from "node:stream";
import type { Destination, Endpoint, Service } from "../mesh/mod.ts";
import type { RequestAuth } from "../policy/mod.ts";
import type { HttpRouteMatch } from "../routes/mod.ts";
import type { Peer } from "../tunnel/mod.ts";
import type { ProxyConfig } from "./config.ts";
import type { HeaderEdit } from "./http_headers.ts";

/** How the inner protocol of a connection is spoken. */
export type HttpCodec = "http1" | "h2c";

/** Per-connection facts shared by its requests. */
export interface HttpSession {
  readonly config: ProxyConfig;
  readonly destination: Destination;
  readonly peer: Peer;
  /** Original client `ip:port`. */
  readonly client: string;
  /** The CONNECT target (service VIP or pod IP) and port, as policies see the destination. */
  readonly target: { readonly address: string; readonly port: number };
  /** Codec spoken downstream. */
  readonly codec: HttpCodec;
  /** The CONNECT's `baggage` header, for source labels the model does not know. */
  readonly baggage?: string;
}

/** Per-request state; the mutable slots are filled by the router. */
export interface RequestState extends HttpSession {
  readonly requestId: string;
  /** The route rule that matched, when routes are attached. */
  route?: HttpRouteMatch;
  /** `Kind ns/name:port` of the backend that served, for logs. */
  backend?: string;
  /** The endpoint of the last try. */
  endpoint?: Endpoint;
  /** The backend service the router sent to, when routes chose one. */
  backendService?: Service;
  /** Tries made (1 without retries). */
  attempts: number;
  /** The upstream's raw stream after it answered an upgrade with 101. */
  upgraded?: Duplex;
  /** The verified JWT, once RequestAuthentication ran. */
  auth?: RequestAuth;
  /** The policy that decided, `ns[..]-policy[..]-rule[..]`, for the access log. */
  policy?: string;
  /** Response header edits asked for by an ext_authz allow. */
  responseHeaders?: HeaderEdit[];
}
