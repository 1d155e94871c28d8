/**
 * Turn two probe reports, TCP and UDP over the same path with the same
 * workload, into plain sentences: one per difference the data supports, each
 * cause with the evidence it rests on. A latency difference needs enough
 * echoes for its percentile and must lie beyond run-to-run noise (the RTT
 * percentiles' confidence intervals do not overlap, and the run's ten
 * sub-runs show the same difference); otherwise latency "was similar (within
 * noise)".
 *
 * @example
 * ```ts
 * import { describeDifferences } from "./findings.ts";
 * import type { ProbeReport } from "../probe/run_probe.ts";
 *
 * declare const tcp: ProbeReport, udp: ProbeReport;
 * for (const line of describeDifferences(tcp, udp)) console.log(line);
 * // UDP lost 37 of 10,000 probes (0.37%); TCP delivered every probe, in order.
 * ```
 *
 * @module
 */

import { ms, pps } from "../probe/report.ts";
import { type ProbeReport, SUB_RUNS, type SubRunRtt } from "../probe/run_probe.ts";
import { formatCount, formatCountOf, formatPercent } from "../units.ts";

/** Options of {@linkcode describeDifferences}: the evidence a causal sentence may name. */
export interface FindingsOptions {
  /**
   * Datagrams this host's kernel dropped for full receive buffers during the
   * UDP run (`/proc/net/snmp` RcvbufErrors), when readable.
   * @default {undefined}
   */
  rcvbufErrors?: number;
  /**
   * Where UDP lost probes, when the server's own counters are known (the
   * embedded server): before the server read them, and on the way back.
   * @default {undefined}
   */
  udpLossSplit?: { toServer: number; fromServer: number };
  /**
   * TCP segments this host retransmitted during the TCP run (`/proc/net/snmp`
   * RetransSegs), when readable.
   * @default {undefined}
   */
  tcpRetransmits?: number;
  /**
   * Whether the target is a loopback address: no network in between, so any
   * loss is on this host.
   * @default {false}
   */
  loopback?: boolean;
  /**
   * Whether TCP and UDP ran at the same time (compare's paced phases): their
   * sub-runs then saw the same moments of the host and are compared in pairs.
   * @default {false}
   */
  concurrent?: boolean;
  /**
   * The lab path (lib/lab/): its configured loss each way, and the kernel
   * counters of its namespace during the phase, which the sentences cite.
   * @default {undefined}
   */
  lab?: LabEvidence;
}

/** What the lab's kernel counted during one phase. */
export interface LabEvidence {
  /** `--loss`, percent each way; undefined when no loss was configured. */
  lossPercent?: number;
  /** TcpRetransSegs. */
  tcpRetransSegs: number;
  /** UdpRcvbufErrors. */
  udpRcvbufErrors: number;
  /** Packets the loss rule dropped, by protocol. */
  dropsUdp: number;
  dropsTcp: number;
}

/** A latency ratio this large or larger may be worth a sentence (if also beyond noise). */
export const NOTABLE_RATIO = 1.5;

/**
 * A latency difference smaller than this (ms) is within noise whatever the
 * intervals say: how far scheduling on one host moves a percentile from one
 * run to the next (loopback medians of 0.06 and 0.09 ms in consecutive runs).
 */
export const NOISE_FLOOR_MS = 0.25;

/**
 * Echoes each transport needs before a percentile is compared at all: a p99
 * from fewer than 1,000 samples is one of its ten largest, a p99.9 from fewer
 * than 10,000 one of its ten largest.
 */
export const MIN_ECHOES = { p50: 100, p99: 1_000, p999: 10_000 } as const;

/** Sub-runs each transport needs, with enough echoes each, before a percentile is compared. */
export const MIN_SUB_RUNS = 5;

/**
 * The share of the slower transport's sub-runs whose percentile must lie
 * above the faster's typical sub-run: a difference present throughout the
 * run, not a stall (another process, a timer, a page fault) in a few of them.
 */
export const CONSISTENT_SHARE = 0.8;

/** A percentile the findings compare. */
export type LatencyKey = keyof typeof MIN_ECHOES;

/** What the data supports about one percentile of TCP's and UDP's RTT. */
export type LatencyVerdict =
  | { kind: "too-few"; key: LatencyKey; need: number; short: ProbeReport }
  | { kind: "similar"; key: LatencyKey }
  | {
    kind: "slower";
    key: LatencyKey;
    slow: ProbeReport;
    fast: ProbeReport;
    ratio: number;
  };

