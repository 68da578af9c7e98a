/**
 * The waypoint beside HAProxy, the direct paths and Istio's published Envoy-waypoint figures, and
 * where the waypoint stands against issue 8's targets, from the rows of one `http-1k` run.
 *
 * Targets (issue 8), at 1,000 rps: waypoint CPU per 1,000 rps at most 2× HAProxy's in the same
 * run, RSS ≤ 60 MB, added p99 ≤ 0.5 ms; at saturation at least half of HAProxy's requests/s.
 */
import { LOADS, type Measured, type PathName } from "./_http.ts";
import { cpuPer1k, fmt, type Table } from "./_scenario.ts";

/**
 * Istio's published figures (shared/reference/landscape.md §0): the Envoy waypoint of Istio 1.24
 * at 1,000 HTTP rps, 1 KB payloads, 2 worker threads; the ztunnel pair of Istio 1.22 at the same
 * load over 1 to 64 connections.
 */
export const ISTIO = {
  waypointVcpuPer1k: 0.25,
  waypointMB: 60,
  ztunnelAddedP90: 0.17,
  ztunnelAddedP99: 0.2,
} as const;

/** Issue 8's targets. */
export const TARGETS = {
  cpuVsHaproxy: 2,
  rssMB: 60,
  addedP99Ms: 0.5,
  saturationVsHaproxy: 0.5,
} as const;

const MIB_PER_MB = 1e6 / 2 ** 20;

/** The side-by-side table and, when HAProxy ran, the targets table. */
export function compareTables(measured: readonly Measured[], peerRan: boolean): Table[] {
  const at = (load: string, path: PathName) =>
    measured.find((m) => m.load === load && m.path === path);
  const paths: PathName[] = ["waypoint", "haproxy", "direct", "haproxy-direct", "plain"];
  const fixed = paths.map((p) => at(LOADS.fixed, p));
  const sat = paths.map((p) => at(LOADS.saturation, p));
  const added = (m: Measured | undefined, base: Measured | undefined) =>
    m && base
      ? ["p50", "p90", "p99"].map((q) => fmt(m.result.latencyMs[q] - base.result.latencyMs[q], 3))
        .join(" / ")
      : "–";
  const [wp, hp, direct, hpDirect] = fixed;
  const cpu = (m: Measured | undefined) => m && cpuPer1k(m.window, "proxy", m.result.requests);
  const side: Table = {
    title: "http-1k, side by side: the waypoint, HAProxy, their direct paths, and Istio's " +
      "published Envoy waypoint",
    columns: [
      "measure",
      "waypoint",
      "HAProxy",
      "direct (tunnels, no waypoint)",
      "haproxy-direct (TLS terminator)",
      "plain",
      "Istio 1.24 Envoy waypoint (published)",
    ],
    rows: [
      [
        `proxy CPU s per 1,000 req at ${LOADS.fixed} (vCPU per 1,000 rps)`,
        ...fixed.map((m, i) => i < 2 ? fmt(cpu(m), 3) : "–"),
        `${ISTIO.waypointVcpuPer1k}`,
      ],
      [
        `proxy RSS MiB at ${LOADS.fixed} (largest VmRSS)`,
        ...fixed.map((m, i) => i < 2 ? fmt(m?.window.rssMiB.proxy, 1) : "–"),
        `${fmt(ISTIO.waypointMB * MIB_PER_MB, 1)} (${ISTIO.waypointMB} MB)`,
      ],
      [
        `p50 / p90 / p99 ms at ${LOADS.fixed}`,
        ...fixed.map((m) =>
          m
            ? ["p50", "p90", "p99"].map((q) => fmt(m.result.latencyMs[q], 3)).join(" / ") +
              errorsOf(m)
            : "–"
        ),
        "–",
      ],
      [
        `added p50 / p90 / p99 ms at ${LOADS.fixed}`,
        added(wp, direct),
        added(hp, hpDirect),
        "–",
        "–",
        "–",
        `ztunnel pair, Istio 1.22: – / ${ISTIO.ztunnelAddedP90} / ${ISTIO.ztunnelAddedP99}`,
      ],
      [
        `req/s at ${LOADS.saturation} (wrk)`,
        ...sat.map((m) => fmt(m?.result.perSecond, 0) + errorsOf(m)),
        "–",
      ],
      [
        `proxy CPU s per 1,000 req at ${LOADS.saturation}`,
        ...sat.map((m, i) => i < 2 ? fmt(cpu(m), 3) : "–"),
        "–",
      ],
    ],
    notes: [
      "Istio's figures come from its performance page (shared/reference/landscape.md §0): the " +
      "Envoy waypoint of Istio 1.24 uses about 0.25 vCPU and 60 MB per 1,000 HTTP rps with 1 KB " +
      "payloads and 2 worker threads; the two ztunnels of Istio 1.22 add about 0.17 ms at p90 and " +
      "0.20 ms at p99 (HTTP/1.1, 1 KB, 1,000 rps, 1–64 connections, 2 workers, mTLS). Those run " +
      "on dedicated bare-metal nodes; here every party shares 2 cores, so compare the waypoint " +
      "with HAProxy and the direct path of this run more than with those numbers.",
    ],
  };
  if (!peerRan) return [side];
  return [side, targetsTable(measured)];
}

