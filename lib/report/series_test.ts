import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { ProbeSeries } from "./series.ts";
import { SequenceTracker } from "../stats/sequence_tracker.ts";

/** Feed `n` probes at `gapMs` apart through a tracker, echoing per `fate`. */
function simulate(
  series: ProbeSeries,
  n: number,
  gapMs: number,
  fate: (seq: number) => "lost" | "echo" | "twice" | "late",
): { sent: number; received: number; lost: number; outOfOrder: number; duplicates: number } {
  const tracker = new SequenceTracker();
  const late: number[] = [];
  const echo = (seq: number) => {
    const at = 1000 + seq * gapMs;
    const kind = tracker.record(seq);
    series.sample(seq, at, 0.1 + (seq % 100) / 10, kind);
  };
  for (let seq = 0; seq < n; seq++) {
    series.sent(seq, 1000 + seq * gapMs);
    const f = fate(seq);
    if (f === "echo") echo(seq);
    if (f === "twice") {
      echo(seq);
      echo(seq);
    }
    if (f === "late") late.push(seq);
    if (late.length > 0 && seq % 7 === 0) echo(late.shift()!);
  }
  for (const seq of late) echo(seq);
  return {
    sent: n,
    received: tracker.received,
    lost: tracker.lost(n),
    outOfOrder: tracker.outOfOrder,
    duplicates: tracker.duplicates,
  };
}

Deno.test("bucket counts add up exactly to the run's totals, through many merges", () => {
  const series = new ProbeSeries("udp", { bucketMs: 1, maxBuckets: 16 });
  const truth = simulate(
    series,
    100_000,
    0.013,
    (seq) => seq % 97 === 0 ? "lost" : seq % 89 === 0 ? "twice" : seq % 83 === 0 ? "late" : "echo",
  );
  const data = series.data();
  assert(data.buckets.length <= 16, `${data.buckets.length} buckets`);
  assertEquals(data.totals, truth);
  const sum = (f: (b: (typeof data.buckets)[number]) => number) =>
    data.buckets.reduce((a, b) => a + f(b), 0);
  assertEquals(sum((b) => b.sent), truth.sent);
  assertEquals(sum((b) => b.received), truth.received);
  assertEquals(sum((b) => b.lost), truth.lost);
  assertEquals(sum((b) => b.outOfOrder), truth.outOfOrder);
  assertEquals(sum((b) => b.duplicates), truth.duplicates);
  for (const b of data.buckets) assertEquals(b.lost, b.sent - b.received);
});

Deno.test("a million probes make at most maxBuckets buckets, contiguous and of one width", () => {
  const series = new ProbeSeries("tcp");
  const truth = simulate(series, 1_000_000, 0.01, (seq) => seq % 1000 === 0 ? "lost" : "echo");
  const data = series.data();
  assert(data.buckets.length <= 120 && data.buckets.length > 60, `${data.buckets.length}`);
  assertEquals(data.totals, truth);
  data.buckets.forEach((b, i) => {
    assertAlmostEquals(b.startS, i * data.bucketS, 1e-9);
    assertAlmostEquals(b.endS - b.startS, data.bucketS, 1e-9);
  });
});

Deno.test("per-bucket RTT: exact min and max, p50 and p99 within 5 %", () => {
  const series = new ProbeSeries("udp", { bucketMs: 1000 });
  for (let seq = 0; seq < 100; seq++) {
    series.sent(seq, 5 + seq);
    series.sample(seq, 5 + seq, seq + 1, "new");
  }
  const [b] = series.data().buckets;
  assertEquals(b?.min, 1);
  assertEquals(b?.max, 100);
  assertAlmostEquals(b!.p50!, 50, 50 * 0.05);
  assertAlmostEquals(b!.p99!, 99, 99 * 0.05);
  const curve = series.data().percentiles;
  assertEquals(curve[0], { p: 0, ms: 1 });
  assertEquals(curve[curve.length - 1], { p: 100, ms: 100 });
});

Deno.test("a bucket with nothing echoed has null RTTs and counts its loss", () => {
  const series = new ProbeSeries("udp", { bucketMs: 10 });
  series.sent(0, 0);
  series.sent(1, 25);
  series.sample(0, 0, 1.5, "new");
  const data = series.data();
  assertEquals(data.buckets.length, 3);
  assertEquals(data.buckets[1]!.sent, 0);
  assertEquals(data.buckets[2]!, {
    startS: 0.02,
    endS: 0.03,
    sent: 1,
    received: 0,
    lost: 1,
    outOfOrder: 0,
    duplicates: 0,
    min: null,
    p50: null,
    p99: null,
    max: null,
  });
  assertEquals(data.percentiles.length > 0, true);
});
