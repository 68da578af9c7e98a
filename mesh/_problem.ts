/** Builds {@link Problem}s, so every file of the folder words and locates them alike. */
import type { Problem } from "./model.ts";
import type { SourceDoc } from "./resources.ts";

/** `file:line` of a document. */
export function whereOf(doc: Pick<SourceDoc, "file" | "line">): string {
  return `${doc.file}:${doc.line}`;
}

/**
 * A located problem. An `error` makes the load fail as a whole for the watcher (the last good
 * snapshot stays); a `warning` does not.
 */
export function problem(
  severity: Problem["severity"],
  where: string,
  message: string,
  resource?: string,
): Problem {
  return resource === undefined
    ? { severity, where, message }
    : { severity, where, resource, message };
}
