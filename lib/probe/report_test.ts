/**
 * Unit tests of probe report presentation: the documented JSON schema and its
 * handling of non-finite numbers, and the text summary.
 *
 * @module
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { stripAnsiCode } from "@std/fmt/colors";
import type { Style } from "../terminal.ts";
import {
  finite,
  formatInterval,
  formatIntervalHeader,
  formatProbeProgress,
  formatProbeReport,
  ms,
  pps,
  probeIntervalJson,
  probeReportJson,
} from "./report.ts";
import type { ProbeInterval, ProbeReport } from "./run_probe.ts";
import type { LatencySummary } from "../stats/histogram.ts";

const EMPTY_RTT: LatencySummary = {
  min: null,
  mean: null,
  p50: null,
  p90: null,
  p99: null,
  p999: null,
  max: null,
};

function report(overrides: Partial<ProbeReport> = {}): ProbeReport {
  return {
    transport: "udp",
    target: "udp 127.0.0.1:5050",
    size: 64,
    rateRequested: 1000,
    sent: 10_000,
    received: 9_963,
    lost: 37,
    lostFraction: 37 / 10_000,
    outOfOrder: 5,
    duplicates: 2,
    stale: 0,
    malformed: 0,
    rtt: { min: 0.05, mean: 0.2, p50: 0.18, p90: 0.3, p99: 0.9, p999: 1.4, max: 2.5 },
    jitterMs: 0.04,
    bitsPerSecond: 512_000,
    ratePps: 999.7,
    elapsedS: 10.002,
    interrupted: false,
    ...overrides,
  };
}

const REPORT_KEYS = [
  "transport",
  "target",
  "size",
  "rate_requested_pps",
  "sent",
  "received",
  "lost",
  "lost_percent",
  "out_of_order",
  "duplicates",
  "stale",
  "malformed",
  "rtt_ms",
  "jitter_ms",
  "bits_per_second",
  "rate_pps",
  "elapsed_s",
  "interrupted",
];
const RTT_KEYS = ["min", "mean", "p50", "p90", "p99", "p999", "max"];

/** Serialise and parse back, as a consumer of `--json` sees it. */
function roundTrip(value: unknown): { text: string; parsed: unknown } {
  const text = JSON.stringify(value);
  return { text, parsed: JSON.parse(text) };
}

Deno.test("probeReportJson has exactly the documented keys, rtt_ms included", () => {
  const doc = probeReportJson(report()) as Record<string, unknown>;
  assertEquals(Object.keys(doc).sort(), [...REPORT_KEYS].sort());
  assertEquals(Object.keys(doc.rtt_ms as object).sort(), [...RTT_KEYS].sort());
});

Deno.test("probeReportJson maps every counter to its snake_case field and loss to a percentage", () => {
  const doc = probeReportJson(report()) as Record<string, unknown>;
  assertEquals(doc, {
    transport: "udp",
    target: "udp 127.0.0.1:5050",
    size: 64,
    rate_requested_pps: 1000,
    sent: 10_000,
    received: 9_963,
    lost: 37,
    lost_percent: 0.37,
    out_of_order: 5,
    duplicates: 2,
    stale: 0,
    malformed: 0,
    rtt_ms: { min: 0.05, mean: 0.2, p50: 0.18, p90: 0.3, p99: 0.9, p999: 1.4, max: 2.5 },
    jitter_ms: 0.04,
    bits_per_second: 512_000,
    rate_pps: 999.7,
    elapsed_s: 10.002,
    interrupted: false,
  });
});

Deno.test("probeReportJson turns NaN, Infinity and an empty rtt histogram into null and survives a JSON round trip", () => {
  const doc = probeReportJson(report({
    received: 0,
    lost: 10_000,
    lostFraction: NaN,
    rtt: EMPTY_RTT,
    jitterMs: null,
    bitsPerSecond: Infinity,
    ratePps: -Infinity,
    elapsedS: NaN,
  }));
  const { text, parsed } = roundTrip(doc);
  assertEquals(parsed, doc);
  assert(!/NaN|Infinity/.test(text), text);
  const d = doc as Record<string, unknown>;
  assertEquals(d.lost_percent, null);
  assertEquals(d.jitter_ms, null);
  assertEquals(d.bits_per_second, null);
  assertEquals(d.rate_pps, null);
  assertEquals(d.elapsed_s, null);
  assertEquals(d.rtt_ms, Object.fromEntries(RTT_KEYS.map((k) => [k, null])));
});

