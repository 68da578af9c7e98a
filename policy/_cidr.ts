/**
 * IP addresses and CIDR ranges as 32-bit words, for `ipBlocks`, `remoteIpBlocks`, `source.ip`,
 * `remote.ip` and `destination.ip`. Parsing is as strict as Go's `netip` (Istio's validation): no
 * leading zeros in IPv4 octets or prefix lengths, no zone ids. A bare address is a full-length
 * range, as Istio's `AddrStrToCidrRange` makes it. Host bits under the mask are ignored, as in
 * Envoy's `CidrRange`. A range only contains addresses of its own family.
 */

/** An address: one word for IPv4, four for IPv6, big-endian. */
export interface IpWords {
  readonly v6: boolean;
  readonly words: readonly number[];
}

/** A range: an address and the number of leading bits that must match. */
export interface Cidr extends IpWords {
  readonly bits: number;
}

const OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const PREFIX = /^(?:0|[1-9][0-9]{0,2})$/;

/** Parses an IPv4 or IPv6 address; undefined when it is not one. */
export function parseIp(text: string): IpWords | undefined {
  if (text.includes(":")) {
    const words = parseIpv6(text);
    return words && { v6: true, words };
  }
  const word = parseIpv4(text);
  return word === undefined ? undefined : { v6: false, words: [word] };
}

/** Parses `addr` or `addr/bits`; undefined when invalid. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return undefined;
  const max = ip.v6 ? 128 : 32;
  if (slash < 0) return { ...ip, bits: max };
  const bitsText = text.slice(slash + 1);
  if (!PREFIX.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  return bits > max ? undefined : { ...ip, bits };
}

/** Whether `ip` lies in `range`. */
export function cidrContains(range: Cidr, ip: IpWords): boolean {
  if (range.v6 !== ip.v6) return false;
  let left = range.bits;
  for (let i = 0; i < range.words.length && left > 0; i++) {
    const take = left >= 32 ? 32 : left;
    const mask = take === 32 ? 0xffffffff : (~(0xffffffff >>> take)) >>> 0;
    if (((range.words[i] & mask) >>> 0) !== ((ip.words[i] & mask) >>> 0)) return false;
    left -= take;
  }
  return true;
}

function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let word = 0;
  for (const part of parts) {
    if (!OCTET.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    word = word * 256 + n;
  }
  return word;
}

function parseIpv6(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const all = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
  const words: number[] = [];
  for (let i = 0; i < 8; i += 2) words.push(((all[i] << 16) | all[i + 1]) >>> 0);
  return words;
}

/** 16-bit groups of one side of `::`; a trailing dotted quad counts as two groups. */
function groups(text: string): number[] | undefined {
  if (text === "") return [];
  const parts = text.split(":");
  const out: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (i === parts.length - 1 && part.includes(".")) {
      const v4 = parseIpv4(part);
      if (v4 === undefined) return undefined;
      out.push(v4 >>> 16, v4 & 0xffff);
    } else if (HEX_GROUP.test(part)) {
      out.push(parseInt(part, 16));
    } else {
      return undefined;
    }
  }
  return out;
}
