/**
 * Tests for {@linkcode SequenceTracker}, including an exactness check of
 * 1,000,000 arrivals against a `Set`-based reference implementation.
 *
 * @example
 * ```sh
 * deno test lib/stats/sequence_tracker_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertThrows, fail } from "@std/assert";
import { type SequenceClass, SequenceTracker } from "./sequence_tracker.ts";
import { mulberry32 } from "../prng.ts";

/** Straightforward reference: a Set of everything seen plus the window rule. */
class ReferenceTracker {
  readonly seen = new Set<number>();
  highest = -1;
  received = 0;
  outOfOrder = 0;
  duplicates = 0;
  stale = 0;
  constructor(readonly windowBits: number) {}
  record(seq: number): SequenceClass {
    if (seq > this.highest) {
      this.highest = seq;
      this.seen.add(seq);
      this.received++;
      return "new";
    }
    if (this.highest - seq >= this.windowBits) {
      this.stale++;
      this.received++;
      this.outOfOrder++;
      return "stale";
    }
    if (this.seen.has(seq)) {
      this.duplicates++;
      return "duplicate";
    }
    this.seen.add(seq);
    this.received++;
    this.outOfOrder++;
    return "out_of_order";
  }
}

/**
 * Builds an arrival stream for 0..sent-1: each sequence number is dropped with
 * probability `dropRate`, duplicated with `dupRate`, then positions are
 * shuffled locally by swapping with a random position up to `spread` ahead.
 */
function arrivalStream(
  rand: () => number,
  sent: number,
  dropRate: number,
  dupRate: number,
  spread: number,
): number[] {
  const out: number[] = [];
  for (let seq = 0; seq < sent; seq++) {
    if (rand() < dropRate) continue;
    out.push(seq);
    if (rand() < dupRate) out.push(seq);
  }
  for (let i = 0; i < out.length; i++) {
    const j = Math.min(out.length - 1, i + Math.floor(rand() * (spread + 1)));
    const tmp = out[i]!;
    out[i] = out[j]!;
    out[j] = tmp;
  }
  return out;
}

function recordAll(tracker: SequenceTracker, seqs: readonly number[]): SequenceClass[] {
  return seqs.map((seq) => tracker.record(seq));
}

Deno.test("SequenceTracker starts empty with highest -1 and nothing lost of nothing sent", () => {
  const t = new SequenceTracker();
  assertEquals(t.highest, -1);
  assertEquals(t.received, 0);
  assertEquals(t.outOfOrder, 0);
  assertEquals(t.duplicates, 0);
  assertEquals(t.stale, 0);
  assertEquals(t.lost(0), 0);
  assertEquals(t.lost(7), 7);
  assertEquals(t.windowBits, 1 << 22);
});

Deno.test("SequenceTracker classifies an in-order run as all new with no loss", () => {
  const t = new SequenceTracker();
  const classes = recordAll(t, Array.from({ length: 100 }, (_, i) => i));
  assert(classes.every((c) => c === "new"));
  assertEquals(t.received, 100);
  assertEquals(t.highest, 99);
  assertEquals(t.outOfOrder, 0);
  assertEquals(t.duplicates, 0);
  assertEquals(t.lost(100), 0);
});

Deno.test("SequenceTracker treats a first arrival above 0 as new and counts the gaps as lost", () => {
  const t = new SequenceTracker();
  assertEquals(recordAll(t, [2, 3, 7, 9]), ["new", "new", "new", "new"]);
  assertEquals(t.received, 4);
  assertEquals(t.highest, 9);
  assertEquals(t.lost(10), 6); // 0, 1, 4, 5, 6, 8
  assertEquals(t.outOfOrder, 0);
});

Deno.test("SequenceTracker counts a late first arrival as out-of-order and received", () => {
  const t = new SequenceTracker();
  assertEquals(recordAll(t, [0, 2, 1, 3]), ["new", "new", "out_of_order", "new"]);
  assertEquals(t.received, 4);
  assertEquals(t.outOfOrder, 1);
  assertEquals(t.lost(4), 0);
});

Deno.test("SequenceTracker counts a duplicate of a new packet as a duplicate only", () => {
  const t = new SequenceTracker();
  assertEquals(recordAll(t, [0, 1, 1, 2, 1]), [
    "new",
    "new",
    "duplicate",
    "new",
    "duplicate",
  ]);
  assertEquals(t.received, 3);
  assertEquals(t.duplicates, 2);
  assertEquals(t.outOfOrder, 0);
  assertEquals(t.lost(3), 0);
});

Deno.test("SequenceTracker counts a duplicate of an out-of-order packet as a duplicate only", () => {
  const t = new SequenceTracker();
  assertEquals(recordAll(t, [0, 2, 1, 1, 1]), [
    "new",
    "new",
    "out_of_order",
    "duplicate",
    "duplicate",
  ]);
  assertEquals(t.received, 3);
  assertEquals(t.outOfOrder, 1);
  assertEquals(t.duplicates, 2);
});

Deno.test("SequenceTracker reports an arrival older than the window as stale, received and out-of-order", () => {
  const t = new SequenceTracker({ windowBits: 64 });
  t.record(100);
  assertEquals(t.record(37), "out_of_order"); // 100 - 37 = 63 < 64: still inside
  assertEquals(t.record(36), "stale"); // 100 - 36 = 64: outside
  assertEquals(t.record(36), "stale"); // a duplicate older than the window is undetectable
  assertEquals(t.stale, 2);
  assertEquals(t.received, 4);
  assertEquals(t.outOfOrder, 3);
  assertEquals(t.duplicates, 0);
});

