/**
 * CORS origins `<scheme>://<host>[:<port>]` (RFC 6454 serialisation). A missing port is the
 * scheme's default (80 for http, 443 for https), as the Gateway API CORS filter asks, so
 * `https://a.example` and `https://a.example:443` are the same origin.
 */

/** The parts of an origin; `port` is 0 when neither written nor implied by the scheme. */
export interface OriginParts {
  readonly scheme: string;
  readonly host: string;
  readonly port: number;
}

const ORIGIN =
  /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(\[[0-9A-Fa-f:.]+\]|[^/:?#\[\]@\s]+)(?::([0-9]{1,5}))?$/;
const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };

/**
 * Splits an origin (or an allowOrigins pattern, whose host may hold `*`).
 *
 * @param text The origin as written or received
 * @returns Its lower-cased scheme and host and its port, or undefined when it is not an origin
 */
export function parseOrigin(text: string): OriginParts | undefined {
  const m = ORIGIN.exec(text);
  if (!m) return undefined;
  const scheme = m[1].toLowerCase();
  const port = m[3] === undefined ? DEFAULT_PORTS[scheme] ?? 0 : Number(m[3]);
  if (port > 65535) return undefined;
  return { scheme, host: m[2].toLowerCase(), port };
}
