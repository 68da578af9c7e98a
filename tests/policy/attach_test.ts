/**
 * `TargetIndex` of `policy/_attach.ts`: each service gets the waypoint-wide policies and its own,
 * once each, in evaluation order (the order AuthorizationPolicies and WasmPlugins run in).
 */
import assert from "node:assert/strict";
import { type Attachment, TargetIndex } from "../../policy/mod.ts";

const entry = (item: string, wide: boolean, ...services: string[]) => ({
  attachment: { wide, services } satisfies Attachment,
  item,
});

const index = TargetIndex.build([
  entry("a-own", false, "Service/ns/a"),
  entry("wide-1", true),
  entry("a-and-b", false, "Service/ns/b", "Service/ns/a", "Service/ns/a"),
  entry("wide-and-b", true, "Service/ns/b"),
  entry("se", false, "ServiceEntry/ns/a"),
  entry("other-ns", false, "Service/other/a"),
], (items) => items);

const cases: { name: string; target: Parameters<typeof index.lookup>[0]; want: string[] }[] = [
  {
    name: "interleaves wide and own policies in evaluation order, each once",
    target: { kind: "Service", namespace: "ns", name: "a" },
    want: ["a-own", "wide-1", "a-and-b", "wide-and-b"],
  },
  {
    name: "counts a policy that is wide and names the service once",
    target: { kind: "Service", namespace: "ns", name: "b" },
    want: ["wide-1", "a-and-b", "wide-and-b"],
  },
  {
    name: "keeps ServiceEntries apart from Services of the same name",
    target: { kind: "ServiceEntry", namespace: "ns", name: "a" },
    want: ["wide-1", "wide-and-b", "se"],
  },
  {
    name: "keeps namespaces apart",
    target: { kind: "Service", namespace: "other", name: "a" },
    want: ["wide-1", "wide-and-b", "other-ns"],
  },
  {
    name: "gives a service without policies of its own the wide ones",
    target: { kind: "Service", namespace: "ns", name: "c" },
    want: ["wide-1", "wide-and-b"],
  },
  {
    name: "gives workload traffic the wide ones",
    target: { kind: "workload" },
    want: ["wide-1", "wide-and-b"],
  },
];

for (const c of cases) {
  Deno.test(`TargetIndex.build() ${c.name}`, () => {
    assert.deepEqual(index.lookup(c.target), c.want);
  });
}
