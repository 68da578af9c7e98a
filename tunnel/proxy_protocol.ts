/**
 * PROXY protocol v2 (haproxy's proxy-protocol.txt §2.2) as ztunnel writes it in front of a
 * "sandwiched" waypoint: source and destination addresses, plus TLV 0xD0 carrying the client's
 * SPIFFE identity (hbone.md §1.10).
 *
 * Invariants:
 * - At most 12 + 4 + {@link MAX_BODY} header bytes are buffered; anything longer is refused.
 * - Bytes after the header are returned, never lost.
 */

/** The 12-byte v2 signature. */
const SIGNATURE = Uint8Array.of(
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
);
/** Largest address-plus-TLV block we accept; ztunnel's is well under this. */
export const MAX_BODY = 4096;
/** TLV type ztunnel uses for the peer identity. */
export const TLV_PEER_IDENTITY = 0xd0;

/** A parsed PROXY v2 header. */
export interface ProxyHeader {
  /** `LOCAL` headers (health checks) carry no addresses. */
  readonly command: "local" | "proxy";
  readonly source?: { readonly address: string; readonly port: number };
  readonly destination?: { readonly address: string; readonly port: number };
  /** TLVs by type; the last wins on repeats. */
  readonly tlvs: ReadonlyMap<number, Uint8Array>;
}

/** Outcome of feeding bytes to {@link parseProxyV2}. */
export type ProxyParse =
  | { readonly state: "more" }
  | { readonly state: "done"; readonly header: ProxyHeader; readonly rest: Uint8Array }
  | { readonly state: "error"; readonly reason: string };

/**
 * Parses a PROXY v2 header from the bytes received so far.
 *
 * @param buf Everything read from the connection so far
 * @returns `more` until the header is complete, then the header and the bytes after it
 */
export function parseProxyV2(buf: Uint8Array): ProxyParse {
  const head = Math.min(buf.length, SIGNATURE.length);
  for (let i = 0; i < head; i++) {
    if (buf[i] !== SIGNATURE[i]) return { state: "error", reason: "not a PROXY v2 header" };
  }
  if (buf.length < 16) return { state: "more" };
  const verCmd = buf[12], family = buf[13];
  const len = (buf[14] << 8) | buf[15];
  if (verCmd >> 4 !== 2) return { state: "error", reason: `unsupported version ${verCmd >> 4}` };
  if (len > MAX_BODY) return { state: "error", reason: `header body of ${len} bytes is too long` };
  if (buf.length < 16 + len) return { state: "more" };
  const body = buf.subarray(16, 16 + len);
  const rest = buf.subarray(16 + len);
  const cmd = verCmd & 0x0f;
  if (cmd === 0) return { state: "done", header: { command: "local", tlvs: new Map() }, rest };
  if (cmd !== 1) return { state: "error", reason: `unknown command ${cmd}` };
  const addrLen = family === 0x11 ? 12 : family === 0x21 ? 36 : -1;
  if (addrLen < 0) return { state: "error", reason: `unsupported family 0x${family.toString(16)}` };
  if (body.length < addrLen) return { state: "error", reason: "address block truncated" };
  const ipLen = family === 0x11 ? 4 : 16;
  const port = (at: number) => (body[at] << 8) | body[at + 1];
  const tlvs = parseTlvs(body.subarray(addrLen));
  if (!tlvs) return { state: "error", reason: "malformed TLV" };
  return {
    state: "done",
    header: {
      command: "proxy",
      source: { address: ipText(body.subarray(0, ipLen)), port: port(2 * ipLen) },
      destination: { address: ipText(body.subarray(ipLen, 2 * ipLen)), port: port(2 * ipLen + 2) },
      tlvs,
    },
    rest,
  };
}

/**
 * Encodes a PROXY v2 header, for tests and clients.
 *
 * @param source Client address
 * @param destination Target address
 * @param tlvs Extra TLVs such as {@link TLV_PEER_IDENTITY}
 */
export function encodeProxyV2(
  source: { address: string; port: number },
  destination: { address: string; port: number },
  tlvs: ReadonlyMap<number, Uint8Array> = new Map(),
): Uint8Array {
  const v6 = source.address.includes(":");
  const ipLen = v6 ? 16 : 4;
  let tlvLen = 0;
  for (const v of tlvs.values()) tlvLen += 3 + v.length;
  const len = 2 * ipLen + 4 + tlvLen;
  const out = new Uint8Array(16 + len);
  out.set(SIGNATURE);
  out[12] = 0x21;
  out[13] = v6 ? 0x21 : 0x11;
  out[14] = len >> 8;
  out[15] = len & 0xff;
  out.set(ipBytes(source.address, ipLen), 16);
  out.set(ipBytes(destination.address, ipLen), 16 + ipLen);
  let at = 16 + 2 * ipLen;
  for (const p of [source.port, destination.port]) {
    out[at++] = p >> 8;
    out[at++] = p & 0xff;
  }
  for (const [type, value] of tlvs) {
    out[at++] = type;
    out[at++] = value.length >> 8;
    out[at++] = value.length & 0xff;
    out.set(value, at);
    at += value.length;
  }
  return out;
}

function parseTlvs(bytes: Uint8Array): Map<number, Uint8Array> | undefined {
  const tlvs = new Map<number, Uint8Array>();
  let at = 0;
  while (at < bytes.length) {
    if (at + 3 > bytes.length) return undefined;
    const len = (bytes[at + 1] << 8) | bytes[at + 2];
    if (at + 3 + len > bytes.length) return undefined;
    tlvs.set(bytes[at], bytes.slice(at + 3, at + 3 + len));
    at += 3 + len;
  }
  return tlvs;
}

function ipText(b: Uint8Array): string {
  if (b.length === 4) return b.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}

function ipBytes(address: string, len: number): Uint8Array {
  const out = new Uint8Array(len);
  if (len === 4) {
    address.split(".").forEach((p, i) => out[i] = Number(p));
    return out;
  }
  const [head, tail] = address.split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail ? tail.split(":") : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}
