/**
 * Tests for the per-source token bucket behind `--rate-limit`: the burst
 * size, refill in proportion to elapsed time, independence of sources and
 * the bounded source table. Time is passed explicitly; nothing sleeps.
 *
 * @example
 * ```sh
 * deno test lib/rate_limiter_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { RateLimiter } from "./rate_limiter.ts";

/** How many of `count` takes at time `now` succeed. */
function takeMany(limiter: RateLimiter, source: string, now: number, count: number): number {
  let passed = 0;
  for (let i = 0; i < count; i++) if (limiter.take(source, now)) passed++;
  return passed;
}

Deno.test("RateLimiter lets a burst of exactly `rate` datagrams through, then refuses the rest", () => {
  const limiter = new RateLimiter(10);
  for (let i = 0; i < 10; i++) assert(limiter.take("a", 1000), `take ${i} should pass`);
  assertEquals(limiter.take("a", 1000), false);
  assertEquals(takeMany(limiter, "a", 1000, 50), 0);
});

Deno.test("RateLimiter with rate 1 allows one datagram, then one more a second later", () => {
  const limiter = new RateLimiter(1);
  assert(limiter.take("a", 0));
  assertEquals(limiter.take("a", 999), false);
  assert(limiter.take("a", 2000));
  assertEquals(limiter.take("a", 2000), false);
});

Deno.test("RateLimiter refills tokens in proportion to elapsed time (rate 10: one per 100 ms)", () => {
  const limiter = new RateLimiter(10);
  assertEquals(takeMany(limiter, "a", 0, 10), 10);
  assertEquals(limiter.take("a", 50), false); // half a token so far
  assert(limiter.take("a", 100)); // 0.5 (kept from t=50) + 0.5 = 1 token
  assertEquals(limiter.take("a", 100), false);
  assertEquals(takeMany(limiter, "a", 400, 10), 3); // 300 ms later: three tokens
});

Deno.test("RateLimiter keeps fractional tokens across calls instead of rounding them away", () => {
  const limiter = new RateLimiter(10);
  assertEquals(takeMany(limiter, "a", 0, 10), 10);
  // Ten calls 25 ms apart add 0.25 tokens each: 2.5 tokens, so exactly two pass.
  let passed = 0;
  for (let t = 25; t <= 250; t += 25) if (limiter.take("a", t)) passed++;
  assertEquals(passed, 2);
});

Deno.test("RateLimiter refill is capped at `rate` tokens, however long the source was idle", () => {
  const limiter = new RateLimiter(5);
  assertEquals(takeMany(limiter, "a", 0, 5), 5);
  assertEquals(takeMany(limiter, "a", 3_600_000, 100), 5);
});

Deno.test("RateLimiter tracks each source independently: one exhausted bucket does not limit another", () => {
  const limiter = new RateLimiter(3);
  assertEquals(takeMany(limiter, "10.0.0.1", 0, 10), 3);
  assertEquals(takeMany(limiter, "10.0.0.2", 0, 10), 3);
  assertEquals(takeMany(limiter, "[::1]:5000", 0, 10), 3);
  assertEquals(limiter.take("10.0.0.1", 0), false);
  assert(limiter.take("10.0.0.1", 1000 / 3 + 1));
  assertEquals(limiter.take("10.0.0.2", 0), false);
});

Deno.test("RateLimiter clears its table when a new source arrives past maxSources (all buckets refilled)", () => {
  const limiter = new RateLimiter(2, { maxSources: 2 });
  assertEquals(takeMany(limiter, "a", 0, 5), 2);
  assertEquals(takeMany(limiter, "b", 0, 5), 2);
  // Known sources do not trigger the reset: both stay empty.
  assertEquals(limiter.take("a", 0), false);
  assertEquals(limiter.take("b", 0), false);
  // A third source overflows the table: it is cleared and everyone starts full again.
  assertEquals(takeMany(limiter, "c", 0, 5), 2);
  assertEquals(takeMany(limiter, "a", 0, 5), 2);
});

Deno.test("RateLimiter does not reset while the table holds fewer than maxSources sources", () => {
  const limiter = new RateLimiter(1, { maxSources: 3 });
  assert(limiter.take("a", 0));
  assert(limiter.take("b", 0));
  assert(limiter.take("c", 0)); // table now holds 3: no reset was needed to add it
  assertEquals(limiter.take("a", 0), false);
  assertEquals(limiter.take("b", 0), false);
});

Deno.test("a rate below one datagram per second is refused up front (a bucket holds a whole token)", () => {
  assertThrows(() => new RateLimiter(0.5), RangeError);
});
