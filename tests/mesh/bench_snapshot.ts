/**
 * Times `buildSnapshot` and `buildConfig` on a generated cluster as the Kubernetes source hands it
 * over (API objects, no YAML): N Services, 5N Pods, EndpointSlices for every other Service (the
 * rest resolve through their selector), a WorkloadEntry and ServiceEntry per namespace, and two
 * AuthorizationPolicies, two HTTPRoutes and a DestinationRule per namespace. Not a test.
 *
 * Run: `deno run -A tests/mesh/bench_snapshot.ts [--sizes=250,500,1000,2000] [--runs=7]`;
 * `--no-slices` leaves EndpointSlices out, so every Service resolves through its selector.
 * Profile one size: `deno run -A --cpu-prof tests/mesh/bench_snapshot.ts --sizes=1000`.
 */
import { buildSnapshot, type KubeObject, type SourceDoc } from "../../mesh/mod.ts";
import { buildConfig } from "../../proxy/config.ts";
import process from "node:process";

const WAYPOINT = { namespace: "mesh", name: "waypoint" } as const;
const PODS_PER_SERVICE = 5;
const USE = { "istio.io/use-waypoint": "waypoint", "istio.io/use-waypoint-namespace": "mesh" };

/** A dotted IPv4 address from a base and an index below 2^16. */
function ip(base: string, i: number): string {
  return `${base}.${i >> 8}.${i & 255}`;
}

function doc(object: KubeObject): SourceDoc {
  const meta = object.metadata as { namespace?: string; name: string };
  const name = meta.namespace ? `${meta.namespace}/${meta.name}` : meta.name;
  return { file: `kube:${object.kind} ${name}`, line: 0, object };
}

/** Services `svc-<i>` in `ns-<i % namespaces>`, with their Pods and, for odd i, an EndpointSlice. */
function serviceDocs(i: number, namespaces: number, slices: boolean): KubeObject[] {
  const namespace = `ns-${i % namespaces}`;
  const name = `svc-${i}`;
  // Two-label selectors with a shared `tier` value, so a label index has large lists to intersect.
  const selector = { app: name, tier: ["web", "api", "db"][i % 3] };
  const out: KubeObject[] = [{
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      clusterIP: ip("10.96", i),
      selector,
      ports: [
        { name: "http", port: 80, targetPort: 8080, protocol: "TCP" },
        { name: "grpc", port: 9090, targetPort: "grpc", protocol: "TCP" },
      ],
    },
  }];
  const addresses: string[] = [];
  for (let p = 0; p < PODS_PER_SERVICE; p++) {
    const address = ip("10.200", i * PODS_PER_SERVICE + p);
    addresses.push(address);
    out.push({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: `${name}-${p}`,
        namespace,
        labels: { ...selector, version: `v${p % 2}`, "pod-template-hash": `h${i}` },
      },
      spec: {
        serviceAccountName: name,
        containers: [{
          name: "app",
          ports: [{ name: "http", containerPort: 8080 }, { name: "grpc", containerPort: 9091 }],
        }],
      },
      status: {
        phase: "Running",
        podIP: address,
        podIPs: [{ ip: address }],
        conditions: [{ type: "Ready", status: p === 4 ? "False" : "True" }],
      },
    });
  }
  if (slices && i % 2 === 1) {
    out.push({
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: `${name}-abcde`,
        namespace,
        labels: { "kubernetes.io/service-name": name },
      },
      addressType: "IPv4",
      ports: [{ name: "http", port: 8080 }, { name: "grpc", port: 9091 }],
      endpoints: addresses.map((address, p) => ({
        addresses: [address],
        conditions: { ready: p !== 4 },
        targetRef: { kind: "Pod", namespace, name: `${name}-${p}` },
      })),
    });
  }
  return out;
}