/**
 * Compare one RTT percentile: "slower" only with enough echoes on both sides
 * ({@linkcode MIN_ECHOES}), a ratio of at least {@linkcode NOTABLE_RATIO}, a
 * gap of at least {@linkcode NOISE_FLOOR_MS}, confidence intervals that do not
 * overlap, and the same difference in the run's sub-runs (the difference is
 * beyond what run-to-run noise explains); a report without intervals or
 * sub-runs never counts as slower.
 */
export function compareLatency(
  tcp: ProbeReport,
  udp: ProbeReport,
  key: LatencyKey,
  concurrent = false,
): LatencyVerdict {
  const need = MIN_ECHOES[key];
  const short = [tcp, udp].find((r) => r.received < need || r.rtt[key] === null);
  if (short) return { kind: "too-few", key, need, short };
  for (const [slow, fast] of [[tcp, udp], [udp, tcp]] as const) {
    const ratio = slow.rtt[key]! / fast.rtt[key]!;
    const slowCi = slow.rttInterval?.[key];
    const fastCi = fast.rttInterval?.[key];
    const gap = slow.rtt[key]! - fast.rtt[key]!;
    if (
      ratio >= NOTABLE_RATIO && gap >= NOISE_FLOOR_MS && slowCi && fastCi &&
      slowCi.lo > fastCi.hi && subRunsAgree(slow, fast, key, concurrent)
    ) {
      return { kind: "slower", key, slow, fast, ratio };
    }
  }
  return { kind: "similar", key };
}

/**
 * Whether the run's sub-runs show the same difference, with at least
 * {@linkcode MIN_SUB_RUNS} usable sub-runs each (a tenth of
 * {@linkcode MIN_ECHOES} echoes apiece). Runs at the same time: in
 * {@linkcode CONSISTENT_SHARE} of the pairs of sub-runs the slower's is
 * {@linkcode NOTABLE_RATIO} the faster's. Runs one after the other: the
 * slower's median sub-run is {@linkcode NOTABLE_RATIO} and
 * {@linkcode NOISE_FLOOR_MS} above the faster's, and
 * {@linkcode CONSISTENT_SHARE} of its sub-runs lie above the faster's median
 * sub-run.
 */
