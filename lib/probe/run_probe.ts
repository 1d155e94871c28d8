/**
 * One probe run: send sequence-numbered, timestamped probes to an echo server
 * at an even pace, match the echoes, and count exactly what came back, in
 * what order, and how late.
 *
 * Counting: a bitmap of received sequence numbers ({@linkcode SequenceTracker})
 * separates loss, reordering and duplication; RTTs go into a histogram with
 * ≤ 1% relative error; jitter is RFC 3550's over echo arrival against send
 * time. Memory is bounded whatever the count.
 *
 * @example
 * ```ts
 * import { runProbe } from "./run_probe.ts";
 *
 * const report = await runProbe({ transport: "udp", hostname: "127.0.0.1", port: 5050 }, {
 *   count: 1000,
 *   durationMs: undefined,
 *   rate: 1000,
 *   size: 64,
 *   timeoutMs: 2000,
 *   intervalMs: 0,
 *   outstanding: 0,
 * });
 * console.log(report.lost, report.rtt.p99);
 * ```
 *
 * @module
 */

import { formatEndpoint, type IpEndpoint } from "../address.ts";
import { waitUntil } from "../pace.ts";
import type { ProbeWorkload } from "../config.ts";
import { formatDuration } from "../duration.ts";
import { deadline } from "../deadline.ts";
import { closedWithoutReply, NetkitError, PartialRunError, systemDetail } from "../errors.ts";
import { isClosedError } from "../io.ts";
import { formatCount, formatCountOf } from "../units.ts";
import { LatencyHistogram, type LatencySummary } from "../stats/histogram.ts";
import { JitterEstimator } from "../stats/jitter.ts";
import { type PercentileInterval, percentileInterval } from "../stats/percentile_interval.ts";
import { type SequenceClass, SequenceTracker } from "../stats/sequence_tracker.ts";
import { type DecodedProbe, decodeProbe, ProbeEncoder } from "./codec.ts";
import { openProbeTransport, type ProbeTransport } from "./transport.ts";
import {
  isWorkerPingPong,
  type PingPongWorker,
  startPingPongWorker,
  takePreparedWorker,
} from "./pingpong.ts";
import type { PingPongBatch } from "./pingpong_worker.ts";
import type { EngineSelection } from "../engine/select.ts";
import type { EngineUse } from "../engine/types.ts";

/** What one probe run measured. Every counter counts events that happened. */
export interface ProbeReport {
  transport: "tcp" | "udp";
  target: string;
  size: number;
  /** Probes per second asked for; 0 = as fast as possible. */
  rateRequested: number;
  sent: number;
  /** Distinct probes echoed back (duplicates not included). */
  received: number;
  /** Sent but not echoed within the timeout after the last send. */
  lost: number;
  /** `lost / sent` as a fraction (0 when nothing was sent). */
  lostFraction: number;
  /** Echoes that arrived after one with a higher sequence number. */
  outOfOrder: number;
  /** Second and later echoes of one probe. */
  duplicates: number;
  /** Echoes too far behind the newest to classify (beyond the bitmap window). */
  stale: number;
  /** Echoes that were not our probes, or corrupt or truncated ones. */
  malformed: number;
  /** Round-trip times in milliseconds, from every distinct echo. */
  rtt: LatencySummary;
  /**
   * Where p50, p99 and p99.9 could lie from run to run (about 99% confidence,
   * see `percentileInterval`); what findings call "beyond noise".
   */
  rttInterval?: RttIntervals;
  /**
   * The run cut into {@linkcode SUB_RUNS} consecutive sub-runs (by sequence
   * number, or by send time in a timed run): each one's echo count and RTT
   * percentiles, so findings can tell a difference present throughout from a
   * stall in a few.
   */
  rttSubRuns?: SubRunRtt[];
  /** RFC 3550 interarrival jitter in ms; `null` with fewer than two echoes. */
  jitterMs: number | null;
  /** Goodput: distinct echoed probe bytes × 8 over the elapsed time. */
  bitsPerSecond: number;
  /** Achieved send rate in probes per second. */
  ratePps: number;
  /** First send to the last echo (or the end of sending), seconds. */
  elapsedS: number;
  /** Whether a stop (Ctrl-C, SIGTERM) cut the run short: the figures cover what ran. */
  interrupted?: boolean;
  /** The engine that moved the probes (TCP: Deno's sockets, or the ping-pong Worker's libc calls). */
  engine?: EngineUse;
}

