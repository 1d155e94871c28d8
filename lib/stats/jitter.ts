/**
 * RFC 3550 interarrival jitter (§6.4.1, reference code in §A.8), in
 * milliseconds.
 *
 * For each packet the transit time is `arrival - send`. The first packet only
 * seeds the previous transit time (jitter stays 0); every later packet
 * computes `D = |transit - prevTransit|` and smooths `J += (D - J) / 16`.
 * Because only differences of transit times are used, a constant offset
 * between the sender's and receiver's clocks cancels out: the two timestamps
 * may come from different, unsynchronised clocks (e.g. the sender's
 * `performance.now()` echoed back and the receiver's `performance.now()`).
 *
 * Unlike the RFC reference code, which works in integer RTP timestamp units,
 * this estimator keeps full floating-point precision.
 *
 * @example
 * ```ts
 * import { JitterEstimator } from "./jitter.ts";
 *
 * const jitter = new JitterEstimator();
 * jitter.update(0, 100);
 * jitter.update(20, 125); // transit 105 vs 100: D = 5, J = 5 / 16
 * console.log(jitter.jitterMs); // 0.3125
 * ```
 *
 * @module
 */

/**
 * Streaming RFC 3550 interarrival jitter estimator. {@linkcode update}
 * allocates nothing.
 */
export class JitterEstimator {
  #jitter = 0;
  #prevTransit = 0;
  #samples = 0;

  /** Current smoothed interarrival jitter in milliseconds (0 until two packets were seen). */
  get jitterMs(): number {
    return this.#jitter;
  }

  /** Number of packets passed to {@linkcode update} (including the first, seeding one). */
  get samples(): number {
    return this.#samples;
  }

  /**
   * Accounts for one packet sent at `sendTimeMs` (sender clock) and received
   * at `arrivalTimeMs` (receiver clock). Feed packets in arrival order.
   *
   * @throws {RangeError} if either time is not a finite number.
   */
  update(sendTimeMs: number, arrivalTimeMs: number): void {
    const transit = arrivalTimeMs - sendTimeMs;
    if (!Number.isFinite(transit)) {
      throw new RangeError(
        `send and arrival times must be finite, got ${sendTimeMs} and ${arrivalTimeMs}`,
      );
    }
    if (this.#samples > 0) {
      const d = Math.abs(transit - this.#prevTransit);
      this.#jitter += (d - this.#jitter) / 16;
    }
    this.#prevTransit = transit;
    this.#samples++;
  }

  /** Forgets every packet seen, as if newly constructed. */
  reset(): void {
    this.#jitter = 0;
    this.#prevTransit = 0;
    this.#samples = 0;
  }
}