/** ` (N errors)` when the row had errors, which make its figures suspect. */
function errorsOf(m: Measured | undefined): string {
  return m?.result.errors ? ` (${m.result.errors} errors)` : "";
}

/** Issue 8's targets, each with the goal from this run and the waypoint's figure. */
function targetsTable(measured: readonly Measured[]): Table {
  const at = (load: string, path: PathName) =>
    measured.find((m) => m.load === load && m.path === path);
  const cpu = (m: Measured | undefined) => m && cpuPer1k(m.window, "proxy", m.result.requests);
  const verdict = (ok: boolean | undefined) => ok === undefined ? "–" : ok ? "met" : "missed";
  const wp = at(LOADS.fixed, "waypoint"), hp = at(LOADS.fixed, "haproxy");
  const [wpCpu, hpCpu] = [cpu(wp), cpu(hp)];
  const cpuGoal = hpCpu === undefined ? undefined : TARGETS.cpuVsHaproxy * hpCpu;
  const rssMiB = wp?.window.rssMiB.proxy;
  const rssGoalMiB = TARGETS.rssMB * MIB_PER_MB;
  // Added p99 at every connection count of the latency method.
  const addedP99 = measured
    .filter((m) => m.rate === 1000 && m.path === "waypoint")
    .map((m) => {
      const d = measured.find((o) => o.load === m.load && o.path === "direct");
      return { conns: m.connections, ms: d && m.result.latencyMs.p99 - d.result.latencyMs.p99 };
    });
  const met = addedP99.filter((a) => a.ms !== undefined && a.ms <= TARGETS.addedP99Ms).length;
  const [wpSat, hpSat] = [at(LOADS.saturation, "waypoint"), at(LOADS.saturation, "haproxy")];
  const satGoal = hpSat && TARGETS.saturationVsHaproxy * hpSat.result.perSecond;
  const ratio = (a: number | undefined, b: number | undefined) =>
    a !== undefined && b ? `${fmt(a / b, 2)}×` : "–";
  return {
    title: "http-1k: the waypoint against issue 8's targets, this run",
    columns: ["target", "goal", "waypoint", "verdict"],
    rows: [
      [
        `CPU per 1,000 rps at ${LOADS.fixed}`,
        `≤ ${TARGETS.cpuVsHaproxy} × HAProxy's ${fmt(hpCpu, 3)} = ${fmt(cpuGoal, 3)} s`,
        `${fmt(wpCpu, 3)} s (${ratio(wpCpu, hpCpu)} HAProxy's)`,
        verdict(wpCpu !== undefined && cpuGoal !== undefined ? wpCpu <= cpuGoal : undefined),
      ],
      [
        `RSS at ${LOADS.fixed}`,
        `≤ ${TARGETS.rssMB} MB (${fmt(rssGoalMiB, 1)} MiB)`,
        `${fmt(rssMiB, 1)} MiB (${ratio(rssMiB, rssGoalMiB)} the goal)`,
        verdict(rssMiB === undefined ? undefined : rssMiB <= rssGoalMiB),
      ],
      [
        "added p99 at 1,000 rps (waypoint − direct)",
        `≤ ${TARGETS.addedP99Ms} ms`,
        addedP99.map((a) => `${fmt(a.ms, 3)} ms at ${a.conns} conns`).join(", ") || "–",
        addedP99.length === 0
          ? "–"
          : met === addedP99.length
          ? "met"
          : met === 0
          ? "missed"
          : `met at ${met} of ${addedP99.length}`,
      ],
      [
        `req/s at ${LOADS.saturation}`,
        `≥ ${TARGETS.saturationVsHaproxy} × HAProxy's ${fmt(hpSat?.result.perSecond, 0)} = ` +
        `${fmt(satGoal, 0)}`,
        `${fmt(wpSat?.result.perSecond, 0)} (${
          ratio(wpSat?.result.perSecond, hpSat?.result.perSecond)
        } HAProxy's)`,
        verdict(wpSat && satGoal !== undefined ? wpSat.result.perSecond >= satGoal : undefined),
      ],
    ],
    notes: [
      "Measured in this run, with this run's `other %` (see the rows above): figures from a busy " +
      "machine are skewed, HAProxy's and the waypoint's alike. shared/reference/libraries.md " +
      "measured HAProxy 2.6 at 0.099 vCPU per 1,000 rps here (L7, TLS on both legs).",
    ],
  };
}
