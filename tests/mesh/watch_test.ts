import assert from "node:assert/strict";
import { join } from "node:path";
import { Logger } from "../../log/mod.ts";
import { emptySnapshot, SnapshotHolder, watchConfig, type WatchLoad } from "../../mesh/mod.ts";
import { gateway, namespace, service, WAYPOINT, yamlDocs } from "../fixtures/mesh/builders.ts";

const BASE = [gateway(), namespace("mesh", { "istio.io/use-waypoint": "waypoint" })];
const VALID_A = yamlDocs(...BASE, service("mesh", "a", "10.0.0.1"));
const VALID_AB = yamlDocs(
  ...BASE,
  service("mesh", "a", "10.0.0.1"),
  service("mesh", "b", "10.0.0.2"),
);
const INVALID = yamlDocs(...BASE, service("mesh", "a", "10.0.0.1", { ports: [{ port: 0 }] }));
/** The invalid Service is the last document: it starts on the line after the last `---`. */
const INVALID_LINE = INVALID.split("\n").lastIndexOf("---") + 2;

/** Collects loads and waits for one that matches. */
class Loads {
  readonly #seen: WatchLoad[] = [];
  #wake: (() => void) | undefined;

  push(load: WatchLoad): void {
    this.#seen.push(load);
    this.#wake?.();
  }

  /** The first load not yet taken that matches, waiting up to 5 s for it. */
  async until(match: (load: WatchLoad) => boolean): Promise<WatchLoad> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const i = this.#seen.findIndex(match);
      if (i >= 0) return this.#seen.splice(0, i + 1)[i];
      if (Date.now() > deadline) throw new Error("No matching load within 5 s");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

/** A logger writing into an array of parsed JSON lines. */
function memoryLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const decoder = new TextDecoder();
  const sink = {
    write(chunk: Uint8Array): Promise<number> {
      for (const line of decoder.decode(chunk).split("\n")) if (line) lines.push(JSON.parse(line));
      return Promise.resolve(chunk.length);
    },
  };
  return { logger: new Logger({ level: "debug", sink }), lines };
}

/** Sets up a watch on `target(dir)` after writing VALID_A to `dir/mesh.yaml`. */
async function withWatch(
  target: (dir: string) => string,
  fn: (ctx: {
    file: string;
    holder: SnapshotHolder;
    loads: Loads;
    logger: Logger;
    lines: Record<string, unknown>[];
  }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mesh_watch_test_" });
  const file = join(dir, "mesh.yaml");
  await Deno.writeTextFile(file, VALID_A);
  const holder = new SnapshotHolder(emptySnapshot(WAYPOINT));
  const loads = new Loads();
  const { logger, lines } = memoryLogger();
  const watch = await watchConfig([target(dir)], WAYPOINT, holder, {
    onLoad: (load) => loads.push(load),
    logger,
    debounceMs: 50,
  });
  try {
    await fn({ file, holder, loads, logger, lines });
  } finally {
    await watch.close();
    await logger.drain();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("watchConfig() applies a valid change and keeps the last good snapshot on an invalid one", async () => {
  await withWatch((dir) => dir, async ({ file, holder, loads, logger, lines }) => {
    const first = await loads.until(() => true);
    assert.equal(first.applied, true);
    assert.equal(holder.current.version, 1);

    await Deno.writeTextFile(file, VALID_AB);
    const second = await loads.until((l) => l.snapshot.servicesByName.has("mesh/b"));
    assert.equal(second.applied, true);
    assert.equal(holder.current, second.snapshot);
    const good = holder.current;
    assert.ok(good.version >= 2);

    await Deno.writeTextFile(file, INVALID);
    const third = await loads.until((l) => !l.applied);
    assert.equal(holder.current, good);
    assert.equal(third.snapshot, good);
    const error = third.problems.find((p) => p.severity === "error");
    assert.deepEqual(error, {
      severity: "error",
      where: `${file}:${INVALID_LINE}`,
      resource: "Service mesh/a",
      message: "Invalid port: spec.ports[0].port is 0 (want an integer from 1 to 65535)",
    });

    await logger.drain();
    const logged = lines.find((l) => l.msg === "Config problem" && l.severity === "error");
    assert.deepEqual(
      [logged?.level, logged?.where, logged?.resource, logged?.message],
      ["warn", `${file}:${INVALID_LINE}`, "Service mesh/a", error.message],
    );
    assert.ok(
      lines.some((l) => l.msg === "Config reload rejected, keeping the last good snapshot"),
    );
  });
});

Deno.test("watchConfig() sees a file named directly replaced by rename, as editors save", async () => {
  await withWatch((dir) => join(dir, "mesh.yaml"), async ({ file, holder, loads }) => {
    await loads.until(() => true);
    const next = `${file}.tmp`;
    await Deno.writeTextFile(next, VALID_AB);
    await Deno.rename(next, file);
    await loads.until((l) => l.applied && l.snapshot.servicesByName.has("mesh/b"));
    assert.ok(holder.current.servicesByName.has("mesh/b"));
  });
});

Deno.test("watchConfig() reports errors of the first load without replacing the empty snapshot", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mesh_watch_test_" });
  try {
    await Deno.writeTextFile(join(dir, "mesh.yaml"), INVALID);
    const holder = new SnapshotHolder(emptySnapshot(WAYPOINT));
    const watch = await watchConfig([dir], WAYPOINT, holder);
    await watch.close();
    assert.equal(watch.initial.applied, false);
    assert.equal(holder.current.version, 0);
    assert.ok(watch.initial.problems.some((p) => p.severity === "error"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("watchConfig() logs a problem once while it stays, and again after it was fixed", async () => {
  await withWatch((dir) => dir, async ({ file, loads, logger, lines }) => {
    await loads.until(() => true);
    const problemLines = async () => {
      await logger.drain();
      return lines.filter((l) => l.msg === "Config problem" && l.severity === "error").length;
    };
    await Deno.writeTextFile(file, INVALID);
    await loads.until((l) => !l.applied);
    assert.equal(await problemLines(), 1);

    // Same problem, another reload (a comment changes the text, not the meaning).
    await Deno.writeTextFile(file, INVALID + "\n# touched\n");
    await loads.until((l) => !l.applied);
    assert.equal(await problemLines(), 1);
    assert.ok(lines.some((l) => l.msg === "Config problems reported before" && l.count === 1));

    await Deno.writeTextFile(file, VALID_A);
    await loads.until((l) => l.applied);
    await Deno.writeTextFile(file, INVALID);
    await loads.until((l) => !l.applied);
    assert.equal(await problemLines(), 2);
  });
});
