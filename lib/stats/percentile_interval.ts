/**
 * How far a percentile of measured round trips could move from run to run:
 * a distribution-free confidence interval from the order statistics (the
 * sample at rank `n·q ± z·√(n·q·(1−q))` bounds the true `q`-quantile), read
 * off the latency histogram. Round trips are not independent (one stall
 * delays several probes in a row), so the sample count is discounted by
 * {@linkcode AUTOCORRELATION_FACTOR} before the interval is taken: wider,
 * and honest about bursts.
 *
 * @example
 * ```ts
 * import { LatencyHistogram } from "./histogram.ts";
 * import { percentileInterval } from "./percentile_interval.ts";
 *
 * const h = new LatencyHistogram();
 * for (let i = 1; i <= 10_000; i++) h.record(i / 1000);
 * console.log(percentileInterval(h, 99)); // { lo: ≈ 9.8, hi: ≈ 9.97 }
 * ```
 *
 * @module
 */

/** What {@linkcode percentileInterval} reads: a histogram's count and percentiles. */
export interface PercentileSource {
  readonly count: number;
  percentile(p: number): number | null;
}

/** A range a percentile lies in, in the source's unit (ms). */
export interface PercentileInterval {
  lo: number;
  hi: number;
}

/** Standard normal quantile for a two-sided 99% interval. */
export const Z_99 = 2.576;
/**
 * Round trips count as this many times fewer independent samples than there
 * are (a stall or a burst moves several consecutive probes together).
 */
export const AUTOCORRELATION_FACTOR = 4;

/**
 * The interval the `p`-th percentile (0–100) lies in with about 99%
 * confidence, or `null` with no samples.
 */
export function percentileInterval(source: PercentileSource, p: number): PercentileInterval | null {
  const n = source.count;
  if (n === 0) return null;
  const q = p / 100;
  const effective = n / AUTOCORRELATION_FACTOR;
  const half = Z_99 * Math.sqrt((q * (1 - q)) / effective);
  const lo = source.percentile(Math.max(0, q - half) * 100);
  const hi = source.percentile(Math.min(1, q + half) * 100);
  return lo === null || hi === null ? null : { lo, hi };
}
