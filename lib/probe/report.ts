/**
 * Presentation of probe results: text lines for people, snake_case JSON in
 * iperf3's style for scripts. Nothing here measures; it only formats.
 *
 * @example
 * ```ts
 * import { formatProbeReport, probeReportJson } from "./report.ts";
 * import type { ProbeReport } from "./run_probe.ts";
 *
 * declare const report: ProbeReport;
 * console.log(formatProbeReport(report).join("\n"));
 * console.log(JSON.stringify(probeReportJson(report)));
 * ```
 *
 * @module
 */

import { engineJson, formatEngine } from "../engine/report.ts";
import { bar, elapsedText } from "../progress.ts";
import type { LatencySummary } from "../stats/histogram.ts";
import { PLAIN, type Style } from "../terminal.ts";
import { formatBitRate, formatCount, formatCountOf, formatPercent, formatSize } from "../units.ts";
import type { ProbeInterval, ProbeLive, ProbeReport } from "./run_probe.ts";

/** A JSON value that always serialises (no NaN or Infinity: those become null). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A finite number, or null. */
export function finite(n: number | null | undefined, digits = 6): number | null {
  if (n === null || n === undefined || !Number.isFinite(n)) return null;
  return Number(n.toFixed(digits));
}

/** `rtt_ms` object of the JSON schema. */
export function rttJson(rtt: LatencySummary): Json {
  return {
    min: finite(rtt.min),
    mean: finite(rtt.mean),
    p50: finite(rtt.p50),
    p90: finite(rtt.p90),
    p99: finite(rtt.p99),
    p999: finite(rtt.p999),
    max: finite(rtt.max),
  };
}

/** One probe report in the documented JSON schema. */
export function probeReportJson(r: ProbeReport): Json {
  return {
    transport: r.transport,
    target: r.target,
    size: r.size,
    rate_requested_pps: r.rateRequested,
    sent: r.sent,
    received: r.received,
    lost: r.lost,
    lost_percent: finite(r.lostFraction * 100, 4),
    out_of_order: r.outOfOrder,
    duplicates: r.duplicates,
    stale: r.stale,
    malformed: r.malformed,
    rtt_ms: rttJson(r.rtt),
    jitter_ms: finite(r.jitterMs),
    bits_per_second: finite(r.bitsPerSecond, 1),
    rate_pps: finite(r.ratePps, 1),
    elapsed_s: finite(r.elapsedS),
    interrupted: r.interrupted === true,
    ...(r.engine && engineJson(r.engine)),
  };
}

/** One interval in the JSON schema (`--json-stream` interval events). */
export function probeIntervalJson(i: ProbeInterval): Json {
  return {
    transport: i.transport,
    start_s: finite(i.startS, 3),
    end_s: finite(i.endS, 3),
    sent: i.sent,
    received: i.received,
    out_of_order: i.outOfOrder,
    duplicates: i.duplicates,
    rtt_ms: rttJson(i.rtt),
    jitter_ms: finite(i.jitterMs),
  };
}

/** Milliseconds with precision that suits the magnitude. */
export function ms(value: number | null): string {
  if (value === null) return "-";
  if (value < 1) return value.toFixed(3);
  if (value < 100) return value.toFixed(2);
  return value.toFixed(0);
}

/** A rate in probes per second. */
export function pps(value: number): string {
  return value === 0 ? "unlimited" : `${formatCount(Math.round(value))}/s`;
}

/** The columns of an interval line after its span and transport: title and width. */
const INTERVAL_COLUMNS = [
  ["sent", 10],
  ["received", 10],
  ["out of order", 14],
  ["dups", 6],
  ["p50 ms", 7],
  ["p99 ms", 7],
  ["max ms", 7],
] as const;

/** Width of an interval line's span and transport: `[  0.0-  1.0 s] tcp`. */
const INTERVAL_LEAD = 19;

/** The titles over {@linkcode formatInterval}'s columns; print it before the first line. */
export function formatIntervalHeader(): string {
  return " ".repeat(INTERVAL_LEAD) +
    INTERVAL_COLUMNS.map(([title, width]) => title.padStart(width)).join("");
}

/**
 * One progress line, in fixed-width columns under {@linkcode formatIntervalHeader},
 * so successive lines (and TCP's and UDP's in compare) line up, within 80 columns.
 */
