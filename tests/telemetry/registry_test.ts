import { setImmediate } from "node:timers";
import assert from "node:assert/strict";
import { DEFAULT_BUCKETS, escapeLabelValue, labelText, Registry } from "../../telemetry/mod.ts";

Deno.test("escapeLabelValue() escapes backslash, double quote and line feed only", () => {
  const cases: [string, string, string][] = [
    ["plain text is kept", "reviews.mesh.svc.cluster.local", "reviews.mesh.svc.cluster.local"],
    ["a double quote gets a backslash", 'say "hi"', 'say \\"hi\\"'],
    ["a backslash is doubled", "C:\\path", "C:\\\\path"],
    ["a line feed becomes \\n", "a\nb", "a\\nb"],
    ["tabs, carriage returns and UTF-8 pass", "a\tb\rc ü", "a\tb\rc ü"],
    ["all at once, in order", '\\"\n', '\\\\\\"\\n'],
  ];
  for (const [name, value, expected] of cases) {
    assert.equal(escapeLabelValue(value), expected, name);
  }
});

Deno.test("labelText() renders pairs in the given order and refuses a length mismatch", () => {
  assert.equal(labelText(["b", "a"], ["2", 'x"y']), 'b="2",a="x\\"y"');
  assert.equal(labelText([], []), "");
  assert.throws(() => labelText(["a"], []), /Label count mismatch: 1 names, 0 values/);
});

Deno.test("Registry.render() writes HELP, TYPE and cumulative buckets with Envoy's bounds", async () => {
  const r = new Registry();
  const requests = r.counter("istio_requests_total", "Requests\nhandled \\ here");
  const duration = r.histogram("istio_request_duration_milliseconds", "Duration", [1, 10]);
  requests.series('code="200"').add();
  requests.series('code="200"').add(2);
  const s = duration.series('code="200"');
  for (const v of [0, 1, 1.5, 10, 11]) s.observe(v);
  assert.equal(
    await r.renderText(),
    [
      "# HELP istio_requests_total Requests\\nhandled \\\\ here",
      "# TYPE istio_requests_total counter",
      'istio_requests_total{code="200"} 3',
      "# HELP istio_request_duration_milliseconds Duration",
      "# TYPE istio_request_duration_milliseconds histogram",
      'istio_request_duration_milliseconds_bucket{code="200",le="1"} 2',
      'istio_request_duration_milliseconds_bucket{code="200",le="10"} 4',
      'istio_request_duration_milliseconds_bucket{code="200",le="+Inf"} 5',
      'istio_request_duration_milliseconds_sum{code="200"} 23.5',
      'istio_request_duration_milliseconds_count{code="200"} 5',
      "",
    ].join("\n"),
  );
  assert.deepEqual(
    DEFAULT_BUCKETS,
    [
      0.5,
      1,
      5,
      10,
      25,
      50,
      100,
      250,
      500,
      1000,
      2500,
      5000,
      10000,
      30000,
      60000,
      300000,
      600000,
      1800000,
      3600000,
    ],
  );
});

Deno.test("Registry.render() skips families without series", async () => {
  const r = new Registry();
  r.counter("istio_tcp_connections_opened_total", "Opened");
  assert.equal(await r.renderText(), "");
});

Deno.test("Registry.render() cuts the text in pieces that add up to the whole", async () => {
  const r = new Registry();
  const c = r.counter("waypoint_test_total", "Test");
  for (let i = 0; i < 1000; i++) c.series(`i="${i}"`).add(i);
  const parts: string[] = [];
  for await (const part of r.render({ chunkChars: 1000 })) parts.push(part);
  assert.ok(parts.length > 10, `${parts.length} pieces`);
  assert.equal(parts.join(""), await r.renderText({ chunkChars: 1e9 }));
  assert.equal(parts.join("").split("\n").length, 1000 + 3);
});

Deno.test("Registry.render() lets timers run once a slice is used up", async () => {
  const r = new Registry();
  const c = r.counter("waypoint_test_total", "Test");
  for (let i = 0; i < 1000; i++) c.series(`i="${i}"`).add(i);
  // Work queued behind I/O (`setImmediate`), rescheduling itself: it runs exactly when the render
  // gives the event loop a turn, whatever the machine's speed.
  let fired = 0;
  let running = true;
  const spin = () => {
    fired++;
    if (running) setImmediate(spin);
  };
  setImmediate(spin);
  await new Promise((r) => setImmediate(r));
  fired = 0;
  const firedDuring: number[] = [];
  // A clock that advances 1 ms per read: every piece ends a slice.
  let tick = 0;
  for await (const _ of r.render({ chunkChars: 1000, sliceMs: 1, now: () => tick++ })) {
    firedDuring.push(fired);
  }
  assert.ok(firedDuring[firedDuring.length - 1] > 0, `timer fired ${firedDuring.at(-1)} times`);
  // Without slicing, the whole render is one turn of the event loop.
  const before = fired;
  await r.renderText({ chunkChars: 1000, sliceMs: Infinity });
  assert.equal(fired, before);
  running = false;
});

Deno.test("Registry.render() sees series added while a scrape is in progress, each whole", async () => {
  const r = new Registry();
  const c = r.counter("waypoint_test_total", "Test");
  for (let i = 0; i < 100; i++) c.series(`i="${i}"`).add();
  let tick = 0;
  const parts: string[] = [];
  for await (const part of r.render({ chunkChars: 100, sliceMs: 1, now: () => tick++ })) {
    parts.push(part);
    c.series(`late="${parts.length}"`).add();
  }
  for (const line of parts.join("").split("\n").filter((l) => l && !l.startsWith("#"))) {
    assert.match(line, /^waypoint_test_total\{(i|late)="\d+"\} 1$/);
  }
});

Deno.test("Registry caps the series of a family and counts the records past the cap", async () => {
  const r = new Registry({ maxSeries: 2 });
  const c = r.counter("waypoint_test_total", "Test");
  c.series('a="1"').add();
  c.series('a="2"').add();
  c.series('a="3"').add();
  c.series('a="4"').add();
  c.series('a="1"').add();
  assert.equal(r.overflow, 2);
  assert.equal(r.seriesCount, 2);
  assert.doesNotMatch(await r.renderText(), /a="3"|overflow/);
  assert.match(await r.renderText(), /waypoint_test_total\{a="1"\} 2/);
});

Deno.test("Registry refuses a taken name, an invalid name and decreasing buckets", () => {
  const r = new Registry();
  r.counter("istio_requests_total", "x");
  assert.throws(
    () => r.counter("istio_requests_total", "x"),
    /Metric already registered: istio_requests_total/,
  );
  assert.throws(() => r.counter("istio-requests", "x"), /Invalid metric name: istio-requests/);
  assert.throws(() => r.histogram("h", "x", [5, 1]), /Histogram buckets must increase: h/);
});
