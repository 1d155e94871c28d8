/**
 * Fixed-memory latency histogram with bounded relative error on percentiles.
 *
 * Values (milliseconds, non-negative floats) fall into log-linear buckets:
 * with `γ = 1 + 2 · relativeError`, bucket `k` covers
 * `[minValueMs · γ^k, minValueMs · γ^(k+1))` and is represented by the
 * harmonic mean of its bounds, `2 · lo · hi / (lo + hi)`, which is within a
 * relative distance of `(γ - 1) / (γ + 1) = relativeError / (1 + relativeError)`
 * of every value in the bucket. With the defaults (1 %, range 1 µs … 1e6 ms)
 * that is 1047 buckets (two `Float64Array`s, about 16 KiB), whatever the
 * number of samples.
 *
 * Guarantees:
 * - `min`, `max` and `count` are exact; `sum` and `mean` are the plain
 *   floating-point running sum and mean, free of any bucketing error.
 * - `percentile(p)` uses nearest rank, `rank = max(1, ceil(p · count / 100))`,
 *   and returns a value within `relativeError` of the exact nearest-rank
 *   sample for samples in `[minValueMs, maxValueMs]`. Rank 1 returns the exact
 *   minimum and rank `count` the exact maximum; every result is clamped to
 *   `[min, max]`, so a constant or single-sample input is reported exactly.
 * - Values below `minValueMs` (including 0) share bucket 0: they are reported
 *   with an absolute error of at most about `minValueMs` (1 µs by default).
 *   Values above `maxValueMs` share the last bucket: only `max` stays exact.
 *
 * @example
 * ```ts
 * import { LatencyHistogram } from "./histogram.ts";
 *
 * const h = new LatencyHistogram();
 * for (const rtt of [1.2, 1.5, 1.1, 9.8, 1.3]) h.record(rtt);
 * console.log(h.percentile(50)); // ≈ 1.3 (within 1 %)
 * console.log(h.summary()); // { min: 1.1, mean: 2.98, p50: ~1.3, …, max: 9.8 }
 * ```
 *
 * @module
 */

/** Options for {@linkcode LatencyHistogram}. */
export interface LatencyHistogramOptions {
  /**
   * Maximum relative error of a reported percentile, in (0, 0.5].
   *
   * @default {0.01}
   */
  relativeError?: number;
  /**
   * Smallest value (ms) resolved with the relative-error guarantee; smaller
   * values go to bucket 0.
   *
   * @default {0.001}
   */
  minValueMs?: number;
  /**
   * Largest value (ms) resolved with the relative-error guarantee; larger
   * values go to the last bucket.
   *
   * @default {1e6}
   */
  maxValueMs?: number;
}

/** Summary returned by {@linkcode LatencyHistogram.summary}; every field is `null` when empty. */
export interface LatencySummary {
  /** Exact minimum. */
  min: number | null;
  /** Exact arithmetic mean. */
  mean: number | null;
  /** 50th percentile (median). */
  p50: number | null;
  /** 90th percentile. */
  p90: number | null;
  /** 99th percentile. */
  p99: number | null;
  /** 99.9th percentile. */
  p999: number | null;
  /** Exact maximum. */
  max: number | null;
}

/**
 * Log-linear latency histogram; {@linkcode record} allocates nothing and
 * memory does not depend on the number of samples.
 */
export class LatencyHistogram {
  readonly #relativeError: number;
  readonly #minValue: number;
  readonly #maxValue: number;
  readonly #invLogGamma: number;
  readonly #counts: Float64Array;
  readonly #representatives: Float64Array;
  #count = 0;
  #sum = 0;
  #min = Infinity;
  #max = -Infinity;