export function formatInterval(i: ProbeInterval, style: Style = PLAIN): string {
  const span = `[${i.startS.toFixed(1).padStart(5)}-${i.endS.toFixed(1).padStart(5)} s]`;
  const values = [
    formatCount(i.sent),
    formatCount(i.received),
    formatCount(i.outOfOrder),
    formatCount(i.duplicates),
    ms(i.rtt.p50),
    ms(i.rtt.p99),
    ms(i.rtt.max),
  ];
  // Zero reorders or duplicates are dimmed (nothing to look at); padding is on the plain text.
  const dimmed = [false, false, i.outOfOrder === 0, i.duplicates === 0, false, false, false];
  return `${style.dim(span)} ${i.transport}` +
    values.map((v, c) => {
      const cell = v.padStart(INTERVAL_COLUMNS[c]![1]);
      return dimmed[c] ? style.dim(cell) : cell;
    }).join("");
}

/** `lost N (x%)`: red when anything was lost, green when nothing was. */
export function formatLoss(lost: number, fraction: number, style: Style = PLAIN): string {
  const text = `${formatCount(lost)} (${formatPercent(fraction)})`;
  return lost > 0 ? style.red(text) : style.green(text);
}

/** `label N`, dimmed when N is 0 (nothing to look at). */
export function zeroDim(style: Style, label: string, n: number): string {
  const text = `${label} ${formatCount(n)}`;
  return n === 0 ? style.dim(text) : text;
}

/** The summary of one run, for people. */
export function formatProbeReport(r: ProbeReport, style: Style = PLAIN): string[] {
  const lines = [
    style.bold(
      `${r.transport} probe to ${r.target.replace(/^\w+ /, "")}: ${
        formatCountOf(r.sent, "probe")
      } of ${formatSize(r.size)}, asked ${pps(r.rateRequested)}, achieved ${pps(r.ratePps)}`,
    ) + (r.interrupted ? " (interrupted: the report covers what ran)" : ""),
    `  sent ${formatCount(r.sent)}  received ${formatCount(r.received)}  lost ${
      formatLoss(r.lost, r.lostFraction, style)
    }  ${zeroDim(style, "out of order", r.outOfOrder)}  ${
      zeroDim(style, "duplicates", r.duplicates)
    }`,
    `  rtt ms  ${style.dim(`min ${ms(r.rtt.min)}  mean ${ms(r.rtt.mean)}`)}  p50 ${
      ms(r.rtt.p50)
    }  ${style.dim(`p90 ${ms(r.rtt.p90)}`)}  p99 ${ms(r.rtt.p99)}  ${
      style.dim(`p99.9 ${ms(r.rtt.p999)}`)
    }  max ${ms(r.rtt.max)}`,
    `  jitter ${ms(r.jitterMs)} ms  goodput ${formatBitRate(r.bitsPerSecond)}  ${
      style.dim(`elapsed ${r.elapsedS.toFixed(2)} s`)
    }`,
  ];
  if (r.engine) lines.push(style.dim(`  ${formatEngine(r.engine)}`));
  if (r.stale > 0 || r.malformed > 0) {
    lines.push(
      style.dim(
        `  also: ${formatCount(r.stale)} too late to classify, ${
          formatCount(r.malformed)
        } malformed echo${r.malformed === 1 ? "" : "es"}`,
      ),
    );
  }
  return lines;
}

/**
 * The live progress text of a probe run: a bar when its end is known (a
 * count or a duration), what was sent and echoed so far, and the time.
 */
export function formatProbeProgress(
  live: ProbeLive,
  run: { transport: string; count: number | undefined; durationMs: number | undefined },
): string {
  const fraction = run.count !== undefined
    ? live.sent / run.count
    : run.durationMs !== undefined
    ? (live.elapsedS * 1000) / run.durationMs
    : undefined;
  const sent = run.count !== undefined
    ? `${formatCount(live.sent)} of ${formatCount(run.count)}`
    : formatCount(live.sent);
  const time = elapsedText(live.elapsedS) +
    (run.durationMs !== undefined ? ` of ${elapsedText(run.durationMs / 1000)}` : "");
  return `${
    fraction !== undefined ? `${bar(fraction)} ` : ""
  }${run.transport} probe  sent ${sent}  ` +
    `echoed ${formatCount(live.received)}  ${time}`;
}
