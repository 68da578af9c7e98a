/**
 * Reading user-written route fields defensively. Each reader takes the value and its field path
 * (`spec.rules[0].matches[1].path`) and throws a {@link RouteConfigError} with reason
 * `UnsupportedValue` when the value is present but of the wrong shape, or required and missing.
 */
import { invalid } from "./_problems.ts";

/** A YAML mapping. */
export type Fields = Readonly<Record<string, unknown>>;

/** A mapping; undefined when absent and not required. */
export function record(value: unknown, path: string, required = false): Fields | undefined {
  if (absent(value, path, required)) return undefined;
  if (typeof value === "object" && !Array.isArray(value)) return value as Fields;
  return wrong(value, path, "a mapping");
}

/** Each item of a list with its path; an absent list is empty. */
export function items(value: unknown, path: string): [unknown, string][] {
  if (absent(value, path, false)) return [];
  if (!Array.isArray(value)) return wrong(value, path, "a list");
  return value.map((item, i) => [item, `${path}[${i}]`]);
}

/** Each item of a list of mappings with its path. */
export function records(value: unknown, path: string): [Fields, string][] {
  return items(value, path).map(([item, at]) => [record(item, at, true)!, at]);
}

/** A string; when required it must also be non-empty. */
export function text(value: unknown, path: string, required = false): string | undefined {
  if (absent(value, path, required)) return undefined;
  if (typeof value !== "string") return wrong(value, path, "a string");
  if (required && value === "") return invalid("UnsupportedValue", `${path} is missing`);
  return value;
}

/** A required string. */
export function requiredText(value: unknown, path: string): string {
  return text(value, path, true)!;
}

/** A list of strings. */
export function texts(value: unknown, path: string): string[] {
  return items(value, path).map(([item, at]) => requiredText(item, at));
}

/** One of a closed set of strings, or the default when absent. */
export function oneOf<T extends string>(
  value: unknown,
  path: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const found = text(value, path);
  if (found === undefined) return fallback;
  if (allowed.includes(found as T)) return found as T;
  return invalid("UnsupportedValue", `${path} is ${show(found)} (want ${allowed.join(", ")})`);
}

/** An integer within bounds. */
export function integer(
  value: unknown,
  path: string,
  min: number,
  max: number,
): number | undefined {
  if (absent(value, path, false)) return undefined;
  if (Number.isInteger(value) && (value as number) >= min && (value as number) <= max) {
    return value as number;
  }
  return wrong(value, path, `an integer from ${min} to ${max}`);
}

/** A boolean. */
export function flag(value: unknown, path: string): boolean | undefined {
  if (absent(value, path, false)) return undefined;
  return typeof value === "boolean" ? value : wrong(value, path, "true or false");
}

/** A value shown in a message, cut to a readable length. */
export function show(value: unknown): string {
  const shown = JSON.stringify(value) ?? String(value);
  return shown.length > 60 ? `${shown.slice(0, 57)}...` : shown;
}

function absent(value: unknown, path: string, required: boolean): boolean {
  if (value !== undefined && value !== null) return false;
  if (required) invalid("UnsupportedValue", `${path} is missing`);
  return true;
}

function wrong(value: unknown, path: string, want: string): never {
  return invalid("UnsupportedValue", `${path} is ${show(value)} (want ${want})`);
}
