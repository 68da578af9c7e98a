import assert from "node:assert/strict";
import { HeaderMap } from "../../http/mod.ts";
import {
  decideSampling,
  extractTrace,
  formatTraceparent,
  type IncomingTrace,
  injectTrace,
  parseB3Single,
  parseTraceparent,
  serverContext,
  TraceIds,
} from "../../telemetry/mod.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

Deno.test("parseTraceparent() accepts valid values and treats the rest as absent", () => {
  const cases: [string, string, { sampled: boolean } | undefined][] = [
    ["sampled version 00", `00-${TRACE}-${SPAN}-01`, { sampled: true }],
    ["unsampled version 00", `00-${TRACE}-${SPAN}-00`, { sampled: false }],
    ["other flag bits beside sampled", `00-${TRACE}-${SPAN}-03`, { sampled: true }],
    ["a later version with more fields", `01-${TRACE}-${SPAN}-01-what-ever`, { sampled: true }],
    ["a later version of exactly 55 characters", `cc-${TRACE}-${SPAN}-00`, { sampled: false }],
    ["version ff", `ff-${TRACE}-${SPAN}-01`, undefined],
    ["a version that is not hex", `0g-${TRACE}-${SPAN}-01`, undefined],
    ["version 00 with a trailing field", `00-${TRACE}-${SPAN}-01-extra`, undefined],
    ["a later version followed by no dash", `01-${TRACE}-${SPAN}-01x`, undefined],
    ["an all-zero trace id", `00-${"0".repeat(32)}-${SPAN}-01`, undefined],
    ["an all-zero span id", `00-${TRACE}-${"0".repeat(16)}-01`, undefined],
    ["a short trace id", `00-${TRACE.slice(1)}-${SPAN}-01`, undefined],
    ["a long span id", `00-${TRACE}-${SPAN}0-01`, undefined],
    ["one flag digit", `00-${TRACE}-${SPAN}-1`, undefined],
    ["upper-case hex", `00-${TRACE.toUpperCase()}-${SPAN}-01`, undefined],
    ["an empty value", "", undefined],
    ["garbage", "not a traceparent", undefined],
  ];
  for (const [name, value, want] of cases) {
    const got = parseTraceparent(value);
    if (!want) assert.equal(got, undefined, name);
    else assert.deepEqual(got, { traceId: TRACE, spanId: SPAN, sampled: want.sampled }, name);
  }
});

Deno.test("formatTraceparent() writes version 00 with the sampled flag", () => {
  assert.equal(
    formatTraceparent({ traceId: TRACE, spanId: SPAN, sampled: true }),
    `00-${TRACE}-${SPAN}-01`,
  );
  assert.equal(
    formatTraceparent({ traceId: TRACE, spanId: SPAN, sampled: false }),
    `00-${TRACE}-${SPAN}-00`,
  );
});

Deno.test("parseB3Single() reads ids, sampling state and the sampling-only form", () => {
  const short = "a3ce929d0e0e4736";
  const cases: [string, string, IncomingTrace | undefined][] = [
    ["ids only defer the decision", `${TRACE}-${SPAN}`, {
      parent: { traceId: TRACE, spanId: SPAN },
      sampled: undefined,
      format: "b3",
    }],
    ["ids, sampled and parent", `${TRACE}-${SPAN}-1-05e3ac9a4f6e3b90`, {
      parent: { traceId: TRACE, spanId: SPAN },
      sampled: true,
      format: "b3",
    }],
    ["a 64-bit trace id widened, debug", `${short}-${SPAN}-d`, {
      parent: { traceId: "0".repeat(16) + short, spanId: SPAN },
      sampled: true,
      format: "b3",
    }],
    ["upper-case hex", `${TRACE.toUpperCase()}-${SPAN}-0`, {
      parent: { traceId: TRACE, spanId: SPAN },
      sampled: false,
      format: "b3",
    }],
    ["deny alone", "0", { sampled: false, format: "b3" }],
    ["accept alone", "1", { sampled: true, format: "b3" }],
    ["a bad sampling state", `${TRACE}-${SPAN}-x`, undefined],
    ["a bad parent", `${TRACE}-${SPAN}-1-zz`, undefined],
    ["a 48-bit trace id", `${TRACE.slice(0, 12)}-${SPAN}`, undefined],
    ["all-zero ids", `${"0".repeat(32)}-${SPAN}`, undefined],
    ["garbage", "yes", undefined],
  ];
  for (const [name, value, want] of cases) assert.deepEqual(parseB3Single(value), want, name);
});

