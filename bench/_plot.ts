/**
 * A scenario's latency-percentile plot as a hand-written SVG: one panel per load, one line per
 * path. The x axis is the percentile on a log scale of 1 / (1 − q) (p0, p50, p90, p99, p99.9,
 * p99.99 evenly spaced decades, as HdrHistogram plots them), the y axis milliseconds on a log
 * scale, so a sub-millisecond floor and a tail of tens of milliseconds fit one panel.
 */
import type { Plot, PlotPanel } from "./_scenario.ts";

const WIDTH = 760;
const PANEL_HEIGHT = 300;
const TITLE_HEIGHT = 36;
const MARGIN = { left: 64, right: 150, top: 34, bottom: 44 } as const;

/** Stable colours for the paths; dashed for the baselines "added" subtracts. */
const STYLE: Readonly<Record<string, { color: string; dash?: string }>> = {
  waypoint: { color: "#d62728" },
  direct: { color: "#1f77b4", dash: "6 4" },
  plain: { color: "#7f7f7f", dash: "2 3" },
  haproxy: { color: "#2ca02c" },
  "haproxy-direct": { color: "#2ca02c", dash: "6 4" },
  "policy off": { color: "#1f77b4", dash: "6 4" },
  "policy on": { color: "#d62728" },
};
const FALLBACK = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];

/** Percentile ticks of the x axis. */
const X_TICKS: readonly (readonly [number, string])[] = [
  [0, "p0"],
  [50, "p50"],
  [90, "p90"],
  [99, "p99"],
  [99.9, "p99.9"],
  [99.99, "p99.99"],
];

/** Position of a percentile on the x axis: log10(1 / (1 − q)). */
function decade(percentile: number): number {
  return -Math.log10(1 - percentile / 100);
}

/** The plot as a standalone SVG document. */
export function plotSvg(plot: Plot): string {
  const panels = plot.panels.filter((p) => p.series.some((s) => s.points.length > 0));
  const height = TITLE_HEIGHT + Math.max(1, panels.length) * PANEL_HEIGHT;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
    `viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${esc(plot.title)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="16">${esc(plot.title)}</text>`,
  ];
  if (panels.length === 0) {
    out.push(`<text x="${WIDTH / 2}" y="${TITLE_HEIGHT + 40}" text-anchor="middle">no data</text>`);
  }
  panels.forEach((p, i) => out.push(...panelSvg(p, TITLE_HEIGHT + i * PANEL_HEIGHT)));
  out.push("</svg>");
  return out.join("\n") + "\n";
}

function panelSvg(panel: PlotPanel, top: number): string[] {
  const x0 = MARGIN.left, x1 = WIDTH - MARGIN.right;
  const y0 = top + MARGIN.top, y1 = top + PANEL_HEIGHT - MARGIN.bottom;
  const points = panel.series.flatMap((s) => s.points).filter(([q]) => q < 100);
  const xMax = Math.max(2, Math.ceil(Math.max(...points.map(([q]) => decade(q))) - 1e-9));
  const ms = points.map(([, v]) => v).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(...ms))));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(lo * 10, ...ms)));
  const x = (q: number) => x0 + (x1 - x0) * decade(q) / xMax;
  const y = (v: number) => y1 - (y1 - y0) * Math.log10(Math.max(lo, v) / lo) / Math.log10(hi / lo);
  const out = [
    `<g><title>${esc(panel.title)}</title>`,
    `<text x="${(x0 + x1) / 2}" y="${top + 20}" text-anchor="middle" font-size="14">` +
    `${esc(panel.title)}</text>`,
    `<rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" fill="none" stroke="#999"/>`,
  ];
  for (const [q, label] of X_TICKS.filter(([q]) => decade(q) <= xMax + 1e-9)) {
    const px = r(x(q));
    out.push(
      `<line x1="${px}" y1="${y0}" x2="${px}" y2="${y1}" stroke="#e5e5e5"/>`,
      `<text x="${px}" y="${y1 + 16}" text-anchor="middle">${label}</text>`,
    );
  }
  for (const v of yTicks(lo, hi)) {
    const py = r(y(v));
    out.push(
      `<line x1="${x0}" y1="${py}" x2="${x1}" y2="${py}" stroke="#e5e5e5"/>`,
      `<text x="${x0 - 6}" y="${py + 4}" text-anchor="end">${tickLabel(v)}</text>`,
    );
  }
  out.push(
    `<text x="${(x0 + x1) / 2}" y="${y1 + 34}" text-anchor="middle">percentile (log scale of ` +
      `1 / (1 − q))</text>`,
    `<text transform="translate(${x0 - 48} ${(y0 + y1) / 2}) rotate(-90)" ` +
      `text-anchor="middle">latency, ms (log)</text>`,
  );
  panel.series.forEach((s, i) => {
    const style = STYLE[s.name] ?? { color: FALLBACK[i % FALLBACK.length] };
    const dash = style.dash ? ` stroke-dasharray="${style.dash}"` : "";
    const line = s.points.filter(([q]) => q < 100).map(([q, v]) => `${r(x(q))},${r(y(v))}`);
    if (line.length > 0) {
      out.push(
        `<polyline fill="none" stroke="${style.color}" stroke-width="2"${dash} ` +
          `points="${line.join(" ")}"><title>${esc(s.name)}</title></polyline>`,
      );
    }
    const ly = y0 + 14 + i * 18;
    out.push(
      `<line x1="${x1 + 12}" y1="${ly - 4}" x2="${x1 + 40}" y2="${ly - 4}" ` +
        `stroke="${style.color}" stroke-width="2"${dash}/>`,
      `<text x="${x1 + 46}" y="${ly}">${esc(s.name)}</text>`,
    );
  });
  out.push("</g>");
  return out;
}

/** 1, 2 and 5 times each power of ten in [lo, hi]. */
function yTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    for (const m of [1, 2, 5]) if (d * m <= hi * 1.0001) out.push(d * m);
  }
  return out;
}

function tickLabel(v: number): string {
  return v >= 1 ? String(Math.round(v)) : String(Number(v.toPrecision(1)));
}

function r(v: number): number {
  return Math.round(v * 10) / 10;
}

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
