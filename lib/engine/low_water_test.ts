import { assert, assertEquals } from "@std/assert";
import { denoEngine } from "./deno.ts";
import type { Engine, ReceiveLowWater } from "./types.ts";
import { LowWaterPolicy } from "./low_water.ts";

/** A mark that records what it was set to; `refuse` makes every set fail. */
function fakeMark(refuse = false): ReceiveLowWater & { sets: number[] } {
  const mark = {
    bytes: 1,
    sets: [] as number[],
    set(bytes: number): boolean {
      if (refuse) return false;
      mark.sets.push(bytes);
      mark.bytes = bytes;
      return true;
    },
  };
  return mark;
}

/** Feed `reads` reads of `bytes` each, `gapMs` apart, starting at `from`; returns the end time. */
function feed(policy: LowWaterPolicy, reads: number, bytes: number, gapMs: number, from = 0) {
  let now = from;
  for (let i = 0; i < reads; i++, now += gapMs) policy.onRead(bytes, now);
  return now;
}

Deno.test("LowWaterPolicy raises the mark once a stream fills it within a millisecond, and opens the socket once", () => {
  const mark = fakeMark();
  let opened = 0;
  const policy = new LowWaterPolicy(() => (opened++, mark));
  feed(policy, 200, 256 * 1024, 0.5); // 512 KiB per ms: about 4 Gbit/s
  assertEquals(mark.sets, [131072]);
  assertEquals(opened, 1);
  assertEquals(policy.raised, 131072);
});

Deno.test("LowWaterPolicy never raises the mark of a slow stream (nor looks for its socket)", () => {
  let opened = 0;
  const policy = new LowWaterPolicy(() => (opened++, fakeMark()));
  feed(policy, 1000, 1400, 1); // 1.4 KB per ms: about 11 Mbit/s
  assertEquals(opened, 0);
  assertEquals(policy.raised, 0);
});

Deno.test("LowWaterPolicy puts the mark back to 1 when a fast stream slows down, and raises it again when it speeds up", () => {
  const mark = fakeMark();
  const policy = new LowWaterPolicy(() => mark);
  let now = feed(policy, 200, 256 * 1024, 0.5);
  now = feed(policy, 100, 1024, 2, now); // 0.5 KiB per ms
  assertEquals(mark.sets, [131072, 1]);
  feed(policy, 200, 256 * 1024, 0.5, now);
  assertEquals(mark.sets, [131072, 1, 131072]);
  assertEquals(policy.raised, 131072);
});

Deno.test("LowWaterPolicy between the two rates keeps whatever mark it has (no flapping)", () => {
  const mark = fakeMark();
  const policy = new LowWaterPolicy(() => mark);
  const now = feed(policy, 200, 256 * 1024, 0.5);
  feed(policy, 400, 64 * 1024, 1, now); // 64 KiB per ms: below the raise rate, above the drop rate
  assertEquals(mark.sets, [131072]);
});

Deno.test("LowWaterPolicy gives up for good when the socket cannot be found, and counts nothing raised when a set fails", () => {
  let opened = 0;
  const missing = new LowWaterPolicy(() => (opened++, undefined));
  feed(missing, 400, 256 * 1024, 0.5);
  assertEquals(opened, 1);
  assertEquals(missing.raised, 0);
  const refused = new LowWaterPolicy(() => fakeMark(true));
  feed(refused, 400, 256 * 1024, 0.5);
  assertEquals(refused.raised, 0);
});

Deno.test("LowWaterPolicy honours its options (mark size, window, rates)", () => {
  const mark = fakeMark();
  const policy = new LowWaterPolicy(() => mark, { bytes: 4096, windowMs: 10, raiseWithinMs: 2 });
  feed(policy, 30, 2048, 1); // 2 KiB per ms fills 4 KiB within 2 ms
  assertEquals(mark.sets, [4096]);
});

Deno.test("LowWaterPolicy.for: none for an engine that cannot set the mark, and the engine's own mark of that connection otherwise", () => {
  const conn = {} as Deno.Conn;
  assertEquals(LowWaterPolicy.for(undefined, conn), undefined);
  assertEquals(LowWaterPolicy.for(denoEngine, conn), undefined);
  const asked: Deno.Conn[] = [];
  const mark = fakeMark();
  const engine: Engine = {
    ...denoEngine,
    name: "native",
    receiveLowWater: (c) => (asked.push(c), mark),
  };
  const policy = LowWaterPolicy.for(engine, conn);
  assert(policy);
  assertEquals(asked.length, 0, "no descriptor scan before the stream runs fast");
  feed(policy, 200, 256 * 1024, 0.5);
  assertEquals(asked, [conn]);
  assertEquals(mark.sets, [131072]);
});
