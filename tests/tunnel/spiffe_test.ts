import assert from "node:assert/strict";
import { isTrustDomain, parseSpiffeId } from "../../tunnel/spiffe.ts";

Deno.test("parseSpiffeId() returns the parts of a well-formed identity", () => {
  const cases: [string, string, string, string, string][] = [
    [
      "a default identity",
      "spiffe://cluster.local/ns/default/sa/sleep",
      "cluster.local",
      "default",
      "sleep",
    ],
    [
      "a custom trust domain",
      "spiffe://example.org/ns/istio-system/sa/waypoint",
      "example.org",
      "istio-system",
      "waypoint",
    ],
    [
      "dots and underscores",
      "spiffe://td_1.example/ns/my.ns/sa/s_a.1",
      "td_1.example",
      "my.ns",
      "s_a.1",
    ],
    ["segments named like the keywords", "spiffe://td/ns/ns/sa/sa", "td", "ns", "sa"],
  ];
  for (const [name, uri, trustDomain, namespace, serviceAccount] of cases) {
    assert.deepEqual(parseSpiffeId(uri), { trustDomain, namespace, serviceAccount }, name);
  }
});

Deno.test("parseSpiffeId() returns undefined for anything but the exact Istio shape", () => {
  const cases: [string, string][] = [
    ["an empty string", ""],
    ["another scheme", "https://cluster.local/ns/default/sa/sleep"],
    ["an upper-case scheme", "SPIFFE://cluster.local/ns/default/sa/sleep"],
    ["no path", "spiffe://cluster.local"],
    ["a missing service account", "spiffe://cluster.local/ns/default"],
    ["a missing service account name", "spiffe://cluster.local/ns/default/sa"],
    ["an empty service account", "spiffe://cluster.local/ns/default/sa/"],
    ["an empty namespace", "spiffe://cluster.local/ns//sa/sleep"],
    ["an empty trust domain", "spiffe:///ns/default/sa/sleep"],
    ["an extra segment", "spiffe://cluster.local/ns/default/sa/sleep/extra"],
    ["a trailing slash", "spiffe://cluster.local/ns/default/sa/sleep/"],
    ["swapped keywords", "spiffe://cluster.local/sa/sleep/ns/default"],
    ["misspelt keywords", "spiffe://cluster.local/namespace/default/sa/sleep"],
    ["an upper-case trust domain", "spiffe://Cluster.Local/ns/default/sa/sleep"],
    ["a port", "spiffe://cluster.local:443/ns/default/sa/sleep"],
    ["user info", "spiffe://user@cluster.local/ns/default/sa/sleep"],
    ["a query", "spiffe://cluster.local/ns/default/sa/sleep?x=1"],
    ["a fragment", "spiffe://cluster.local/ns/default/sa/sleep#x"],
    ["percent-encoding", "spiffe://cluster.local/ns/default/sa/sl%65ep"],
    ["a dot segment", "spiffe://cluster.local/ns/./sa/sleep"],
    ["a dot-dot segment", "spiffe://cluster.local/ns/default/sa/.."],
    ["a space", "spiffe://cluster.local/ns/default/sa/sle ep"],
    ["an over-long identity", `spiffe://cluster.local/ns/default/sa/${"a".repeat(2048)}`],
  ];
  for (const [name, uri] of cases) {
    assert.equal(parseSpiffeId(uri), undefined, name);
  }
});

Deno.test("isTrustDomain() accepts lowercase SPIFFE trust domains only", () => {
  const cases: [string, string, boolean][] = [
    ["the mesh default", "cluster.local", true],
    ["digits, dashes and underscores", "td-1_a.example", true],
    ["a 255-character name", "a".repeat(255), true],
    ["an empty name", "", false],
    ["upper case", "Cluster.local", false],
    ["a scheme", "spiffe://cluster.local", false],
    ["a port", "cluster.local:8080", false],
    ["a 256-character name", "a".repeat(256), false],
  ];
  for (const [name, input, want] of cases) {
    assert.equal(isTrustDomain(input), want, name);
  }
});