function subRunsAgree(
  slow: ProbeReport,
  fast: ProbeReport,
  key: LatencyKey,
  concurrent: boolean,
): boolean {
  const need = MIN_ECHOES[key] / SUB_RUNS;
  const usable = (b: SubRunRtt | undefined) =>
    b !== undefined && b.count >= need && b[key] !== null;
  if (concurrent) {
    // The same moments of the host: the slower must be slower in most of them, pair by pair.
    const pairs = (slow.rttSubRuns ?? []).map((b, i) => [b, fast.rttSubRuns?.[i]] as const)
      .filter(([a, b]) => usable(a) && usable(b));
    if (pairs.length < MIN_SUB_RUNS) return false;
    const slower = pairs.filter(([a, b]) => a[key]! >= NOTABLE_RATIO * b![key]!).length;
    return slower >= CONSISTENT_SHARE * pairs.length;
  }
  const values = (r: ProbeReport) => (r.rttSubRuns ?? []).filter(usable).map((b) => b[key]!);
  const s = values(slow);
  const f = values(fast);
  if (s.length < MIN_SUB_RUNS || f.length < MIN_SUB_RUNS) return false;
  const slowMedian = median(s);
  const fastMedian = median(f);
  return slowMedian >= NOTABLE_RATIO * fastMedian && slowMedian - fastMedian >= NOISE_FLOOR_MS &&
    s.filter((v) => v > fastMedian).length >= CONSISTENT_SHARE * s.length;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function x(r: number): string {
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(1)}x`;
}

const LABEL: Record<LatencyKey, string> = { p50: "median", p99: "p99", p999: "p99.9" };
const NAME = { tcp: "TCP", udp: "UDP" } as const;

/** "2.00 ms over TCP, 2.50 ms over UDP", or "2.00 ms over both": a figure once. */
function pair(tcp: number | null, udp: number | null): string {
  return ms(tcp) === ms(udp)
    ? `${ms(tcp)} ms over both`
    : `${ms(tcp)} ms over TCP, ${ms(udp)} ms over UDP`;
}

/**
 * Sentences describing how UDP and TCP delivery differed, and why. Each
 * causal sentence names its evidence (the embedded server's counters, the
 * kernel's, the observed loss on loopback) or says the cause is unknown.
 */
export function describeDifferences(
  tcp: ProbeReport,
  udp: ProbeReport,
  options: FindingsOptions = {},
): string[] {
  const out: string[] = [];
  const paced = tcp.rateRequested > 0;
  const tcpClean = tcp.lost === 0 && tcp.outOfOrder === 0 && tcp.duplicates === 0;

  // 1. What arrived.
  if (udp.lost > 0 && tcp.lost === 0) {
    out.push(
      `UDP lost ${formatCount(udp.lost)} of ${formatCountOf(udp.sent, "probe")} (${
        formatPercent(udp.lostFraction)
      }); TCP delivered every probe${tcpClean ? ", in order" : ""}.`,
    );
  } else if (udp.lost === 0 && tcp.lost === 0) {
    out.push(
      tcp.sent === udp.sent
        ? `Both delivered all ${formatCountOf(tcp.sent, "probe")}.`
        : `Both delivered every probe (TCP ${formatCount(tcp.sent)}, UDP ${
          formatCount(udp.sent)
        }).`,
    );
  } else if (tcp.lost > 0) {
    out.push(
      `TCP did not get ${formatCount(tcp.lost)} of ${
        formatCountOf(tcp.sent, "echo", "echoes")
      } back within the timeout ` +
        `(${formatPercent(tcp.lostFraction)}); TCP retransmits, so these were late, not dropped: ` +
        `the connection stalled longer than --timeout. ${
          udp.lost > 0
            ? `UDP lost ${formatCount(udp.lost)} (${formatPercent(udp.lostFraction)}).`
            : "UDP lost none."
        }`,
    );
  }

  // 2. Why UDP lost: from the strongest evidence there is, or "unknown"; on the lab path, its drop rule.
  if (udp.lost > 0) {
    out.push(
      ...(options.lab?.lossPercent !== undefined
        ? [labLossWhy(udp, options.lab, options.lab.lossPercent)]
        : whyUdpLost(udp, options)),
    );
  }

  // 2b. What TCP paid on the lab path, by the kernel's count.
  if (options.lab && options.lab.tcpRetransSegs > 0) {
    out.push(labTcpCost(tcp, udp, options.lab));
  }

  // 3. Order and duplicates.
  if (udp.outOfOrder > 0) {
    out.push(
      `UDP delivered ${
        formatCountOf(udp.outOfOrder, "probe")
      } out of order; TCP's probes cannot arrive out of ` +
        `order: it delivers one ordered byte stream.`,
    );
  }
  if (udp.duplicates > 0) {
    out.push(
      `UDP delivered ${
        formatCountOf(udp.duplicates, "duplicate echo", "duplicate echoes")
      }; TCP discards duplicate segments, so it never does.`,
    );
  }

  // 4. How late: only what the samples support. The median first (a queue moves all of it),
  // then the tail (a retransmission delays a few probes a lot).
  const tail = compareLatency(tcp, udp, "p99", options.concurrent);
  const median = compareLatency(tcp, udp, "p50", options.concurrent);
  const late = [median, tail].find((v) => v.kind === "slower");
  if (late?.kind === "slower") {
    out.push(latencySentence(late, tcp, udp, paced, options));
  } else if (median.kind === "too-few") {
    out.push(
      `Too few echoes to compare latency: the median needs ${formatCount(median.need)} from each ` +
        `transport, and ${NAME[median.short.transport]} had ${formatCount(median.short.received)}.`,
    );
  } else if (tail.kind === "too-few") {
    out.push(
      `Latency was similar (within noise) at the median: ${pair(tcp.rtt.p50, udp.rtt.p50)}; ` +
        `comparing the p99 needs ${formatCount(tail.need)} echoes from each transport, and ${
          NAME[tail.short.transport]
        } had ${formatCount(tail.short.received)}.`,
    );
  } else {
    out.push(
      `Latency was similar (within noise): p99 RTT ${pair(tcp.rtt.p99, udp.rtt.p99)}${
        ms(tcp.rtt.p99) === ms(udp.rtt.p99)
          ? ""
          : ", a gap within what a tail of this many echoes moves from run to run"
      }.`,
    );
  }

  // 5. What an unpaced TCP run's figures mean.
  if (!paced && tcp.sent > 0) {
    const perWrite = Math.max(1, Math.floor(65536 / tcp.size));
    out.push(
      `TCP's send rate of ${pps(tcp.ratePps)} counts probes handed to its socket, not packets: ` +
        `unpaced, the application fills the socket buffer (${
          formatCountOf(perWrite, "probe")
        } per write) and TCP carries them in large segments.`,
    );
    if (tcp.jitterMs !== null && tcp.jitterMs < 0.001) {
      out.push(
        `TCP's jitter of ${ms(tcp.jitterMs)} ms means its echoes came back in those same ` +
          `batches, each probe as far from the next as when sent; it does not mean the delay was ` +
          `steady (see its RTT).`,
      );
    }
  }

  // 6. Pacing honesty.
  for (const r of [tcp, udp]) {
    if (r.rateRequested > 0 && r.ratePps < 0.9 * r.rateRequested) {
      out.push(
        `${r.transport.toUpperCase()} sent at ${formatCount(Math.round(r.ratePps))}/s, below the ` +
          `${
            formatCount(r.rateRequested)
          }/s asked: the sender could not keep up, so compare rates with care.`,
      );
    }
  }
  return out;
}

