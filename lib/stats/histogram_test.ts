/**
 * Tests for {@linkcode LatencyHistogram}: every reported percentile is
 * compared with the exact nearest-rank value of the sorted samples.
 *
 * @example
 * ```sh
 * deno test lib/stats/histogram_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { LatencyHistogram } from "./histogram.ts";
import { mulberry32 } from "../prng.ts";

/** Percentiles checked: 0, 0.1, …, 100 plus a few extreme tails. */
const PERCENTILES: number[] = [
  ...Array.from({ length: 1001 }, (_, i) => i / 10),
  99.95,
  99.99,
  99.999,
  0.001,
  0.01,
];

/** Exact nearest-rank percentile with the rank rule documented by LatencyHistogram. */
function exactPercentile(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p * sorted.length) / 100));
  return sorted[rank - 1]!;
}

function checkAgainstExact(name: string, samples: number[]): void {
  const h = new LatencyHistogram();
  for (const v of samples) h.record(v);
  const sorted = [...samples].sort((a, b) => a - b);
  let worst = 0;
  for (const p of PERCENTILES) {
    const want = exactPercentile(sorted, p);
    const got = h.percentile(p);
    assert(got !== null);
    const err = want === 0 ? Math.abs(got) : Math.abs(got - want) / want;
    if (err > worst) worst = err;
    assert(err <= 0.01, `${name} p${p}: got ${got}, exact ${want}, relative error ${err}`);
  }
  assertEquals(h.count, samples.length);
  assertEquals(h.min, sorted[0]);
  assertEquals(h.max, sorted[sorted.length - 1]);
  assertEquals(h.sum, samples.reduce((a, b) => a + b, 0)); // same summation order: exact
  assertEquals(h.mean, h.sum / samples.length);
  assert(worst <= 0.01, `${name}: worst relative error ${worst}`);
}

const N = 100_000;

Deno.test("LatencyHistogram percentiles are within 1% of exact nearest rank for uniform samples", () => {
  const rand = mulberry32(1);
  checkAgainstExact("uniform", Array.from({ length: N }, () => 0.01 + rand() * 1000));
});

Deno.test("LatencyHistogram percentiles are within 1% of exact nearest rank for exponential samples", () => {
  const rand = mulberry32(2);
  // Mean 20 ms, shifted by 1 µs so every sample is inside the guaranteed range.
  checkAgainstExact(
    "exponential",
    Array.from({ length: N }, () => 0.001 - 20 * Math.log(1 - rand())),
  );
});

Deno.test("LatencyHistogram percentiles are within 1% across the whole 1 µs .. 1e6 ms range", () => {
  const rand = mulberry32(3);
  checkAgainstExact("log-uniform", Array.from({ length: N }, () => 0.001 * 1e9 ** rand()));
});

Deno.test("LatencyHistogram reports every percentile of a constant input exactly", () => {
  const h = new LatencyHistogram();
  for (let i = 0; i < 1000; i++) h.record(42.123);
  for (const p of PERCENTILES) assertEquals(h.percentile(p), 42.123);
  checkAgainstExact("constant", Array.from({ length: 1000 }, () => 42.123));
});

Deno.test("LatencyHistogram percentiles are within 1% for a two-point bimodal input", () => {
  const rand = mulberry32(4);
  const samples = Array.from({ length: N }, () => (rand() < 0.97 ? 1.5 : 250));
  checkAgainstExact("bimodal", samples);
  const h = new LatencyHistogram();
  for (const v of samples) h.record(v);
  // The extreme ranks are exact: rank 1 is the minimum, rank count the maximum.
  assertEquals(h.percentile(100), 250);
  assertEquals(h.percentile(0), 1.5);
});

Deno.test("LatencyHistogram uses nearest rank ceil(p * count / 100)", () => {
  const h = new LatencyHistogram();
  for (let v = 1; v <= 10; v++) h.record(v);
  // Rank ceil(90 * 10 / 100) = 9 (not 10, as 0.9 * 10 = 9.000000000000002 would give).
  assert(Math.abs(h.percentile(90)! - 9) / 9 <= 0.01);
  assert(Math.abs(h.percentile(50)! - 5) / 5 <= 0.01);
  assert(Math.abs(h.percentile(51)! - 6) / 6 <= 0.01);
  assertEquals(h.percentile(0), 1);
  assertEquals(h.percentile(10), 1);
  assertEquals(h.percentile(100), 10);
});

Deno.test("LatencyHistogram returns null for every statistic when empty", () => {
  const h = new LatencyHistogram();
  assertEquals(h.percentile(50), null);
  assertEquals(h.percentile(0), null);
  assertEquals(h.min, null);
  assertEquals(h.max, null);
  assertEquals(h.mean, null);
  assertEquals(h.count, 0);
  assertEquals(h.summary(), {
    min: null,
    mean: null,
    p50: null,
    p90: null,
    p99: null,
    p999: null,
    max: null,
  });
});

