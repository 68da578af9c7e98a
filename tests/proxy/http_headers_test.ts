import assert from "node:assert/strict";
import { HeaderMap } from "../../http/mod.ts";
import { applyHeaderEdits, type HeaderEdit } from "../../proxy/http_headers.ts";

const BEFORE: [string, string][] = [["a", "1"], ["b", "2"], ["a", "3"]];

Deno.test("applyHeaderEdits() applies each action", () => {
  const edit = (name: string, action: HeaderEdit["action"]) => ({ name, value: "x", action });
  const cases: [string, HeaderEdit, [string, string][]][] = [
    ["set replaces every value", edit("a", "set"), [["a", "x"], ["b", "2"]]],
    ["set adds when absent", edit("c", "set"), [...BEFORE, ["c", "x"]]],
    ["add keeps the old values", edit("b", "add"), [...BEFORE, ["b", "x"]]],
    ["append joins with a comma", edit("a", "append"), [["a", "1,3,x"], ["b", "2"]]],
    ["append adds when absent", edit("c", "append"), [...BEFORE, ["c", "x"]]],
    ["addIfAbsent leaves a present field", edit("b", "addIfAbsent"), BEFORE],
    ["addIfAbsent adds an absent field", edit("c", "addIfAbsent"), [...BEFORE, ["c", "x"]]],
    ["overwriteIfExists leaves an absent field", edit("c", "overwriteIfExists"), BEFORE],
    ["overwriteIfExists replaces a present one", edit("b", "overwriteIfExists"), [
      ["a", "1"],
      ["b", "x"],
      ["a", "3"],
    ]],
    ["remove drops every value", edit("a", "remove"), [["b", "2"]]],
  ];
  for (const [what, e, want] of cases) {
    const headers = new HeaderMap(BEFORE);
    applyHeaderEdits(headers, [e]);
    assert.deepEqual([...headers], want, what);
  }
});
