import assert from "node:assert/strict";
import {
  decideLease,
  type GatewayObject,
  startGatewayStatus,
  statusPatch,
} from "../../mesh/kube/mod.ts";
import { FakeKubeApi, fakeKubeconfig, quiet } from "../fixtures/kube_api.ts";

const HOST = "127.0.22.4";
const GATEWAYS = "/apis/gateway.networking.k8s.io/v1/gateways";
const GATEWAY_PATH = "/apis/gateway.networking.k8s.io/v1/namespaces/mesh/gateways/waypoint";
const LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/mesh/leases/waypoint-waypoint-status";
const WAYPOINT = { namespace: "mesh", name: "waypoint" };
const NOW = new Date("2026-11-26T10:00:00Z");

Deno.test("statusPatch() publishes the waypoint Service hostname with Accepted and Programmed", () => {
  const patch = statusPatch({ metadata: { generation: 3 } }, WAYPOINT, NOW);
  assert.deepEqual(patch?.addresses, [
    { type: "Hostname", value: "waypoint.mesh.svc.cluster.local" },
  ]);
  assert.deepEqual(patch?.conditions?.map((c) => [c.type, c.status, c.observedGeneration]), [
    ["Accepted", "True", 3],
    ["Programmed", "True", 3],
  ]);
  assert.equal(patch?.conditions?.[0].lastTransitionTime, "2026-11-26T10:00:00Z");
  const ip = statusPatch({}, { ...WAYPOINT, ip: "10.0.0.9" }, NOW);
  assert.deepEqual(ip?.addresses, [{ type: "IPAddress", value: "10.0.0.9" }]);
  const domain = statusPatch({}, { ...WAYPOINT, clusterDomain: "corp.example" }, NOW);
  assert.equal(domain?.addresses?.[0].value, "waypoint.mesh.svc.corp.example");
});

Deno.test("statusPatch() writes nothing when the status is already ours, and keeps others' conditions", () => {
  const current: GatewayObject = {
    metadata: { generation: 3 },
    status: statusPatch({ metadata: { generation: 3 } }, WAYPOINT, NOW),
  };
  assert.equal(statusPatch(current, WAYPOINT, new Date()), undefined);
  const bumped = statusPatch({ ...current, metadata: { generation: 4 } }, WAYPOINT, new Date());
  assert.equal(bumped?.conditions?.[0].observedGeneration, 4);
  assert.equal(bumped?.conditions?.[0].lastTransitionTime, "2026-11-26T10:00:00Z", "same status");
  const other = {
    type: "ResolvedRefs",
    status: "True" as const,
    reason: "ResolvedRefs",
    message: "",
    lastTransitionTime: "2026-01-01T00:00:00Z",
  };
  const withOther = statusPatch(
    { metadata: { generation: 4 }, status: { conditions: [other] } },
    WAYPOINT,
    NOW,
  );
  assert.deepEqual(withOther?.conditions?.map((c) => c.type), [
    "ResolvedRefs",
    "Accepted",
    "Programmed",
  ]);
});

Deno.test("decideLease() creates, renews its own, takes an expired or released one, else follows", () => {
  const held = (holder: string) => ({ spec: { holderIdentity: holder } });
  const cases: [string, Parameters<typeof decideLease>, string][] = [
    ["no Lease yet", [undefined, "a", 0, 15_000], "create"],
    ["ours", [held("a"), "a", 60_000, 15_000], "renew"],
    ["another's, fresh", [held("b"), "a", 5_000, 15_000], "follow"],
    ["another's, unchanged past its duration", [held("b"), "a", 15_001, 15_000], "take"],
    ["released", [held(""), "a", 0, 15_000], "take"],
  ];
  for (const [name, args, want] of cases) assert.equal(decideLease(...args), want, name);
});

/** Polls until `check` holds, up to 5 s. */
async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("startGatewayStatus() lets one replica write the status and hands over on close", async () => {
  await using api = FakeKubeApi.start(HOST);
  const dir = await Deno.makeTempDir({ prefix: "waypoint-status-" });
  try {
    api.put(GATEWAYS, {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { ...WAYPOINT, generation: 1 },
      spec: { gatewayClassName: "istio-waypoint", listeners: [] },
    });
    const kubeconfig = await fakeKubeconfig(api, dir);
    const replica = (identity: string) =>
      startGatewayStatus({
        ...WAYPOINT,
        kubeconfig,
        identity,
        logger: quiet,
        resyncMs: 50,
        lease: { retryPeriodMs: 20, leaseDurationMs: 2_000, renewDeadlineMs: 1_000 },
      });
    const a = await replica("pod-a");
    await until("a leads", () => a.isLeader);
    const b = await replica("pod-b");
    await until("the status", () => api.requests.some((r) => r.method === "PATCH"));
    const patch = api.requests.find((r) => r.method === "PATCH")!;
    assert.equal(patch.path, `${GATEWAY_PATH}/status`);
    assert.equal(patch.contentType, "application/merge-patch+json");
    // Give b a few attempts: it must keep following while a renews.
    await until(
      "b tried",
      () =>
        api.requests.filter((r) => r.path.endsWith("/leases/waypoint-waypoint-status")).length > 10,
    );
    assert.equal(b.isLeader, false);
    const gateway = await (await fetch(`${api.url}${GATEWAY_PATH}`, {
      headers: { authorization: `Bearer ${api.token}` },
    })).json();
    assert.deepEqual(gateway.status.addresses, [
      { type: "Hostname", value: "waypoint.mesh.svc.cluster.local" },
    ]);
    const patches = () => api.requests.filter((r) => r.method === "PATCH").length;
    const written = patches();
    await a.close();
    await until("b leads", () => b.isLeader);
    assert.equal(patches(), written, "an unchanged status is not written again");
    await b.close();
    const lease = await (await fetch(`${api.url}${LEASE_PATH}`, {
      headers: { authorization: `Bearer ${api.token}` },
    })).json();
    assert.equal(lease.spec.holderIdentity, "", "released on close");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
