/**
 * CONNECT `:authority` parsing for the binding lookup: `ip:port` or `[ipv6]:port` (hbone.md §1.3).
 * Hostnames are refused: ztunnel addresses a waypoint target by service VIP or pod IP only.
 */
import { canonicalIpv4, canonicalIpv6 } from "./_ip.ts";

/** An IP literal and port taken from an `:authority`. */
export interface Authority {
  /** Canonical IP text, IPv6 without brackets. */
  readonly host: string;
  /** 1..65535 */
  readonly port: number;
}

// A bracketed IPv6 literal or a bracket- and colon-free IPv4 literal, then `:` and 1-5 digits.
const AUTHORITY = /^(?:\[([^\]]*)\]|([^:[\]]*)):([0-9]{1,5})$/;

/**
 * Parses `ip:port` or `[v6]:port` into canonical IP text and a port number.
 *
 * @example
 * ```ts
 * parseAuthority("[FD00::0001]:8080"); // { host: "fd00::1", port: 8080 }
 * parseAuthority("reviews:9080"); // undefined
 * ```
 * @param authority The `:authority` value as received
 * @returns Host and port, or undefined when it is not an IP literal with a port in 1..65535
 */
export function parseAuthority(authority: string): Authority | undefined {
  const match = AUTHORITY.exec(authority);
  if (!match) return undefined;
  const [, v6, v4, portText] = match;
  const host = v6 !== undefined ? canonicalIpv6(v6) : canonicalIpv4(v4);
  const port = Number(portText);
  if (host === undefined || port < 1 || port > 65535) return undefined;
  return { host, port };
}
