import assert from "node:assert/strict";
import { normalizePath, type PathNormalization, urlPath } from "../../policy/mod.ts";

const cases: { name: string; input: string; mode?: PathNormalization; want: string | undefined }[] =
  [
    {
      name: "normalizePath() leaves a plain path alone",
      input: "/api/v1/items?x=1",
      want: "/api/v1/items?x=1",
    },
    {
      name: "normalizePath() removes single-dot segments",
      input: "/public/./data",
      want: "/public/data",
    },
    {
      name: "normalizePath() resolves double-dot segments",
      input: "/public/data/abc/../xyz",
      want: "/public/data/xyz",
    },
    {
      name: "normalizePath() stops double dots at the root",
      input: "/../../etc/passwd",
      want: "/etc/passwd",
    },
    {
      name: "normalizePath() keeps the slash after a final double dot",
      input: "/a/b/..",
      want: "/a/",
    },
    {
      name: "normalizePath() decodes percent-encoded unreserved characters",
      input: "/%61%62%63/%2D%5f%7E%30",
      want: "/abc/-_~0",
    },
    { name: "normalizePath() decodes only once", input: "/%2561", want: "/%2561" },
    {
      name: "normalizePath() resolves encoded dots as dot segments",
      input: "/a/%2e%2E/b",
      want: "/b",
    },
    {
      name: "normalizePath() turns backslashes into slashes",
      input: "/some\\data",
      want: "/some/data",
    },
    { name: "normalizePath() keeps %2F under BASE", input: "/some%2fdata", want: "/some%2fdata" },
    { name: "normalizePath() keeps double slashes under BASE", input: "/a//b", want: "/a//b" },
    {
      name: "normalizePath() merges slashes under MERGE_SLASHES",
      input: "/some//data///abc",
      mode: "MERGE_SLASHES",
      want: "/some/data/abc",
    },
    {
      name: "normalizePath() decodes %2F and %5C under DECODE_AND_MERGE_SLASHES",
      input: "/some%2fdata/%61%62%63%5Cx",
      mode: "DECODE_AND_MERGE_SLASHES",
      want: "/some/data/abc/x",
    },
    {
      name: "normalizePath() changes nothing under NONE",
      input: "/a/../%61",
      mode: "NONE",
      want: "/a/../%61",
    },
    { name: "normalizePath() refuses %00", input: "/a%00", want: undefined },
    {
      name: "normalizePath() refuses %00 even under NONE",
      input: "/a%00",
      mode: "NONE",
      want: undefined,
    },
    {
      name: "normalizePath() leaves the query untouched",
      input: "/a/./b?p=/../%61",
      want: "/a/b?p=/../%61",
    },
    { name: "normalizePath() drops a fragment", input: "/a/b#frag", want: "/a/b" },
    { name: "normalizePath() leaves an asterisk-form target alone", input: "*", want: "*" },
  ];

for (const c of cases) {
  Deno.test(c.name, () => assert.equal(normalizePath(c.input, c.mode), c.want));
}

Deno.test("urlPath() cuts the query and the fragment", () => {
  assert.equal(urlPath("/a/b?x=1#y"), "/a/b");
  assert.equal(urlPath("/a/b#y?x"), "/a/b");
  assert.equal(urlPath("/a/b"), "/a/b");
});
