/**
 * The `forwarded` header (RFC 7239) as ztunnel writes and reads it on HBONE CONNECTs:
 * `for="<ip:port>"`, optionally `;host=<service FQDN>` (hbone.md §1.4).
 */

/**
 * The first `for=` value of a `forwarded` header, unquoted.
 *
 * @param header The header as received, or undefined
 * @returns The node, such as `10.0.0.1:4321` or `[fd00::1]:4321`, or undefined when absent
 */
export function forwardedFor(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const first = header.split(",")[0];
  for (const pair of first.split(";")) {
    const eq = pair.indexOf("=");
    if (eq < 0 || pair.slice(0, eq).trim().toLowerCase() !== "for") continue;
    const value = pair.slice(eq + 1).trim();
    return value.startsWith('"') && value.endsWith('"') && value.length >= 2
      ? value.slice(1, -1)
      : value;
  }
  return undefined;
}

/**
 * Builds the `forwarded` header for the upstream CONNECT.
 *
 * @param client The original client node (`ip:port`, IPv6 in brackets)
 * @param host The destination service FQDN when known
 */
export function buildForwarded(client: string, host?: string): string {
  return host ? `for="${client}";host=${host}` : `for="${client}"`;
}

/** `forwarded: host=<fqdn>` for tunnels shared by many clients, which must not name one client. */
export function buildForwardedHost(host: string): string {
  return `host=${host}`;
}

/** `ip:port` with brackets around IPv6 addresses. */
export function nodeText(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** `ip:port` or `[v6]:port` to the bare address. */
export function ipOf(node: string): string {
  const i = node.lastIndexOf(":");
  return (i < 0 ? node : node.slice(0, i)).replace(/^\[|\]$/g, "");
}
