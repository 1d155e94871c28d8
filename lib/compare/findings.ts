/**
 * Turn two probe reports, TCP and UDP over the same path with the same
 * workload, into plain sentences: one per difference that matters, each with
 * the reason it happened.
 *
 * @example
 * ```ts
 * import { describeDifferences } from "./findings.ts";
 * import type { ProbeReport } from "../probe/run_probe.ts";
 *
 * declare const tcp: ProbeReport, udp: ProbeReport;
 * for (const line of describeDifferences(tcp, udp)) console.log(line);
 * // UDP lost 37 of 10,000 probes (0.37%); TCP delivered all 10,000 in order, at 4.1x UDP's p99 RTT.
 * ```
 *
 * @module
 */

import { ms } from "../probe/report.ts";
import type { ProbeReport } from "../probe/run_probe.ts";
import { formatCount, formatCountOf, formatPercent } from "../units.ts";

/** Options of {@linkcode describeDifferences}. */
export interface FindingsOptions {
  /**
   * Datagrams the kernel dropped for full receive buffers during the UDP run
   * (`/proc/net/snmp` RcvbufErrors), when known.
   * @default {undefined}
   */
  rcvbufErrors?: number;
  /**
   * Where UDP lost probes, when the server's own counters are known (the
   * embedded server): before the server read them, and on the way back.
   * @default {undefined}
   */
  udpLossSplit?: { toServer: number; fromServer: number };
}

/** A tail-latency ratio this large or larger is worth a sentence. */
const NOTABLE_RATIO = 1.5;

function ratio(a: number | null, b: number | null): number | undefined {
  if (a === null || b === null || b <= 0) return undefined;
  return a / b;
}

function x(r: number): string {
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(1)}x`;
}

/** Sentences describing how UDP and TCP delivery differed, and why. */
export function describeDifferences(
  tcp: ProbeReport,
  udp: ProbeReport,
  options: FindingsOptions = {},
): string[] {
  const out: string[] = [];
  const paced = tcp.rateRequested > 0;
  const tcpTail = ratio(tcp.rtt.p99, udp.rtt.p99);
  const tcpClean = tcp.lost === 0 && tcp.outOfOrder === 0 && tcp.duplicates === 0;
  const tailClause = tcpTail !== undefined && tcpTail >= NOTABLE_RATIO
    ? `, at ${x(tcpTail)} UDP's p99 RTT (${ms(tcp.rtt.p99)} vs ${ms(udp.rtt.p99)} ms)`
    : "";

  // 1. What arrived.
  if (udp.lost > 0 && tcp.lost === 0) {
    out.push(
      `UDP lost ${formatCount(udp.lost)} of ${formatCountOf(udp.sent, "probe")} (${
        formatPercent(udp.lostFraction)
      }); ` +
        `TCP delivered all ${formatCount(tcp.sent)}${tcpClean ? " in order" : ""}${tailClause}.`,
    );
  } else if (udp.lost === 0 && tcp.lost === 0) {
    out.push(
      `Both delivered every probe (TCP ${formatCount(tcp.sent)}, UDP ${formatCount(udp.sent)})${
        tailClause ? `; TCP ran${tailClause.slice(1)}` : ""
      }.`,
    );
  } else if (tcp.lost > 0) {
    out.push(
      `TCP did not get ${formatCount(tcp.lost)} of ${formatCount(tcp.sent)} ${
        tcp.sent === 1 ? "echo" : "echoes"
      } back within the timeout ` +
        `(${formatPercent(tcp.lostFraction)}); TCP retransmits, so these were late, not dropped: ` +
        `the connection stalled longer than --timeout. UDP lost ${formatCount(udp.lost)} ` +
        `(${formatPercent(udp.lostFraction)}).`,
    );
  }

  // 2. Why UDP lost.
  if (udp.lost > 0) {
    const split = options.udpLossSplit;
    if (split && split.toServer + split.fromServer > 0) {
      out.push(
        `Why: of the ${formatCount(udp.lost)} lost, ${
          formatCount(split.toServer)
        } never reached the server's ` +
          `socket reads and ${
            formatCount(split.fromServer)
          } were echoed but never reached ours: on loopback ` +
          `that means full socket receive buffers. UDP has no flow control, so the sender never slowed down ` +
          `and the kernel dropped what did not fit.`,
      );
    } else if (options.rcvbufErrors !== undefined && options.rcvbufErrors > 0) {
      out.push(
        `Why: the kernel counted ${formatCount(options.rcvbufErrors)} UDP receive-buffer overflow${
          options.rcvbufErrors === 1 ? "" : "s"
        } during the UDP run ` +
          `(/proc/net/snmp RcvbufErrors): datagrams arrived faster than a socket read them, UDP has no flow ` +
          `control, and the kernel dropped what did not fit.`,
      );
    } else {
      out.push(
        "Why: UDP has no retransmission and no flow control; a datagram dropped anywhere on the path " +
          "(a full socket buffer, a lossy or congested link) is simply gone.",
      );
    }
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

  // 4. How late, and why: the tail first, then the median.
  const late = (["p99", "p50"] as const).map((key) => ({
    key,
    label: key === "p99" ? "p99" : "median",
    tcp: tcp.rtt[key],
    udp: udp.rtt[key],
    tcpOver: ratio(tcp.rtt[key], udp.rtt[key]),
    udpOver: ratio(udp.rtt[key], tcp.rtt[key]),
  })).find((m) => (m.tcpOver ?? 0) >= NOTABLE_RATIO || (m.udpOver ?? 0) >= NOTABLE_RATIO);
  if (late && (late.tcpOver ?? 0) >= NOTABLE_RATIO) {
    const head = `TCP's ${late.label} RTT was ${x(late.tcpOver!)} UDP's (${ms(late.tcp)} vs ${
      ms(late.udp)
    } ms)`;
    if (udp.lost > 0 && paced) {
      out.push(
        `${head}. Why: TCP retransmits what the path dropped, and every probe behind a lost segment ` +
          `waits for the retransmission (head-of-line blocking); UDP's survivors were never held back.`,
      );
    } else if (!paced) {
      out.push(
        `${head}. Why: sent as fast as possible, TCP's flow control made the sender wait instead of ` +
          `dropping, so probes queued in socket buffers; the queue shows up as round-trip time, not loss.`,
      );
    } else if (late.key !== "p99" || !tailClause) {
      out.push(
        `${head}: with nothing lost, that is queueing or scheduling on the path, not retransmission.`,
      );
    }
  } else if (late) {
    out.push(
      `UDP's ${late.label} RTT was ${x(late.udpOver!)} TCP's (${ms(late.udp)} vs ${
        ms(late.tcp)
      } ms)` +
        (paced
          ? "."
          : ": unpaced datagrams waited in full socket buffers before being read, or dropped."),
    );
  } else if (tcp.rtt.p99 !== null && udp.rtt.p99 !== null) {
    out.push(
      `Latency was similar: p99 RTT ${ms(tcp.rtt.p99)} ms over TCP, ${
        ms(udp.rtt.p99)
      } ms over UDP; ` +
        `median ${ms(tcp.rtt.p50)} vs ${ms(udp.rtt.p50)} ms.`,
    );
  }

  // 5. Pacing honesty.
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
