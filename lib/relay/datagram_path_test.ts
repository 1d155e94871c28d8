import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { FakeTime } from "@std/testing/time";
import { mulberry32 } from "../prng.ts";
import { type DirectionCounters, emptyDirection } from "./counters.ts";
import { DatagramPath, type PathDecision, REORDER_FLUSH_MS } from "./datagram_path.ts";
import { impaired, NO_IMPAIRMENT } from "./impairment.ts";
import type { Impairment } from "../config.ts";

interface Rig {
  path: DatagramPath;
  sent: number[][];
  counters: DirectionCounters;
  decisions: PathDecision[];
  /** Resolves once `n` datagrams were sent. */
  sentCount(n: number): Promise<void>;
}

function rig(
  imp: Partial<Impairment>,
  options: { seed?: number; queueBytes?: number; keepOrder?: boolean; reorderFlushMs?: number } =
    {},
): Rig {
  const sent: number[][] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const counters = emptyDirection();
  const decisions: PathDecision[] = [];
  const path = new DatagramPath({ ...NO_IMPAIRMENT, ...imp }, {
    random: mulberry32(options.seed ?? 1),
    counters,
    queueBytes: options.queueBytes,
    keepOrder: options.keepOrder,
    reorderFlushMs: options.reorderFlushMs,
    onDecision: (d) => decisions.push(d),
    send: (data) => {
      sent.push([...data]);
      for (const w of waiters.filter((w) => sent.length >= w.n)) w.resolve();
      return Promise.resolve();
    },
  });
  return {
    path,
    sent,
    counters,
    decisions,
    sentCount: (n) =>
      sent.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })),
  };
}

async function pushAll(r: Rig, count: number, size = 1): Promise<void> {
  for (let i = 0; i < count; i++) await r.path.push(new Uint8Array(size).fill(i));
}

