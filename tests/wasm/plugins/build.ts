/**
 * Builds the test plugins in `tests/wasm/plugins/<name>/assembly/index.ts` with the real
 * AssemblyScript SDK (`@solo-io/proxy-runtime` 0.1.8 on `assemblyscript` 0.17.14, the last
 * compiler that takes it; see shared/reference/wasm-toolchain.md).
 *
 * The modules are not committed: they are built into a cache folder named by a hash of the
 * compiler and SDK versions and every source file, so a second run (or a parallel test) reuses
 * them, and a changed source builds anew. `deno run -A tests/wasm/plugins/build.ts` prints the
 * paths; tests call {@link buildPlugins}.
 */
import asc from "assemblyscript/cli/asc";
import { dirname, join, relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

/** The plugins, by folder name; each registers its root context under the same name. */
export const PLUGINS = [
  "headers",
  "deny",
  "http_call",
  "tick",
  "shared_data",
  "counter",
  "properties",
  "trap",
] as const;

/** One plugin's name. */
export type PluginName = typeof PLUGINS[number];

const HERE = fromFileUrl(new URL(".", import.meta.url));
// asc must not import `env.abort`, which no proxy-wasm host provides.
const FLAGS = ["--use", "abort=abort_proc_exit", "--optimize"];

/**
 * Builds every plugin, or finds them built.
 *
 * @param options `out`: cache root. @default `$TMPDIR/waypoint-as-plugins`
 * @returns The path of each plugin's `.wasm`
 * @throws Error with the compiler's output when a plugin does not compile
 */
export async function buildPlugins(
  options: { out?: string } = {},
): Promise<Record<PluginName, string>> {
  const root = options.out ?? join(Deno.env.get("TMPDIR") ?? "/tmp", "waypoint-as-plugins");
  const sources = await sourceFiles(HERE);
  const outDir = join(root, await fingerprint(sources));
  const paths = Object.fromEntries(PLUGINS.map((p) => [p, join(outDir, `${p}.wasm`)])) as Record<
    PluginName,
    string
  >;
  if (await allExist(Object.values(paths))) return paths;
  const work = await Deno.makeTempDir({ prefix: "as-build-" });
  try {
    await stage(work, sources);
    await Deno.mkdir(outDir, { recursive: true });
    for (const name of PLUGINS) {
      const temp = join(work, `${name}.wasm`);
      await compile(work, `${name}/assembly/index.ts`, temp);
      // A rename is atomic, so a parallel build never sees half a module.
      await Deno.rename(temp, paths[name]);
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
  return paths;
}

/** Every `.ts` source under the plugins folder, relative, in sorted order. */
async function sourceFiles(dir: string, base = dir): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) found.push(...await sourceFiles(path, base));
    else if (path.endsWith(".ts") && dirname(path) !== base) found.push(relative(base, path));
  }
  return found.sort();
}

async function fingerprint(sources: readonly string[]): Promise<string> {
  const parts = [asc.version, sdkRoot(), FLAGS.join(" ")];
  for (const file of sources) parts.push(file, await Deno.readTextFile(join(HERE, file)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\0")));
  return Array.from(new Uint8Array(digest).slice(0, 12), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** The SDK's package folder in Deno's npm cache (its version pinned in deno.json). */
function sdkRoot(): string {
  return dirname(dirname(fromFileUrl(import.meta.resolve("@solo-io/proxy-runtime"))));
}

/** Copies the sources into `work` beside a `node_modules` that asc resolves the SDK from. */
async function stage(work: string, sources: readonly string[]): Promise<void> {
  for (const file of sources) {
    await Deno.mkdir(dirname(join(work, file)), { recursive: true });
    await Deno.copyFile(join(HERE, file), join(work, file));
  }
  await Deno.mkdir(join(work, "node_modules", "@solo-io"), { recursive: true });
  await Deno.symlink(sdkRoot(), join(work, "node_modules", "@solo-io", "proxy-runtime"));
}

async function compile(baseDir: string, entry: string, out: string): Promise<void> {
  await asc.ready;
  const stderr = asc.createMemoryStream();
  const failure = await new Promise<Error | null>((resolve) => {
    asc.main(
      [entry, "--baseDir", baseDir, "-b", out, ...FLAGS],
      { stdout: asc.createMemoryStream(), stderr },
      (error: Error | null) => {
        resolve(error);
        return 0;
      },
    );
  });
  if (failure) throw new Error(`Cannot build ${entry}: ${failure.message}\n${stderr.toString()}`);
}

async function allExist(paths: readonly string[]): Promise<boolean> {
  for (const path of paths) {
    try {
      await Deno.stat(path);
    } catch {
      return false;
    }
  }
  return true;
}

if (import.meta.main) {
  const out = Deno.args[0] === "--out" ? Deno.args[1] : undefined;
  const paths = await buildPlugins({ out });
  for (const [name, path] of Object.entries(paths)) console.log(`${name}\t${path}`);
}
