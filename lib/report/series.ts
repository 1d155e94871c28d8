/**
 * A probe run summarised over time, for pictures: per time bucket (by the
 * time each probe was SENT) the exact counts of probes sent, echoed, lost,
 * echoed out of order and duplicated, and the RTT min, p50, p99 and max of
 * the probes sent in it; plus the whole run's RTT percentile curve.
 *
 * Memory is bounded whatever the run's length: at most `maxBuckets` buckets;
 * when the run outgrows them, neighbours merge pairwise and the bucket width
 * doubles. Counts stay exact through merges, so the buckets always add up to
 * the run's totals (`sent`, `received`, `lost = sent - received`, out of
 * order, duplicates), which the report prints beside them. Percentiles per
 * bucket come from a small log histogram (within 5 %); min and max are exact.
 *
 * It is fed by the probe run's sample hooks (`onSent`, `onSample` of
 * `runProbe`) and never looks at a runner: its output,
 * {@linkcode ProbeSeriesData}, is plain data that presenters read.
 *
 * @example
 * ```ts
 * import { ProbeSeries } from "./series.ts";
 *
 * const series = new ProbeSeries("udp");
 * series.sent(0, 1000);
 * series.sent(1, 1001);
 * series.sample(0, 1000, 0.25, "new");
 * const data = series.data();
 * console.log(data.totals); // { sent: 2, received: 1, lost: 1, outOfOrder: 0, duplicates: 0 }
 * ```
 *
 * @module
 */

import { LatencyHistogram } from "../stats/histogram.ts";
import type { SequenceClass } from "../stats/sequence_tracker.ts";

/** One time bucket of a probe run; counts are of probes SENT in it. */
export interface RttBucket {
  /** Seconds from the first send. */
  startS: number;
  endS: number;
  sent: number;
  /** Distinct probes echoed. */
  received: number;
  /** `sent - received`: never echoed. */
  lost: number;
  /** Echoes that arrived after one of a later probe. */
  outOfOrder: number;
  /** Second and later echoes. */
  duplicates: number;
  /** RTT of the distinct echoes, ms; null when none came back. */
  min: number | null;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/** The counts of a whole run: the sums of every bucket's. */
export interface SeriesTotals {
  sent: number;
  received: number;
  lost: number;
  outOfOrder: number;
  duplicates: number;
}

/** What a presenter draws: buckets, totals, and the RTT percentile curve. */
export interface ProbeSeriesData {
  transport: "tcp" | "udp";
  /** Width of every bucket, seconds. */
  bucketS: number;
  buckets: RttBucket[];
  totals: SeriesTotals;
  /** RTT at each percentile of the whole run (ms), for a distribution plot. */
  percentiles: { p: number; ms: number }[];
}

/** Options of {@linkcode ProbeSeries}. */
export interface ProbeSeriesOptions {
  /**
   * Width of a bucket at the start, ms; doubles as needed.
   * @default {10}
   */
  bucketMs?: number;
  /**
   * Buckets at most (an even number).
   * @default {120}
   */
  maxBuckets?: number;
}

/** Percentiles of the distribution curve: dense near the tail. */
const CURVE_PERCENTILES: readonly number[] = [
  0,
  1,
  2,
  5,
  10,
  20,
  30,
  40,
  50,
  60,
  70,
  80,
  90,
  95,
  97,
  98,
  99,
  99.5,
  99.8,
  99.9,
  99.95,
  99.99,
  99.999,
  100,
];

const BUCKET_HISTOGRAM = { relativeError: 0.05 };

/** Records one probe run's samples into bounded time buckets. */
export class ProbeSeries {
  #width: number;
  readonly #max: number;
  #origin: number | undefined;
  #sent: number[] = [];
  #received: number[] = [];
  #outOfOrder: number[] = [];
  #duplicates: number[] = [];
  #rtt: (LatencyHistogram | undefined)[] = [];
  readonly #all = new LatencyHistogram();

