/**
 * Reading config from disk: files and folders of YAML, many documents a file, `List` kinds
 * expanded. Each document keeps its file and line, and every syntax error is located. This is the
 * folder's only file I/O besides the watcher; it never runs on the request path.
 */
import { join } from "node:path";
import { type Document, LineCounter, parseAllDocuments } from "yaml";
import type { Problem } from "./model.ts";
import { isFields } from "./_fields.ts";
import { problem } from "./_problem.ts";
import type { KubeObject, SourceDoc } from "./resources.ts";

/** Documents in load order and the problems that kept others out. */
export interface LoadResult {
  readonly documents: SourceDoc[];
  readonly problems: Problem[];
}

const YAML_FILE = /\.ya?ml$/;

/**
 * Reads YAML config from files and folders. A folder is read recursively: its `.yaml` and `.yml`
 * files in sorted path order, skipping names that start with `.` (as a Kubernetes ConfigMap
 * mount's `..data` folder, whose files are reached through the links beside it). A file named
 * directly is read whatever its extension.
 *
 * @param paths Files or folders, read in the order given
 * @returns Documents and problems; an unreadable path is an error problem, not an exception
 */
export async function readConfig(paths: readonly string[]): Promise<LoadResult> {
  const documents: SourceDoc[] = [];
  const problems: Problem[] = [];
  const visited = new Set<string>();
  for (const path of paths) {
    for (const file of await yamlFiles(path, { named: true, visited }, problems)) {
      let text: string;
      try {
        text = await Deno.readTextFile(file);
      } catch (error) {
        problems.push(problem("error", file, `Cannot read file: ${(error as Error).message}`));
        continue;
      }
      const parsed = parseConfigText(text, file);
      documents.push(...parsed.documents);
      problems.push(...parsed.problems);
    }
  }
  return { documents, problems };
}

/**
 * Parses YAML text holding one or more `---` separated documents.
 *
 * @example
 * ```ts
 * const { documents, problems } = parseConfigText("apiVersion: v1\nkind: Namespace\n...", "<inline>");
 * ```
 * @param text YAML text
 * @param file Name used in `file:line` locations
 * @returns Documents (empty ones skipped, `List` items expanded) and located problems
 */
export function parseConfigText(text: string, file: string): LoadResult {
  const documents: SourceDoc[] = [];
  const problems: Problem[] = [];
  const lines = new LineCounter();
  for (const doc of parseAllDocuments(text, { lineCounter: lines, prettyErrors: true })) {
    const line = lines.linePos(doc.contents?.range[0] ?? doc.range[0]).line;
    if (doc.errors.length > 0) {
      for (const fault of doc.errors) problems.push(yamlProblem("error", fault, file, line));
      continue;
    }
    for (const fault of doc.warnings) problems.push(yamlProblem("warning", fault, file, line));
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (fault) {
      problems.push(
        problem("error", `${file}:${line}`, `YAML syntax: ${(fault as Error).message}`),
      );
      continue;
    }
    if (value === null || value === undefined) continue;
    expand(value, { file, line }, documents, problems, itemLines(doc, lines));
  }
  return { documents, problems };
}

/** Adds one document, or each item of a `List`, after checking it names its apiVersion and kind. */
function expand(
  value: unknown,
  at: { file: string; line: number },
  documents: SourceDoc[],
  problems: Problem[],
  listLines: readonly number[],
): void {
  const where = `${at.file}:${at.line}`;
  if (!isFields(value)) {
    problems.push(problem("error", where, "Not a resource: the document is not a mapping"));
    return;
  }
  for (const field of ["apiVersion", "kind"]) {
    if (typeof value[field] === "string" && value[field] !== "") continue;
    problems.push(problem("error", where, `Missing field: ${field}`));
    return;
  }
  if (value.kind !== "List") {
    documents.push({ file: at.file, line: at.line, object: value as KubeObject });
    return;
  }
  if (!Array.isArray(value.items)) {
    problems.push(problem("error", where, "Missing field: items (a List needs a list of items)"));
    return;
  }
  value.items.forEach((item, i) => {
    expand(item, { file: at.file, line: listLines[i] ?? at.line }, documents, problems, []);
  });
}

/** Start line of each `items` entry of a `List` document. */
function itemLines(doc: Document, lines: LineCounter): number[] {
  const items = doc.get("items", true) as
    | { items?: { range?: [number, number, number] }[] }
    | undefined;
  return (items?.items ?? []).map((item) => item.range ? lines.linePos(item.range[0]).line : 0);
}

function yamlProblem(
  severity: Problem["severity"],
  fault: { message: string; linePos?: [{ line: number }, ...unknown[]] },
  file: string,
  fallbackLine: number,
): Problem {
  // The library appends " at line L, column C:" and a code excerpt; keep the first sentence.
  const message = fault.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
  return problem(
    severity,
    `${file}:${fault.linePos?.[0].line ?? fallbackLine}`,
    `YAML syntax: ${message}`,
  );
}

/**
 * The YAML files below a path, sorted; a path named directly is taken as is. `visited` holds the
 * real paths of folders already read, so a link back to a parent does not loop.
 */
async function yamlFiles(
  path: string,
  walk: { named: boolean; visited: Set<string> },
  problems: Problem[],
): Promise<string[]> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    problems.push(problem("error", path, `Cannot read config path: ${(error as Error).message}`));
    return [];
  }
  if (info.isFile) return walk.named || YAML_FILE.test(path) ? [path] : [];
  const real = info.isDirectory ? await Deno.realPath(path) : "";
  if (!info.isDirectory || walk.visited.has(real)) return [];
  walk.visited.add(real);
  const names: string[] = [];
  for await (const entry of Deno.readDir(path)) {
    if (!entry.name.startsWith(".")) names.push(entry.name);
  }
  const out: string[] = [];
  for (const name of names.sort()) {
    out.push(...await yamlFiles(join(path, name), { ...walk, named: false }, problems));
  }
  return out;
}