/** Confidence intervals of the RTT percentiles findings compare; `null` without echoes. */
export interface RttIntervals {
  p50: PercentileInterval | null;
  p99: PercentileInterval | null;
  p999: PercentileInterval | null;
}

/** How many consecutive sub-runs a probe run's RTTs are also counted in. */
export const SUB_RUNS = 10;

/** One sub-run's echoes: how many, and their RTT percentiles (ms; `null` without echoes). */
export interface SubRunRtt {
  count: number;
  p50: number | null;
  p99: number | null;
  p999: number | null;
}

/** Progress over one reporting interval. */
export interface ProbeInterval {
  transport: "tcp" | "udp";
  startS: number;
  endS: number;
  sent: number;
  received: number;
  outOfOrder: number;
  duplicates: number;
  rtt: LatencySummary;
  jitterMs: number | null;
}

/** The live counters of a run under way, for a progress display. */
export interface ProbeLive {
  sent: number;
  /** Distinct probes echoed so far. */
  received: number;
  /** Seconds since the first send. */
  elapsedS: number;
}

/** Options of {@linkcode runProbe}. */
export interface RunProbeOptions {
  /**
   * Called once as sending starts, with a function that reads the live counters.
   * @default {undefined}
   */
  onStart?: (live: () => ProbeLive) => void;
  /**
   * Called at every `workload.intervalMs`.
   * @default {undefined}
   */
  onInterval?: (interval: ProbeInterval) => void;
  /**
   * Per-probe hook: called as each probe is sent, with the send time it carries
   * (`performance.now()` ms). For a series recorder such as `lib/report/series.ts`.
   * @default {undefined}
   */
  onSent?: (seq: number, sentAtMs: number) => void;
  /**
   * Per-echo hook: every valid echo, with its probe's send time, its RTT (ms)
   * and how it was classed (`"duplicate"` for second and later echoes).
   * @default {undefined}
   */
  onSample?: (seq: number, sentAtMs: number, rttMs: number, kind: SequenceClass) => void;
  /**
   * Aborting stops sending; echoes already on their way are still waited for.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Aborting stops waiting for echoes in flight too (a second Ctrl-C).
   * @default {undefined}
   */
  now?: AbortSignal;
  /**
   * The engine for UDP probes and for a TCP ping-pong (`--engine`, chosen by
   * `selectEngine`): on the native one a ping-pong runs in the Worker.
   * @default {the deno engine}
   */
  engine?: EngineSelection;
  /**
   * A ping-pong (`--outstanding 1`, unpaced), UDP or TCP, on the native
   * engine runs in a Worker blocking in libc's `send`/`recv`
   * (./pingpong_worker.ts); false keeps it on the event loop.
   * @default {true}
   */
  worker?: boolean;
  /**
   * Told once which path a ping-pong takes (the Worker, or the event loop and
   * why): for `-v`.
   * @default {undefined}
   */
  onPath?: (line: string) => void;
}

/**
 * Run one probe workload against an echo server.
 *
 * @throws {PartialRunError} carrying the report of what ran, when the run
 * failed part-way (the server went away, stopped echoing).
 */
