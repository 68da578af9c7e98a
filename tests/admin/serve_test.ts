import assert from "node:assert/strict";
import { parseHostPort, serveApp } from "../../admin/serve.ts";
import { readinessApp } from "../../admin/readiness.ts";

Deno.test("parseHostPort() splits host:port and [v6]:port", () => {
  const cases: [string, string, string, number][] = [
    ["an IPv4 address", "127.0.0.1:15021", "127.0.0.1", 15021],
    ["all interfaces", "0.0.0.0:15020", "0.0.0.0", 15020],
    ["a hostname", "localhost:15000", "localhost", 15000],
    ["an empty host", ":15021", "0.0.0.0", 15021],
    ["a bracketed IPv6 address", "[::1]:15000", "::1", 15000],
    ["an IPv6 address with a zone", "[fe80::1%eth0]:80", "fe80::1%eth0", 80],
    ["an ephemeral port", "127.0.0.1:0", "127.0.0.1", 0],
  ];
  for (const [name, addr, hostname, port] of cases) {
    assert.deepEqual(parseHostPort(addr), { hostname, port }, name);
  }
});

Deno.test("parseHostPort() rejects addresses without a usable port", () => {
  const cases: [string, string][] = [
    ["no port", "127.0.0.1"],
    ["an empty port", "127.0.0.1:"],
    ["a port past 65535", "127.0.0.1:65536"],
    ["a named port", "127.0.0.1:http"],
    ["an unbracketed IPv6 address", "::1:15000"],
    ["an unclosed bracket", "[::1:15000"],
    ["an empty string", ""],
  ];
  for (const [name, addr] of cases) {
    assert.throws(
      () => parseHostPort(addr),
      { message: `Invalid listen address, want host:port or [v6]:port: "${addr}"` },
      name,
    );
  }
});

Deno.test("serveApp() serves the app on an ephemeral loopback port", async () => {
  const cases: [string, string, RegExp][] = [
    ["IPv4 loopback", "127.0.0.1:0", /^127\.0\.0\.1:\d+$/],
    ["IPv6 loopback", "[::1]:0", /^\[::1\]:\d+$/],
  ];
  for (const [name, addr, want] of cases) {
    const server = serveApp(readinessApp(() => true), addr);
    try {
      assert.match(server.addr, want, name);
      assert.doesNotMatch(server.addr, /:0$/, name);
      const res = await fetch(`http://${server.addr}/healthz/ready`);
      assert.equal(res.status, 200, name);
      assert.equal(await res.text(), "", name);
    } finally {
      await server.shutdown();
    }
  }
});

Deno.test("serveApp() names the address it cannot bind", async () => {
  const first = serveApp(readinessApp(() => true), "127.0.0.1:0");
  try {
    assert.throws(
      () => serveApp(readinessApp(() => true), first.addr),
      (e: Error) => e.message.startsWith(`Cannot listen on ${first.addr}: `),
    );
  } finally {
    await first.shutdown();
  }
});