Deno.test("probeReportJson of an ordinary report round-trips through JSON unchanged", () => {
  const doc = probeReportJson(report());
  const { text, parsed } = roundTrip(doc);
  assertEquals(parsed, doc);
  assert(!text.includes("NaN"));
});

Deno.test("probeReportJson rounds long fractions instead of printing float noise", () => {
  const doc = probeReportJson(report({
    lostFraction: 1 / 3,
    bitsPerSecond: 1234.5678,
    ratePps: 999.96,
    rtt: { ...report().rtt, mean: 0.123456789 },
  })) as Record<string, Record<string, unknown>>;
  assertEquals(doc.lost_percent as unknown, 33.3333);
  assertEquals(doc.bits_per_second as unknown, 1234.6);
  assertEquals(doc.rate_pps as unknown, 1000);
  assertEquals(doc.rtt_ms!.mean, 0.123457);
});

Deno.test("probeIntervalJson has the interval keys and null for an interval with no echoes", () => {
  const interval: ProbeInterval = {
    transport: "tcp",
    startS: 1,
    endS: 2.0004,
    sent: 1000,
    received: 0,
    outOfOrder: 0,
    duplicates: 0,
    rtt: EMPTY_RTT,
    jitterMs: null,
  };
  const doc = probeIntervalJson(interval) as Record<string, unknown>;
  assertEquals(Object.keys(doc).sort(), [
    "duplicates",
    "end_s",
    "jitter_ms",
    "out_of_order",
    "received",
    "rtt_ms",
    "sent",
    "start_s",
    "transport",
  ]);
  assertEquals(doc.end_s, 2);
  const { text, parsed } = roundTrip(doc);
  assertEquals(parsed, doc);
  assert(!/NaN|Infinity/.test(text));
});

Deno.test("finite() is null for null, undefined, NaN and ±Infinity and rounds finite numbers", () => {
  for (const v of [null, undefined, NaN, Infinity, -Infinity]) assertEquals(finite(v), null);
  assertEquals(finite(0), 0);
  assertEquals(finite(1.23456789), 1.234568);
  assertEquals(finite(1.23456789, 2), 1.23);
});

Deno.test("ms() prints '-' for null and more digits for smaller values; pps() says unlimited for 0", () => {
  assertEquals(ms(null), "-");
  assertEquals(ms(0.12345), "0.123");
  assertEquals(ms(12.345), "12.35");
  assertEquals(ms(1234.5), "1235");
  assertEquals(pps(0), "unlimited");
  assertEquals(pps(1999.6), "2,000/s");
});

Deno.test("formatProbeReport states every count and adds the 'also' line only for stale or malformed echoes", () => {
  const lines = formatProbeReport(report());
  const text = lines.join("\n");
  assertMatch(lines[0]!, /^udp probe to 127\.0\.0\.1:5050: 10,000 probes of 64 B, asked 1,000\/s/);
  assertMatch(
    text,
    /sent 10,000 {2}received 9,963 {2}lost 37 \(0\.37%\) {2}out of order 5 {2}duplicates 2/,
  );
  assertMatch(text, /p99 0\.900/);
  assert(!text.includes("also:"));
  const odd = formatProbeReport(report({ stale: 3, malformed: 4 })).join("\n");
  assertMatch(odd, /also: 3 too late to classify, 4 malformed echoes/);
});

Deno.test("formatProbeReport of a run with no echoes prints '-' for every latency, never NaN", () => {
  const text = formatProbeReport(report({
    received: 0,
    lost: 10_000,
    lostFraction: 1,
    rtt: EMPTY_RTT,
    jitterMs: null,
    bitsPerSecond: 0,
  })).join("\n");
  assertMatch(text, /min - {2}mean - {2}p50 -/);
  assert(!/NaN|null|undefined|Infinity/.test(text), text);
});

/** A style that marks each piece visibly, so tests see what got which mark without ANSI. */
const TAGS: Style = {
  bold: (t) => `<b>${t}</b>`,
  dim: (t) => `<d>${t}</d>`,
  red: (t) => `<r>${t}</r>`,
  green: (t) => `<g>${t}</g>`,
};