export async function runProbe(
  endpoint: IpEndpoint,
  workload: ProbeWorkload,
  options: RunProbeOptions = {},
): Promise<ProbeReport> {
  const runId = crypto.getRandomValues(new Uint32Array(1))[0] ?? 1;
  const pingPong = isWorkerPingPong(workload);
  const transport = await openProbeTransport(endpoint, {
    size: workload.size,
    timeoutMs: workload.timeoutMs,
    runId,
    ...(options.engine && { engine: options.engine }),
    pingPong: pingPong && options.worker !== false,
  });
  let worker: PingPongWorker | undefined;
  try {
    const prepared = takePreparedWorker();
    let why = options.worker === false
      ? "asked for"
      : transport.noWorker ?? "no descriptor for the Worker";
    if (options.worker !== false && transport.fd !== undefined && pingPong) {
      worker = await (prepared ?? startPingPongWorker()).catch((err) => {
        why = `the Worker did not start: ${(err as Error).message}`;
        return undefined;
      });
    } else {
      (await prepared?.catch(() => undefined))?.terminate();
    }
    if (pingPong) {
      options.onPath?.(
        worker
          ? `ping-pong: blocking send/recv in a Worker on descriptor ${transport.fd}`
          : `ping-pong: on the event loop: ${why}`,
      );
    }
    return await new ProbeRun(endpoint, workload, transport, options, runId, worker).run();
  } finally {
    worker?.stop(true); // out of a blocking recv within a slice, before its socket closes
    worker?.terminate();
    transport.close();
  }
}

class ProbeRun {
  readonly encoder: ProbeEncoder;
  readonly tracker = new SequenceTracker();
  readonly rtt = new LatencyHistogram();
  readonly intervalRtt = new LatencyHistogram();
  readonly subRuns = Array.from({ length: SUB_RUNS }, () => new LatencyHistogram());
  startedAt = 0;
  readonly jitter = new JitterEstimator();
  readonly decoded: DecodedProbe = { seq: 0, sendTimeMs: 0 };
  sent = 0;
  malformed = 0;
  lastEchoAt = 0;
  lastProgressAt = performance.now();
  /**
   * Whether the watchdog applies: not while a wait bounded by the timeout
   * itself is under way (the final drain, a full `--outstanding` window),
   * which echoes arriving meanwhile must not turn back on.
   */
  watching = true;
  failure: unknown = undefined;
  /** The sender's current wait: settled true by the next echo, false by the ticker at `deadline`. */
  waiter: { deadline: number; resolve: (echoed: boolean) => void } | undefined;
  /** Window slots given up on after a timeout (`--outstanding`). */
  givenUp = 0;
  /** When the last probe was sent (the Worker's ping-pong: its end of sending). */
  lastSentAt = 0;
  /**
   * The Worker's ping-pong in place of the receiver: settled by the Worker's
   * end of a TCP stream (resolved: closed; rejected: reset), else once the run
   * is closing, so the receiver's end is judged in one place for both paths.
   */
  readonly workerEnded = Promise.withResolvers<void>();

  constructor(
    readonly endpoint: IpEndpoint,
    readonly workload: ProbeWorkload,
    readonly transport: ProbeTransport,
    readonly options: RunProbeOptions,
    readonly runId: number,
    readonly worker?: PingPongWorker,
  ) {
    this.encoder = new ProbeEncoder(workload.size, this.runId);
  }

  onEcho = (view: Uint8Array): void => this.onEchoAt(view, performance.now());

  /** An echo that arrived at `now` (ms, this thread's clock). */
  onEchoAt(view: Uint8Array, now: number): void {
    this.lastProgressAt = now;
    if (!decodeProbe(view, this.runId, this.decoded)) {
      this.malformed++;
      return;
    }
    this.onDecodedAt(this.decoded.seq, this.decoded.sendTimeMs, now);
  }

