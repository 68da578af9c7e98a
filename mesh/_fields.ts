/**
 * Field checks for user-written resources: each call looks at one value and, if it is present but
 * wrong (or required and missing), records a reason naming its path. Reasons read
 * `What is wrong: where and details`, e.g. `Invalid port: spec.ports[0].port is 0`.
 */
import { canonicalIp } from "../tunnel/mod.ts";

/** A plain YAML mapping. */
export type Fields = Record<string, unknown>;

/** Accumulates the reasons a resource is invalid. */
export class FieldCheck {
  /** Reasons found so far; empty means valid. */
  readonly reasons: string[] = [];

  /** Records a reason unless `ok`; returns `ok`. */
  expect(ok: boolean, reason: string): boolean {
    if (!ok) this.reasons.push(reason);
    return ok;
  }

  /** A mapping, or undefined (recorded when required or of another type). */
  record(value: unknown, path: string, required = false): Fields | undefined {
    if (!this.#present(value, path, required)) return undefined;
    if (isFields(value)) return value;
    this.#wrongType(value, path, "a mapping");
    return undefined;
  }

  /** A list, or undefined (recorded when required or of another type). */
  list(value: unknown, path: string, required = false): unknown[] | undefined {
    if (!this.#present(value, path, required)) return undefined;
    if (Array.isArray(value)) return value;
    this.#wrongType(value, path, "a list");
    return undefined;
  }

  /** Each item of a list of mappings, with its path, skipping items that are not mappings. */
  records(value: unknown, path: string, required = false): [Fields, string][] {
    const items = this.list(value, path, required) ?? [];
    const out: [Fields, string][] = [];
    items.forEach((item, i) => {
      const record = this.record(item, `${path}[${i}]`, true);
      if (record) out.push([record, `${path}[${i}]`]);
    });
    return out;
  }

  /** A string; when required it must also be non-empty. */
  string(value: unknown, path: string, required = false): string | undefined {
    if (!this.#present(value, path, required)) return undefined;
    if (typeof value !== "string") return this.#wrongType(value, path, "a string");
    if (required && value === "") return this.#missing(path);
    return value;
  }

  /** One of a closed set of strings. */
  oneOf<T extends string>(
    value: unknown,
    path: string,
    allowed: readonly T[],
    required = false,
  ): T | undefined {
    const text = this.string(value, path, required);
    if (text === undefined || allowed.includes(text as T)) return text as T | undefined;
    this.reasons.push(`Invalid value: ${path} is ${show(text)} (want ${allowed.join(", ")})`);
    return undefined;
  }

  /** A boolean. */
  boolean(value: unknown, path: string): boolean | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value === "boolean") return value;
    return this.#wrongType(value, path, "true or false");
  }

  /** An integer port number 1..65535. */
  port(value: unknown, path: string, required = false): number | undefined {
    if (!this.#present(value, path, required)) return undefined;
    if (isPort(value)) return value;
    this.reasons.push(`Invalid port: ${path} is ${show(value)} (want an integer from 1 to 65535)`);
    return undefined;
  }

  /** An IPv4 or IPv6 address, returned in canonical text. */
  ip(value: unknown, path: string, required = false): string | undefined {
    const text = this.string(value, path, required);
    if (text === undefined) return undefined;
    const ip = canonicalIp(text);
    if (ip === undefined) this.reasons.push(`Invalid IP address: ${path} is ${show(text)}`);
    return ip;
  }

  /** A mapping of string to string, such as labels or a selector. */
  stringMap(value: unknown, path: string): Record<string, string> | undefined {
    const record = this.record(value, path);
    if (!record) return undefined;
    for (const [key, item] of Object.entries(record)) this.string(item, `${path}.${key}`);
    return record as Record<string, string>;
  }

  /** A mapping of string to port number, such as WorkloadEntry `ports`. */
  portMap(value: unknown, path: string): Record<string, number> | undefined {
    const record = this.record(value, path);
    if (!record) return undefined;
    for (const [key, item] of Object.entries(record)) this.port(item, `${path}.${key}`, true);
    return record as Record<string, number>;
  }

  /** Records a reason for each value that repeats an earlier one. */
  unique(values: readonly (string | number | undefined)[], path: string, what: string): void {
    const seen = new Set<string | number>();
    for (const value of values) {
      if (value === undefined) continue;
      if (seen.has(value)) this.reasons.push(`Duplicate ${what}: ${path} repeats ${show(value)}`);
      seen.add(value);
    }
  }

  #present(value: unknown, path: string, required: boolean): boolean {
    if (value !== undefined && value !== null) return true;
    if (required) this.#missing(path);
    return false;
  }

  #missing(path: string): undefined {
    this.reasons.push(`Missing field: ${path}`);
    return undefined;
  }

  #wrongType(value: unknown, path: string, want: string): undefined {
    this.reasons.push(`Wrong type: ${path} is ${show(value)} (want ${want})`);
    return undefined;
  }
}

/** Whether a value is a YAML mapping (not a list, not null). */
export function isFields(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Whether a value is an integer port number 1..65535. */
export function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
