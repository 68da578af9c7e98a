/**
 * Canonical IP text and CONNECT `:authority` parsing (`ip:port` or `[ipv6]:port`, hbone.md §1.3),
 * shared by the YAML loader and the tunnels so that an address written in config and one received
 * on a CONNECT compare equal as strings.
 *
 * IPv4 must be a strict dotted quad (no leading zeros, no short forms like `127.1`). IPv6 goes
 * through the WHATWG URL host parser, which prints RFC 5952 text (lower case, `::` for the
 * longest zero run); zone ids (`%eth0`) are refused because a VIP or pod IP never has one.
 * Hostnames are refused: ztunnel addresses a waypoint target by service VIP or pod IP only.
 */

const OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
const DOTTED_QUAD = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
const IPV6_CHARS = /^[0-9A-Fa-f:.]+$/;

/** Returns `text` if it is a strict dotted-quad IPv4 address, else undefined. */
export function canonicalIpv4(text: string): string | undefined {
  return DOTTED_QUAD.test(text) ? text : undefined;
}

/** Returns the RFC 5952 form of an IPv6 address written without brackets, else undefined. */
export function canonicalIpv6(text: string): string | undefined {
  if (!text.includes(":") || !IPV6_CHARS.test(text)) return undefined;
  try {
    return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

/** Returns the canonical text of an IPv4 or IPv6 address, else undefined. */
export function canonicalIp(text: string): string | undefined {
  return text.includes(":") ? canonicalIpv6(text) : canonicalIpv4(text);
}

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
