import assert from "node:assert/strict";
import { join } from "node:path";
import { buildSnapshot, parseConfigText, readConfig } from "../../mesh/mod.ts";

const THREE_DOCS = `# three services, the third invalid
apiVersion: v1
kind: Service
metadata: { name: a }
---
apiVersion: v1
kind: Service
metadata: { name: b }
---
apiVersion: v1
kind: Service
metadata: { name: c }
spec:
  ports: [{ port: 70000 }]
`;

/** Runs `fn` with a fresh temporary folder, removed afterwards. */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mesh_load_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const parseCases: { name: string; text: string; docs: string[]; problems: string[] }[] = [
  {
    name: "reads every document with the line it starts on",
    text: THREE_DOCS,
    docs: ["x.yaml:2 Service", "x.yaml:6 Service", "x.yaml:10 Service"],
    problems: [],
  },
  {
    name: "locates a YAML syntax error and keeps the other documents",
    text:
      "apiVersion: v1\nkind: Namespace\nmetadata: { name: a }\n---\napiVersion: v1\nkind: [Service\n",
    docs: ["x.yaml:1 Namespace"],
    problems: ["error x.yaml:7 YAML syntax"],
  },
  {
    name: "reports a duplicate key as a YAML error at its line",
    text: "apiVersion: v1\nkind: Namespace\nkind: Service\n",
    docs: [],
    problems: ["error x.yaml:3 YAML syntax: Map keys must be unique"],
  },
  {
    name: "expands a List into its items, each at its own line",
    text:
      "apiVersion: v1\nkind: List\nitems:\n  - { apiVersion: v1, kind: Namespace, metadata: { name: a } }\n" +
      "  - apiVersion: v1\n    kind: Pod\n    metadata: { name: p }\n",
    docs: ["x.yaml:4 Namespace", "x.yaml:5 Pod"],
    problems: [],
  },
  {
    name: "skips empty documents",
    text: "---\n# nothing\n---\napiVersion: v1\nkind: Namespace\nmetadata: { name: a }\n---\n",
    docs: ["x.yaml:4 Namespace"],
    problems: [],
  },
  {
    name: "refuses a document that is not a mapping",
    text: "- a\n- b\n",
    docs: [],
    problems: ["error x.yaml:1 Not a resource: the document is not a mapping"],
  },
  {
    name: "refuses a document without a kind",
    text: "apiVersion: v1\nmetadata: { name: a }\n",
    docs: [],
    problems: ["error x.yaml:1 Missing field: kind"],
  },
];

for (const c of parseCases) {
  Deno.test(`parseConfigText() ${c.name}`, () => {
    const { documents, problems } = parseConfigText(c.text, "x.yaml");
    assert.deepEqual(documents.map((d) => `${d.file}:${d.line} ${d.object.kind}`), c.docs);
    // Each expected problem is the start of the actual `severity where message`.
    const got = problems.map((p, i) =>
      `${p.severity} ${p.where} ${p.message}`.slice(0, c.problems[i]?.length)
    );
    assert.deepEqual(got, c.problems);
  });
}

Deno.test("readConfig() locates an invalid resource in the third document of a file", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "services.yaml");
    await Deno.writeTextFile(file, THREE_DOCS);
    const { documents, problems } = await readConfig([file]);
    assert.deepEqual(problems, []);
    const built = buildSnapshot(documents, { namespace: "mesh", name: "waypoint", version: 1 });
    const errors = built.problems.filter((p) => p.severity === "error");
    assert.deepEqual(errors, [{
      severity: "error",
      where: `${file}:10`,
      resource: "Service default/c",
      message: "Invalid port: spec.ports[0].port is 70000 (want an integer from 1 to 65535)",
    }]);
    assert.deepEqual([...built.snapshot.servicesByName.keys()], ["default/a", "default/b"]);
  });
});

Deno.test("readConfig() reads folders recursively in sorted order, YAML files only", async () => {
  await withTempDir(async (dir) => {
    const ns = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${name} }\n`;
    await Deno.mkdir(join(dir, "b"));
    await Deno.mkdir(join(dir, ".hidden"));
    await Deno.writeTextFile(join(dir, "c.yml"), ns("c"));
    await Deno.writeTextFile(join(dir, "a.yaml"), ns("a"));
    await Deno.writeTextFile(join(dir, "b", "b.yaml"), ns("b"));
    await Deno.writeTextFile(join(dir, "notes.txt"), "not: yaml: at all");
    await Deno.writeTextFile(join(dir, ".hidden", "h.yaml"), ns("h"));
    const named = join(dir, "extra.conf");
    await Deno.writeTextFile(named, ns("extra"));
    const { documents, problems } = await readConfig([dir, named]);
    assert.deepEqual(problems, []);
    const names = documents.map((d) => (d.object.metadata as { name: string }).name);
    assert.deepEqual(names, ["a", "b", "c", "extra"]);
  });
});

Deno.test("readConfig() reports a missing path as an error problem", async () => {
  const { documents, problems } = await readConfig(["/nonexistent/mesh.yaml"]);
  assert.deepEqual(documents, []);
  assert.equal(problems.length, 1);
  assert.equal(problems[0].severity, "error");
  assert.equal(problems[0].where, "/nonexistent/mesh.yaml");
  assert.match(problems[0].message, /^Cannot read config path: /);
});

Deno.test("readConfig() reads a folder reached again through a link only once", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "a.yaml"),
      "apiVersion: v1\nkind: Namespace\nmetadata: { name: a }\n",
    );
    await Deno.symlink(dir, join(dir, "loop"));
    const { documents, problems } = await readConfig([dir]);
    assert.deepEqual(problems, []);
    assert.equal(documents.length, 1);
  });
});
