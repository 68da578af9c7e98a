/**
 * Reading user-written policy objects against the shape of their CRD. A value of the wrong type is
 * a schema fault: the API server would refuse the whole object, so the caller skips it. Unknown
 * fields are pruned by the API server; here they are dropped with a warning. Numbers where the CRD
 * wants strings (`ports: [8080]`) are accepted as their decimal text, with a warning.
 */

/** A YAML mapping. */
export type Fields = Readonly<Record<string, unknown>>;

/** Collects schema faults and warnings while reading one object. */
export class Schema {
  /** Reasons the object does not fit the schema; non-empty means it is rejected. */
  readonly faults: string[] = [];
  readonly warnings: string[] = [];

  /** A mapping; absent (or null) gives undefined. */
  mapping(value: unknown, path: string): Fields | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value === "object" && !Array.isArray(value)) return value as Fields;
    this.#wrong(value, path, "a mapping");
    return undefined;
  }

  /** A list; absent gives undefined, an explicit empty list gives []. */
  list(value: unknown, path: string): unknown[] | undefined {
    if (value === undefined || value === null) return undefined;
    if (Array.isArray(value)) return value;
    this.#wrong(value, path, "a list");
    return undefined;
  }

  /** A string. */
  text(value: unknown, path: string): string | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value === "string") return value;
    this.#wrong(value, path, "a string");
    return undefined;
  }

  /** A boolean. */
  flag(value: unknown, path: string): boolean | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value === "boolean") return value;
    this.#wrong(value, path, "true or false");
    return undefined;
  }

  /** A list of strings. */
  texts(value: unknown, path: string): string[] | undefined {
    const items = this.list(value, path);
    if (!items) return undefined;
    const out: string[] = [];
    items.forEach((item, i) => {
      if (typeof item === "number" && Number.isFinite(item)) {
        this.warnings.push(`Number for a string: ${path}[${i}] is ${item}; read as "${item}"`);
        out.push(String(item));
      } else {
        const text = this.text(item, `${path}[${i}]`);
        if (text !== undefined) out.push(text);
        else if (item === null) this.#wrong(item, `${path}[${i}]`, "a string");
      }
    });
    return out;
  }

  /** A mapping of strings to strings, such as annotations. */
  textMap(value: unknown, path: string): Record<string, string> {
    const record = this.mapping(value, path) ?? {};
    const out: Record<string, string> = {};
    for (const [key, item] of Object.entries(record)) {
      const text = this.text(item, `${path}.${key}`);
      if (text !== undefined) out[key] = text;
    }
    return out;
  }

  /** Warns about fields the schema does not have. */
  known(record: Fields, path: string, fields: readonly string[]): void {
    for (const key of Object.keys(record)) {
      if (!fields.includes(key)) this.warnings.push(`Unknown field: ${path}.${key} is ignored`);
    }
  }

  #wrong(value: unknown, path: string, want: string): void {
    this.faults.push(`Wrong type: ${path} is ${show(value)} (want ${want})`);
  }
}

/** Short JSON text of a value for messages. */
export function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
