/**
 * @module
 * HBONE transport: TLS identity (SPIFFE certificates from files or from the Istio CA, their
 * reload and rotation), the HBONE server and the pooled client (CONNECT streams over the top-level
 * `h2/`), the destination-ztunnel stand-in, and the byte splice. It knows nothing of the mesh or of HTTP semantics: callers hand it addresses,
 * identities and authorities.
 */
export { type Authority, canonicalIp, parseAuthority } from "./address.ts";
export {
  type CaClientOptions,
  CaError,
  type CaErrorKind,
  DEFAULT_CA_ADDRESS,
  DEFAULT_CA_ROOT_FILE,
  DEFAULT_CA_TOKEN_FILE,
  IstioCaClient,
} from "./ca_client.ts";
export { type CaIdentity, startCaIdentity } from "./ca_identity.ts";
export { CertificateRotation, type RotationOptions, type RotationStats } from "./cert_rotation.ts";
export { DEFAULT_TUNNEL_CONFIG, type TunnelConfig } from "./config.ts";
export { serveDestination } from "./dest_ztunnel.ts";
export { TunnelError, type TunnelErrorKind } from "./errors.ts";
export {
  IdentitySource,
  loadTlsMaterial,
  spiffeIdOf,
  type TlsMaterial,
  tlsMaterialOf,
} from "./identity.ts";
export {
  HbonePool,
  identityMatches,
  type PoolStats,
  type Tunnel,
  type TunnelTarget,
} from "./pool.ts";
export {
  accept,
  type ConnectRequest,
  type HboneServer,
  type HboneServerOptions,
  listenHbone,
  type Peer,
  refuse,
} from "./server.ts";
export { PlainOpener } from "./plain.ts";
export { listenTcp, type TcpListener } from "./listen.ts";
export { listenSandwich, type SandwichConnection, type SandwichServer } from "./sandwich.ts";
export {
  encodeProxyV2,
  parseProxyV2,
  type ProxyHeader,
  type ProxyParse,
  TLV_PEER_IDENTITY,
} from "./proxy_protocol.ts";
export { splice, type SpliceProgress, type SpliceResult } from "./splice.ts";
export { parseSpiffeId } from "./spiffe.ts";
