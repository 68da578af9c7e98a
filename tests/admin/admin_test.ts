import assert from "node:assert/strict";
import { adminApp } from "../../admin/admin.ts";
import { log } from "../../log/mod.ts";

Deno.test("adminApp() dumps the config as sorted, indented JSON", async () => {
  const cases: [string, unknown, string][] = [
    [
      "object keys are sorted at every depth",
      { b: 1, a: { d: [3, 1], c: null } },
      `{
  "a": {
    "c": null,
    "d": [
      3,
      1
    ]
  },
  "b": 1
}
`,
    ],
    [
      "maps, sets and bigints are readable",
      {
        m: new Map([["y", 2], ["x", 1]]),
        s: new Set(["z"]),
        n: 10n,
      },
      `{
  "m": {
    "x": 1,
    "y": 2
  },
  "n": "10",
  "s": [
    "z"
  ]
}
`,
    ],
    ["undefined dumps as null", undefined, "null\n"],
  ];
  for (const [name, config, want] of cases) {
    const res = await adminApp({ configDump: () => config }).request("/config_dump");
    assert.equal(res.status, 200, name);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/, name);
    assert.equal(await res.text(), want, name);
  }
});

Deno.test("adminApp() reads configDump() on every request", async () => {
  let generation = 0;
  const app = adminApp({ configDump: () => ({ generation: ++generation }) });
  await app.request("/config_dump");
  assert.deepEqual(await (await app.request("/config_dump")).json(), { generation: 2 });
});

Deno.test("adminApp() lists its endpoints and serves the extra ones", async () => {
  const app = adminApp({
    configDump: () => ({}),
    extra: {
      certs: () => [{ identity: "spiffe://cluster.local/ns/a/sa/b" }],
      "stats/pool": () => 3,
    },
  });
  const cases: [string, string, number, string][] = [
    ["the index lists every path", "/", 200, "/\n/config_dump\n/certs\n/stats/pool\n"],
    ["an extra endpoint answers JSON", "/stats/pool", 200, "3\n"],
    ["an unknown path is 404", "/clusters", 404, "404 Not Found"],
  ];
  for (const [name, path, status, body] of cases) {
    const res = await app.request(path);
    assert.equal(res.status, status, name);
    assert.equal(await res.text(), body, name);
  }
  assert.deepEqual(await (await app.request("/certs")).json(), [
    { identity: "spiffe://cluster.local/ns/a/sa/b" },
  ]);
});

Deno.test("adminApp() rejects bad extra endpoint names", () => {
  const cases: [string, string, string][] = [
    ["a leading slash", "/certs", "Invalid admin endpoint name"],
    ["upper case", "Certs", "Invalid admin endpoint name"],
    ["an empty name", "", "Invalid admin endpoint name"],
    ["a clash with config_dump", "config_dump", "Duplicate admin endpoint: /config_dump"],
  ];
  for (const [name, endpoint, message] of cases) {
    assert.throws(
      () => adminApp({ configDump: () => ({}), extra: { [endpoint]: () => 1 } }),
      (e: Error) => e.message.startsWith(message),
      name,
    );
  }
});

Deno.test("adminApp() answers 500 when configDump() throws", async () => {
  const app = adminApp({
    configDump: () => {
      throw new Error("Boom");
    },
  });
  const res = await app.request("/config_dump");
  assert.equal(res.status, 500);
  assert.equal(await res.text(), "Internal error");
  await log.drain();
});