function untag(lines: string[]): string[] {
  return lines.map((l) => l.replace(/<\/?[bdrg]>/g, ""));
}

Deno.test("formatProbeReport with a style bolds the header, reds the loss and leaves the text itself unchanged", () => {
  const r = report();
  const styled = formatProbeReport(r, TAGS);
  assertEquals(untag(styled), formatProbeReport(r));
  assertMatch(styled[0]!, /^<b>udp probe to .*<\/b>$/);
  assert(styled[1]!.includes("lost <r>37 (0.37%)</r>"), styled[1]);
  assert(styled[2]!.includes("<d>min 0.050  mean 0.200</d>"), styled[2]);
});

Deno.test("formatProbeReport with a style greens a loss of 0 and dims zero reorder and duplicate counts", () => {
  const styled = formatProbeReport(
    report({ lost: 0, lostFraction: 0, outOfOrder: 0, duplicates: 0 }),
    TAGS,
  );
  assert(styled[1]!.includes("lost <g>0 (0.00%)</g>"), styled[1]);
  assert(styled[1]!.includes("<d>out of order 0</d>  <d>duplicates 0</d>"), styled[1]);
});

Deno.test("formatProbeReport's default style is plain: no ANSI codes at all", () => {
  for (const line of formatProbeReport(report())) assertEquals(stripAnsiCode(line), line);
});

Deno.test("formatProbeProgress shows a bar for a count, sent and echoed so far, and the time", () => {
  assertEquals(
    formatProbeProgress({ sent: 500, received: 498, elapsedS: 2.6 }, {
      transport: "udp",
      count: 1000,
      durationMs: undefined,
    }),
    "[##########----------] udp probe  sent 500 of 1,000  echoed 498  2s",
  );
  assertEquals(
    formatProbeProgress({ sent: 2500, received: 2500, elapsedS: 2.5 }, {
      transport: "tcp",
      count: undefined,
      durationMs: 10_000,
    }),
    "[#####---------------] tcp probe  sent 2,500  echoed 2,500  2s of 10s",
  );
});

Deno.test("formatProbeReport prints the size as exact bytes with separators: --size 1400 is 1,400 B", () => {
  const first = formatProbeReport(report({ size: 1400 }))[0]!;
  assertMatch(first, /probes of 1,400 B,/);
});

Deno.test("formatProbeReport says '1 probe' for a run of one probe", () => {
  const first = formatProbeReport(report({ sent: 1, received: 1, lost: 0, lostFraction: 0 }))[0]!;
  assertMatch(first, /: 1 probe of 64 B,/);
});

Deno.test("formatInterval lines keep their columns aligned under the header, within 80 columns", () => {
  const interval = (over: Partial<ProbeInterval>): ProbeInterval => ({
    transport: "tcp",
    startS: 0,
    endS: 1,
    sent: 1000,
    received: 1000,
    outOfOrder: 0,
    duplicates: 0,
    rtt: { min: 0.05, mean: 0.1, p50: 0.08, p90: 0.1, p99: 0.2, p999: 0.3, max: 0.4 },
    jitterMs: 0.01,
    ...over,
  });
  const rows = [
    formatInterval(interval({ sent: 9, received: 8 })),
    formatInterval(interval({
      transport: "udp",
      startS: 9,
      endS: 10,
      sent: 1_234_567,
      received: 1_200_000,
      outOfOrder: 1234,
      duplicates: 56,
      rtt: { min: 1, mean: 20, p50: 12.5, p90: 40, p99: 250, p999: 300, max: 1234.5 },
    })),
    formatInterval(interval({ received: 0, rtt: EMPTY_RTT })),
  ];
  const header = formatIntervalHeader();
  const titleEnds = ["sent", "received", "out of order", "dups", "p50 ms", "p99 ms", "max ms"]
    .map((title) => header.indexOf(title) + title.length);
  for (const row of [header, ...rows]) assert(row.length <= 80, `${row.length}: ${row}`);
  for (const row of rows) {
    const valueEnds = [...row.slice(19).matchAll(/\S+/g)].map((m) => 19 + m.index + m[0].length);
    assertEquals(valueEnds, titleEnds, `columns:\n${header}\n${row}`);
  }
});
