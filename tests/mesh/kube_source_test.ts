import assert from "node:assert/strict";
import { SnapshotHolder, type SourceDoc, type WatchLoad } from "../../mesh/mod.ts";
import { meshConfigText, watchKubernetes } from "../../mesh/kube/mod.ts";
import { buildConfig, emptyConfig, parseMeshConfig, type ProxyConfig } from "../../proxy/mod.ts";
import { FakeKubeApi, fakeKubeconfig, quiet } from "../fixtures/kube_api.ts";

const HOST = "127.0.22.1";
const NAMESPACES = "/api/v1/namespaces";
const SERVICES = "/api/v1/services";
const GATEWAYS = "/apis/gateway.networking.k8s.io/v1/gateways";
const HTTP_ROUTES = "/apis/gateway.networking.k8s.io/v1/httproutes";
const TCP_ROUTES = "/apis/gateway.networking.k8s.io/v1alpha2/tcproutes";
const POLICIES = "/apis/security.istio.io/v1/authorizationpolicies";
const MESH_CONFIG = "/api/v1/namespaces/istio-system/configmaps";
const OPTIONS = {
  namespace: "mesh",
  name: "waypoint",
  trustDomain: "cluster.local",
  trustDomainAliases: [],
};

function service(name: string, ip: string, ports: unknown[] = [{ name: "http", port: 80 }]) {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "mesh" },
    spec: { clusterIP: ip, ports },
  };
}

const GATEWAY = {
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: { name: "waypoint", namespace: "mesh" },
  spec: {
    gatewayClassName: "istio-waypoint",
    listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }],
  },
};

const ROUTE = {
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "HTTPRoute",
  metadata: { name: "echo", namespace: "mesh" },
  spec: {
    parentRefs: [{ group: "", kind: "Service", name: "a", port: 80 }],
    rules: [{ backendRefs: [{ name: "a", port: 80 }] }],
  },
};

const DENY_DELETE = {
  apiVersion: "security.istio.io/v1",
  kind: "AuthorizationPolicy",
  metadata: { name: "deny-delete", namespace: "mesh" },
  spec: {
    targetRefs: [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "waypoint" }],
    action: "DENY",
    rules: [{ to: [{ operation: { methods: ["DELETE"] } }] }],
  },
};

/** Collects loads and waits for the next one. */
class Loads {
  readonly #seen: WatchLoad<ProxyConfig>[] = [];

  push = (load: WatchLoad<ProxyConfig>) => {
    this.#seen.push(load);
  };

