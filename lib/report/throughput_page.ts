/**
 * The HTML report's sections for a throughput test: per direction, bits/s per
 * interval for each stream and in total as the receiver counted it, the
 * sender's total where the client was the sender, and for UDP the loss and
 * jitter per interval; a table of sender against receiver. Reads plain
 * results ({@linkcode ThroughputResult} and the client's own intervals).
 *
 * @example
 * ```ts
 * import { throughputSections } from "./throughput_page.ts";
 * import type { ThroughputInterval, ThroughputResult } from "../throughput/client.ts";
 *
 * declare const result: ThroughputResult;
 * declare const intervals: ThroughputInterval[];
 * console.log(throughputSections(result, intervals).length);
 * ```
 *
 * @module
 */

import type {
  DirectionResult,
  ThroughputInterval,
  ThroughputResult,
} from "../throughput/client.ts";
import { formatBitRate, formatBytes, formatCount, formatPercent } from "../units.ts";
import { receiverSeconds } from "../throughput/report.ts";
import type { ReportSection } from "./html.ts";
import { barChart, compactNumber, lineChart, type LineSeries } from "./svg.ts";

/** The receivers' per-stream interval length (lib/throughput: client and hub alike). */
const BIN_S = 1;

function bits(v: number): string {
  return `${compactNumber(v)}`;
}

function rate(bytes: number, seconds: number): number {
  return seconds > 0 ? (bytes * 8) / seconds : 0;
}

function directionSection(
  key: "up" | "down",
  d: DirectionResult,
  result: ThroughputResult,
  intervals: readonly ThroughputInterval[],
): ReportSection {
  const udp = result.plan.proto === "udp";
  const label = key === "up" ? "up (client → server)" : "down (server → client)";
  const streams = d.received.streams;
  const bins = Math.max(0, ...streams.map((s) => s.intervals.length));
  const lines: LineSeries[] = streams.map((s, i) => ({
    name: `stream ${s.stream + 1}`,
    color: 2 + (i % 6),
    points: s.intervals.map((b, k) => [(k + 0.5) * BIN_S, rate(b, BIN_S)] as const),
  }));
  const total = Array.from(
    { length: bins },
    (_, k) => streams.reduce((a, s) => a + (s.intervals[k] ?? 0), 0),
  );
  lines.push({
    name: "total, receiver",
    color: 0,
    points: total.map((b, k) => [(k + 0.5) * BIN_S, rate(b, BIN_S)] as const),
  });
  // The client counted what it sent per interval: the sender's view, when the client sent.
  if (key === "up" && intervals.length > 0) {
    lines.push({
      name: "total, sender",
      color: 1,
      dashed: true,
      points: intervals.map((i) =>
        [(i.startS + i.endS) / 2, rate(i.sentBytes, i.endS - i.startS)] as const
      ),
    });
  }
  const charts = [
    lineChart({
      id: `${key}-bitrate`,
      title: `${label}: bits/s per ${BIN_S} s interval, per stream and in total`,
      x: { label: "time since the test started (s)" },
      y: { label: "bits per second (bit/s)", format: bits, zero: true },
      lines: streams.length > 1 ? lines : lines.filter((l) => !l.name.startsWith("stream")),
    }),
  ];
  if (udp) {
    const lost = Array.from(
      { length: bins },
      (_, k) => streams.reduce((a, s) => a + (s.interval_lost?.[k] ?? 0), 0),
    );
    // Bins count bytes; every datagram of a UDP test has the plan's size.
    const datagrams = total.map((b) => b / Math.max(1, result.plan.size));
    charts.push(
      barChart({
        id: `${key}-udp-loss`,
        title: `${label}: UDP datagrams lost per interval (%, from sequence gaps)`,
        x: { label: "time since the test started (s)" },
        y: { label: "lost (% of due)", format: (v) => `${v}` },
        width: BIN_S,
        bars: [{
          name: "lost",
          color: 1,
          points: lost.map((n, k) => {
            const due = n + datagrams[k]!;
            return [k * BIN_S, due > 0 ? (n / due) * 100 : 0] as const;
          }),
        }],
      }),
      lineChart({
        id: `${key}-udp-jitter`,
        title: `${label}: UDP jitter at the end of each interval (ms, RFC 3550)`,
        x: { label: "time since the test started (s)" },
        y: { label: "jitter (ms)", zero: true },
        lines: streams.map((s, i) => ({
          name: `stream ${s.stream + 1} jitter`,
          color: 2 + (i % 6),
          points: (s.interval_jitter_ms ?? []).map((j, k) => [(k + 0.5) * BIN_S, j] as const),
        })),
      }),
    );
  }
  const lostFraction = d.sent.datagrams > 0 ? d.received.lost / d.sent.datagrams : 0;
  const rows: string[][] = [
    ["bytes", formatBytes(d.sent.bytes), formatBytes(d.received.bytes)],
    [
      "bits/s",
      formatBitRate(rate(d.sent.bytes, d.sent.seconds)),
      formatBitRate(rate(d.received.bytes, receiverSeconds(d))),
    ],
    ["seconds", d.sent.seconds.toFixed(2), d.received.seconds.toFixed(2)],
  ];
  if (udp) {
    rows.push(
      ["datagrams", formatCount(d.sent.datagrams), formatCount(d.received.datagrams)],
      ["lost", "", `${formatCount(d.received.lost)} (${formatPercent(lostFraction)})`],
      ["out of order", "", formatCount(d.received.outOfOrder)],
      ["duplicates", "", formatCount(d.received.duplicates)],
      [
        "jitter ms",
        "",
        d.received.jitterMs === null ? "-" : d.received.jitterMs.toFixed(3),
      ],
    );
  }
  return {
    heading: label,
    charts,
    table: { head: ["", "sender", "receiver"], rows },
  };
}

/** One section per direction the test ran. */
export function throughputSections(
  result: ThroughputResult,
  intervals: readonly ThroughputInterval[],
): ReportSection[] {
  const sections: ReportSection[] = [];
  if (result.up) sections.push(directionSection("up", result.up, result, intervals));
  if (result.down) sections.push(directionSection("down", result.down, result, intervals));
  return sections;
}
