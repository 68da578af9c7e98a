import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import denoJson from "../../deno.json" with { type: "json" };
import { gitCommit } from "../../cli/version.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

async function run(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("--version from source names deno.json's version and the checkout's commit", async () => {
  const r = await run(["main.ts", "--version"]);
  assert.equal(r.code, 0, r.stderr);
  // Others may commit or edit while this runs: compare the shape, not the exact commit.
  const commit = (await gitCommit()) === undefined ? "unknown" : "[0-9a-f]{12}(-dirty)?";
  const version = denoJson.version.replaceAll(".", "\\.");
  assert.match(r.stdout, new RegExp(`^waypoint ${version} \\(${commit}\\)\n$`));
});

Deno.test("stamp_build.ts writes the version, the given commit and the reproducible date", async () => {
  const dir = await Deno.makeTempDir({ prefix: "waypoint-stamp-" });
  try {
    const out = `${dir}/dist/build.json`;
    const r = await run(["scripts/stamp_build.ts", out], {
      WAYPOINT_COMMIT: "0123456789ab",
      SOURCE_DATE_EPOCH: "1700000000",
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(out)), {
      version: denoJson.version,
      commit: "0123456789ab",
      date: "2023-11-14T22:13:20.000Z",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stamp_build.ts refuses a SOURCE_DATE_EPOCH that is not seconds", async () => {
  const r = await run(["scripts/stamp_build.ts", "/nonexistent/build.json"], {
    SOURCE_DATE_EPOCH: "yesterday",
  });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /SOURCE_DATE_EPOCH wants seconds since 1970: got "yesterday"/);
});
