/**
 * `--version`: `waypoint <version> (<commit>)`. The version is deno.json's; the commit is the one
 * `scripts/stamp_build.ts` baked into `dist/build.json` for `deno task compile` (which includes
 * the file in the binary), or, run from source, what `git rev-parse` says; `unknown` otherwise.
 *
 * Invariants:
 * - No dynamic import: the stamp is read as a file, so the module graph stays static and a
 *   source checkout without `dist/` still starts.
 * - A compiled binary trusts its stamp first, a source run its git checkout first (a `dist/`
 *   left from an older compile must not name the wrong commit).
 */
import denoJson from "../deno.json" with { type: "json" };

/** What the stamp script writes. */
export interface BuildStamp {
  readonly version: string;
  readonly commit: string;
  /** ISO 8601. */
  readonly date: string;
}

const STAMP = new URL("../dist/build.json", import.meta.url);

/**
 * The version line.
 *
 * @param version The release, e.g. `0.1.0`
 * @param commit The commit or `unknown`
 */
export function formatVersion(version: string, commit: string): string {
  return `waypoint ${version} (${commit})`;
}

/** The version line of this binary or checkout. */
export async function versionText(): Promise<string> {
  const compiled = !/(^|[\\/])deno(\.exe)?$/.test(Deno.execPath());
  const sources = compiled ? [stampCommit, gitCommit] : [gitCommit, stampCommit];
  for (const source of sources) {
    const commit = await source();
    if (commit) return formatVersion(denoJson.version, commit);
  }
  return formatVersion(denoJson.version, "unknown");
}

async function stampCommit(): Promise<string | undefined> {
  try {
    const stamp = JSON.parse(await Deno.readTextFile(STAMP)) as Partial<BuildStamp>;
    return typeof stamp.commit === "string" && stamp.commit ? stamp.commit : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The checkout's short commit, with `-dirty` when files differ from it.
 *
 * @param cwd The checkout @default the folder above this file
 * @returns The commit, or undefined without git or outside a checkout
 */
export async function gitCommit(
  cwd = new URL("..", import.meta.url).pathname,
): Promise<string | undefined> {
  const git = async (...args: string[]) => {
    try {
      const out = await new Deno.Command("git", { args, cwd, stdout: "piped", stderr: "null" })
        .output();
      return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
    } catch {
      return undefined;
    }
  };
  const commit = await git("rev-parse", "--short=12", "HEAD");
  if (!commit) return undefined;
  const dirty = await git("status", "--porcelain", "--untracked-files=no");
  return dirty ? `${commit}-dirty` : commit;
}
