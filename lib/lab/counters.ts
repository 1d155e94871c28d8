/**
 * The lab's kernel counters, read inside its namespace: TCP retransmitted
 * segments and UDP receive-buffer errors (`nstat`, i.e. /proc/net/snmp of the
 * namespace) and the packets the nftables drop rules dropped. Pure parsing
 * and arithmetic; lib/lab/namespace.ts runs the programs.
 *
 * @example
 * ```ts
 * import { counterDelta, kernelJson, parseNftDrops, parseNstat } from "./counters.ts";
 *
 * const before = { ...parseNstat('{"kernel":{"TcpRetransSegs":1,"UdpRcvbufErrors":0}}'), ...parseNftDrops("") };
 * const after = { ...before, tcpRetransSegs: 62 };
 * console.log(kernelJson(counterDelta(before, after))); // { tcp_retransmitted_segments: 61, … }
 * ```
 *
 * @module
 */

/** Counter values at one moment (or, from {@linkcode counterDelta}, what happened between two). */
export interface KernelCounters {
  /** Tcp RetransSegs. */
  tcpRetransSegs: number;
  /** Udp RcvbufErrors: datagrams dropped because a socket's receive buffer was full. */
  udpRcvbufErrors: number;
  /** Udp InErrors: every datagram dropped on receive (buffer overflows included). */
  udpInErrors: number;
  /** UDP packets the drop rule dropped. */
  dropsUdp: number;
  /** TCP packets the drop rule dropped. */
  dropsTcp: number;
}

/** The SNMP counters from `nstat -asz --json` output (missing ones read as 0). */
export function parseNstat(
  json: string,
): Pick<KernelCounters, "tcpRetransSegs" | "udpRcvbufErrors" | "udpInErrors"> {
  const doc = JSON.parse(json) as { kernel?: Record<string, number> };
  const k = doc.kernel ?? {};
  const n = (name: string) => Number.isFinite(k[name]) ? k[name]! : 0;
  return {
    tcpRetransSegs: n("TcpRetransSegs"),
    udpRcvbufErrors: n("UdpRcvbufErrors"),
    udpInErrors: n("UdpInErrors"),
  };
}

/** The drop rules' packet counters from `nft list table inet netkit_lab` (0 where no rule). */
export function parseNftDrops(listing: string): Pick<KernelCounters, "dropsUdp" | "dropsTcp"> {
  const count = (proto: string) => {
    const match = new RegExp(
      `meta l4proto ${proto} numgen random mod \\d+ < \\d+ counter packets (\\d+)`,
    ).exec(listing);
    return match ? Number(match[1]) : 0;
  };
  return { dropsUdp: count("udp"), dropsTcp: count("tcp") };
}

/** What changed from `before` to `after`. */
export function counterDelta(before: KernelCounters, after: KernelCounters): KernelCounters {
  return {
    tcpRetransSegs: after.tcpRetransSegs - before.tcpRetransSegs,
    udpRcvbufErrors: after.udpRcvbufErrors - before.udpRcvbufErrors,
    udpInErrors: after.udpInErrors - before.udpInErrors,
    dropsUdp: after.dropsUdp - before.dropsUdp,
    dropsTcp: after.dropsTcp - before.dropsTcp,
  };
}

/** The `kernel` object of the JSON reports. */
export function kernelJson(c: KernelCounters): Record<string, number> {
  return {
    tcp_retransmitted_segments: c.tcpRetransSegs,
    udp_rcvbuf_errors: c.udpRcvbufErrors,
    udp_in_errors: c.udpInErrors,
    impairment_drops: c.dropsUdp + c.dropsTcp,
    impairment_drops_udp: c.dropsUdp,
    impairment_drops_tcp: c.dropsTcp,
  };
}

/** One line for people: `kernel: TCP retransmitted 61 segments; …`. */
export function formatKernelCounters(c: KernelCounters): string {
  return `kernel counters in the lab: TCP retransmitted ${c.tcpRetransSegs} segments; ` +
    `UDP receive-buffer errors ${c.udpRcvbufErrors}; the loss rule dropped ${
      c.dropsUdp + c.dropsTcp
    } packets (${c.dropsUdp} UDP, ${c.dropsTcp} TCP)`;
}
