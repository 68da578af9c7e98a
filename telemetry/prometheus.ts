/**
 * The `/stats/prometheus` text: Istio's metrics from the registry, then the caller's own
 * `waypoint_` process metrics. The registry part is rendered in slices, so a scrape of many
 * series leaves room for requests between them.
 */
import type { Registry, RenderOptions } from "./registry.ts";

/** Options of {@link prometheusRenderer}. */
export interface PrometheusOptions extends RenderOptions {
  /**
   * Extra exposition text appended after the registry's (for example `waypoint_` gauges). It
   * must end with a line feed and must not repeat a registry family.
   */
  readonly extra?: () => string | Promise<string>;
}

/**
 * Makes the scrape renderer for the metrics app.
 *
 * @example
 * ```ts
 * const render = prometheusRenderer(metrics.registry, { extra: () => processMetrics() });
 * metricsApp(render);
 * ```
 *
 * @param registry The registry holding Istio's metrics
 * @param options Extra text and slice length
 * @returns A function producing the exposition text at each scrape
 */
export function prometheusRenderer(
  registry: Registry,
  options: PrometheusOptions = {},
): () => Promise<string> {
  return async () => {
    const parts: string[] = [];
    for await (const part of registry.render(options)) parts.push(part);
    if (options.extra) parts.push(await options.extra());
    return parts.join("");
  };
}

/**
 * The same text as a byte stream, for a response that starts before the scrape is rendered
 * whole (large registries).
 *
 * @param registry The registry holding Istio's metrics
 * @param options Extra text and slice length
 * @returns UTF-8 exposition text
 */
export function prometheusStream(
  registry: Registry,
  options: PrometheusOptions = {},
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const parts = registry.render(options);
  let extraDone = !options.extra;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await parts.next();
      if (!next.done) return controller.enqueue(encoder.encode(next.value));
      if (!extraDone) {
        extraDone = true;
        const text = await options.extra!();
        if (text) controller.enqueue(encoder.encode(text));
      }
      controller.close();
    },
    async cancel() {
      await parts.return(undefined);
    },
  });
}
