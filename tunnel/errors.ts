/** The one error type of `tunnel/`: what failed, where, and the status a caller should answer. */

/** Closed set of tunnel failure kinds. */
export type TunnelErrorKind =
  | "connect" // TCP connect refused or timed out
  | "tls" // handshake failed, including a peer identity we did not expect
  | "status" // the peer answered the CONNECT with a non-200 status
  | "reset" // the stream or connection ended before a response
  | "timeout"; // no response in time

/** A failed outbound tunnel, naming the peer address and the reason. */
export class TunnelError extends Error {
  readonly kind: TunnelErrorKind;
  /** `ip:port` of the peer we dialed. */
  readonly peer: string;
  /** The peer's HTTP status, for kind `status`. */
  readonly status?: number;

  constructor(kind: TunnelErrorKind, peer: string, reason: string, status?: number) {
    super(`Tunnel to ${peer} failed (${kind}): ${reason}`);
    this.name = "TunnelError";
    this.kind = kind;
    this.peer = peer;
    this.status = status;
  }
}
