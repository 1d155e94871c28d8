/**
 * A compact chart for the end of a text report on a terminal: a percentile
 * ladder (p50 … max) with one bar per transport on ONE log scale, so TCP and
 * UDP compare at a glance, and a one-line sparkline per transport of the RTT
 * (p50 per time bucket) over the run. Unicode block characters, or plain
 * ASCII where the terminal cannot be trusted with them (`NO_COLOR`,
 * `TERM=dumb`: `lib/terminal.ts` decides which, never this module).
 *
 * @example
 * ```ts
 * import { terminalChart } from "./terminal_chart.ts";
 * import type { ProbeSeriesData } from "./series.ts";
 * import type { LatencySummary } from "../stats/histogram.ts";
 *
 * declare const rtt: LatencySummary;
 * declare const series: ProbeSeriesData;
 * console.log(terminalChart([{ label: "UDP", rtt, series }], "unicode").join("\n"));
 * ```
 *
 * @module
 */

import { ms } from "../probe/report.ts";
import type { LatencySummary } from "../stats/histogram.ts";
import type { ProbeSeriesData } from "./series.ts";

/** Which characters to draw with. */
export type ChartGlyphs = "unicode" | "ascii";

/** One transport's figures for the chart. */
export interface ChartRun {
  label: string;
  rtt: LatencySummary;
  series?: ProbeSeriesData;
}

const EIGHTHS = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
const SPARK_UNICODE = "▁▂▃▄▅▆▇█";
const SPARK_ASCII = "_.-:=+*#";
const RUNGS: readonly [string, keyof LatencySummary][] = [
  ["p50", "p50"],
  ["p90", "p90"],
  ["p99", "p99"],
  ["p99.9", "p999"],
  ["max", "max"],
];
/** The smallest RTT a log scale shows (1 µs): a 0 ms RTT sits at the left edge. */
const FLOOR_MS = 0.001;

/** A log scale over `[lo, hi]` onto `[0, 1]`. */
function logScale(lo: number, hi: number): (v: number) => number {
  const l0 = Math.log10(Math.max(lo, FLOOR_MS));
  const l1 = Math.log10(Math.max(hi, FLOOR_MS));
  if (!(l1 > l0)) return () => 1;
  return (v) => Math.min(1, Math.max(0, (Math.log10(Math.max(v, FLOOR_MS)) - l0) / (l1 - l0)));
}

/** A bar of `fraction` of `width` columns, to an eighth of a column in Unicode. */
export function bar(fraction: number, width: number, glyphs: ChartGlyphs): string {
  const eighths = Math.round(Math.min(1, Math.max(0, fraction)) * width * 8);
  if (glyphs === "ascii") return "#".repeat(Math.max(1, Math.round(eighths / 8)));
  const text = "█".repeat(Math.floor(eighths / 8)) + EIGHTHS[eighths % 8]!;
  return text === "" ? "▏" : text;
}

/**
 * One character per column: `values` (null: nothing, drawn as a space)
 * grouped into at most `width` columns, each the highest of its group, on the
 * log scale `[lo, hi]`.
 */
export function sparkline(
  values: readonly (number | null)[],
  lo: number,
  hi: number,
  glyphs: ChartGlyphs,
  width = 60,
): string {
  const levels = glyphs === "ascii" ? SPARK_ASCII : SPARK_UNICODE;
  const scale = logScale(lo, hi);
  const columns = Math.min(width, values.length);
  let out = "";
  for (let c = 0; c < columns; c++) {
    const from = Math.floor((c * values.length) / columns);
    const to = Math.floor(((c + 1) * values.length) / columns);
    let top: number | null = null;
    for (let i = from; i < to; i++) {
      const v = values[i];
      if (v !== null && v !== undefined && (top === null || v > top)) top = v;
    }
    out += top === null
      ? " "
      : levels[Math.min(levels.length - 1, Math.floor(scale(top) * levels.length))];
  }
  return out;
}

/** The ladder and the sparklines, as lines to print after a report. */
export function terminalChart(
  runs: readonly ChartRun[],
  glyphs: ChartGlyphs,
  width = 40,
): string[] {
  const values = runs.flatMap((r) =>
    [r.rtt.min, ...RUNGS.map(([, k]) => r.rtt[k])].filter((v): v is number => v !== null)
  );
  if (values.length === 0) return [];
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const scale = logScale(lo, hi);
  const labelWidth = Math.max(...runs.map((r) => r.label.length));
  const lines = [`  rtt ms, one log scale from ${ms(lo)} to ${ms(hi)}:`];
  for (const [name, key] of RUNGS) {
    runs.forEach((r, i) => {
      const v = r.rtt[key];
      const head = `  ${(i === 0 ? name : "").padEnd(6)}${r.label.padEnd(labelWidth)} `;
      lines.push(
        v === null ? `${head}-` : `${head}${bar(scale(v), width, glyphs).padEnd(width)} ${ms(v)}`,
      );
    });
  }
  const withSeries = runs.filter((r) => r.series && r.series.buckets.length > 0);
  if (withSeries.length > 0) {
    const span = withSeries[0]!.series!;
    const seconds = span.buckets[span.buckets.length - 1]!.endS;
    lines.push(`  rtt p50 over the run (${seconds.toFixed(2)} s, same scale):`);
    for (const r of withSeries) {
      lines.push(
        `  ${"".padEnd(6)}${r.label.padEnd(labelWidth)} ${
          sparkline(r.series!.buckets.map((b) => b.p50), lo, hi, glyphs, width + 20)
        }`,
      );
    }
  }
  return lines;
}
