import assert from "node:assert/strict";
import {
  Informer,
  type InformerOptions,
  KubeAccess,
  KubeApiError,
  KubeClient,
  type KubeClientOptions,
  meshKinds,
  nextStep,
  parseKubeconfig,
  type ResourceKind,
} from "../../mesh/kube/mod.ts";
import { FakeKubeApi, quiet } from "../fixtures/kube_api.ts";

const HOST = "127.0.22.2";
const SERVICES = "/api/v1/services";
const SERVICE_KIND: ResourceKind = {
  group: "",
  version: "v1",
  kind: "Service",
  plural: "services",
};

function svc(name: string, ip: string) {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "mesh" },
    spec: { clusterIP: ip, ports: [{ port: 80 }] },
  };
}

/** Polls `check` until it holds, up to 5 s. */
async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function withInformer(
  setup: (api: FakeKubeApi) => void,
  body: (api: FakeKubeApi, informer: Informer, changes: () => number) => Promise<void>,
  options: { informer?: InformerOptions; client?: KubeClientOptions; kind?: ResourceKind } = {},
): Promise<void> {
  await using api = FakeKubeApi.start(HOST);
  setup(api);
  const access = await KubeAccess.open(
    parseKubeconfig(
      `current-context: c
contexts: [{ name: c, context: { cluster: k, user: u } }]
clusters: [{ name: k, cluster: { server: "${api.url}" } }]
users: [{ name: u, user: { token: ${api.token} } }]`,
      "/tmp/kubeconfig",
    ),
  );
  let changes = 0;
  const informer = new Informer(
    new KubeClient(access, options.client),
    options.kind ?? SERVICE_KIND,
    {
      logger: quiet,
      random: () => 0,
      backoff: { initialMs: 10, maxMs: 50 },
      ...options.informer,
      onChange: () => changes++,
    },
  );
  informer.start();
  try {
    await body(api, informer, () => changes);
  } finally {
    await informer.close();
    access.close();
  }
}

const names = (informer: Informer) =>
  informer.objects().map((o) => (o.metadata as { name: string }).name).sort().join(",");

Deno.test("Informer lists page by page, then applies ADDED, MODIFIED and DELETED", async () => {
  await withInformer(
    (api) => ["a", "b", "c", "d", "e"].forEach((n, i) => api.put(SERVICES, svc(n, `10.0.0.${i}`))),
    async (api, informer, changes) => {
      await informer.synced;
      assert.equal(names(informer), "a,b,c,d,e");
      assert.equal(api.count(SERVICES, "list").length, 3, "5 items in pages of 2");
      // List items come without apiVersion/kind; the informer puts them back.
      assert.equal(informer.objects()[0].kind, "Service");
      assert.equal(informer.objects()[0].apiVersion, "v1");
      await until("the watch", () => api.openWatches(SERVICES) === 1);
      const watch = api.count(SERVICES, "watch")[0].query;
      assert.equal(watch.get("allowWatchBookmarks"), "true");
      assert.equal(watch.get("resourceVersion"), "105");
      api.put(SERVICES, svc("f", "10.0.0.9"));
      api.put(SERVICES, svc("a", "10.0.1.1"));
      api.delete(SERVICES, "mesh", "b");
      await until("three changes", () => changes() === 3);
      assert.equal(names(informer), "a,c,d,e,f");
      const a = informer.objects().find((o) => (o.metadata as { name: string }).name === "a");
      assert.equal((a?.spec as { clusterIP: string }).clusterIP, "10.0.1.1");
    },
    { client: { pageSize: 2 } },
  );
});

Deno.test("Informer relists after a 410 Gone answer to its watch", async () => {
  await withInformer(
    (api) => {
      api.put(SERVICES, svc("a", "10.0.0.1"));
      api.failNextWatch(SERVICES, "gone-status");
    },
    async (api, informer) => {
      await informer.synced;
      await until(
        "a second list and a watch",
        () => api.count(SERVICES, "list").length === 2 && api.openWatches(SERVICES) === 1,
      );
      api.put(SERVICES, svc("b", "10.0.0.2"));
      await until("b", () => names(informer) === "a,b");
    },
  );
});

Deno.test("Informer relists after an ERROR event with code 410", async () => {
  await withInformer(
    (api) => {
      api.put(SERVICES, svc("a", "10.0.0.1"));
      api.failNextWatch(SERVICES, "gone-event");
    },
    async (api, informer) => {
      await informer.synced;
      await until(
        "a second list and a watch",
        () => api.count(SERVICES, "list").length === 2 && api.openWatches(SERVICES) === 1,
      );
      api.delete(SERVICES, "mesh", "a");
      await until("a gone", () => names(informer) === "");
    },
  );
});

Deno.test("Informer rewatches from the last resourceVersion when the server cuts the stream", async () => {
  await withInformer(
    (api) => api.put(SERVICES, svc("a", "10.0.0.1")),
    async (api, informer) => {
      await informer.synced;
      await until("the watch", () => api.openWatches(SERVICES) === 1);
      const rv = api.put(SERVICES, svc("b", "10.0.0.2"));
      await until("b", () => names(informer) === "a,b");
      const bookmark = api.bookmark(SERVICES);
      assert.ok(Number(bookmark) > Number(rv));
      // The bookmark must reach the informer before the cut, or it cannot have moved its position.
      await new Promise((r) => setTimeout(r, 50));
      api.cutWatches(SERVICES);
      await until("a second watch", () => api.openWatches(SERVICES) === 1);
      const watches = api.count(SERVICES, "watch");
      assert.equal(watches.length, 2);
      assert.equal(watches[1].query.get("resourceVersion"), bookmark, "from the bookmark");
      assert.equal(api.count(SERVICES, "list").length, 1, "no relist after a cut");
      api.put(SERVICES, svc("c", "10.0.0.3"));
      await until("c", () => names(informer) === "a,b,c");
    },
  );
});

