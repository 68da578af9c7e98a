import assert from "node:assert/strict";
import { type Authority, parseAuthority } from "../../tunnel/mod.ts";

const cases: [string, string, Authority | undefined][] = [
  ["reads an IPv4 address and port", "10.0.0.1:8080", { host: "10.0.0.1", port: 8080 }],
  ["reads the lowest and highest ports", "10.0.0.1:1", { host: "10.0.0.1", port: 1 }],
  ["reads port 65535", "255.255.255.255:65535", { host: "255.255.255.255", port: 65535 }],
  ["reads a bracketed IPv6 address", "[fd00::1]:80", { host: "fd00::1", port: 80 }],
  ["canonicalises IPv6 text", "[FD00:0:0:0:0:0:0:0001]:80", { host: "fd00::1", port: 80 }],
  ["reads an IPv6 address with an IPv4 tail", "[::ffff:10.0.0.1]:80", {
    host: "::ffff:a00:1",
    port: 80,
  }],
  ["refuses a missing port", "10.0.0.1", undefined],
  ["refuses an empty port", "10.0.0.1:", undefined],
  ["refuses port 0", "10.0.0.1:0", undefined],
  ["refuses port 65536", "10.0.0.1:65536", undefined],
  ["refuses a port of six digits", "10.0.0.1:000080", undefined],
  ["refuses a hostname", "reviews.default.svc.cluster.local:9080", undefined],
  ["refuses a short IPv4 form", "127.1:80", undefined],
  ["refuses an IPv4 octet above 255", "10.0.0.256:80", undefined],
  ["refuses an IPv4 octet with a leading zero", "10.0.0.01:80", undefined],
  ["refuses trailing garbage after the port", "10.0.0.1:80x", undefined],
  ["refuses a second port", "10.0.0.1:80:81", undefined],
  ["refuses an IPv6 address without brackets", "fd00::1:80", undefined],
  ["refuses an IPv4 address in brackets", "[10.0.0.1]:80", undefined],
  ["refuses an IPv6 zone id", "[fe80::1%eth0]:80", undefined],
  ["refuses an invalid IPv6 address", "[fd00:::1]:80", undefined],
  ["refuses garbage after the brackets", "[fd00::1]x:80", undefined],
  ["refuses a leading space", " 10.0.0.1:80", undefined],
  ["refuses an empty authority", "", undefined],
];

for (const [name, authority, want] of cases) {
  Deno.test(`parseAuthority() ${name}`, () => {
    assert.deepEqual(parseAuthority(authority), want);
  });
}