  /**
   * Creates an empty histogram; all memory is allocated here.
   *
   * @param options Error bound and value range; see {@linkcode LatencyHistogramOptions}.
   * @throws {RangeError} on an invalid error bound or value range.
   */
  constructor(options: LatencyHistogramOptions = {}) {
    const relativeError = options.relativeError ?? 0.01;
    const minValue = options.minValueMs ?? 0.001;
    const maxValue = options.maxValueMs ?? 1e6;
    if (!(relativeError > 0 && relativeError <= 0.5)) {
      throw new RangeError(`relativeError must be in (0, 0.5], got ${relativeError}`);
    }
    if (!(minValue > 0 && Number.isFinite(maxValue) && maxValue > minValue)) {
      throw new RangeError(
        `need 0 < minValueMs < maxValueMs < Infinity, got ${minValue} and ${maxValue}`,
      );
    }
    const gamma = 1 + 2 * relativeError;
    this.#relativeError = relativeError;
    this.#minValue = minValue;
    this.#maxValue = maxValue;
    this.#invLogGamma = 1 / Math.log(gamma);
    const bucketCount = Math.floor(Math.log(maxValue / minValue) * this.#invLogGamma) + 1;
    this.#counts = new Float64Array(bucketCount);
    this.#representatives = new Float64Array(bucketCount);
    for (let k = 0; k < bucketCount; k++) {
      const lo = minValue * gamma ** k;
      this.#representatives[k] = (2 * lo * gamma) / (1 + gamma); // 2·lo·hi / (lo + hi)
    }
  }

  /** Maximum relative error of reported percentiles. */
  get relativeError(): number {
    return this.#relativeError;
  }

  /** Number of buckets (fixed at construction). */
  get bucketCount(): number {
    return this.#counts.length;
  }

  /** Number of recorded values. */
  get count(): number {
    return this.#count;
  }

  /** Exact sum of recorded values (ms). */
  get sum(): number {
    return this.#sum;
  }

  /** Exact minimum, or `null` when empty. */
  get min(): number | null {
    return this.#count === 0 ? null : this.#min;
  }

  /** Exact maximum, or `null` when empty. */
  get max(): number | null {
    return this.#count === 0 ? null : this.#max;
  }

  /** Exact mean, or `null` when empty. */
  get mean(): number | null {
    return this.#count === 0 ? null : this.#sum / this.#count;
  }

  /**
   * Records one value in milliseconds.
   *
   * @throws {RangeError} if `valueMs` is negative, NaN or infinite.
   */
  record(valueMs: number): void {
    if (!(valueMs >= 0 && valueMs < Infinity)) {
      throw new RangeError(`value must be a finite non-negative number, got ${valueMs}`);
    }
    let index = 0;
    if (valueMs > this.#minValue) {
      index = Math.floor(Math.log(valueMs / this.#minValue) * this.#invLogGamma);
      const last = this.#counts.length - 1;
      if (index > last) index = last;
    }
    this.#counts[index] = this.#counts[index]! + 1;
    this.#count++;
    this.#sum += valueMs;
    if (valueMs < this.#min) this.#min = valueMs;
    if (valueMs > this.#max) this.#max = valueMs;
  }

  /**
   * Nearest-rank percentile: the value of rank `max(1, ceil(p · count / 100))`
   * in sorted order, within `relativeError`, clamped to `[min, max]`.
   *
   * @param p Percentile in [0, 100].
   * @returns The estimate, or `null` when the histogram is empty.
   * @throws {RangeError} if `p` is outside [0, 100].
   */
  percentile(p: number): number | null {
    if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in [0, 100], got ${p}`);
    const count = this.#count;
    if (count === 0) return null;
    let rank = Math.ceil((p * count) / 100);
    if (rank < 1) rank = 1;
    if (rank === 1) return this.#min;
    if (rank >= count) return this.#max;
    const counts = this.#counts;
    let cumulative = 0;
    for (let k = 0; k < counts.length; k++) {
      cumulative += counts[k]!;
      if (cumulative >= rank) {
        const rep = this.#representatives[k]!;
        return rep < this.#min ? this.#min : rep > this.#max ? this.#max : rep;
      }
    }
    return this.#max; // unreachable: the counts sum to `count`
  }

  /** Exact min/mean/max plus p50, p90, p99 and p99.9 estimates; all `null` when empty. */
  summary(): LatencySummary {
    return {
      min: this.min,
      mean: this.mean,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      p999: this.percentile(99.9),
      max: this.max,
    };
  }

  /**
   * Adds every value recorded in `other` to this histogram.
   *
   * @throws {RangeError} if `other` was built with different options.
   */
  merge(other: LatencyHistogram): void {
    if (
      other.#relativeError !== this.#relativeError || other.#minValue !== this.#minValue ||
      other.#maxValue !== this.#maxValue
    ) {
      throw new RangeError("cannot merge histograms built with different options");
    }
    if (other.#count === 0) return;
    const counts = this.#counts;
    const otherCounts = other.#counts;
    for (let k = 0; k < counts.length; k++) counts[k] = counts[k]! + otherCounts[k]!;
    this.#count += other.#count;
    this.#sum += other.#sum;
    if (other.#min < this.#min) this.#min = other.#min;
    if (other.#max > this.#max) this.#max = other.#max;
  }

  /** Forgets every recorded value. */
  reset(): void {
    this.#counts.fill(0);
    this.#count = 0;
    this.#sum = 0;
    this.#min = Infinity;
    this.#max = -Infinity;
  }
}
