/**
 * Compiles WasmPlugin documents (`extensions.istio.io/v1alpha1`, l7.md §4) into the ordered list
 * of plugins each request target runs, per phase, once per load.
 *
 * Invariants:
 * - Attachment is the policies' (l7.md §1.2): `targetRefs` to our Gateway (from our namespace),
 *   to the `istio-waypoint` GatewayClass (from the root namespace), or to a Service/ServiceEntry
 *   in the plugin's namespace. `selector` plugins are the sidecars' and are skipped with a warning.
 * - Order within a phase (Istio `sortByPriority`): priority descending, unset after every explicit
 *   value; ties keep Istio's collection order: namespace [proxy, root, service], then creation
 *   time, then name.
 * - The table is built whole at load; `pluginsFor` only reads it and allocates nothing.
 */
import type { Problem, SourceDoc } from "../mesh/mod.ts";
import {
  type AttachContext,
  type Attachment,
  attachmentOf,
  located,
  type PolicyHead,
  type PolicyTarget,
  readHeads,
  reportHead,
  TargetIndex,
} from "../policy/mod.ts";
import { readWasmPlugin } from "./_plugin_read.ts";
import { indexSecrets, pullSecretAuth } from "./_pull_secret.ts";
import type { WasmPhase, WasmPluginSpec } from "./spec.ts";

/** What compiling needs: this waypoint, the root namespace, the mesh, and our environment. */
export interface WasmContext extends AttachContext {
  /** Environment for `vmConfig.env` entries with `valueFrom: HOST`. @default Deno.env.toObject() */
  readonly env?: Readonly<Record<string, string>>;
}

/** The plugins of one target, by phase. */
type PhaseLists = Readonly<Record<WasmPhase, readonly WasmPluginSpec[]>>;

/** One attached plugin with what ordering needs. */
interface Entry {
  readonly spec: WasmPluginSpec;
  /** 0 our namespace, 1 the root namespace, 2 a service namespace. */
  readonly rank: number;
  readonly created: string;
  readonly namespace: string;
  readonly name: string;
}

const API_VERSIONS = ["extensions.istio.io/v1alpha1"];
const PHASES: readonly WasmPhase[] = ["AUTHN", "AUTHZ", "STATS", "UNSPECIFIED_PHASE"];
const NONE: readonly WasmPluginSpec[] = Object.freeze([]);

/** The WasmPlugins of one load, indexed by request target. */
export class WasmPlugins {
  readonly #index: TargetIndex<PhaseLists>;
  /** Every attached plugin once, in document order: what the host fetches and starts. */
  readonly all: readonly WasmPluginSpec[];

  /** @param index Lists by target @param all Every attached plugin */
  constructor(index: TargetIndex<PhaseLists>, all: readonly WasmPluginSpec[]) {
    this.#index = index;
    this.all = all;
  }

  /**
   * The plugins a request runs in one phase, in order.
   *
   * @param target The Service or ServiceEntry the request was addressed to, or a workload
   * @param phase The chain's phase
   * @returns The ordered plugins (a shared frozen list; no allocation)
   */
  pluginsFor(target: PolicyTarget, phase: WasmPhase): readonly WasmPluginSpec[] {
    return this.#index.lookup(target)[phase];
  }
}

/** No plugins: the table before the first load, or of a load without WasmPlugins. */
export const EMPTY_WASM_PLUGINS: WasmPlugins = new WasmPlugins(
  TargetIndex.build([], () => emptyLists()),
  NONE,
);

/**
 * Compiles the WasmPlugins of a load for this waypoint.
 *
 * @example
 * ```ts
 * const { plugins, problems } = compileWasmPlugins(documents, {
 *   self: mesh.self, rootNamespace: "istio-system", mesh,
 * });
 * plugins.pluginsFor({ kind: "Service", namespace: "demo", name: "echo" }, "AUTHZ");
 * ```
 * @param documents Every document of the load (Secrets are read for `imagePullSecret`)
 * @param context This waypoint, the root namespace, the mesh snapshot and the environment
 * @returns The table and every problem, located by `file:line`
 */
