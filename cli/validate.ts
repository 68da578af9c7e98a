/** `validate --config PATH...`: load the config and report every problem with its place. */
import { type Problem, readConfig } from "../mesh/mod.ts";
import { buildConfig } from "../proxy/mod.ts";
import { parseFlags, required } from "./flags.ts";

/**
 * Loads and checks config files.
 *
 * @param args Arguments after `validate`
 * @returns The process exit code: 0 without errors, 1 with
 */
export async function validateCommand(args: string[]): Promise<number> {
  const f = parseFlags(args, {
    config: { type: "string", multiple: true },
    namespace: { type: "string" },
    name: { type: "string" },
    "trust-domain": { type: "string" },
  });
  const read = await readConfig(required("config", f.config));
  const built = buildConfig(read.documents, 1, {
    namespace: f.namespace ?? Deno.env.get("POD_NAMESPACE") ?? "default",
    name: f.name ?? Deno.env.get("GATEWAY_NAME") ?? "waypoint",
    trustDomain: f["trust-domain"] ?? "cluster.local",
  });
  const problems = [...read.problems, ...built.problems];
  for (const p of problems) console.log(formatProblem(p));
  const errors = problems.filter((p) => p.severity === "error").length;
  console.log(
    `${read.documents.length} resources, ${errors} errors, ${problems.length - errors} warnings`,
  );
  return errors > 0 ? 1 : 0;
}

/** `file:line: error: Kind ns/name: message` */
export function formatProblem(p: Problem): string {
  return `${p.where}: ${p.severity}: ${p.resource ? `${p.resource}: ` : ""}${p.message}`;
}
