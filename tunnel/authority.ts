/**
 * CONNECT `:authority` parsing for HBONE: `ip:port` or `[ipv6]:port` (hbone.md §1.3). Hostnames
 * are not accepted: a waypoint is addressed by service VIP or pod IP.
 */
import { isIP } from "node:net";

/** A parsed authority with canonical IP text (IPv6 without brackets, lower case). */
export interface Authority {
  readonly host: string;
  readonly port: number;
}

const DECIMAL_PORT = /^[0-9]{1,5}$/;
const DOTTED_QUAD =
  /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;

/**
 * Parses `ip:port` or `[v6]:port`.
 *
 * @param authority The `:authority` value as received
 * @returns Host and port, or undefined when it is not an IP literal with a port in 1..65535
 */
export function parseAuthority(authority: string): Authority | undefined {
  let host: string, portText: string;
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    if (close < 0 || authority[close + 1] !== ":") return undefined;
    host = authority.slice(1, close);
    portText = authority.slice(close + 2);
    if (isIP(host) !== 6) return undefined;
    host = canonicalV6(host);
  } else {
    const colon = authority.lastIndexOf(":");
    if (colon < 0) return undefined;
    host = authority.slice(0, colon);
    portText = authority.slice(colon + 1);
    if (!DOTTED_QUAD.test(host)) return undefined;
  }
  if (!DECIMAL_PORT.test(portText)) return undefined;
  const port = Number(portText);
  return port >= 1 && port <= 65535 ? { host, port } : undefined;
}

/** Canonical IPv6 text via the URL parser (RFC 5952 form, lower case, `::` compression). */
function canonicalV6(host: string): string {
  return new URL(`http://[${host}]/`).hostname.slice(1, -1);
}
