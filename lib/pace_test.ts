/**
 * Unit tests of the pacing schedule: which sends are due when, that waits
 * sleep on timers (no spinning) below the burst limit, and that a byte-stream
 * sender's write shrinks for a low bit rate.
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import { FakeTime } from "@std/testing/time";
import {
  dueCount,
  MAX_BURST,
  pacedWriteSize,
  TIMER_TICK_MS,
  timersOnly,
  waitUntil,
} from "./pace.ts";

Deno.test("dueCount: send n is due at start + n·gap, none before the start", () => {
  assertEquals(dueCount(100, 1, 0, 99.9), 0);
  assertEquals(dueCount(100, 1, 0, 100), 1); // the first send is due at the start
  assertEquals(dueCount(100, 1, 1, 100.9), 0);
  assertEquals(dueCount(100, 1, 1, 101), 1);
  assertEquals(dueCount(100, 1, 0, 102.5), 3); // sends 0, 1 and 2
  assertEquals(dueCount(100, 1, 5, 102.5), 0); // ahead of schedule: nothing due
});

Deno.test("dueCount: unpaced (gap 0) makes every send due at once", () => {
  assertEquals(dueCount(0, 0, 1_000_000, 0), Number.POSITIVE_INFINITY);
});

Deno.test("catch-up batches grow with the rate and keep the average rate exact", () => {
  // A sender woken every timer tick (the worst case) sends everything due on each wake-up.
  for (const rate of [100, 1000, 16_000, 100_000]) {
    const gap = 1000 / rate;
    let sent = 0;
    let largest = 0;
    for (let now = 0; now < 1000; now += TIMER_TICK_MS) {
      const due = dueCount(0, gap, sent, now);
      largest = Math.max(largest, due);
      sent += due;
    }
    // One second's schedule, give or take the send due at the last wake-up.
    assert(Math.abs(sent - rate) <= Math.ceil(TIMER_TICK_MS / gap), `${rate}/s sent ${sent}`);
    assertEquals(largest, Math.max(1, Math.floor(TIMER_TICK_MS / gap)), `${rate}/s`);
  }
});

Deno.test("timersOnly: timers alone up to a burst of MAX_BURST per tick, fine pacing beyond", () => {
  assert(timersOnly(1)); // 1,000/s: about 2 per tick
  assert(timersOnly(TIMER_TICK_MS / MAX_BURST));
  assert(!timersOnly(TIMER_TICK_MS / MAX_BURST / 2));
  assert(timersOnly(Number.POSITIVE_INFINITY));
});

Deno.test("waitUntil resolves at the due time on a timer, not before", async () => {
  using time = new FakeTime(0);
  const clock = { now: () => Date.now() };
  let done = false;
  const waiting = waitUntil(5, 1, clock).then(() => (done = true));
  await time.tickAsync(4);
  assertEquals(done, false);
  await time.tickAsync(1);
  await waiting;
  assertEquals(done, true);
  assertEquals(Date.now(), 5); // woken by the timer at the due time, not a busy loop
});

Deno.test("waitUntil returns at once when the send is already due", async () => {
  using _time = new FakeTime(10);
  await waitUntil(10, 1, { now: () => Date.now() });
  await waitUntil(3, 1, { now: () => Date.now() });
});

Deno.test("pacedWriteSize shrinks a write below 20 ms of the bit rate, never below 1 B", () => {
  assertEquals(pacedWriteSize(131072, 0), 131072); // unpaced
  assertEquals(pacedWriteSize(131072, 10_000), 25); // 10 kbit/s: 25 B per 20 ms
  assertEquals(pacedWriteSize(131072, 10e6), 25_000);
  assertEquals(pacedWriteSize(131072, 1e9), 131072); // fast enough for the whole block
  assertEquals(pacedWriteSize(131072, 8), 1);
});

Deno.test("a paced write overshoots a 1 s test by far less than 50x at any bit rate", () => {
  for (const bitrate of [8, 1000, 10_000, 1e6, 1e9]) {
    const write = pacedWriteSize(131072, bitrate);
    const allowed = bitrate / 8; // bytes in one second
    // The first write goes at once; the most a 1 s test can send is its due bytes plus one write.
    assert((allowed + write) / allowed <= 2 || write === 1, `${bitrate} bit/s: ${write} B`);
  }
});
