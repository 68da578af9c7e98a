/**
 * Telemetry `metrics.overrides` made into label shapes: for each of Istio's families, whether it
 * is recorded and how its labels differ from the standard set, as Envoy's stats filter applies
 * `tagOverrides` (REMOVE drops a standard label; UPSERT replaces a standard label's value in
 * place, or appends a new label after Istio's labels).
 *
 * Invariants:
 * - A shape is built once per merged settings object (cached by identity) and never changes.
 * - Constant UPSERT values (literals like `'test'`) are folded here; only expressions that read
 *   attributes are evaluated per request, each distinct expression once, in {@link MetricsShape.dynamic}
 *   order, and a series is found by the joined values of those alone.
 * - A failed expression yields `unknown`, as Envoy writes a tag whose CEL value errored.
 */
import type { CelAttributes, CelProgram } from "./cel/mod.ts";
import { escapeLabelValue } from "./registry.ts";
import { HTTP_LABELS } from "./istio_labels.ts";
import type { MetricsSettings } from "./telemetry_settings.ts";

/** Where a label's value comes from: a folded constant or a dynamic slot. */
type Slot = { readonly constant: string } | { readonly dynamic: number };

interface FamilyShape {
  readonly disabled: boolean;
  readonly removed: ReadonlySet<string>;
  readonly replaced: ReadonlyMap<string, Slot>;
  readonly appended: readonly (readonly [string, Slot])[];
}

const PLAIN: FamilyShape = Object.freeze({
  disabled: false,
  removed: new Set<string>(),
  replaced: new Map<string, Slot>(),
  appended: [],
});

let nextId = 0;
const shapes = new WeakMap<MetricsSettings, MetricsShape | null>();

/** The labels of every family under one settings object. */
export class MetricsShape {
  /** Distinct per-request expressions; their values key the series. */
  readonly dynamic: readonly CelProgram[];
  /** Unique per shape, part of a label pair's interning key. */
  readonly id: number;
  readonly #families: ReadonlyMap<string, FamilyShape>;

  private constructor(families: ReadonlyMap<string, FamilyShape>, dynamic: readonly CelProgram[]) {
    this.#families = families;
    this.dynamic = dynamic;
    this.id = ++nextId;
  }

  /**
   * The shape of merged metrics settings; undefined when they change nothing (the fast path).
   *
   * @param settings From {@link TelemetrySettings.metrics}
   */
  static of(settings: MetricsSettings): MetricsShape | undefined {
    let found = shapes.get(settings);
    if (found === undefined) {
      found = settings.overrides.size === 0 ? null : new MetricsShape(...compile(settings));
      shapes.set(settings, found);
    }
    return found ?? undefined;
  }

  /**
   * Evaluates the per-request expressions.
   *
   * @param attributes The request's attributes
   * @returns One value per {@link MetricsShape.dynamic} entry
   */
  values(attributes: CelAttributes): string[] {
    return this.dynamic.map((p) => p.text(attributes));
  }

  /**
   * A family's label text, or null when the family is disabled.
   *
   * @param family Prometheus family name
   * @param names Istio's label names in order
   * @param values Their values
   * @param dynamic Values of {@link MetricsShape.dynamic}
   */
  render(
    family: string,
    names: readonly string[],
    values: readonly string[],
    dynamic: readonly string[],
  ): string | null {
    const f = this.#families.get(family) ?? PLAIN;
    if (f.disabled) return null;
    const parts: string[] = [];
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      if (f.removed.has(name)) continue;
      const slot = f.replaced.get(name);
      const value = slot ? valueOf(slot, dynamic) : values[i];
      parts.push(`${name}="${escapeLabelValue(value)}"`);
    }
    for (const [name, slot] of f.appended) {
      parts.push(`${name}="${escapeLabelValue(valueOf(slot, dynamic))}"`);
    }
    return parts.join(",");
  }
}

/** Standard label names of both label sets (HTTP's include TCP's), to tell a replacement from an
 * addition. */
const STANDARD: ReadonlySet<string> = new Set(HTTP_LABELS);

function compile(
  settings: MetricsSettings,
): [ReadonlyMap<string, FamilyShape>, readonly CelProgram[]] {
  const dynamic: CelProgram[] = [];
  const slotOf = (p: CelProgram): Slot => {
    if (p.constant !== undefined) return { constant: p.text({ attribute: () => undefined }) };
    let i = dynamic.findIndex((d) => d.source === p.source);
    if (i < 0) i = dynamic.push(p) - 1;
    return { dynamic: i };
  };
  const families = new Map<string, FamilyShape>();
  for (const [family, o] of settings.overrides) {
    const removed = new Set<string>();
    const replaced = new Map<string, Slot>();
    const appended: [string, Slot][] = [];
    for (const [tag, program] of o.tags) {
      if (program === null) removed.add(tag);
      else if (STANDARD.has(tag)) replaced.set(tag, slotOf(program));
      else appended.push([tag, slotOf(program)]);
    }
    families.set(family, { disabled: o.disabled, removed, replaced, appended });
  }
  return [families, dynamic];
}

function valueOf(slot: Slot, dynamic: readonly string[]): string {
  return "constant" in slot ? slot.constant : dynamic[slot.dynamic];
}