Deno.test("LatencyHistogram reports a single sample exactly", () => {
  for (const v of [0, 0.0004, 0.001, 3.14159, 999_999.5, 5e6]) {
    const h = new LatencyHistogram();
    h.record(v);
    assertEquals(h.summary(), { min: v, mean: v, p50: v, p90: v, p99: v, p999: v, max: v });
  }
});

Deno.test("LatencyHistogram summary reports exact min, mean, max and nearest-rank percentiles", () => {
  const rand = mulberry32(5);
  const samples = Array.from({ length: 10_000 }, () => 0.5 + rand() * 50);
  const h = new LatencyHistogram();
  for (const v of samples) h.record(v);
  const sorted = [...samples].sort((a, b) => a - b);
  const s = h.summary();
  assertEquals(s.min, sorted[0]);
  assertEquals(s.max, sorted[sorted.length - 1]);
  assertEquals(s.mean, samples.reduce((a, b) => a + b, 0) / samples.length);
  for (const [key, p] of [["p50", 50], ["p90", 90], ["p99", 99], ["p999", 99.9]] as const) {
    const want = exactPercentile(sorted, p);
    assert(Math.abs(s[key]! - want) / want <= 0.01, `${key}: ${s[key]} vs ${want}`);
  }
});

Deno.test("LatencyHistogram reports values below 1 µs within 1 µs absolute", () => {
  const h = new LatencyHistogram();
  for (const v of [0, 0.0001, 0.0005, 0.0009, 0, 0.0002]) h.record(v);
  for (let p = 0; p <= 100; p += 5) {
    const got = h.percentile(p)!;
    assert(got >= 0 && got <= 0.0009, `p${p}: ${got}`);
  }
  assertEquals(h.min, 0);
  assertEquals(h.max, 0.0009);
});

Deno.test("LatencyHistogram merge equals recording every sample into one histogram", () => {
  const rand = mulberry32(6);
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  const all = new LatencyHistogram();
  for (let i = 0; i < 20_000; i++) {
    const v = -10 * Math.log(1 - rand()) + 0.01;
    (i % 3 === 0 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  a.merge(new LatencyHistogram()); // merging an empty histogram changes nothing
  assertEquals(a.count, all.count);
  assertEquals(a.min, all.min);
  assertEquals(a.max, all.max);
  assert(Math.abs(a.sum - all.sum) <= 1e-9 * all.sum);
  for (const p of PERCENTILES) assertEquals(a.percentile(p), all.percentile(p), `p${p}`);
  const empty = new LatencyHistogram();
  empty.merge(all);
  assertEquals(empty.percentile(50), all.percentile(50));
  assertEquals(empty.min, all.min);
});

Deno.test("LatencyHistogram refuses to merge a histogram built with different options", () => {
  const h = new LatencyHistogram();
  assertThrows(() => h.merge(new LatencyHistogram({ relativeError: 0.02 })), RangeError);
  assertThrows(() => h.merge(new LatencyHistogram({ maxValueMs: 1000 })), RangeError);
});

Deno.test("LatencyHistogram honours a custom relative error bound", () => {
  const rand = mulberry32(7);
  const samples = Array.from({ length: 20_000 }, () => 0.001 * 1e9 ** rand());
  const h = new LatencyHistogram({ relativeError: 0.001 });
  for (const v of samples) h.record(v);
  const sorted = [...samples].sort((a, b) => a - b);
  for (const p of PERCENTILES) {
    const want = exactPercentile(sorted, p);
    const err = Math.abs(h.percentile(p)! - want) / want;
    assert(err <= 0.001, `p${p}: relative error ${err}`);
  }
  assert(h.bucketCount > new LatencyHistogram().bucketCount);
});

Deno.test("LatencyHistogram uses a fixed number of buckets independent of the sample count", () => {
  const h = new LatencyHistogram();
  const buckets = h.bucketCount;
  assert(buckets > 1000 && buckets < 1100, String(buckets));
  for (let i = 0; i < 100_000; i++) h.record(i);
  assertEquals(h.bucketCount, buckets);
});

Deno.test("LatencyHistogram rejects negative, NaN and infinite values and out-of-range percentiles", () => {
  const h = new LatencyHistogram();
  for (const bad of [-0.001, NaN, Infinity, -Infinity]) {
    assertThrows(() => h.record(bad), RangeError, undefined, String(bad));
  }
  assertEquals(h.count, 0);
  h.record(1);
  for (const bad of [-1, 100.5, NaN]) assertThrows(() => h.percentile(bad), RangeError);
  assertThrows(() => new LatencyHistogram({ relativeError: 0 }), RangeError);
  assertThrows(() => new LatencyHistogram({ minValueMs: 10, maxValueMs: 1 }), RangeError);
});

Deno.test("LatencyHistogram reset forgets every value", () => {
  const h = new LatencyHistogram();
  for (let i = 1; i <= 100; i++) h.record(i);
  h.reset();
  assertEquals(h.count, 0);
  assertEquals(h.percentile(50), null);
  h.record(7);
  assertEquals(h.percentile(50), 7);
  assertEquals(h.min, 7);
});
