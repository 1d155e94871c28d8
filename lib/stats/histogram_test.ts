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
import assert from "node:assert/strict";
import { LatencyHistogram } from "./histogram.ts";
import { mulberry32 } from "../../tests/support/prng.ts";

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
    assert.ok(got !== null);
    const err = want === 0 ? Math.abs(got) : Math.abs(got - want) / want;
    if (err > worst) worst = err;
    assert.ok(err <= 0.01, `${name} p${p}: got ${got}, exact ${want}, relative error ${err}`);
  }
  assert.equal(h.count, samples.length);
  assert.equal(h.min, sorted[0]);
  assert.equal(h.max, sorted[sorted.length - 1]);
  assert.equal(h.sum, samples.reduce((a, b) => a + b, 0)); // same summation order: exact
  assert.equal(h.mean, h.sum / samples.length);
  assert.ok(worst <= 0.01, `${name}: worst relative error ${worst}`);
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
  for (const p of PERCENTILES) assert.equal(h.percentile(p), 42.123);
  checkAgainstExact("constant", Array.from({ length: 1000 }, () => 42.123));
});

Deno.test("LatencyHistogram percentiles are within 1% for a two-point bimodal input", () => {
  const rand = mulberry32(4);
  const samples = Array.from({ length: N }, () => (rand() < 0.97 ? 1.5 : 250));
  checkAgainstExact("bimodal", samples);
  const h = new LatencyHistogram();
  for (const v of samples) h.record(v);
  // The extreme ranks are exact: rank 1 is the minimum, rank count the maximum.
  assert.equal(h.percentile(100), 250);
  assert.equal(h.percentile(0), 1.5);
});

Deno.test("LatencyHistogram uses nearest rank ceil(p * count / 100)", () => {
  const h = new LatencyHistogram();
  for (let v = 1; v <= 10; v++) h.record(v);
  // Rank ceil(90 * 10 / 100) = 9 (not 10, as 0.9 * 10 = 9.000000000000002 would give).
  assert.ok(Math.abs(h.percentile(90)! - 9) / 9 <= 0.01);
  assert.ok(Math.abs(h.percentile(50)! - 5) / 5 <= 0.01);
  assert.ok(Math.abs(h.percentile(51)! - 6) / 6 <= 0.01);
  assert.equal(h.percentile(0), 1);
  assert.equal(h.percentile(10), 1);
  assert.equal(h.percentile(100), 10);
});

Deno.test("LatencyHistogram returns null for every statistic when empty", () => {
  const h = new LatencyHistogram();
  assert.equal(h.percentile(50), null);
  assert.equal(h.percentile(0), null);
  assert.equal(h.min, null);
  assert.equal(h.max, null);
  assert.equal(h.mean, null);
  assert.equal(h.count, 0);
  assert.deepEqual(h.summary(), {
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
    assert.deepEqual(h.summary(), { min: v, mean: v, p50: v, p90: v, p99: v, p999: v, max: v });
  }
});

Deno.test("LatencyHistogram summary reports exact min, mean, max and nearest-rank percentiles", () => {
  const rand = mulberry32(5);
  const samples = Array.from({ length: 10_000 }, () => 0.5 + rand() * 50);
  const h = new LatencyHistogram();
  for (const v of samples) h.record(v);
  const sorted = [...samples].sort((a, b) => a - b);
  const s = h.summary();
  assert.equal(s.min, sorted[0]);
  assert.equal(s.max, sorted[sorted.length - 1]);
  assert.equal(s.mean, samples.reduce((a, b) => a + b, 0) / samples.length);
  for (const [key, p] of [["p50", 50], ["p90", 90], ["p99", 99], ["p999", 99.9]] as const) {
    const want = exactPercentile(sorted, p);
    assert.ok(Math.abs(s[key]! - want) / want <= 0.01, `${key}: ${s[key]} vs ${want}`);
  }
});

Deno.test("LatencyHistogram reports values below 1 µs within 1 µs absolute", () => {
  const h = new LatencyHistogram();
  for (const v of [0, 0.0001, 0.0005, 0.0009, 0, 0.0002]) h.record(v);
  for (let p = 0; p <= 100; p += 5) {
    const got = h.percentile(p)!;
    assert.ok(got >= 0 && got <= 0.0009, `p${p}: ${got}`);
  }
  assert.equal(h.min, 0);
  assert.equal(h.max, 0.0009);
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
  assert.equal(a.count, all.count);
  assert.equal(a.min, all.min);
  assert.equal(a.max, all.max);
  assert.ok(Math.abs(a.sum - all.sum) <= 1e-9 * all.sum);
  for (const p of PERCENTILES) assert.equal(a.percentile(p), all.percentile(p), `p${p}`);
  const empty = new LatencyHistogram();
  empty.merge(all);
  assert.equal(empty.percentile(50), all.percentile(50));
  assert.equal(empty.min, all.min);
});

Deno.test("LatencyHistogram refuses to merge a histogram built with different options", () => {
  const h = new LatencyHistogram();
  assert.throws(() => h.merge(new LatencyHistogram({ relativeError: 0.02 })), RangeError);
  assert.throws(() => h.merge(new LatencyHistogram({ maxValueMs: 1000 })), RangeError);
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
    assert.ok(err <= 0.001, `p${p}: relative error ${err}`);
  }
  assert.ok(h.bucketCount > new LatencyHistogram().bucketCount);
});

Deno.test("LatencyHistogram uses a fixed number of buckets independent of the sample count", () => {
  const h = new LatencyHistogram();
  const buckets = h.bucketCount;
  assert.ok(buckets > 1000 && buckets < 1100, String(buckets));
  for (let i = 0; i < 100_000; i++) h.record(i);
  assert.equal(h.bucketCount, buckets);
});

Deno.test("LatencyHistogram rejects negative, NaN and infinite values and out-of-range percentiles", () => {
  const h = new LatencyHistogram();
  for (const bad of [-0.001, NaN, Infinity, -Infinity]) {
    assert.throws(() => h.record(bad), RangeError, String(bad));
  }
  assert.equal(h.count, 0);
  h.record(1);
  for (const bad of [-1, 100.5, NaN]) assert.throws(() => h.percentile(bad), RangeError);
  assert.throws(() => new LatencyHistogram({ relativeError: 0 }), RangeError);
  assert.throws(() => new LatencyHistogram({ minValueMs: 10, maxValueMs: 1 }), RangeError);
});

Deno.test("LatencyHistogram reset forgets every value", () => {
  const h = new LatencyHistogram();
  for (let i = 1; i <= 100; i++) h.record(i);
  h.reset();
  assert.equal(h.count, 0);
  assert.equal(h.percentile(50), null);
  h.record(7);
  assert.equal(h.percentile(50), 7);
  assert.equal(h.min, 7);
});