  /** A decoded echo (probe `seq`, sent at `sendTimeMs`, as it came back) that arrived at `now`. */
  onDecodedAt(seq: number, sendTimeMs: number, now: number): void {
    if (seq >= this.sent) {
      this.malformed++; // never sent: not ours, whatever it claims
      return;
    }
    const rtt = now - sendTimeMs;
    if (!(rtt >= 0 && rtt < Infinity)) {
      this.malformed++; // a send time in our future, or not a number: corrupted on the way
      return;
    }
    const kind = this.tracker.record(seq);
    this.options.onSample?.(seq, sendTimeMs, rtt, kind);
    if (kind === "duplicate") return;
    this.rtt.record(rtt);
    this.intervalRtt.record(rtt);
    this.subRuns[this.subRunOf(seq, sendTimeMs)]!.record(rtt);
    this.jitter.update(sendTimeMs, now);
    this.lastEchoAt = now;
    this.settleWait(true);
  }

  /** What the ping-pong Worker did since its last batch, counted as if this thread did it. */
  onBatch = (batch: PingPongBatch): void => {
    for (let i = 0; i < batch.sentAt.length; i++) {
      const seq = batch.firstSeq + i;
      this.sent = seq + 1;
      this.lastSentAt = batch.sentAt[i]!;
      this.options.onSent?.(seq, this.lastSentAt);
    }
    for (let j = 0; j < batch.echoAt.length; j++) {
      this.onDecodedAt(batch.echoSeq[j]!, batch.echoSentAt[j]!, batch.echoAt[j]!);
    }
    this.malformed += batch.malformed;
    this.givenUp += batch.givenUp;
    this.lastProgressAt = performance.now();
  };

  /**
   * The Worker's ping-pong, in place of the send loop and the receiver (it
   * drains too). Returns true when the TCP stream ended under it (the end is
   * then judged as the receiver's would be).
   */
  async runWorker(worker: PingPongWorker, start: number): Promise<boolean> {
    const { workload } = this;
    const signal = this.options.signal;
    const now = this.options.now;
    const stopSending = () => worker.stop(false);
    const stopNow = () => worker.stop(true);
    signal?.addEventListener("abort", stopSending);
    now?.addEventListener("abort", stopNow);
    try {
      if (signal?.aborted) return false;
      const done = await worker.run({
        transport: this.endpoint.transport,
        fd: this.transport.handOver?.() ?? this.transport.fd!,
        size: workload.size,
        runId: this.runId,
        count: workload.count ?? null,
        endBy: workload.durationMs !== undefined ? start + workload.durationMs : null,
        timeoutMs: workload.timeoutMs,
      }, this.onBatch);
      if (done.noEcho) {
        this.failure ??= new NetkitError(
          "timeout",
          `No echo from ${formatEndpoint(this.endpoint)} within ${
            formatDuration(workload.timeoutMs)
          }: is an echo server listening there?`,
        );
      } else if (done.stalled) {
        this.failure ??= this.stalled(); // as the watchdog says it on the event loop
      } else if (done.error !== undefined) {
        this.failure ??= new Error(done.error);
      }
      // TCP: a send into a broken connection fails as the event loop's write does; the
      // end of the stream (or a reset) is then what the receiver would have met.
      if (done.sendBroke !== undefined) {
        this.failure ??= done.sendBroke === "EPIPE"
          ? new Deno.errors.BrokenPipe(`send: ${done.sendBroke}`)
          : new Deno.errors.ConnectionReset(`send: ${done.sendBroke}`);
      }
      if (done.eof) {
        this.workerEnded.resolve();
        return true;
      }
      if (done.reset !== undefined) {
        this.workerEnded.reject(new Deno.errors.ConnectionReset(`recv: ${done.reset}`));
        return true;
      }
      return false;
    } finally {
      signal?.removeEventListener("abort", stopSending);
      now?.removeEventListener("abort", stopNow);
    }
  }

  /** A peer that stopped taking or echoing probes for a whole timeout. */
  stalled(): NetkitError {
    return new NetkitError(
      "timeout",
      `${formatEndpoint(this.endpoint)} stopped taking or echoing probes for ${
        formatDuration(this.workload.timeoutMs)
      } after ${this.sent} sent`,
    );
  }

