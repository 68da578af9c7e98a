/**
 * Validation of each kind we read, before anything is built from it. A resource with any reason
 * is reported and skipped (Istio rejects such objects at admission; we reject them at load).
 * After these checks a document may be treated as the matching type of `resources.ts`.
 */
import { FieldCheck, type Fields } from "./_fields.ts";
import { protocolName } from "./protocol.ts";
import type { KubeObject, ReadKind } from "./resources.ts";

type KindCheck = (check: FieldCheck, object: KubeObject) => void;

const CHECKS: Readonly<Record<ReadKind, KindCheck>> = {
  Namespace: () => {},
  Service: checkService,
  Pod: checkPod,
  EndpointSlice: checkEndpointSlice,
  ServiceEntry: checkServiceEntry,
  WorkloadEntry: (check, object) => {
    const spec = check.record(object.spec, "spec");
    if (spec) checkWorkloadEntrySpec(check, spec, "spec", false);
  },
  Gateway: checkGateway,
  GatewayClass: (check, object) => {
    check.string(check.record(object.spec, "spec")?.controllerName, "spec.controllerName");
  },
};

/**
 * Checks one resource of a kind we read.
 *
 * @param kind The kind, already matched with its apiVersion
 * @param object The parsed document
 * @returns Why it is invalid, one reason a fault; empty when valid
 */
export function checkResource(kind: ReadKind, object: KubeObject): string[] {
  const check = new FieldCheck();
  const meta = check.record(object.metadata, "metadata", true);
  check.string(meta?.name, "metadata.name", true);
  check.string(meta?.namespace, "metadata.namespace");
  check.stringMap(meta?.labels, "metadata.labels");
  check.stringMap(meta?.annotations, "metadata.annotations");
  CHECKS[kind](check, object);
  return check.reasons;
}

function checkService(check: FieldCheck, object: KubeObject): void {
  const spec = check.record(object.spec, "spec");
  if (!spec) return;
  check.string(spec.type, "spec.type");
  checkClusterIp(check, spec.clusterIP, "spec.clusterIP");
  (check.list(spec.clusterIPs, "spec.clusterIPs") ?? []).forEach((ip, i) =>
    checkClusterIp(check, ip, `spec.clusterIPs[${i}]`)
  );
  check.stringMap(spec.selector, "spec.selector");
  const ports = check.records(spec.ports, "spec.ports");
  for (const [port, path] of ports) {
    check.string(port.name, `${path}.name`, ports.length > 1);
    check.port(port.port, `${path}.port`, true);
    checkTargetPort(check, port.targetPort, `${path}.targetPort`);
    check.string(port.appProtocol, `${path}.appProtocol`);
    check.oneOf(port.protocol, `${path}.protocol`, ["TCP", "UDP", "SCTP"]);
  }
  check.unique(ports.map(([p]) => p.name as string | undefined), "spec.ports", "port name");
  check.unique(ports.map(([p]) => `${p.port}/${p.protocol ?? "TCP"}`), "spec.ports", "port");
}

function checkClusterIp(check: FieldCheck, value: unknown, path: string): void {
  if (value !== "None" && value !== "") check.ip(value, path);
}

function checkTargetPort(check: FieldCheck, value: unknown, path: string): void {
  if (typeof value === "string") check.string(value, path, true);
  else check.port(value, path);
}

function checkPod(check: FieldCheck, object: KubeObject): void {
  const spec = check.record(object.spec, "spec");
  check.string(spec?.serviceAccountName, "spec.serviceAccountName");
  check.string(spec?.serviceAccount, "spec.serviceAccount");
  for (const [container, path] of check.records(spec?.containers, "spec.containers")) {
    for (const [port, portPath] of check.records(container.ports, `${path}.ports`)) {
      check.string(port.name, `${portPath}.name`);
      check.port(port.containerPort, `${portPath}.containerPort`, true);
    }
  }
  const status = check.record(object.status, "status");
  check.string(status?.phase, "status.phase");
  check.ip(status?.podIP, "status.podIP");
  for (const [podIp, path] of check.records(status?.podIPs, "status.podIPs")) {
    check.ip(podIp.ip, `${path}.ip`, true);
  }
  for (const [condition, path] of check.records(status?.conditions, "status.conditions")) {
    check.string(condition.type, `${path}.type`, true);
    check.string(condition.status, `${path}.status`, true);
  }
}

function checkEndpointSlice(check: FieldCheck, object: KubeObject): void {
  const type = check.oneOf(object.addressType, "addressType", ["IPv4", "IPv6", "FQDN"], true);
  for (const [endpoint, path] of check.records(object.endpoints, "endpoints")) {
    const addresses = check.list(endpoint.addresses, `${path}.addresses`, true) ?? [];
    check.expect(addresses.length > 0, `Missing field: ${path}.addresses`);
    addresses.forEach((address, i) => {
      const at = `${path}.addresses[${i}]`;
      if (type === "FQDN") check.string(address, at, true);
      else check.ip(address, at, true);
    });
    const conditions = check.record(endpoint.conditions, `${path}.conditions`);
    check.boolean(conditions?.ready, `${path}.conditions.ready`);
    const ref = check.record(endpoint.targetRef, `${path}.targetRef`);
    for (const field of ["kind", "name", "namespace"]) {
      check.string(ref?.[field], `${path}.targetRef.${field}`);
    }
  }
  for (const [port, path] of check.records(object.ports, "ports")) {
    check.string(port.name, `${path}.name`);
    check.port(port.port, `${path}.port`);
  }
}

