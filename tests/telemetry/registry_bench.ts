/**
 * Our registry against the OpenTelemetry SDK, per record and per scrape (issue 5: "replace the
 * SDK's aggregation or serializer where the numbers say so"). Run with
 * `deno bench -A tests/telemetry/registry_bench.ts`; the event-loop delay of a scrape is measured
 * by `tests/telemetry/scrape_delay.ts`.
 */
import {
  compose,
  EMPTY_BODY,
  type Filter,
  HeaderMap,
  HttpContext,
  runChain,
} from "../../http/mod.ts";
import { IstioMetrics, metricsFilter } from "../../telemetry/mod.ts";
import { attributes, filledOtel, filledOurs, otel, outcome, pairs } from "./_bench_fixtures.ts";
import { connection, endpointOf, request, type TestState } from "./_helpers.ts";

const LABEL_SETS = 1000;

// --- Recording one request on the four HTTP instruments (25 labels) ---

const ours = new IstioMetrics();
const ourPairs = pairs(ours, LABEL_SETS);
const outcomes = Array.from({ length: LABEL_SETS }, (_, i) => outcome(i));
let k = 0;
Deno.bench("record: ours, precomputed label pair", { group: "record", baseline: true }, () => {
  const i = k++ % LABEL_SETS;
  ours.recordHttp(ourPairs[i], outcomes[i]);
});

const byText = new IstioMetrics();
const texts = ourPairs.map((p, i) => `${p.text},code="${200 + (i % 5)}"`);
Deno.bench("record: ours, full label string as the key", { group: "record" }, () => {
  const key = texts[k++ % LABEL_SETS];
  byText.requests.series(key).value++;
  byText.duration.series(key).observe(12);
  byText.requestBytes.series(key).observe(350);
  byText.responseBytes.series(key).observe(1200);
});

const sdk = otel();
const attrs = Array.from({ length: LABEL_SETS }, (_, i) => attributes(i));
Deno.bench("record: OpenTelemetry SDK, 25 attributes", { group: "record" }, () => {
  sdk.record(attrs[k++ % LABEL_SETS]);
});

// --- A request through the chain, with and without the metrics filter ---

const respond: Filter<TestState> = (ctx) => {
  ctx.state.endpoint = endpointOf("reviews");
  ctx.response = { head: { status: 200, headers: new HeaderMap() }, body: EMPTY_BODY };
  return Promise.resolve();
};
const plain = compose<TestState>([respond]);
const metered = compose<TestState>([metricsFilter(new IstioMetrics()), respond]);
const conn = connection({ service: "reviews" });
async function once(chain: Filter<TestState>) {
  const ctx = new HttpContext({ head: request("GET", "/"), body: EMPTY_BODY }, conn());
  await runChain(chain, ctx);
}
Deno.bench("chain: without metrics", { group: "chain", baseline: true }, () => once(plain));
Deno.bench("chain: with metricsFilter", { group: "chain" }, () => once(metered));

// --- A scrape of 10,000 series of istio_requests_total ---

const SERIES = 10_000;
const ourScrape = filledOurs(SERIES, true);
const sdkScrape = filledOtel(SERIES, true);
Deno.bench(
  "scrape 10k counter series: ours, unsliced",
  { group: "scrape", baseline: true, n: 20, warmup: 2 },
  async () => {
    await ourScrape.registry.renderText({ sliceMs: Infinity });
  },
);
Deno.bench(
  "scrape 10k counter series: ours, 4 ms slices",
  { group: "scrape", n: 20, warmup: 2 },
  async () => {
    await ourScrape.registry.renderText();
  },
);
Deno.bench(
  "scrape 10k counter series: OpenTelemetry SDK",
  { group: "scrape", n: 3, warmup: 1 },
  async () => {
    await sdkScrape.scrape();
  },
);