Deno.test("SequenceTracker never reports negative loss when stale duplicates inflate received", () => {
  const t = new SequenceTracker({ windowBits: 32 });
  recordAll(t, [0, 100, 0, 0, 0]);
  assertEquals(t.received, 5);
  assertEquals(t.lost(2), 0);
});

Deno.test("SequenceTracker clears reused bits when a jump is larger than the window", () => {
  const t = new SequenceTracker({ windowBits: 64 });
  recordAll(t, Array.from({ length: 64 }, (_, i) => i)); // fill every bit
  assertEquals(t.record(1000), "new"); // jump of 936 > 64
  // Everything in (1000 - 64, 1000) must read as not-yet-received.
  for (let seq = 937; seq < 1000; seq++) assertEquals(t.record(seq), "out_of_order", `seq ${seq}`);
  assertEquals(t.record(936), "stale");
  assertEquals(t.record(1000), "duplicate");
  assertEquals(t.received, 64 + 1 + 63 + 1);
});

Deno.test("SequenceTracker clears exactly the bits it reuses for partial-word and wrapping advances", () => {
  // Advances of every size from 1 to 2 windows, starting at every bit offset,
  // checked against the reference; exercises head/tail masks and wrap-around.
  const windowBits = 96;
  for (let step = 1; step <= 2 * windowBits; step += 1) {
    const t = new SequenceTracker({ windowBits });
    const ref = new ReferenceTracker(windowBits);
    let seq = 0;
    for (let round = 0; round < 12; round++) {
      // Mark every bit in the window, then jump by `step`, then probe the window.
      for (let s = Math.max(0, seq - windowBits + 1); s <= seq; s++) {
        assertEquals(t.record(s), ref.record(s));
      }
      seq += step + round;
      assertEquals(t.record(seq), ref.record(seq));
      for (let s = Math.max(0, seq - windowBits - 2); s <= seq; s++) {
        assertEquals(t.record(s), ref.record(s), `step ${step} round ${round} seq ${s}`);
      }
    }
    assertEquals(t.received, ref.received);
    assertEquals(t.duplicates, ref.duplicates);
  }
});

Deno.test("SequenceTracker accepts sequence numbers up to 2^53 and rejects invalid ones", () => {
  const t = new SequenceTracker({ windowBits: 32 });
  assertEquals(t.record(2 ** 53 - 1), "new");
  assertEquals(t.record(2 ** 53), "new");
  assertEquals(t.record(2 ** 53 - 1), "duplicate");
  assertEquals(t.record(2 ** 53 - 2), "out_of_order");
  for (const bad of [-1, 0.5, NaN, Infinity, 2 ** 53 + 2]) {
    assertThrows(() => t.record(bad), RangeError, undefined, `seq ${bad}`);
  }
  assertEquals(t.received, 3);
});

Deno.test("SequenceTracker rejects a window that is not a positive multiple of 32", () => {
  for (const windowBits of [0, 31, 33, 48.5, -32, 2 ** 32]) {
    assertThrows(
      () => new SequenceTracker({ windowBits }),
      RangeError,
      undefined,
      `windowBits ${windowBits}`,
    );
  }
  assertEquals(new SequenceTracker({ windowBits: 32 }).windowBits, 32);
});

Deno.test("SequenceTracker matches a Set-based reference exactly on 1,000,000 arrivals with drops, dups and reordering", () => {
  const rand = mulberry32(0xc0ffee);
  const sent = 1_020_000; // ≈ 1,009,600 arrivals after 2 % drops and 1 % duplicates
  const stream = arrivalStream(rand, sent, 0.02, 0.01, 50);
  const t = new SequenceTracker();
  const ref = new ReferenceTracker(t.windowBits);
  for (let i = 0; i < stream.length; i++) {
    const seq = stream[i]!;
    const got = t.record(seq);
    const want = ref.record(seq);
    if (got !== want) fail(`arrival ${i} (seq ${seq}): got ${got}, want ${want}`);
  }
  assert(stream.length >= 1_000_000, `stream length ${stream.length}`);
  assertEquals(t.received, ref.received);
  assertEquals(t.received, ref.seen.size); // exact: nothing stale inside the window
  assertEquals(t.stale, 0);
  assertEquals(t.outOfOrder, ref.outOfOrder);
  assertEquals(t.duplicates, ref.duplicates);
  assertEquals(t.highest, ref.highest);
  assertEquals(t.lost(sent), sent - ref.seen.size);
  assert(t.outOfOrder > 1000 && t.duplicates > 1000 && t.lost(sent) > 1000);
});

Deno.test("SequenceTracker matches the reference window rule with a small window and heavy reordering", () => {
  const rand = mulberry32(42);
  const sent = 200_000;
  const stream = arrivalStream(rand, sent, 0.05, 0.05, 400);
  const t = new SequenceTracker({ windowBits: 256 });
  const ref = new ReferenceTracker(256);
  for (let i = 0; i < stream.length; i++) {
    const seq = stream[i]!;
    const got = t.record(seq);
    const want = ref.record(seq);
    if (got !== want) fail(`arrival ${i} (seq ${seq}): got ${got}, want ${want}`);
  }
  assert(ref.stale > 100, `expected stale arrivals, got ${ref.stale}`);
  assertEquals(t.stale, ref.stale);
  assertEquals(t.received, ref.received);
  assertEquals(t.outOfOrder, ref.outOfOrder);
  assertEquals(t.duplicates, ref.duplicates);
});