export function compileWasmPlugins(
  documents: readonly SourceDoc[],
  context: WasmContext,
): { plugins: WasmPlugins; problems: Problem[] } {
  const problems: Problem[] = [];
  const env = context.env ?? Deno.env.toObject();
  const secrets = indexSecrets(documents);
  // Only WasmPlugins: a map of every document costs more than the compile in a large cluster.
  const pluginDocs = documents.filter((d) => d.object?.kind === "WasmPlugin");
  const byWhere = new Map(pluginDocs.map((d) => [`${d.file}:${d.line}`, d.object]));
  const entries: { attachment: Attachment; item: Entry }[] = [];
  for (const head of readHeads(documents, "WasmPlugin", problems, API_VERSIONS)) {
    if (!attachable(head, problems)) continue;
    const object = byWhere.get(head.where) ?? {};
    const read = readWasmPlugin(head, {
      env,
      object,
      pullSecret: (ns, name, warn) => pullSecretAuth(secrets, ns, name, warn),
    });
    const valid = reportHead(head, problems);
    for (const warning of read.warnings) problems.push(located("warning", head, warning));
    if ("refused" in read) {
      problems.push(located(read.severity, head, read.refused));
      continue;
    }
    if (!valid) continue;
    const attachment = attachmentOf(head, context, problems);
    if (!attachment.wide && attachment.services.length === 0) continue;
    entries.push({ attachment, item: entryOf(read.spec, head, object, context) });
  }
  const index = TargetIndex.build(entries, (items) => phaseLists(items));
  const all = Object.freeze(entries.map((e) => e.item.spec));
  return { plugins: new WasmPlugins(index, all), problems };
}

/** Waypoints take only plugins with targetRefs; say so for the others. */
function attachable(head: PolicyHead, problems: Problem[]): boolean {
  if (head.targetRefs.length > 0) return true;
  const why = head.spec.selector !== undefined
    ? "spec.selector is ignored by waypoints (it selects sidecars and gateways)"
    : "no spec.targetRefs: a waypoint only runs plugins that target its Gateway, GatewayClass or a Service";
  problems.push(located("warning", head, `Not attached: ${why}`));
  return false;
}

function entryOf(
  spec: WasmPluginSpec,
  head: PolicyHead,
  object: Readonly<Record<string, unknown>>,
  context: WasmContext,
): Entry {
  const created = (object.metadata as { creationTimestamp?: unknown } | undefined)
    ?.creationTimestamp;
  const rank = head.namespace === context.self.namespace
    ? 0
    : head.namespace === context.rootNamespace
    ? 1
    : 2;
  return {
    spec,
    rank,
    // YAML may give a Date for an unquoted timestamp.
    created: created instanceof Date ? created.toISOString() : String(created ?? ""),
    namespace: head.namespace,
    name: head.name,
  };
}

/** Sorts the plugins of one target into phases, in Istio's order. */
function phaseLists(items: readonly Entry[]): PhaseLists {
  const sorted = [...items].sort(compareEntries);
  const lists = {} as Record<WasmPhase, readonly WasmPluginSpec[]>;
  for (const phase of PHASES) {
    const specs = sorted.filter((e) => e.spec.phase === phase).map((e) => e.spec);
    lists[phase] = specs.length === 0 ? NONE : Object.freeze(specs);
  }
  return Object.freeze(lists);
}

function compareEntries(a: Entry, b: Entry): number {
  const pa = a.spec.priority ?? -Infinity;
  const pb = b.spec.priority ?? -Infinity;
  if (pa !== pb) return pb - pa;
  return a.rank - b.rank || order(a.created, b.created) || order(a.name, b.name) ||
    order(a.namespace, b.namespace);
}

function order(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function emptyLists(): PhaseLists {
  return Object.freeze({ AUTHN: NONE, AUTHZ: NONE, STATS: NONE, UNSPECIFIED_PHASE: NONE });
}