function whyUdpLost(udp: ProbeReport, options: FindingsOptions): string[] {
  const split = options.udpLossSplit;
  if (split && split.toServer + split.fromServer > 0) {
    const to = formatCount(split.toServer);
    const from = formatCount(split.fromServer);
    // The loss total is in the first sentence: here only the split, each figure once.
    const where = split.toServer === 0
      ? `none was lost before the server's socket reads; ${
        formatCountOf(split.fromServer, "echo", "echoes")
      } never reached netkit's client`
      : split.fromServer === 0
      ? `${to} never reached the server's socket reads; none was lost on the way back`
      : split.toServer === split.fromServer
      ? `as many never reached the server's socket reads as were echoed but never reached ` +
        `netkit's client (${to} each)`
      : `${to} never reached the server's socket reads and ${from} ${
        split.fromServer === 1 ? "was" : "were"
      } echoed but never reached netkit's client`;
    return [
      `Why (the embedded server's counters): ${where}.`,
      "Both ends are on this host, so the loss is on this host: netkit's receivers could not keep " +
      "up, and UDP has no flow control, so the sender never slowed down and the kernel dropped " +
      "what did not fit the receive buffers.",
    ];
  }
  const drops = options.rcvbufErrors;
  if (drops !== undefined && drops > 0) {
    return [
      `Why (kernel counters): this host's kernel dropped ${
        formatCountOf(drops, "UDP datagram")
      } for full ` +
      `receive buffers during the UDP run (/proc/net/snmp RcvbufErrors): netkit's receiver could ` +
      `not keep up, so ${
        drops >= udp.lost || options.loopback
          ? "the loss is on this host"
          : "that much of the loss is on this host and the rest happened elsewhere"
      }.`,
    ];
  }
  if (drops === 0) {
    return [
      options.loopback
        ? "Why: unknown: on loopback there is no network, yet the kernel counted no receive-buffer " +
          "drops during the UDP run."
        : "Why (kernel counters): not this host's receive buffers, which dropped nothing during the " +
          "UDP run: the datagrams were lost on the path or at the server, which netkit cannot see into.",
    ];
  }
  if (options.loopback) {
    return [
      "Why (loss observed on loopback): there is no network in between, so the loss is on this " +
      "host: a receiver (netkit's or the server's) could not keep up, and UDP has no flow control " +
      "to slow the sender. Under deno run -A on Linux netkit reads the kernel's counters and says which.",
    ];
  }
  return [
    "Why: unknown: netkit has no counters from the server and cannot read the kernel's here " +
    "(/proc/net/snmp needs deno run -A on Linux); UDP has no retransmission, so a datagram dropped " +
    "anywhere on the path is simply gone.",
  ];
}