function checkServiceEntry(check: FieldCheck, object: KubeObject): void {
  const spec = check.record(object.spec, "spec", true);
  if (!spec) return;
  const hosts = check.list(spec.hosts, "spec.hosts", true) ?? [];
  check.expect(hosts.length > 0 || spec.hosts === undefined, "Missing field: spec.hosts[0]");
  hosts.forEach((host, i) => check.string(host, `spec.hosts[${i}]`, true));
  (check.list(spec.addresses, "spec.addresses") ?? []).forEach((address, i) => {
    const path = `spec.addresses[${i}]`;
    const text = check.string(address, path, true);
    // A CIDR is valid Istio but gives no single VIP; the builder warns and skips it.
    if (text !== undefined) check.ip(text.split("/")[0], path, true);
  });
  const ports = check.records(spec.ports, "spec.ports");
  for (const [port, path] of ports) {
    check.port(port.number, `${path}.number`, true);
    check.string(port.name, `${path}.name`);
    check.port(port.targetPort, `${path}.targetPort`);
    const protocol = check.string(port.protocol, `${path}.protocol`);
    check.expect(
      protocol === undefined || protocolName(protocol) !== undefined,
      `Invalid value: ${path}.protocol is "${protocol}" (want HTTP, HTTP2, GRPC, TCP, TLS, HTTPS…)`,
    );
  }
  check.unique(ports.map(([p]) => p.name as string | undefined), "spec.ports", "port name");
  check.unique(ports.map(([p]) => p.number as number), "spec.ports", "port number");
  check.oneOf(spec.resolution, "spec.resolution", ["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"]);
  const selector = check.record(spec.workloadSelector, "spec.workloadSelector");
  check.stringMap(selector?.labels, "spec.workloadSelector.labels");
  const endpoints = check.records(spec.endpoints, "spec.endpoints");
  for (const [endpoint, path] of endpoints) checkWorkloadEntrySpec(check, endpoint, path, true);
  check.expect(
    !(selector && endpoints.length > 0),
    "Conflicting fields: spec.endpoints and spec.workloadSelector cannot both be set",
  );
}

function checkWorkloadEntrySpec(
  check: FieldCheck,
  spec: Fields,
  path: string,
  addressRequired: boolean,
): void {
  check.string(spec.address, `${path}.address`, addressRequired);
  check.portMap(spec.ports, `${path}.ports`);
  check.stringMap(spec.labels, `${path}.labels`);
  check.string(spec.serviceAccount, `${path}.serviceAccount`);
}

function checkGateway(check: FieldCheck, object: KubeObject): void {
  const spec = check.record(object.spec, "spec", true);
  check.string(spec?.gatewayClassName, "spec.gatewayClassName", true);
  const listeners = check.records(spec?.listeners, "spec.listeners", true);
  for (const [listener, path] of listeners) {
    check.string(listener.name, `${path}.name`, true);
    check.port(listener.port, `${path}.port`, true);
    check.string(listener.protocol, `${path}.protocol`, true);
    const routes = check.record(listener.allowedRoutes, `${path}.allowedRoutes`);
    const at = `${path}.allowedRoutes.namespaces`;
    const namespaces = check.record(routes?.namespaces, at);
    check.oneOf(namespaces?.from, `${at}.from`, ["Same", "All", "Selector"]);
    checkSelector(check, namespaces?.selector, `${at}.selector`);
  }
  check.unique(listeners.map(([l]) => l.name as string), "spec.listeners", "listener name");
  const status = check.record(object.status, "status");
  for (const [address, path] of check.records(status?.addresses, "status.addresses")) {
    check.string(address.type, `${path}.type`);
    check.string(address.value, `${path}.value`, true);
  }
}

function checkSelector(check: FieldCheck, value: unknown, path: string): void {
  const selector = check.record(value, path);
  check.stringMap(selector?.matchLabels, `${path}.matchLabels`);
  const expressions = check.records(selector?.matchExpressions, `${path}.matchExpressions`);
  for (const [expression, at] of expressions) {
    check.string(expression.key, `${at}.key`, true);
    const operator = check.oneOf(expression.operator, `${at}.operator`, [
      "In",
      "NotIn",
      "Exists",
      "DoesNotExist",
    ], true);
    const values = check.list(expression.values, `${at}.values`) ?? [];
    values.forEach((item, i) => check.string(item, `${at}.values[${i}]`));
    const wantsValues = operator === "In" || operator === "NotIn";
    check.expect(
      operator === undefined || wantsValues === values.length > 0,
      `Invalid value: ${at}.values must be ${wantsValues ? "non-empty" : "empty"} for ${operator}`,
    );
  }
}