Deno.test("DatagramPath without impairments forwards every datagram and counts it", async () => {
  const r = rig({});
  await pushAll(r, 10, 3);
  assertEquals(r.sent.map((d) => d[0]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assertEquals(r.counters.datagramsIn, 10);
  assertEquals(r.counters.datagramsOut, 10);
  assertEquals(r.counters.bytesIn, 30);
  assertEquals(r.counters.bytesOut, 30);
  r.path.close();
});

Deno.test("DatagramPath loss 100% drops everything, duplicate 100% sends each twice", async () => {
  const lossy = rig({ loss: 1 });
  await pushAll(lossy, 20);
  assertEquals(lossy.sent.length, 0);
  assertEquals(lossy.counters.dropped, 20);
  const doubled = rig({ duplicate: 1 });
  await pushAll(doubled, 5);
  assertEquals(doubled.sent.map((d) => d[0]), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
  assertEquals(doubled.counters.duplicated, 5);
  assertEquals(doubled.counters.datagramsOut, 10);
});

Deno.test("DatagramPath corrupt 100% flips exactly one bit of each datagram", async () => {
  const r = rig({ corrupt: 1 });
  for (let i = 0; i < 50; i++) await r.path.push(new Uint8Array(16));
  assertEquals(r.counters.corrupted, 50);
  for (const d of r.sent) {
    const bits = d.reduce((n, byte) => n + byte.toString(2).split("1").length - 1, 0);
    assertEquals(bits, 1);
  }
});

Deno.test("DatagramPath decisions repeat for a seed and differ for another", async () => {
  const run = async (seed: number) => {
    const r = rig({ loss: 0.3, duplicate: 0.2, corrupt: 0.1 }, { seed });
    await pushAll(r, 200, 8);
    return r.decisions;
  };
  const first = await run(5);
  assertEquals(await run(5), first);
  assertNotEquals(await run(6), first);
  const dropped = first.filter((d) => d.dropped).length;
  assert(dropped > 30 && dropped < 90, `dropped ${dropped}`);
});

Deno.test("DatagramPath reorder holds a datagram until the next one has left", async () => {
  const r = rig({ reorder: 0.3 }, { seed: 11 });
  await pushAll(r, 30);
  await r.sentCount(30); // a held last one leaves after the flush
  const order = r.sent.map((d) => d[0]!);
  assertEquals([...order].sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i));
  let late = 0;
  let highest = -1;
  for (const s of order) {
    if (s < highest) late++;
    highest = Math.max(highest, s);
  }
  const held = r.counters.reordered;
  assert(held > 0);
  assert(late === held || late === held - 1, `late ${late}, held ${held}`);
  r.path.close();
});

Deno.test("DatagramPath reorderFlushMs keeps a reordered datagram past the default flush, then lets it go", async () => {
  using time = new FakeTime();
  const held = rig({ reorder: 1 }, { reorderFlushMs: 10 * REORDER_FLUSH_MS });
  await held.path.push(new Uint8Array([0]));
  await time.tickAsync(2 * REORDER_FLUSH_MS); // the default flush would have sent it by now
  assertEquals(held.sent, []);
  await time.tickAsync(8 * REORDER_FLUSH_MS);
  assertEquals(held.sent, [[0]]);
  held.path.close();
});

Deno.test("DatagramPath rate queues behind a token bucket and tail-drops past the byte cap", async () => {
  // 8,000 bit/s: a 100-byte datagram takes 100 ms; the queue holds 250 bytes (2 datagrams).
  const r = rig({ rate: 8000 }, { queueBytes: 250 });
  await pushAll(r, 5, 100);
  assertEquals(r.sent.length, 1); // the first leaves at once
  assertEquals(r.counters.delayed, 2);
  assertEquals(r.counters.queueDropped, 2);
  assertEquals(r.path.queuedBytes, 200);
  const t0 = performance.now();
  await r.sentCount(3);
  assert(performance.now() - t0 >= 150, "the queue drained faster than the rate");
  assertEquals(r.sent.map((d) => d[0]), [0, 1, 2]);
  r.path.close();
});

Deno.test("DatagramPath jitter with keepOrder never reorders; close clears pending timers", async () => {
  const r = rig({ delayMs: 20, jitterMs: 15 }, { keepOrder: true, seed: 3 });
  await pushAll(r, 30);
  await r.sentCount(30);
  assertEquals(r.sent.map((d) => d[0]), Array.from({ length: 30 }, (_, i) => i));
  assertEquals(r.counters.delayed, 30);
  const parked = rig({ delayMs: 60_000 });
  await pushAll(parked, 3);
  assertEquals(parked.path.queuedBytes, 3);
  parked.path.close(); // the sanitizers fail the test on a timer left behind
  assertEquals(parked.path.queuedBytes, 0);
});

Deno.test("impaired() tells an empty impairment from any setting", () => {
  assertEquals(impaired(NO_IMPAIRMENT), false);
  assertEquals(impaired({ ...NO_IMPAIRMENT, rate: 1 }), true);
  assertEquals(impaired({ ...NO_IMPAIRMENT, closeAfterMs: 0 }), true);
});

Deno.test("DatagramPath delay is a floor: no datagram leaves before its delay has passed", async () => {
  const left: number[] = [];
  const pushed: number[] = [];
  const counters = emptyDirection();
  let done: () => void;
  const all = new Promise<void>((resolve) => done = resolve);
  const path = new DatagramPath({ ...NO_IMPAIRMENT, delayMs: 7.3 }, {
    random: mulberry32(1),
    counters,
    send: () => {
      left.push(performance.now());
      if (left.length === 20) done();
      return Promise.resolve();
    },
  });
  try {
    // Pushed 0.2 ms apart, so one timer finds the next datagrams almost due: none may go early.
    for (let i = 0; i < 20; i++) {
      const at = performance.now();
      while (performance.now() - at < 0.2) { /* spin: the spacing is the point of the test */ }
      pushed.push(performance.now());
      await path.push(new Uint8Array([i]));
    }
    await all;
    for (let i = 0; i < 20; i++) {
      assert(left[i]! - pushed[i]! >= 7.3, `datagram ${i} left after ${left[i]! - pushed[i]!} ms`);
    }
  } finally {
    path.close();
  }
});
