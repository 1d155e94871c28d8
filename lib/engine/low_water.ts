/**
 * When a TCP receiver raises its socket's receive low-water mark: only while
 * the stream runs fast enough to fill the mark within a millisecond, so a
 * fast stream is read in fewer, fuller reads (fewer wake-ups of the event
 * loop) while a slow one is still counted as it arrives. The rate is measured
 * over windows of the receiver's own reads; the mark goes back to 1 byte once
 * filling it would take more than a few milliseconds. Whatever the mark, the
 * end of the stream wakes the reader, so every byte is counted.
 *
 * @example
 * ```ts
 * import { LowWaterPolicy } from "./low_water.ts";
 *
 * const marks: number[] = [];
 * const policy = new LowWaterPolicy(() => ({
 *   bytes: 1,
 *   set: (bytes) => (marks.push(bytes), true),
 * }));
 * for (let ms = 0; ms <= 100; ms++) policy.onRead(1 << 20, ms); // 1 MiB per ms
 * console.log(marks); // [131072]
 * ```
 *
 * @module
 */

import type { Engine, ReceiveLowWater } from "./types.ts";

/** Options of {@linkcode LowWaterPolicy}. */
export interface LowWaterOptions {
  /** The mark while the stream runs fast (bytes). @default {131072} */
  bytes?: number;
  /** The window the rate is measured over (ms). @default {50} */
  windowMs?: number;
  /** Raise the mark once the stream fills it within this many ms. @default {1} */
  raiseWithinMs?: number;
  /** Put it back to 1 once filling it would take longer than this many ms. @default {4} */
  dropAfterMs?: number;
}

/** Decides, read by read, the receive low-water mark of one TCP stream. */
export class LowWaterPolicy {
  /** The largest mark set so far (0: never raised). */
  raised = 0;
  readonly #open: () => ReceiveLowWater | undefined;
  /** The socket's mark, once opened; null when it could not be (never asked again). */
  #mark: ReceiveLowWater | undefined | null;
  readonly #bytes: number;
  readonly #windowMs: number;
  readonly #raiseRate: number;
  readonly #dropRate: number;
  #windowStart = -1;
  #windowBytes = 0;

  /**
   * The policy of `conn` on `engine`, or undefined where the engine cannot set
   * the mark (the deno engine, or none).
   */
  static for(engine: Engine | undefined, conn: Deno.Conn): LowWaterPolicy | undefined {
    const open = engine?.receiveLowWater;
    return open && new LowWaterPolicy(() => open.call(engine, conn));
  }

  /** `open` is called the first time the stream runs fast (it may scan descriptors: once). */
  constructor(open: () => ReceiveLowWater | undefined, options: LowWaterOptions = {}) {
    this.#open = open;
    this.#bytes = options.bytes ?? 128 * 1024;
    this.#windowMs = options.windowMs ?? 50;
    this.#raiseRate = this.#bytes / (options.raiseWithinMs ?? 1);
    this.#dropRate = this.#bytes / (options.dropAfterMs ?? 4);
  }

  /** Count `n` bytes read at `now` (ms); at the end of each window, raise or drop the mark. */
  onRead(n: number, now: number): void {
    if (this.#windowStart < 0) {
      this.#windowStart = now;
      return;
    }
    this.#windowBytes += n;
    const elapsed = now - this.#windowStart;
    if (elapsed < this.#windowMs) return;
    const rate = this.#windowBytes / elapsed;
    this.#windowStart = now;
    this.#windowBytes = 0;
    if (this.#mark === null) return;
    const current = this.#mark?.bytes ?? 1;
    if (current === 1 && rate >= this.#raiseRate) {
      this.#mark ??= this.#open() ?? null;
      if (this.#mark?.set(this.#bytes)) this.raised = Math.max(this.raised, this.#bytes);
    } else if (current > 1 && rate < this.#dropRate) {
      this.#mark?.set(1);
    }
  }
}
