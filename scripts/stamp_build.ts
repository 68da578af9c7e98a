/**
 * Writes `dist/build.json` (version, commit, date) for `deno task compile`, which includes it in
 * the binary for `--version`. The commit comes from `WAYPOINT_COMMIT` (a container build without
 * `.git` passes it as a build argument), else from git, else `unknown`; the date from
 * `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
 *
 * Usage: deno run --allow-run=git --allow-env --allow-read --allow-write=dist scripts/stamp_build.ts [OUT]
 */
import { dirname } from "node:path";
import denoJson from "../deno.json" with { type: "json" };
import { type BuildStamp, gitCommit } from "../cli/version.ts";

/**
 * The stamp for this checkout.
 *
 * @param env Reads `WAYPOINT_COMMIT` and `SOURCE_DATE_EPOCH`
 * @throws Error when `SOURCE_DATE_EPOCH` is not a number of seconds
 */
export async function buildStamp(env: (name: string) => string | undefined): Promise<BuildStamp> {
  const epoch = env("SOURCE_DATE_EPOCH");
  if (epoch !== undefined && !/^\d+$/.test(epoch)) {
    throw new Error(`SOURCE_DATE_EPOCH wants seconds since 1970: got "${epoch}"`);
  }
  const date = new Date(epoch === undefined ? Date.now() : Number(epoch) * 1000).toISOString();
  const commit = env("WAYPOINT_COMMIT") || await gitCommit() || "unknown";
  return { version: denoJson.version, commit, date };
}

if (import.meta.main) {
  const out = Deno.args[0] ?? new URL("../dist/build.json", import.meta.url).pathname;
  const stamp = await buildStamp((name) => Deno.env.get(name));
  await Deno.mkdir(dirname(out), { recursive: true });
  await Deno.writeTextFile(out, JSON.stringify(stamp, null, 2) + "\n");
  console.log(`${out}: ${stamp.version} (${stamp.commit}) ${stamp.date}`);
}
