/**
 * The parts AuthorizationPolicy and RequestAuthentication share: picking their documents out of a
 * load, `metadata`, `selector`, `targetRef(s)` and the admission checks on them
 * (`validateOneOfSelectorType`, `validatePolicyTargetReference`), reported with `file:line`.
 */
import type { Problem } from "../mesh/mod.ts";
import { type Fields, Schema } from "./_schema.ts";

/** A parsed document as the loader hands it over. */
export interface PolicySource {
  readonly file: string;
  readonly line: number;
  // deno-lint-ignore no-explicit-any
  readonly object: any;
}

/** One `targetRef` entry. */
export interface TargetRef {
  /** Canonical group: `core` for the empty group. */
  readonly group: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
  /** `spec.targetRefs[i]` or `spec.targetRef`, for messages. */
  readonly path: string;
}

/** The common head of a policy document. */
export interface PolicyHead {
  readonly namespace: string;
  readonly name: string;
  /** `Kind ns/name` */
  readonly ref: string;
  /** `file:line` */
  readonly where: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly spec: Fields;
  /** `targetRefs`, or the deprecated `targetRef` when `targetRefs` is empty. */
  readonly targetRefs: readonly TargetRef[];
  /** A head plus the schema reader, so the caller keeps reading the spec with it. */
  readonly schema: Schema;
  /** Admission errors found so far (not schema faults: the policy is still compiled). */
  readonly errors: string[];
}

const API_VERSIONS = ["security.istio.io/v1", "security.istio.io/v1beta1"];
const ALLOWED_REFS = [
  "core/Service",
  "networking.istio.io/ServiceEntry",
  "gateway.networking.k8s.io/Gateway",
  "gateway.networking.k8s.io/GatewayClass",
];
const MAX_REFS = 16;

/**
 * The documents of one kind, read up to their spec. Objects whose shape is wrong are reported and
 * left out; duplicates of `namespace/name` are reported and the first one wins.
 *
 * @param docs Every document of the load
 * @param kind `AuthorizationPolicy`, `RequestAuthentication` (or `WasmPlugin`, with its versions)
 * @param problems Receives located problems
 * @param apiVersions The kind's apiVersions. @default security.istio.io v1 and v1beta1
 */
export function readHeads(
  docs: readonly PolicySource[],
  kind: string,
  problems: Problem[],
  apiVersions: readonly string[] = API_VERSIONS,
): PolicyHead[] {
  const heads: PolicyHead[] = [];
  const seen = new Set<string>();
  for (const doc of docs) {
    const object = doc.object;
    if (object?.kind !== kind || !apiVersions.includes(object?.apiVersion)) continue;
    const head = readHead(doc, kind, problems);
    if (!head) continue;
    if (seen.has(head.ref)) {
      problems.push(
        located(
          "error",
          head,
          `Duplicate resource: ${head.ref} is defined twice; this one is skipped`,
        ),
      );
      continue;
    }
    seen.add(head.ref);
    heads.push(head);
  }
  return heads;
}

/** Reports the schema faults, admission errors and warnings of a read policy. */
export function reportHead(head: PolicyHead, problems: Problem[]): boolean {
  for (const fault of head.schema.faults) {
    problems.push(located("error", head, `${fault}; the policy is skipped`));
  }
  for (const error of head.errors) {
    problems.push(located("error", head, `Invalid policy: ${error}`));
  }
  for (const warning of head.schema.warnings) problems.push(located("warning", head, warning));
  return head.schema.faults.length === 0;
}

/** A problem located at a policy. */
export function located(
  severity: Problem["severity"],
  head: Pick<PolicyHead, "where" | "ref">,
  message: string,
): Problem {
  return { severity, where: head.where, resource: head.ref, message };
}

function readHead(doc: PolicySource, kind: string, problems: Problem[]): PolicyHead | undefined {
  const schema = new Schema();
  const where = `${doc.file}:${doc.line}`;
  const meta = schema.mapping(doc.object.metadata, "metadata");
  const name = schema.text(meta?.name, "metadata.name");
  if (!name) {
    problems.push({
      severity: "error",
      where,
      message: `Missing field: metadata.name (${kind} skipped)`,
    });
    return undefined;
  }
  const namespace = schema.text(meta?.namespace, "metadata.namespace") || "default";
  const spec = schema.mapping(doc.object.spec, "spec") ?? {};
  const errors: string[] = [];
  const targetRefs = readTargetRefs(schema, spec, errors);
  const selector = schema.mapping(spec.selector, "spec.selector");
  if (selector && targetRefs.length > 0) {
    errors.push("only one of targetRefs or workloadSelector can be set");
  }
  return {
    namespace,
    name,
    ref: `${kind} ${namespace}/${name}`,
    where,
    annotations: schema.textMap(meta?.annotations, "metadata.annotations"),
    spec,
    targetRefs,
    schema,
    errors,
  };
}

function readTargetRefs(schema: Schema, spec: Fields, errors: string[]): TargetRef[] {
  const many = schema.list(spec.targetRefs, "spec.targetRefs") ?? [];
  if (many.length > MAX_REFS) {
    errors.push(`spec.targetRefs has ${many.length} entries (at most ${MAX_REFS})`);
  }
  if (many.length > 0 && spec.targetRef !== undefined) {
    errors.push("only one of targetRef or targetRefs can be set");
  }
  const entries = many.length > 0
    ? many.map((item, i) => [item, `spec.targetRefs[${i}]`] as const)
    : spec.targetRef === undefined || spec.targetRef === null
    ? []
    : [[spec.targetRef, "spec.targetRef"] as const];
  const refs: TargetRef[] = [];
  for (const [item, path] of entries) {
    const record = schema.mapping(item, path);
    if (!record) continue;
    const group = schema.text(record.group, `${path}.group`) ?? "";
    const ref: TargetRef = {
      group: group === "" ? "core" : group,
      kind: schema.text(record.kind, `${path}.kind`) ?? "",
      name: schema.text(record.name, `${path}.name`) ?? "",
      namespace: schema.text(record.namespace, `${path}.namespace`) ?? "",
      path,
    };
    if (ref.name === "") errors.push(`${path}.name must be set`);
    if (ref.namespace !== "") {
      errors.push(
        `${path}.namespace must not be set; cross namespace referencing is not supported`,
      );
    }
    if (!ALLOWED_REFS.includes(`${ref.group}/${ref.kind}`)) {
      errors.push(
        `${path} must be a Service, ServiceEntry, Gateway or GatewayClass but is ${group}/${ref.kind}`,
      );
    }
    refs.push(ref);
  }
  return refs;
}
