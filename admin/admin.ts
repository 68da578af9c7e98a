/**
 * The admin app on port 15000 (loopback only), after Envoy's admin: it dumps the live config so
 * people and tests can compare two dumps.
 *
 * Invariants:
 * - `GET /config_dump` answers the `configDump()` value as JSON with object keys sorted and two
 *   spaces of indent, so equal configs dump to equal text (STYLE habit 23).
 * - Each `extra` entry adds one `GET /<name>` answering its value the same way.
 * - `GET /` lists the endpoints, one path a line; anything else is 404.
 */
import { Hono } from "hono";
import { onAppError } from "./_errors.ts";

/** What {@link adminApp} serves. */
export interface AdminAppOptions {
  /** Returns the config to dump, typically the current snapshot. */
  configDump: () => unknown;
  /**
   * More JSON endpoints by name, `GET /<name>`, for example `{ certs: () => certSummary() }`.
   * @default {}
   */
  extra?: Record<string, () => unknown>;
}

const ENDPOINT_NAME = /^[a-z0-9_]+(?:\/[a-z0-9_]+)*$/;

/**
 * Builds the admin app.
 *
 * @example
 * ```ts
 * const app = adminApp({ configDump: () => holder.current, extra: { certs: () => certInfo() } });
 * const dump = await (await app.request("/config_dump")).json();
 * ```
 *
 * @param options The config dump and any extra endpoints.
 * @returns A Hono app serving `GET /`, `GET /config_dump` and `GET /<extra>`.
 * @throws {Error} When an extra endpoint name is not lowercase `[a-z0-9_]` segments, or repeats
 * `config_dump`.
 */
export function adminApp(options: AdminAppOptions): Hono {
  const endpoints = endpointTable(options);
  const index = ["/", ...endpoints.keys()].join("\n") + "\n";
  const app = new Hono();
  app.onError(onAppError);
  app.get("/", (c) => c.text(index));
  for (const [path, read] of endpoints) {
    app.get(
      path,
      (c) => c.body(stableJson(read()), 200, { "content-type": "application/json; charset=utf-8" }),
    );
  }
  return app;
}

function endpointTable(options: AdminAppOptions): Map<string, () => unknown> {
  const table = new Map<string, () => unknown>([["/config_dump", options.configDump]]);
  for (const [name, read] of Object.entries(options.extra ?? {})) {
    if (!ENDPOINT_NAME.test(name)) {
      throw new Error(`Invalid admin endpoint name, want lowercase [a-z0-9_] segments: "${name}"`);
    }
    if (table.has(`/${name}`)) throw new Error(`Duplicate admin endpoint: /${name}`);
    table.set(`/${name}`, read);
  }
  return table;
}

/**
 * JSON with sorted object keys and two-space indent. Maps become objects, sets become arrays and
 * bigints become strings, so a snapshot built from them dumps readably.
 */
function stableJson(value: unknown): string {
  return JSON.stringify(value ?? null, sortingReplacer, 2) + "\n";
}

function sortingReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Set) return [...value];
  const entries = entriesOf(value);
  if (entries === undefined) return value;
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries);
}

/** The key/value pairs of a map or non-array object; `undefined` for anything else. */
function entriesOf(value: unknown): [string, unknown][] | undefined {
  if (value instanceof Map) return [...value].map(([k, v]) => [String(k), v]);
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  return Object.entries(value);
}
