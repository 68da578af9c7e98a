/**
 * The manifests in `deploy/` hold together: every file is a known kind with its required fields,
 * Kustomize lists them all, the selectors, named ports and probes point at what exists, the RBAC
 * covers every kind the Kubernetes watcher lists, and the pod is set up for the Istio CA and a
 * full drain.
 */
import assert from "node:assert/strict";
import { meshKinds } from "../../mesh/kube/mod.ts";
import { parseDrainTimeout } from "../../cli/shutdown.ts";
import {
  at,
  checkShape,
  grants,
  type Manifest,
  readManifests,
  selects,
  unknownPort,
  where,
} from "./_shapes.ts";

const DIR = new URL("../../deploy", import.meta.url).pathname;
const manifests = await readManifests(DIR);

function one(kind: string): Manifest {
  const found = manifests.filter((m) => m.doc.kind === kind);
  assert.equal(found.length, 1, `one ${kind} in deploy/`);
  return found[0];
}

const deployment = one("Deployment").doc;
const podLabels = deployment.spec.template.metadata.labels;
const container = deployment.spec.template.spec.containers[0];
/** `--flag=value` or `--flag value` from the container's args. */
function arg(flag: string): string | undefined {
  const args: string[] = container.args;
  const i = args.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
  if (i < 0) return undefined;
  return args[i].includes("=") ? args[i].slice(flag.length + 1) : args[i + 1];
}

Deno.test("deploy/ manifests are known kinds with their required fields", () => {
  assert.ok(manifests.length >= 10, `read ${manifests.length} documents`);
  assert.deepEqual(manifests.flatMap(checkShape), []);
});

Deno.test("deploy/kustomization.yaml lists every other YAML file, and only those", async () => {
  const files = new Set<string>();
  for await (const e of Deno.readDir(DIR)) {
    if (e.isFile && /\.ya?ml$/.test(e.name) && e.name !== "kustomization.yaml") files.add(e.name);
  }
  const listed: string[] = one("Kustomization").doc.resources;
  assert.deepEqual([...listed].sort(), [...files].sort());
});

Deno.test("deploy/ selectors find the waypoint pods and the Deployment selects its template", () => {
  const selectors: [string, Record<string, string>][] = [
    ["Deployment spec.selector", deployment.spec.selector.matchLabels],
    ["Service spec.selector", one("Service").doc.spec.selector],
    ["PodDisruptionBudget spec.selector", one("PodDisruptionBudget").doc.spec.selector.matchLabels],
  ];
  for (const [what, selector] of selectors) {
    assert.ok(selects(selector, podLabels), `${what} ${JSON.stringify(selector)} misses the pods`);
  }
  const hpa = one("HorizontalPodAutoscaler").doc.spec.scaleTargetRef;
  assert.deepEqual([hpa.kind, hpa.name], ["Deployment", deployment.metadata.name]);
});

Deno.test("deploy/ pods carry Istio's waypoint labels for their Gateway", () => {
  const gateway = one("Gateway").doc;
  assert.equal(podLabels["gateway.networking.k8s.io/gateway-name"], gateway.metadata.name);
  assert.equal(podLabels["istio.io/dataplane-mode"], "none");
  assert.equal(gateway.metadata.labels["istio.io/waypoint-for"], "service");
  assert.equal(gateway.spec.gatewayClassName, one("GatewayClass").doc.metadata.name);
  assert.deepEqual(
    gateway.spec.listeners.map((l: { name: string; port: number; protocol: string }) => [
      l.name,
      l.port,
      l.protocol,
    ]),
    [["mesh", 15008, "HBONE"]],
  );
});

Deno.test("deploy/ Service target ports and probe ports are container ports", () => {
  const ports = container.ports;
  const service = one("Service").doc;
  const refs: [string, number | string][] = [
    ...service.spec.ports.map((p: { name: string; targetPort?: number | string; port: number }) =>
      [`Service port ${p.name}`, p.targetPort ?? p.port] as [string, number | string]
    ),
    ["readinessProbe", container.readinessProbe.httpGet.port],
    ["startupProbe", container.startupProbe.httpGet.port],
  ];
  const missing = refs.flatMap(([what, ref]) => {
    const bad = unknownPort(ref, ports);
    return bad ? [`${what} → ${bad}`] : [];
  });
  assert.deepEqual(missing, []);
  assert.deepEqual(
    service.spec.ports.map((p: { name: string; port: number }) => [p.name, p.port]),
    [["mesh", 15008], ["status-port", 15021], ["http-monitoring", 15020]],
  );
  assert.equal(container.readinessProbe.httpGet.path, "/healthz/ready");
});

Deno.test("deploy/ RBAC covers every kind the Kubernetes watcher lists, the Gateway status and the Lease", () => {
  const role = one("ClusterRole").doc;
  const binding = one("ClusterRoleBinding").doc;
  const sa = one("ServiceAccount").doc.metadata.name;
  assert.equal(binding.roleRef.name, role.metadata.name);
  assert.ok(
    binding.subjects.some((s: { kind: string; name: string }) =>
      s.kind === "ServiceAccount" && s.name === sa
    ),
  );
  assert.equal(deployment.spec.template.spec.serviceAccountName, sa);
  const needs: [string, string, string[]][] = [
    ...meshKinds().map((k) => [k.group, k.plural, ["list", "watch"]] as [string, string, string[]]),
    ["gateway.networking.k8s.io", "gateways/status", ["patch"]],
    ["coordination.k8s.io", "leases", ["get", "create", "update"]],
  ];
  const missing = needs.filter(([group, resource, verbs]) =>
    !grants(role.rules, group, resource, verbs)
  ).map(([group, resource, verbs]) => `${group || "core"}/${resource}: ${verbs.join(",")}`);
  assert.deepEqual(missing, []);
});

Deno.test("deploy/ pod gets its certificate from istiod with a projected istio-ca token", () => {
  const volumes = deployment.spec.template.spec.volumes;
  const mountOf = (file: string | undefined) => {
    const m = container.volumeMounts.find((v: { mountPath: string }) =>
      file?.startsWith(v.mountPath + "/")
    );
    return m && volumes.find((v: { name: string }) => v.name === m.name);
  };
  const token = mountOf(arg("--ca-token"));
  const source = token?.projected?.sources?.[0]?.serviceAccountToken;
  assert.equal(source?.audience, "istio-ca", "--ca-token is a projected istio-ca token");
  assert.equal(`/var/run/secrets/tokens/${source?.path}`, arg("--ca-token"));
  assert.equal(mountOf(arg("--ca-root"))?.configMap?.name, "istio-ca-root-cert");
  assert.equal(arg("--ca-address"), "istiod.istio-system.svc:15012");
  assert.equal(container.args[0], "run");
  assert.ok(container.args.includes("--kubernetes"));
});

Deno.test("deploy/ pod runs locked down and is given longer to stop than it drains", () => {
  const pod = deployment.spec.template.spec;
  const sc = container.securityContext;
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.deepEqual(
    [sc.readOnlyRootFilesystem, sc.allowPrivilegeEscalation, sc.capabilities.drop],
    [true, false, ["ALL"]],
  );
  assert.ok(container.resources.requests.cpu && container.resources.limits.memory);
  const drainMs = parseDrainTimeout(arg("--drain-timeout") ?? "5s");
  assert.ok(
    pod.terminationGracePeriodSeconds * 1000 > drainMs,
    `${where(one("Deployment"))}: terminationGracePeriodSeconds must exceed --drain-timeout`,
  );
  assert.ok(at(pod, "containers.0.readinessProbe.httpGet"));
});