/** Per namespace: the Namespace, a WorkloadEntry and ServiceEntry, policies, routes, a rule. */
function namespaceDocs(n: number, namespaces: number): KubeObject[] {
  const namespace = `ns-${n}`;
  // Services i ≡ n (mod namespaces) live in this namespace.
  const [first, second, third] = [n, n + namespaces, n + 2 * namespaces];
  const ref = (i: number) => ({ kind: "Service", group: "", name: `svc-${i}` });
  return [
    {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: namespace, labels: USE },
    },
    {
      apiVersion: "networking.istio.io/v1",
      kind: "WorkloadEntry",
      metadata: { name: "vm", namespace },
      spec: { address: ip("10.250", n), labels: { app: "vm" }, serviceAccount: "vm" },
    },
    {
      apiVersion: "networking.istio.io/v1",
      kind: "ServiceEntry",
      metadata: { name: "vm", namespace },
      spec: {
        hosts: [`vm.${namespace}.example.com`],
        addresses: [ip("240.1", n)],
        ports: [{ number: 80, name: "http", protocol: "HTTP" }],
        resolution: "STATIC",
        workloadSelector: { labels: { app: "vm" } },
      },
    },
    authzPolicy(namespace, "allow-mesh", ref(first), "ALLOW", {
      from: [{ source: { principals: [`cluster.local/ns/${namespace}/sa/*`] } }],
      to: [{ operation: { methods: ["GET", "POST"], paths: ["/api/*"] } }],
    }),
    authzPolicy(namespace, "deny-admin", ref(second), "DENY", {
      to: [{ operation: { paths: ["/admin/*"] } }],
    }),
    ...[first, second].map((i) => ({
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "HTTPRoute",
      metadata: { name: `route-${i}`, namespace },
      spec: {
        parentRefs: [{ ...ref(i), port: 80 }],
        rules: [
          {
            matches: [{ path: { type: "PathPrefix", value: "/v2" } }],
            backendRefs: [
              { name: `svc-${i}`, port: 80, weight: 90 },
              { name: `svc-${third}`, port: 80, weight: 10 },
            ],
          },
          { backendRefs: [{ name: `svc-${i}`, port: 80 }] },
        ],
      },
    })),
    {
      apiVersion: "networking.istio.io/v1",
      kind: "DestinationRule",
      metadata: { name: `svc-${first}`, namespace },
      spec: {
        host: `svc-${first}.${namespace}.svc.cluster.local`,
        trafficPolicy: { loadBalancer: { simple: "LEAST_REQUEST" } },
      },
    },
  ];
}

function authzPolicy(
  namespace: string,
  name: string,
  target: unknown,
  action: string,
  rule: unknown,
): KubeObject {
  return {
    apiVersion: "security.istio.io/v1",
    kind: "AuthorizationPolicy",
    metadata: { name, namespace },
    spec: { targetRefs: [target], action, rules: [rule] },
  };
}

/**
 * A cluster of `services` Services in `max(5, services / 50)` namespaces, bound to `mesh/waypoint`.
 *
 * @param services How many Services (Pods are five times as many)
 * @param slices Whether every other Service has an EndpointSlice
 * @returns Documents in the order the Kubernetes source sorts them: by kind, then name
 */
export function clusterDocs(services: number, slices = true): SourceDoc[] {
  const namespaces = Math.max(5, services / 50 | 0);
  const objects: KubeObject[] = [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "mesh", labels: USE } },
    {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { ...WAYPOINT, labels: { "istio.io/waypoint-for": "all" } },
      spec: {
        gatewayClassName: "istio-waypoint",
        listeners: [{
          name: "mesh",
          port: 15008,
          protocol: "HBONE",
          allowedRoutes: { namespaces: { from: "All" } },
        }],
      },
    },
  ];
  for (let n = 0; n < namespaces; n++) objects.push(...namespaceDocs(n, namespaces));
  for (let i = 0; i < services; i++) objects.push(...serviceDocs(i, namespaces, slices));
  const order = ["Namespace", "Service", "Pod", "EndpointSlice", "ServiceEntry", "WorkloadEntry"];
  const rank = (kind: string) => order.includes(kind) ? order.indexOf(kind) : order.length;
  return objects.sort((a, b) => rank(a.kind) - rank(b.kind)).map(doc);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

/** Median wall and CPU milliseconds; CPU (all threads, GC included) shows less of others' load. */
function time(runs: number, work: () => void): string {
  work();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = performance.now();
    const used = process.cpuUsage();
    work();
    const { user, system } = process.cpuUsage(used);
    wall.push(performance.now() - start);
    cpu.push((user + system) / 1000);
  }
  return `${median(wall).toFixed(1)}\t${median(cpu).toFixed(1)}`;
}

function flag(name: string, fallback: string): string {
  const found = Deno.args.find((a) => a.startsWith(`--${name}=`));
  return found === undefined ? fallback : found.slice(name.length + 3);
}

if (import.meta.main) {
  const sizes = flag("sizes", "250,500,1000,2000").split(",").map(Number);
  const runs = Number(flag("runs", "7"));
  const slices = !Deno.args.includes("--no-slices");
  const load = Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
  console.log(`load average ${load}, runs ${runs}, EndpointSlices ${slices ? "half" : "none"}`);
  console.log("N\tpods\tdocs\tsnapshot wall ms\tCPU ms\tconfig wall ms\tCPU ms\terrors");
  for (const n of sizes) {
    const docs = clusterDocs(n, slices);
    const options = { ...WAYPOINT, version: 1 };
    const errors = buildConfig(docs, 1, WAYPOINT).problems.filter((p) => p.severity === "error");
    const snapshot = time(runs, () => buildSnapshot(docs, options));
    const config = time(runs, () => buildConfig(docs, 1, WAYPOINT));
    const row = [n, n * PODS_PER_SERVICE, docs.length, snapshot, config];
    console.log([...row, errors.length].join("\t"));
    if (errors.length > 0) console.log(errors.slice(0, 3));
  }
  console.log(`load average ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
}
