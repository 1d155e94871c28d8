/**
 * A token bucket per source address, for `--rate-limit` on UDP: each source
 * may send `rate` datagrams per second (bursts up to `rate`); the rest are
 * dropped and counted. Memory is bounded: past `maxSources` tracked sources
 * the table is cleared (everyone starts with a full bucket again).
 *
 * @example
 * ```ts
 * import { RateLimiter } from "./rate_limiter.ts";
 *
 * const limiter = new RateLimiter(100);
 * limiter.take("127.0.0.1", performance.now()); // true until the bucket is empty
 * ```
 *
 * @module
 */

/** Options of {@linkcode RateLimiter}. */
export interface RateLimiterOptions {
  /**
   * Sources tracked at most before the table is reset.
   * @default {65536}
   */
  maxSources?: number;
}

/** Per-source token buckets. */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #max: number;

  /** @param rate Datagrams per second per source, at least 1 (a bucket must hold one token). */
  constructor(readonly rate: number, options: RateLimiterOptions = {}) {
    if (!(rate >= 1)) throw new RangeError(`rate must be at least 1, got ${rate}`);
    this.#max = options.maxSources ?? 65536;
  }

  /** Take one token for `source` at time `now` (ms); false when over the limit. */
  take(source: string, now: number): boolean {
    let bucket = this.#buckets.get(source);
    if (!bucket) {
      if (this.#buckets.size >= this.#max) this.#buckets.clear();
      bucket = { tokens: this.rate, at: now };
      this.#buckets.set(source, bucket);
    } else {
      bucket.tokens = Math.min(this.rate, bucket.tokens + ((now - bucket.at) * this.rate) / 1000);
      bucket.at = now;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
