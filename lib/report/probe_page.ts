/**
 * The HTML report's sections for probe runs: for each transport of a run (one
 * for `client --probe`, TCP and UDP for each phase of `compare`), RTT over
 * time (p50 and p99 per bucket, with markers where probes were lost,
 * reordered or duplicated), the RTT distribution on a log axis, the loss per
 * interval, the table and the findings. Reads plain results
 * ({@linkcode ProbeReport}, {@linkcode ProbeSeriesData}); runs nothing.
 *
 * @example
 * ```ts
 * import { probeSection } from "./probe_page.ts";
 * import type { ProbeSeriesData } from "./series.ts";
 * import type { ProbeReport } from "../probe/run_probe.ts";
 *
 * declare const report: ProbeReport;
 * declare const series: ProbeSeriesData;
 * const section = probeSection("probe", [{ report, series }]);
 * console.log(section.charts.length); // 3
 * ```
 *
 * @module
 */

import { ms, pps } from "../probe/report.ts";
import type { ProbeReport } from "../probe/run_probe.ts";
import { formatBitRate, formatCount, formatPercent } from "../units.ts";
import type { ReportSection } from "./html.ts";
import type { ProbeSeriesData } from "./series.ts";
import { barChart, lineChart, type LineSeries, type MarkerRow } from "./svg.ts";

/** One transport's results: its report and its series. */
export interface ProbeRunData {
  report: ProbeReport;
  series: ProbeSeriesData;
}

const COLOR = { tcp: 0, udp: 1 } as const;

function upper(t: "tcp" | "udp"): string {
  return t.toUpperCase();
}

function mid(b: { startS: number; endS: number }): number {
  return (b.startS + b.endS) / 2;
}

/** The three charts of a probe run: RTT over time, RTT distribution, loss per interval. */
function probeCharts(id: string, runs: readonly ProbeRunData[]): string[] {
  const lines: LineSeries[] = [];
  const markers: MarkerRow[] = [];
  for (const { series } of runs) {
    const name = upper(series.transport);
    const color = COLOR[series.transport];
    lines.push(
      { name: `${name} p50`, color, points: series.buckets.map((b) => [mid(b), b.p50]) },
      {
        name: `${name} p99`,
        color,
        dashed: true,
        points: series.buckets.map((b) => [mid(b), b.p99]),
      },
    );
    markers.push(
      {
        name: `${name} lost`,
        kind: "lost",
        color,
        points: series.buckets.map((b) => [mid(b), b.lost]),
      },
      {
        name: `${name} reordered`,
        kind: "reordered",
        color,
        points: series.buckets.map((b) => [mid(b), b.outOfOrder]),
      },
      {
        name: `${name} duplicated`,
        kind: "duplicated",
        color,
        points: series.buckets.map((b) => [mid(b), b.duplicates]),
      },
    );
  }
  const bucketMs = (runs[0]?.series.bucketS ?? 0) * 1000;
  const overTime = lineChart({
    id: `${id}-rtt-time`,
    title: `RTT over time (p50 solid, p99 dashed, per ${
      formatCount(Number(bucketMs.toPrecision(3)))
    } ms of sending; marks: lost ×, reordered ▲, duplicated ○)`,
    x: { label: "time since the first probe was sent (s)" },
    y: { label: "round-trip time (ms, log)", log: true },
    lines,
    markers,
  });
  const distribution = lineChart({
    id: `${id}-rtt-cdf`,
    title: "RTT distribution: share of echoes at or below each RTT",
    x: { label: "round-trip time (ms, log)", log: true },
    y: { label: "echoes (%)", format: (v) => `${v}` },
    lines: runs.map(({ series }) => ({
      name: upper(series.transport),
      color: COLOR[series.transport],
      points: series.percentiles.map(({ p, ms }) => [ms, p] as const),
    })),
  });
  const loss = barChart({
    id: `${id}-loss`,
    title: `Probes lost per ${formatCount(Number(bucketMs.toPrecision(3)))} ms of sending (%)`,
    x: { label: "time since the first probe was sent (s)" },
    y: { label: "lost (% of sent)", format: (v) => `${v}` },
    width: runs[0]?.series.bucketS ?? 1,
    bars: runs.map(({ series }) => ({
      name: `${upper(series.transport)} lost`,
      color: COLOR[series.transport],
      points: series.buckets.map((b) =>
        [b.startS, b.sent > 0 ? (b.lost / b.sent) * 100 : 0] as const
      ),
    })),
  });
  return [overTime, distribution, loss];
}

/** The table of one or two runs, side by side. */
function probeTable(runs: readonly ProbeRunData[]): { head: string[]; rows: string[][] } {
  const r = runs.map((x) => x.report);
  const row = (label: string, f: (p: ProbeReport) => string) => [label, ...r.map(f)];
  return {
    head: ["", ...r.map((p) => upper(p.transport))],
    rows: [
      row("sent", (p) => formatCount(p.sent)),
      row("received", (p) => formatCount(p.received)),
      row("lost", (p) => `${formatCount(p.lost)} (${formatPercent(p.lostFraction)})`),
      row("out of order", (p) => formatCount(p.outOfOrder)),
      row("duplicates", (p) => formatCount(p.duplicates)),
      row("rtt min ms", (p) => ms(p.rtt.min)),
      row("rtt p50 ms", (p) => ms(p.rtt.p50)),
      row("rtt p90 ms", (p) => ms(p.rtt.p90)),
      row("rtt p99 ms", (p) => ms(p.rtt.p99)),
      row("rtt p99.9 ms", (p) => ms(p.rtt.p999)),
      row("rtt max ms", (p) => ms(p.rtt.max)),
      row("jitter ms", (p) => ms(p.jitterMs)),
      row("goodput", (p) => formatBitRate(p.bitsPerSecond)),
      row("send rate", (p) => pps(p.ratePps)),
      row("elapsed", (p) => `${p.elapsedS.toFixed(2)} s`),
    ],
  };
}

/** One section: charts, table and findings of one probe run or one compare phase. */
export function probeSection(
  heading: string,
  runs: readonly ProbeRunData[],
  extra: { intro?: string; findings?: string[]; id?: string } = {},
): ReportSection {
  const id = extra.id ?? heading.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return {
    heading,
    ...(extra.intro !== undefined && { intro: extra.intro }),
    charts: probeCharts(id, runs),
    table: probeTable(runs),
    ...(extra.findings && { findings: extra.findings }),
    notes: [
      `Buckets by send time, ${
        formatCount(runs[0]?.series.buckets.length ?? 0)
      } per transport; their counts add up to the table's (${
        runs.map((r) =>
          `${upper(r.series.transport)}: ${formatCount(r.series.totals.sent)} sent, ${
            formatCount(r.series.totals.lost)
          } lost`
        ).join("; ")
      }). Per-bucket p50 and p99 are within 5 %.`,
    ],
  };
}
