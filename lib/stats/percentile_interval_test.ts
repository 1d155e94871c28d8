/**
 * Unit tests of the percentile confidence intervals that findings use to tell
 * a real latency difference from run-to-run noise.
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import { LatencyHistogram } from "./histogram.ts";
import { percentileInterval } from "./percentile_interval.ts";

function uniform(n: number): LatencyHistogram {
  const h = new LatencyHistogram();
  for (let i = 1; i <= n; i++) h.record(i / n); // 0 < x ≤ 1 ms
  return h;
}

Deno.test("an empty histogram has no interval", () => {
  assertEquals(percentileInterval(new LatencyHistogram(), 99), null);
});

Deno.test("the interval brackets the percentile and narrows as samples grow", () => {
  const small = percentileInterval(uniform(1_000), 99)!;
  const large = percentileInterval(uniform(100_000), 99)!;
  for (const ci of [small, large]) assert(ci.lo <= 0.99 * 1.01 && ci.hi >= 0.99 * 0.99, `${ci}`);
  assert(large.hi - large.lo < small.hi - small.lo);
  // 1,000 samples, discounted 4x: the p99 could be anywhere from about p97.4 to the max.
  assert(small.lo < 0.98, `${small.lo}`);
  assertEquals(small.hi, 1);
});

Deno.test("a constant RTT has a zero-width interval", () => {
  const h = new LatencyHistogram();
  for (let i = 0; i < 5_000; i++) h.record(0.25);
  assertEquals(percentileInterval(h, 50), { lo: 0.25, hi: 0.25 });
});