function latencySentence(
  v: Extract<LatencyVerdict, { kind: "slower" }>,
  tcp: ProbeReport,
  udp: ProbeReport,
  paced: boolean,
  options: FindingsOptions,
): string {
  const head = `${NAME[v.slow.transport]}'s ${LABEL[v.key]} RTT was ${x(v.ratio)} ${
    NAME[v.fast.transport]
  }'s (${ms(v.slow.rtt[v.key])} vs ${ms(v.fast.rtt[v.key])} ms, beyond run-to-run noise)`;
  const retransmits = options.tcpRetransmits;
  if (v.slow === tcp) {
    if (retransmits !== undefined && retransmits > 0) {
      // With the lab, both ends ran in its network namespace: the counter is the namespace's.
      const who = options.lab ? "the lab's network namespace" : "this host";
      return `${head}. Why (kernel counters): ${who} retransmitted ${
        formatCountOf(retransmits, "TCP segment")
      } during the TCP run, and every probe behind a lost segment waits for its ` +
        `retransmission (head-of-line blocking).`;
    }
    if (!paced && tcp.lost === 0) {
      return `${head}. Why (sent unpaced, nothing lost): TCP's flow control made the sender wait ` +
        `instead of dropping, so probes queued in socket buffers; the queue shows up as round-trip ` +
        `time, not loss.`;
    }
    if (retransmits === 0) {
      return `${head}; TCP retransmitted nothing (kernel counters), so it was not head-of-line ` +
        `blocking; the cause is unknown.`;
    }
    return `${head}; the cause is unknown${
      udp.lost > 0
        ? ": UDP's loss on the same path suggests TCP retransmitted (head-of-line blocking), but " +
          "netkit cannot read the kernel's retransmission counter here"
        : ""
    }.`;
  }
  const buffersDropped = (options.rcvbufErrors ?? 0) > 0 ||
    (options.udpLossSplit !== undefined &&
      options.udpLossSplit.toServer + options.udpLossSplit.fromServer > 0);
  if (!paced && buffersDropped) {
    return `${head}. Why (the same counters as UDP's loss): unpaced datagrams waited in full ` +
      `receive buffers before being read.`;
  }
  return `${head}; the cause is unknown.`;
}

/** Why UDP lost on the lab path, citing the drop rule's counter and the expected loss. */
function labLossWhy(udp: ProbeReport, lab: LabEvidence, lossPercent: number): string {
  const p = lossPercent / 100;
  const expected = 1 - (1 - p) ** 2;
  const overflow = lab.udpRcvbufErrors > 0
    ? ` and ${formatCount(lab.udpRcvbufErrors)} more overflowed a receive buffer (UdpRcvbufErrors)`
    : "";
  return `Why: the path dropped them: the loss rule dropped ${
    formatCount(lab.dropsUdp)
  } UDP datagrams (its nftables counter)${overflow}, and UDP never retransmits, so each ` +
    `dropped request or echo is a lost probe. With ${lossPercent}% loss each way, 1 − (1 − ${p})² = ` +
    `${formatPercent(expected)} of round trips should fail; UDP lost ${
      formatPercent(udp.lostFraction)
    }.`;
}

/** TCP's price on the lab path: retransmissions (kernel counter) and the latency they cost. */
function labTcpCost(tcp: ProbeReport, udp: ProbeReport, lab: LabEvidence): string {
  const dropped = lab.dropsTcp > 0
    ? ` after the loss rule dropped ${formatCount(lab.dropsTcp)} of its packets`
    : "";
  const lost = tcp.lost === 0
    ? "lost nothing"
    : `still missed ${formatCount(tcp.lost)} echoes within the timeout`;
  const tail = tcp.rtt.p99 !== null && udp.rtt.p99 !== null && udp.rtt.p99 > 0
    ? tcp.rtt.p99 / udp.rtt.p99
    : undefined;
  const price = tail !== undefined && tail >= NOTABLE_RATIO
    ? "but paid in latency"
    : "and here the retransmissions cost it little";
  return `TCP retransmitted ${
    formatCount(lab.tcpRetransSegs)
  } segments (kernel TcpRetransSegs)${dropped}, so it ${lost} ${price}: ` +
    `p99 RTT ${ms(tcp.rtt.p99)} ms vs UDP's ${ms(udp.rtt.p99)} ms, max ${ms(tcp.rtt.max)} vs ${
      ms(udp.rtt.max)
    } ms.`;
}