Deno.test("extractTrace() prefers traceparent, then b3, then x-b3-*, only with b3 on", () => {
  const w3c = `00-${TRACE}-${SPAN}-01`;
  const b3Trace = "1".repeat(32);
  const multi: [string, string][] = [
    ["x-b3-traceid", b3Trace],
    ["x-b3-spanid", "2".repeat(16)],
    ["x-b3-sampled", "0"],
  ];
  const cases: [string, [string, string][], boolean, IncomingTrace][] = [
    [
      "traceparent with tracestate",
      [["traceparent", w3c], ["tracestate", "a=1"], [
        "tracestate",
        "b=2",
      ]],
      false,
      {
        parent: { traceId: TRACE, spanId: SPAN },
        sampled: true,
        format: "w3c",
        traceState: "a=1,b=2",
      },
    ],
    ["two traceparent fields", [["traceparent", w3c], ["traceparent", w3c]], false, {}],
    ["B3 headers while B3 is off", multi, false, {}],
    ["B3 multi headers", multi, true, {
      parent: { traceId: b3Trace, spanId: "2".repeat(16) },
      sampled: false,
      format: "b3multi",
    }],
    ["the debug flag", [["x-b3-flags", "1"], ["x-b3-sampled", "0"]], true, {
      parent: undefined,
      sampled: true,
      format: "b3multi",
    }],
    ["a bad traceparent falls back to b3", [["traceparent", "00-xyz"], ["b3", "1"]], true, {
      sampled: true,
      format: "b3",
    }],
    ["traceparent wins over b3", [["b3", "0"], ["traceparent", w3c]], true, {
      parent: { traceId: TRACE, spanId: SPAN },
      sampled: true,
      format: "w3c",
      traceState: undefined,
    }],
    ["nothing", [["x-b3-sampled", "maybe"]], true, {}],
  ];
  for (const [name, fields, b3, want] of cases) {
    assert.deepEqual(extractTrace(new HeaderMap(fields), { b3 }), want, name);
  }
});

Deno.test("decideSampling() follows the caller, else draws against the percentage", () => {
  const draw = (value: number) => () => value;
  const cases: [string, IncomingTrace, number, number, boolean][] = [
    ["a sampled parent at 0 %", { sampled: true }, 0, 0.99, true],
    ["an unsampled parent at 100 %", { sampled: false }, 100, 0, false],
    ["no parent, a draw under 1 %", {}, 1, 0.0099, true],
    ["no parent, a draw at 1 %", {}, 1, 0.01, false],
    ["no parent at 100 %", {}, 100, 0.999999, true],
    ["no parent at 0 %", {}, 0, 0, false],
    ["ids without a decision at 50 %", { parent: { traceId: TRACE, spanId: SPAN } }, 50, 0.4, true],
  ];
  for (const [name, incoming, percentage, random, want] of cases) {
    assert.equal(decideSampling(incoming, percentage, draw(random)), want, name);
  }
});

Deno.test("serverContext() continues the caller's trace with a new span id", () => {
  const ids = new TraceIds();
  const continued = serverContext({ parent: { traceId: TRACE, spanId: SPAN } }, true, ids);
  assert.equal(continued.traceId, TRACE);
  assert.equal(continued.parentSpanId, SPAN);
  assert.match(continued.spanId, /^[0-9a-f]{16}$/);
  assert.notEqual(continued.spanId, SPAN);
  const root = serverContext({}, false, ids);
  assert.match(root.traceId, /^[0-9a-f]{32}$/);
  assert.equal(root.parentSpanId, undefined);
  assert.equal(root.sampled, false);
});

Deno.test("TraceIds gives distinct lower-case hex ids across pool refills", () => {
  const ids = new TraceIds();
  const seen = new Set<string>();
  for (let i = 0; i < 1_000; i++) {
    const t = ids.traceId();
    const s = ids.spanId();
    assert.match(t, /^[0-9a-f]{32}$/);
    assert.match(s, /^[0-9a-f]{16}$/);
    seen.add(t).add(s);
  }
  assert.equal(seen.size, 2_000);
});

Deno.test("injectTrace() writes traceparent, keeps tracestate, and B3 in the caller's form", () => {
  const context = { traceId: TRACE, spanId: "1".repeat(16), sampled: true, parentSpanId: SPAN };
  const plain = new HeaderMap([["traceparent", "junk"], ["tracestate", "a=1"]]);
  injectTrace(plain, context);
  assert.deepEqual(plain.entries(), [
    ["traceparent", `00-${TRACE}-${"1".repeat(16)}-01`],
    ["tracestate", "a=1"],
  ]);
  const single = new HeaderMap([["b3", "1"]]);
  injectTrace(single, { ...context, sampled: false }, { b3: true });
  assert.equal(single.get("b3"), `${TRACE}-${"1".repeat(16)}-0-${SPAN}`);
  assert.equal(single.has("x-b3-traceid"), false);
  const multi = new HeaderMap([["x-b3-parentspanid", "9".repeat(16)]]);
  injectTrace(multi, { ...context, parentSpanId: undefined }, { b3: true });
  assert.equal(multi.get("x-b3-traceid"), TRACE);
  assert.equal(multi.get("x-b3-spanid"), "1".repeat(16));
  assert.equal(multi.get("x-b3-sampled"), "1");
  assert.equal(multi.has("x-b3-parentspanid"), false);
});