  /** The next load not yet taken, waiting up to 5 s. */
  async next(): Promise<WatchLoad<ProxyConfig>> {
    const deadline = Date.now() + 5000;
    while (this.#seen.length === 0) {
      if (Date.now() > deadline) throw new Error("No load within 5 s");
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.#seen.shift()!;
  }
}

async function withSource(
  setup: (api: FakeKubeApi) => void,
  body: (
    api: FakeKubeApi,
    holder: SnapshotHolder<ProxyConfig>,
    loads: Loads,
    docs: () => readonly SourceDoc[],
  ) => Promise<void>,
): Promise<void> {
  await using api = FakeKubeApi.start(HOST);
  const dir = await Deno.makeTempDir({ prefix: "waypoint-kube-" });
  try {
    api.put(NAMESPACES, {
      kind: "Namespace",
      metadata: { name: "mesh", labels: { "istio.io/use-waypoint": "waypoint" } },
    });
    api.put(GATEWAYS, GATEWAY);
    // No TCPRoute CRD in this cluster.
    api.missing.add(TCP_ROUTES);
    setup(api);
    const holder = new SnapshotHolder<ProxyConfig>(emptyConfig(OPTIONS));
    const loads = new Loads();
    let last: readonly SourceDoc[] = [];
    const watch = await watchKubernetes(
      { kubeconfig: await fakeKubeconfig(api, dir), informer: { backoff: { initialMs: 10 } } },
      (documents, version) => {
        last = documents;
        return buildConfig(documents, version, OPTIONS);
      },
      holder,
      { logger: quiet, onLoad: loads.push, debounceMs: 20 },
    );
    try {
      await body(api, holder, loads, () => last);
    } finally {
      await watch.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("watchKubernetes() follows services, routes and policies through add, modify, delete", async () => {
  await withSource(
    (api) => api.put(SERVICES, service("a", "10.0.0.1")),
    async (api, holder, loads) => {
      const first = await loads.next();
      assert.equal(first.applied, true);
      assert.equal(first.snapshot.version, 1);
      assert.equal(holder.current.mesh.servicesByName.get("mesh/a")?.bound, true);
      assert.equal(holder.current.routes.httpRoutesFor("mesh/a", 80), undefined);

      api.put(SERVICES, service("b", "10.0.0.2"));
      await loads.next();
      assert.equal(holder.current.mesh.servicesByAddress.get("10.0.0.2")?.name, "b");

      api.put(HTTP_ROUTES, ROUTE);
      api.put(POLICIES, DENY_DELETE);
      await loads.next();
      assert.notEqual(holder.current.routes.httpRoutesFor("mesh/a", 80), undefined);
      assert.equal(holder.current.authz.count, 1);

      // Opting b out of the waypoint unbinds it.
      api.put(SERVICES, {
        ...service("b", "10.0.0.2"),
        metadata: { name: "b", namespace: "mesh", labels: { "istio.io/use-waypoint": "none" } },
      });
      await loads.next();
      assert.equal(holder.current.mesh.servicesByName.get("mesh/b")?.bound, false);

      api.delete(SERVICES, "mesh", "b");
      api.delete(POLICIES, "mesh", "deny-delete");
      const last = await loads.next();
      assert.equal(last.applied, true);
      assert.equal(holder.current.mesh.servicesByName.has("mesh/b"), false);
      assert.equal(holder.current.authz.count, 0);
    },
  );
});

Deno.test("watchKubernetes() keeps the last good snapshot and names the bad object", async () => {
  await withSource(
    (api) => api.put(SERVICES, service("a", "10.0.0.1")),
    async (api, holder, loads) => {
      await loads.next();
      const good = holder.current;
      api.put(SERVICES, service("bad", "10.0.0.3", [{ port: 0 }]));
      const rejected = await loads.next();
      assert.equal(rejected.applied, false);
      assert.equal(holder.current, good);
      const error = rejected.problems.find((p) => p.severity === "error");
      assert.equal(error?.where, "kube:Service mesh/bad");
      api.delete(SERVICES, "mesh", "bad");
      const fixed = await loads.next();
      assert.equal(fixed.applied, true);
      assert.equal(holder.current.version, good.version + 1);
    },
  );
});

Deno.test("watchKubernetes() waits for every kind's first list before the first snapshot", async () => {
  let failing: FakeKubeApi | undefined;
  let cleared = false;
  const started = withSource(
    (api) => {
      failing = api;
      api.put(SERVICES, service("a", "10.0.0.1"));
      api.failingLists.add(HTTP_ROUTES);
    },
    async (_api, holder, loads) => {
      const first = await loads.next();
      assert.equal(cleared, true, "the first snapshot came after the HTTPRoute list succeeded");
      assert.equal(first.snapshot.version, 1);
      assert.ok(holder.current.mesh.servicesByName.has("mesh/a"));
    },
  );
  // The HTTPRoute list fails a few times first; no snapshot may come out meanwhile.
  while (!failing || failing.count(HTTP_ROUTES, "list").length < 3) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(failing.requests.some((r) => r.path === SERVICES && r.query.get("watch")), true);
  cleared = true;
  failing.failingLists.delete(HTTP_ROUTES);
  await started;
});

Deno.test("watchKubernetes() fails after its sync timeout, naming the kind and its error", async () => {
  await using api = FakeKubeApi.start(HOST);
  const dir = await Deno.makeTempDir({ prefix: "waypoint-kube-" });
  try {
    api.failingLists.add(POLICIES);
    const holder = new SnapshotHolder<ProxyConfig>(emptyConfig(OPTIONS));
    await assert.rejects(
      watchKubernetes(
        { kubeconfig: await fakeKubeconfig(api, dir), syncTimeoutMs: 300 },
        (documents, version) => buildConfig(documents, version, OPTIONS),
        holder,
        { logger: quiet },
      ),
      /not listed within 300 ms: AuthorizationPolicy \(GET .*authorizationpolicies.* 500 InternalError: etcd is sad\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("watchKubernetes() hands the istio ConfigMap to the builder for the MeshConfig", async () => {
  await withSource(
    (api) =>
      api.put(MESH_CONFIG, {
        kind: "ConfigMap",
        metadata: { name: "istio", namespace: "istio-system" },
        data: { mesh: "rootNamespace: istio-config\ntrustDomainAliases: [old.td]\n" },
      }),
    async (api, _holder, loads, docs) => {
      await loads.next();
      const found = meshConfigText(docs());
      assert.equal(found?.origin, "kube:ConfigMap istio-system/istio");
      assert.equal(parseMeshConfig(found!.text, found!.origin).rootNamespace, "istio-config");
      const query = api.count(MESH_CONFIG, "list")[0].query;
      assert.equal(query.get("fieldSelector"), "metadata.name=istio");
    },
  );
});

Deno.test("watchKubernetes() hands documents over by kind, oldest first, named kube:Kind ns/name", async () => {
  await withSource(
    (api) => {
      api.put(HTTP_ROUTES, ROUTE);
      api.put(SERVICES, service("z", "10.0.0.26"));
      api.put(SERVICES, service("a", "10.0.0.1"));
    },
    async (_api, _holder, loads, docs) => {
      await loads.next();
      assert.deepEqual(docs().map((d) => d.file), [
        "kube:Namespace mesh",
        "kube:Service mesh/z",
        "kube:Service mesh/a",
        "kube:Gateway mesh/waypoint",
        "kube:HTTPRoute mesh/echo",
      ]);
      assert.equal(docs()[1].object.apiVersion, "v1");
    },
  );
});

Deno.test("watchKubernetes() survives a builder that throws, keeping the last snapshot", async () => {
  await using api = FakeKubeApi.start(HOST);
  const dir = await Deno.makeTempDir({ prefix: "waypoint-kube-" });
  try {
    api.put(SERVICES, service("a", "10.0.0.1"));
    const holder = new SnapshotHolder<ProxyConfig>(emptyConfig(OPTIONS));
    const loads = new Loads();
    let threw = 0;
    const watch = await watchKubernetes(
      { kubeconfig: await fakeKubeconfig(api, dir) },
      (documents, version) => {
        if (documents.some((d) => d.file === "kube:Service mesh/boom")) {
          threw++;
          throw new Error("boom");
        }
        return buildConfig(documents, version, OPTIONS);
      },
      holder,
      { logger: quiet, onLoad: loads.push, debounceMs: 20 },
    );
    try {
      await loads.next();
      const good = holder.current;
      api.put(SERVICES, service("boom", "10.0.0.2"));
      for (let i = 0; threw === 0; i++) {
        if (i > 500) throw new Error("The builder never ran");
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(holder.current, good);
      api.delete(SERVICES, "mesh", "boom");
      api.put(SERVICES, service("c", "10.0.0.3"));
      const next = await loads.next();
      assert.equal(next.applied, true);
      assert.equal(holder.current.version, good.version + 1);
      assert.ok(holder.current.mesh.servicesByName.has("mesh/c"));
    } finally {
      await watch.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