  constructor(readonly transport: "tcp" | "udp", options: ProbeSeriesOptions = {}) {
    this.#width = options.bucketMs ?? 10;
    this.#max = Math.max(2, (options.maxBuckets ?? 120) & ~1);
    if (!(this.#width > 0)) throw new RangeError(`bucketMs must be > 0, got ${this.#width}`);
  }

  /** The bucket of a send time, growing the buckets (and merging them) as needed. */
  #bucket(sentAtMs: number): number {
    this.#origin ??= sentAtMs;
    let index = Math.max(0, Math.floor((sentAtMs - this.#origin) / this.#width));
    while (index >= this.#max) {
      this.#merge();
      index = Math.max(0, Math.floor((sentAtMs - this.#origin) / this.#width));
    }
    while (this.#sent.length <= index) {
      this.#sent.push(0);
      this.#received.push(0);
      this.#outOfOrder.push(0);
      this.#duplicates.push(0);
      this.#rtt.push(undefined);
    }
    return index;
  }

  /** Halve the number of buckets: each pair becomes one of twice the width. */
  #merge(): void {
    const pairs = <T>(xs: T[], join: (a: T, b: T | undefined) => T): T[] => {
      const out: T[] = [];
      for (let i = 0; i < xs.length; i += 2) out.push(join(xs[i]!, xs[i + 1]));
      return out;
    };
    const add = (a: number, b: number | undefined) => a + (b ?? 0);
    this.#sent = pairs(this.#sent, add);
    this.#received = pairs(this.#received, add);
    this.#outOfOrder = pairs(this.#outOfOrder, add);
    this.#duplicates = pairs(this.#duplicates, add);
    this.#rtt = pairs(this.#rtt, (a, b) => {
      if (a === undefined) return b;
      if (b !== undefined) a.merge(b);
      return a;
    });
    this.#width *= 2;
  }

  /** A probe was sent (hook: `onSent`). */
  sent = (_seq: number, sentAtMs: number): void => {
    const i = this.#bucket(sentAtMs);
    this.#sent[i]!++;
  };

  /** An echo came back (hook: `onSample`); `kind` as the sequence tracker classed it. */
  sample = (_seq: number, sentAtMs: number, rttMs: number, kind: SequenceClass): void => {
    const i = this.#bucket(sentAtMs);
    if (kind === "duplicate") {
      this.#duplicates[i]!++;
      return;
    }
    this.#received[i]!++;
    if (kind === "out_of_order" || kind === "stale") this.#outOfOrder[i]!++;
    let h = this.#rtt[i];
    if (h === undefined) this.#rtt[i] = h = new LatencyHistogram(BUCKET_HISTOGRAM);
    h.record(rttMs);
    this.#all.record(rttMs);
  };

  /** The series as plain data. */
  data(): ProbeSeriesData {
    const totals: SeriesTotals = { sent: 0, received: 0, lost: 0, outOfOrder: 0, duplicates: 0 };
    const buckets = this.#sent.map((sent, i): RttBucket => {
      const received = this.#received[i]!;
      const h = this.#rtt[i];
      const bucket: RttBucket = {
        startS: (i * this.#width) / 1000,
        endS: ((i + 1) * this.#width) / 1000,
        sent,
        received,
        lost: Math.max(0, sent - received),
        outOfOrder: this.#outOfOrder[i]!,
        duplicates: this.#duplicates[i]!,
        min: h?.min ?? null,
        p50: h?.percentile(50) ?? null,
        p99: h?.percentile(99) ?? null,
        max: h?.max ?? null,
      };
      totals.sent += bucket.sent;
      totals.received += bucket.received;
      totals.lost += bucket.lost;
      totals.outOfOrder += bucket.outOfOrder;
      totals.duplicates += bucket.duplicates;
      return bucket;
    });
    const percentiles = this.#all.count === 0 ? [] : CURVE_PERCENTILES.map((p) => ({
      p,
      ms: this.#all.percentile(p)!,
    }));
    return { transport: this.transport, bucketS: this.#width / 1000, buckets, totals, percentiles };
  }
}
