/**
 * Delivery accounting for probe sequence numbers: unique arrivals, loss,
 * reordering and duplication, in bounded memory.
 *
 * The sender numbers its probes 0, 1, 2, … in order; the receiver calls
 * {@linkcode SequenceTracker.record} for every probe that arrives. A ring
 * bitmap of `windowBits` bits (one `Uint32Array`) remembers which of the
 * latest `windowBits` sequence numbers have been seen, so every count is
 * exact for any run shorter than the window.
 *
 * Semantics of an arrival older than the window (`highest - seq >= windowBits`):
 * it is reported as `"stale"`, counted in {@linkcode SequenceTracker.stale},
 * and — because it did arrive and we cannot tell whether it arrived before —
 * also counted as received and as out of order. Consequently a *duplicate*
 * older than the window is not detectable: it is counted as received a second
 * time, and `received` can then exceed the number sent (`lost()` clamps at 0).
 *
 * @example
 * ```ts
 * import { SequenceTracker } from "./sequence_tracker.ts";
 *
 * const tracker = new SequenceTracker();
 * for (const seq of [0, 1, 3, 2, 3]) tracker.record(seq);
 * // new, new, new, out_of_order, duplicate
 * console.log(tracker.received, tracker.outOfOrder, tracker.duplicates); // 4 1 1
 * console.log(tracker.lost(5)); // 1
 * ```
 *
 * @module
 */

/** Classification of one arrival returned by {@linkcode SequenceTracker.record}. */
export type SequenceClass = "new" | "out_of_order" | "duplicate" | "stale";

/** Options for {@linkcode SequenceTracker}. */
export interface SequenceTrackerOptions {
  /**
   * Size of the ring bitmap in bits, i.e. how far behind the highest sequence
   * number an arrival may be and still be classified exactly. Must be a
   * positive multiple of 32 and at most 2^31. Memory used is `windowBits / 8`
   * bytes (512 KiB by default).
   *
   * @default {1 << 22}
   */
  windowBits?: number;
}

/** Largest accepted sequence number (2^53). */
const MAX_SEQ = 2 ** 53;
const MAX_WINDOW_BITS = 2 ** 31;

/**
 * Counts unique, out-of-order, duplicate and stale arrivals of sequence
 * numbers using a fixed-size ring bitmap. {@linkcode record} allocates nothing.
 */
export class SequenceTracker {
  readonly #windowBits: number;
  readonly #words: Uint32Array;
  #highest = -1;
  #received = 0;
  #outOfOrder = 0;
  #duplicates = 0;
  #stale = 0;

  /**
   * Creates an empty tracker with a zeroed bitmap of `windowBits` bits.
   *
   * @param options Window size; see {@linkcode SequenceTrackerOptions}.
   * @throws {RangeError} if `windowBits` is not a positive multiple of 32 ≤ 2^31.
   */
  constructor(options: SequenceTrackerOptions = {}) {
    const windowBits = options.windowBits ?? 1 << 22;
    if (
      !Number.isInteger(windowBits) || windowBits < 32 || windowBits > MAX_WINDOW_BITS ||
      windowBits % 32 !== 0
    ) {
      throw new RangeError(
        `windowBits must be a positive multiple of 32 no larger than 2^31, got ${windowBits}`,
      );
    }
    this.#windowBits = windowBits;
    this.#words = new Uint32Array(windowBits / 32);
  }

  /** Size of the ring bitmap in bits. */
  get windowBits(): number {
    return this.#windowBits;
  }

  /** Unique sequence numbers received (including out-of-order and stale arrivals). */
  get received(): number {
    return this.#received;
  }

  /** First arrivals of a sequence number lower than the highest seen at that time (includes stale). */
  get outOfOrder(): number {
    return this.#outOfOrder;
  }

  /** Arrivals of a sequence number already received (only detectable inside the window). */
  get duplicates(): number {
    return this.#duplicates;
  }

  /** Arrivals older than the window, which could not be classified. */
  get stale(): number {
    return this.#stale;
  }

  /** Highest sequence number received so far, or -1 if none. */
  get highest(): number {
    return this.#highest;
  }

  /**
   * Sequence numbers not (yet) received out of `sent` sent: `sent - received`,
   * never negative.
   */
  lost(sent: number): number {
    const lost = sent - this.#received;
    return lost > 0 ? lost : 0;
  }

  /**
   * Records the arrival of `seq` and classifies it.
   *
   * @throws {RangeError} if `seq` is not an integer in [0, 2^53].
   */
  record(seq: number): SequenceClass {
    if (!(seq >= 0 && seq <= MAX_SEQ && Math.floor(seq) === seq)) {
      throw new RangeError(`sequence number must be an integer in [0, 2^53], got ${seq}`);
    }
    const highest = this.#highest;
    if (seq > highest) {
      if (highest >= 0) this.#advance(highest, seq);
      this.#highest = seq;
      this.#setBit(seq % this.#windowBits);
      this.#received++;
      return "new";
    }
    if (highest - seq >= this.#windowBits) {
      this.#stale++;
      this.#received++;
      this.#outOfOrder++;
      return "stale";
    }
    const pos = seq % this.#windowBits;
    const word = pos >>> 5;
    const mask = 1 << (pos & 31);
    const words = this.#words;
    if ((words[word]! & mask) !== 0) {
      this.#duplicates++;
      return "duplicate";
    }
    words[word] = words[word]! | mask;
    this.#received++;
    this.#outOfOrder++;
    return "out_of_order";
  }

  #setBit(pos: number): void {
    const word = pos >>> 5;
    this.#words[word] = this.#words[word]! | (1 << (pos & 31));
  }

  /** Clears the bit positions of sequence numbers (from, to], reused as the window slides. */
  #advance(from: number, to: number): void {
    const count = to - from;
    const windowBits = this.#windowBits;
    if (count >= windowBits) {
      this.#words.fill(0);
      return;
    }
    const start = (from + 1) % windowBits;
    const end = start + count; // exclusive, may wrap past windowBits
    if (end <= windowBits) {
      this.#clearLinear(start, end);
    } else {
      this.#clearLinear(start, windowBits);
      this.#clearLinear(0, end - windowBits);
    }
  }

  /** Clears bit positions [from, to) with 0 ≤ from < to ≤ windowBits, a word at a time. */
  #clearLinear(from: number, to: number): void {
    const words = this.#words;
    const last = to - 1;
    const firstWord = from >>> 5;
    const lastWord = last >>> 5;
    const headMask = 0xffffffff << (from & 31); // bits >= from within firstWord
    const tailMask = 0xffffffff >>> (31 - (last & 31)); // bits <= last within lastWord
    if (firstWord === lastWord) {
      words[firstWord] = words[firstWord]! & ~(headMask & tailMask);
      return;
    }
    words[firstWord] = words[firstWord]! & ~headMask;
    if (lastWord > firstWord + 1) words.fill(0, firstWord + 1, lastWord);
    words[lastWord] = words[lastWord]! & ~tailMask;
  }
}