  /** Which sub-run a probe belongs to: by its place in the count, or its send time in the duration. */
  subRunOf(seq: number, sendTimeMs: number): number {
    const { count, durationMs } = this.workload;
    const place = count !== undefined
      ? seq / count
      : durationMs !== undefined && durationMs > 0
      ? (sendTimeMs - this.startedAt) / durationMs
      : 0;
    return Math.min(SUB_RUNS - 1, Math.max(0, Math.floor(place * SUB_RUNS)));
  }

  /**
   * Wait for the next echo, at most `ms` (to the ticker's resolution). Returns
   * false on timeout. No timer is armed per wait: in a ping-pong that would cost
   * two timer operations per probe, measurable against a 40 µs round trip.
   */
  waitForEcho(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      this.waiter = { deadline: performance.now() + ms, resolve };
    });
  }

  /** End the current wait, if any. */
  settleWait(echoed: boolean): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve(echoed);
  }

  /** Called by the ticker: end a wait whose deadline passed. */
  checkWait(now: number): void {
    if (this.waiter && now >= this.waiter.deadline) this.settleWait(false);
  }

  async run(): Promise<ProbeReport> {
    const { workload, transport } = this;
    const where = formatEndpoint(this.endpoint);
    let closing = false;
    // A TCP connection that ended (closed or reset by the server) before one byte came back
    // was turned away, most likely by a limit: say so, over the sender's broken pipe too.
    const turnedAway = () => {
      const sendBroke = !(this.failure instanceof NetkitError) && isClosedError(this.failure);
      if (
        !closing && this.endpoint.transport === "tcp" && this.tracker.received === 0 &&
        this.malformed === 0 && (this.failure === undefined || sendBroke)
      ) {
        this.failure = closedWithoutReply(where);
        return true;
      }
      return false;
    };
    const wentAway = (how: string) =>
      new NetkitError(
        "network",
        `${where} went away: it ${how} after echoing ${formatCount(this.tracker.received)} of ${
          formatCountOf(this.sent, "probe")
        }`,
      );
    const worker = this.worker;
    // The Worker receives on its own thread, bounded by the timeout: no watchdog needed.
    if (worker) this.watching = false;
    const receiving =
      (worker ? this.workerEnded.promise : transport.receive(this.onEcho, () => this.malformed++))
        .then(
          () => {
            if (turnedAway()) return;
            if (!closing && this.tracker.received < this.sent) {
              this.failure ??= wentAway("closed the connection");
            }
          },
          (err) => {
            if (isClosedError(err) && turnedAway()) return;
            this.failure ??= isClosedError(err) ? wentAway("reset the connection") : err;
          },
        ).finally(() => this.settleWait(true));
    // Stopping sends wakes a full window's wait; a second stop ends the drain too.
    const signal = this.options.signal;
    const now = this.options.now;
    const wake = () => this.settleWait(false);
    signal?.addEventListener("abort", wake);
    now?.addEventListener("abort", wake);
    const start = performance.now();
    this.startedAt = start;
    this.options.onStart?.(() => ({
      sent: this.sent,
      received: this.tracker.received,
      elapsedS: (performance.now() - start) / 1000,
    }));
    let last = { at: start, sent: 0, received: 0, outOfOrder: 0, duplicates: 0 };
    const report = (at: number) => {
      this.options.onInterval?.({
        transport: this.endpoint.transport,
        startS: (last.at - start) / 1000,
        endS: (at - start) / 1000,
        sent: this.sent - last.sent,
        received: this.tracker.received - last.received,
        outOfOrder: this.tracker.outOfOrder - last.outOfOrder,
        duplicates: this.tracker.duplicates - last.duplicates,
        rtt: this.intervalRtt.summary(),
        jitterMs: this.jitter.samples > 1 ? this.jitter.jitterMs : null,
      });
      this.intervalRtt.reset();
      last = {
        at,
        sent: this.sent,
        received: this.tracker.received,
        outOfOrder: this.tracker.outOfOrder,
        duplicates: this.tracker.duplicates,
      };
    };
    const reporter = workload.intervalMs > 0 && this.options.onInterval
      ? setInterval(() => report(performance.now()), workload.intervalMs)
      : undefined;
    // A peer that stops reading or echoing must not hang the run.
    const watchdog = setInterval(() => {
      this.checkWait(performance.now());
      if (
        this.watching && performance.now() - this.lastProgressAt > workload.timeoutMs &&
        this.failure === undefined
      ) {
        this.failure = this.stalled();
        transport.close();
      }
    }, Math.max(5, Math.min(50, workload.timeoutMs / 8)));

    let sendEnd = start;
    try {
      try {
        if (!worker) await this.send(start);
        else if (await this.runWorker(worker, start)) await receiving; // judged as the receiver's end
      } catch (err) {
        this.failure ??= err;
      }
      sendEnd = worker ? Math.max(start, this.lastSentAt) : performance.now();
      // Wait for the last echoes: until all are back or the timeout passes.
      this.watching = false; // the drain is bounded by the timeout itself
      const drainBy = sendEnd + workload.timeoutMs;
      while (
        !worker && this.failure === undefined && this.tracker.received < this.sent && !now?.aborted
      ) {
        const left = drainBy - performance.now();
        if (left <= 0) break;
        await this.waitForEcho(left);
      }
    } finally {
      clearInterval(watchdog);
      signal?.removeEventListener("abort", wake);
      now?.removeEventListener("abort", wake);
      if (!worker && isClosedError(this.failure)) {
        // The connection broke under the sender: the receiver reads what came back before
        // the end, which it meets by itself (bounded by the timeout all the same).
        await deadline(receiving, workload.timeoutMs, () => new Error("drain")).catch(() => {});
      }
      closing = true;
      this.workerEnded.resolve(); // the Worker is done: nothing more to judge
      transport.close();
      await receiving;
      if (reporter !== undefined) {
        clearInterval(reporter);
        // The last, partial interval of a run that printed intervals: they add up to the
        // totals. (A run shorter than one interval prints none, only its report.)
        if (
          last.at > start && (this.sent !== last.sent || this.tracker.received !== last.received ||
            this.tracker.duplicates !== last.duplicates)
        ) {
          report(performance.now());
        }
      }
    }
    const end = Math.max(sendEnd, this.lastEchoAt);
    const elapsedS = (end - start) / 1000;
    const sendS = (sendEnd - start) / 1000;
    const received = this.tracker.received;
    const lost = this.tracker.lost(this.sent);
    return this.#finish({
      transport: this.endpoint.transport,
      target: where,
      size: workload.size,
      rateRequested: workload.rate,
      sent: this.sent,
      received,
      lost,
      lostFraction: this.sent > 0 ? lost / this.sent : 0,
      outOfOrder: this.tracker.outOfOrder,
      duplicates: this.tracker.duplicates,
      stale: this.tracker.stale,
      malformed: this.malformed,
      rtt: this.rtt.summary(),
      rttInterval: {
        p50: percentileInterval(this.rtt, 50),
        p99: percentileInterval(this.rtt, 99),
        p999: percentileInterval(this.rtt, 99.9),
      },
      rttSubRuns: this.subRuns.map((h) => ({
        count: h.count,
        p50: h.percentile(50),
        p99: h.percentile(99),
        p999: h.percentile(99.9),
      })),
      jitterMs: this.jitter.samples > 1 ? this.jitter.jitterMs : null,
      bitsPerSecond: elapsedS > 0 ? (received * workload.size * 8) / elapsedS : 0,
      ratePps: sendS > 0 ? this.sent / sendS : 0,
      elapsedS,
      interrupted: signal?.aborted === true,
      engine: this.worker ? transport.workerEngine ?? transport.engine : transport.engine,
    }, where);
  }

  /** The report so far, or the run's failure carrying it. */
  #finish(report: ProbeReport, where: string): ProbeReport {
    const failure = this.failure;
    if (failure === undefined) return report;
    if (failure instanceof NetkitError && failure.kind === "refused") {
      // Turned away (a server limit), or nothing listens on UDP (ICMP port unreachable)
      // before one echo: nothing came back to report.
      if (report.received === 0) throw failure;
      // A UDP listener that went away mid-run: what it answered, then why it stopped.
      throw new PartialRunError(
        new NetkitError(
          "refused",
          `nothing listens on ${where} any more: it went away after echoing ${
            formatCount(report.received)
          } of ${formatCountOf(report.sent, "probe")} (ICMP port unreachable)`,
        ),
        report,
      );
    }
    const error = failure instanceof NetkitError
      ? failure
      : isClosedError(failure)
      ? new NetkitError(
        "network",
        `${where} went away: it reset the connection after echoing ${
          formatCount(report.received)
        } of ${formatCountOf(report.sent, "probe")}`,
      )
      : new NetkitError(
        "network",
        `Probe run to ${where} failed after ${report.sent} probes: ${systemDetail(failure)}`,
        { cause: failure },
      );
    throw new PartialRunError(error, report);
  }

  /** The paced send loop. */
  async send(start: number): Promise<void> {
    const { workload, transport, encoder } = this;
    const size = workload.size;
    const total = workload.count ?? Number.POSITIVE_INFINITY;
    const endBy = workload.durationMs !== undefined
      ? start + workload.durationMs
      : Number.POSITIVE_INFINITY;
    const gap = workload.rate > 0 ? 1000 / workload.rate : 0;
    const batch = transport.batches
      ? new Uint8Array(Math.max(1, Math.floor(65536 / size)) * size)
      : undefined;
    const signal = this.options.signal;
    while (this.sent < total && this.failure === undefined && !signal?.aborted) {
      let now = performance.now();
      if (now >= endBy) return;
      if (workload.outstanding > 0) {
        const inFlight = this.sent - this.tracker.received - this.givenUp;
        if (inFlight >= workload.outstanding) {
          // Bounded by the timeout itself, and a probe given up on is counted
          // as lost, not fatal: the watchdog must not race this wait.
          this.watching = false;
          if (!(await this.waitForEcho(workload.timeoutMs))) {
            if (signal?.aborted) return;
            this.givenUp++;
            if (this.tracker.received === 0) {
              // Not one echo in a whole timeout: nothing is echoing there.
              this.failure ??= new NetkitError(
                "timeout",
                `No echo from ${formatEndpoint(this.endpoint)} within ${
                  formatDuration(workload.timeoutMs)
                }: is an echo server listening there?`,
              );
              return;
            }
          }
          this.watching = true;
          this.lastProgressAt = performance.now();
          continue;
        }
      }
      if (gap > 0) {
        const due = start + this.sent * gap;
        if (due > now) {
          await waitUntil(Math.min(due, endBy), gap); // timers, then a catch-up batch
          continue;
        }
      }
      if (batch === undefined) {
        // Count the probe as sent before the send completes: its echo may come first.
        const seq = this.sent++;
        const at = performance.now();
        this.options.onSent?.(seq, at);
        await transport.send(encoder.encode(seq, at));
      } else {
        // A byte stream takes every probe that is due in one write.
        let off = 0;
        do {
          batch.set(encoder.encode(this.sent, now), off);
          this.options.onSent?.(this.sent, now);
          off += size;
          this.sent++;
          now = performance.now();
        } while (
          off + size <= batch.length && this.sent < total &&
          (gap === 0 || start + this.sent * gap <= now) &&
          (workload.outstanding === 0 ||
            this.sent - this.tracker.received - this.givenUp < workload.outstanding)
        );
        await transport.send(batch.subarray(0, off));
      }
      this.lastProgressAt = performance.now();
    }
  }
}