Deno.test("Informer aborts a watch that sends no bytes and watches again", async () => {
  await withInformer(
    (api) => {
      api.put(SERVICES, svc("a", "10.0.0.1"));
      api.failNextWatch(SERVICES, "stall");
    },
    async (api, informer) => {
      await informer.synced;
      await until("a second watch", () => api.openWatches(SERVICES) === 1);
      assert.equal(api.count(SERVICES, "watch").length, 2);
      api.put(SERVICES, svc("b", "10.0.0.2"));
      await until("b", () => names(informer) === "a,b");
    },
    { informer: { timeoutSeconds: 1, inactivitySlackMs: 100 } },
  );
});

Deno.test("Informer reopens a watch the server ended normally", async () => {
  await withInformer(
    (api) => api.put(SERVICES, svc("a", "10.0.0.1")),
    async (api, informer) => {
      await informer.synced;
      await until("a third watch", () => api.count(SERVICES, "watch").length >= 3);
      assert.equal(api.count(SERVICES, "list").length, 1);
      api.put(SERVICES, svc("b", "10.0.0.2"));
      await until("b", () => names(informer) === "a,b");
    },
    { informer: { timeoutSeconds: 1 } },
  );
});

Deno.test("Informer treats a kind the server does not serve as empty and retries it", async () => {
  const path = "/apis/gateway.networking.k8s.io/v1alpha2/tcproutes";
  const tcpRoute = meshKinds().find((k) => k.kind === "TCPRoute")!;
  await withInformer(
    (api) => api.missing.add(path),
    async (api, informer, changes) => {
      await informer.synced;
      assert.equal(informer.objects().length, 0);
      api.missing.delete(path);
      api.put(path, { kind: "TCPRoute", metadata: { name: "t", namespace: "mesh" }, spec: {} });
      await until("the route", () => informer.objects().length === 1);
      assert.equal(informer.objects()[0].apiVersion, "gateway.networking.k8s.io/v1alpha2");
      assert.equal(changes(), 1);
    },
    { kind: tcpRoute, informer: { missingRetryMs: 20 } },
  );
});

Deno.test("Informer relists after an event larger than its bound", async () => {
  await withInformer(
    (api) => api.put(SERVICES, svc("a", "10.0.0.1")),
    async (api, informer) => {
      await informer.synced;
      await until("the watch", () => api.openWatches(SERVICES) === 1);
      api.sendRaw(SERVICES, `{"type":"ADDED","object":{"x":"${"y".repeat(5000)}"}}\n`);
      await until("a relist", () => api.count(SERVICES, "list").length === 2);
      await until("a new watch", () => api.openWatches(SERVICES) === 1);
      api.put(SERVICES, svc("b", "10.0.0.2"));
      await until("b", () => names(informer) === "a,b");
    },
    { client: { maxEventBytes: 4096 } },
  );
});

Deno.test("Informer waits out a failing list and backs off", async () => {
  await withInformer(
    (api) => api.failingLists.add(SERVICES),
    async (api, informer) => {
      await until("three lists", () => api.count(SERVICES, "list").length >= 3);
      assert.equal(informer.isSynced, false);
      assert.match(informer.lastError ?? "", /500 InternalError: etcd is sad/);
      api.failingLists.delete(SERVICES);
      await informer.synced;
    },
  );
});

Deno.test("nextStep() relists on 410 and lost events, rewatches on transport faults", () => {
  const cases: [string, KubeApiError, "list" | "watch" | "event", boolean, string][] = [
    ["410 status on watch", new KubeApiError(410, "Expired", ""), "watch", true, "now"],
    ["410 ERROR event", new KubeApiError(410, "Expired", ""), "event", true, "now"],
    ["410 on a list page", new KubeApiError(410, "Expired", ""), "list", true, "backoff"],
    ["404 on list", new KubeApiError(404, "NotFound", ""), "list", true, "missing"],
    ["404 on watch", new KubeApiError(404, "NotFound", ""), "watch", true, "backoff"],
    ["other ERROR event", new KubeApiError(500, "InternalError", ""), "event", true, "backoff"],
    ["oversized event", new KubeApiError(0, "TooLarge", ""), "watch", true, "backoff"],
    ["connection lost", new KubeApiError(0, "TypeError", ""), "watch", false, "backoff"],
    ["silent watch", new KubeApiError(0, "Inactive", ""), "watch", false, "backoff"],
    ["500 on list", new KubeApiError(500, "InternalError", ""), "list", true, "backoff"],
    ["403 on watch", new KubeApiError(403, "Forbidden", ""), "watch", false, "backoff"],
  ];
  for (const [name, error, phase, relist, wait] of cases) {
    assert.deepEqual(nextStep(error, phase), { relist, wait }, name);
  }
});
