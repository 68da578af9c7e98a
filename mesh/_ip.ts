/**
 * Canonical IP text, shared by the YAML loader and `:authority` parsing so that an address
 * written in config and one received on a CONNECT compare equal as strings.
 *
 * IPv4 must be a strict dotted quad (no leading zeros, no short forms like `127.1`). IPv6 goes
 * through the WHATWG URL host parser, which prints RFC 5952 text (lower case, `::` for the
 * longest zero run); zone ids (`%eth0`) are refused because a VIP or pod IP never has one.
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
