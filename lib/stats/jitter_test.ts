/**
 * Tests for {@linkcode JitterEstimator} against hand-computed RFC 3550 values.
 *
 * @example
 * ```sh
 * deno test lib/stats/jitter_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { JitterEstimator } from "./jitter.ts";

// Five packets sent every 20 ms; arrival times chosen so the transit times are
// 100, 105, 98, 105, 100 ms. Every intermediate value is a binary fraction, so
// the float arithmetic is exact and can be compared with strict equality.
const SEND = [0, 20, 40, 60, 80];
const ARRIVAL = [100, 125, 138, 165, 180];
// Packet 1: transit 100, seeds prevTransit;               J = 0
// Packet 2: transit 105, D = |105 - 100| = 5;  J = 0 + (5 - 0) / 16           = 0.3125
// Packet 3: transit  98, D = |98 - 105|  = 7;  J = 0.3125 + (7 - 0.3125) / 16
//                                               = 0.3125 + 0.41796875           = 0.73046875
// Packet 4: transit 105, D = |105 - 98|  = 7;  J = 0.73046875 + (7 - 0.73046875) / 16
//                                               = 0.73046875 + 0.391845703125   = 1.122314453125
// Packet 5: transit 100, D = |100 - 105| = 5;  J = 1.122314453125 + (5 - 1.122314453125) / 16
//                                               = 1.122314453125 + 0.2423553466796875
//                                               = 1.3646697998046875
const EXPECTED = [0, 0.3125, 0.73046875, 1.122314453125, 1.3646697998046875];

Deno.test("JitterEstimator starts at zero with no samples", () => {
  const j = new JitterEstimator();
  assertEquals(j.jitterMs, 0);
  assertEquals(j.samples, 0);
});

Deno.test("JitterEstimator keeps jitter at zero after the first, seeding packet", () => {
  const j = new JitterEstimator();
  j.update(5, 1000);
  assertEquals(j.jitterMs, 0);
  assertEquals(j.samples, 1);
});

Deno.test("JitterEstimator matches the hand-computed RFC 3550 values for a 5-packet example", () => {
  const j = new JitterEstimator();
  for (let i = 0; i < SEND.length; i++) {
    j.update(SEND[i]!, ARRIVAL[i]!);
    assertEquals(j.jitterMs, EXPECTED[i], `after packet ${i + 1}`);
    assertEquals(j.samples, i + 1);
  }
});

Deno.test("JitterEstimator result is unchanged by a constant clock offset between sender and receiver", () => {
  for (const offset of [1_000_000, -250, 123_456.789]) {
    const j = new JitterEstimator();
    for (let i = 0; i < SEND.length; i++) j.update(SEND[i]!, ARRIVAL[i]! + offset);
    // Integer offsets keep the arithmetic exact; a fractional one may only
    // perturb the last bits of the transit times.
    assert(
      Math.abs(j.jitterMs - EXPECTED[4]!) < 1e-9,
      `offset ${offset}: ${j.jitterMs}`,
    );
  }
  const exact = new JitterEstimator();
  for (let i = 0; i < SEND.length; i++) exact.update(SEND[i]! - 7_000, ARRIVAL[i]! + 3_000);
  assertEquals(exact.jitterMs, EXPECTED[4]);
});

Deno.test("JitterEstimator reports zero jitter for constant transit time", () => {
  const j = new JitterEstimator();
  for (let i = 0; i < 1000; i++) j.update(i * 10, i * 10 + 42.5);
  assertEquals(j.jitterMs, 0);
});

Deno.test("JitterEstimator converges to the constant |D| of alternating transit times", () => {
  const j = new JitterEstimator();
  for (let i = 0; i < 2000; i++) j.update(i * 10, i * 10 + (i % 2 === 0 ? 10 : 14));
  assert(Math.abs(j.jitterMs - 4) < 1e-9, String(j.jitterMs));
});

Deno.test("JitterEstimator reset forgets previous packets", () => {
  const j = new JitterEstimator();
  for (let i = 0; i < SEND.length; i++) j.update(SEND[i]!, ARRIVAL[i]!);
  j.reset();
  assertEquals(j.jitterMs, 0);
  assertEquals(j.samples, 0);
  j.update(0, 500); // seeds again: the old transit (100) must not be used
  assertEquals(j.jitterMs, 0);
});

Deno.test("JitterEstimator rejects non-finite times without changing its state", () => {
  const j = new JitterEstimator();
  j.update(0, 100);
  assertThrows(() => j.update(NaN, 1), RangeError);
  assertThrows(() => j.update(0, Infinity), RangeError);
  assertEquals(j.samples, 1);
  j.update(20, 125);
  assertEquals(j.jitterMs, 0.3125);
});
