/**
 * Presentation of a run against an iperf3 server: netkit's usual throughput
 * report and JSON (from `lib/throughput/report.ts`), the iperf3 server's own
 * figures as it sent them beside them, and the whole run as a document in
 * iperf3's `-J` shape (`--iperf3-json`) for scripts written for iperf3.
 *
 * @example
 * ```ts
 * import { formatServerFigures, iperf3ShapedJson } from "./report.ts";
 * import type { Iperf3Run } from "./client.ts";
 *
 * declare const run: Iperf3Run;
 * console.log(formatServerFigures(run).join("\n"));
 * console.log(JSON.stringify(iperf3ShapedJson(run, "127.0.0.1", 5201)));
 * ```
 *
 * @module
 */

import { finite, type Json } from "../probe/report.ts";
import { PLAIN, type Style } from "../terminal.ts";
import { throughputJson } from "../throughput/report.ts";
import { formatBitRate, formatBytes, formatCount } from "../units.ts";
import type { Iperf3Run } from "./client.ts";
import type { StreamResult } from "./wire.ts";
import { VERSION } from "../cli/spec.ts";

function rate(bytes: number, seconds: number): number {
  return seconds > 0 ? (bytes * 8) / seconds : 0;
}

/** The iperf3 server's own figures, one line per stream, as it sent them. */
export function formatServerFigures(run: Iperf3Run, style: Style = PLAIN): string[] {
  const udp = run.params.proto === "udp";
  const lines = [style.bold("iperf3 server's own figures (as it sent them):")];
  for (const r of run.server.streams) {
    const local = run.streams.find((s) => s.id === r.id);
    const role = local?.sender ? "received" : "sent";
    const seconds = r.endTime - r.startTime;
    let line = `  stream ${r.id} ${role.padEnd(8)} ${formatBytes(r.bytes).padStart(11)}  ${
      formatBitRate(rate(r.bytes, seconds))
    }  over ${seconds.toFixed(2)} s`;
    if (udp) {
      line += `  packets ${formatCount(r.packets)}`;
      if (local?.sender) {
        line += `  lost ${formatCount(r.errors)}  jitter ${(r.jitter * 1000).toFixed(3)} ms`;
      }
    } else if (r.retransmits >= 0) {
      line += `  retransmits ${formatCount(r.retransmits)}`;
    }
    lines.push(line);
  }
  return lines;
}

function serverStreamJson(r: StreamResult): Json {
  return {
    id: r.id,
    bytes: r.bytes,
    retransmits: r.retransmits,
    jitter_ms: finite(r.jitter * 1000),
    errors: r.errors,
    packets: r.packets,
    start_time: finite(r.startTime),
    end_time: finite(r.endTime),
  };
}

/** netkit's throughput JSON, plus `iperf3_server`: the server's results as it sent them. */
export function iperf3RunJson(run: Iperf3Run): Json {
  const doc = throughputJson(run.result) as Record<string, Json>;
  return {
    ...doc,
    protocol: "iperf3",
    omit_s: run.params.omitS,
    iperf3_server: {
      cpu_util_total: finite(run.server.cpuUtilTotal),
      sender_has_retransmits: run.server.senderHasRetransmits,
      congestion_used: run.server.congestionUsed,
      streams: run.server.streams.map(serverStreamJson),
    },
  };
}

/**
 * The run in iperf3's `-J` shape: `start`, `intervals[]` (each `streams[]` and
 * `sum`) and `end` (`streams[]`, `sum_sent`/`sum_received`, and `sum` for
 * UDP). Fields netkit does not measure (TCP_INFO, CPU) are left out or 0.
 */
export function iperf3ShapedJson(run: Iperf3Run, host: string, port: number): Json {
  const p = run.params;
  const udp = p.proto === "udp";
  const byId = new Map(run.server.streams.map((r) => [r.id, r]));
  const socketOf = (i: number) => i + 5; // iperf3 shows file descriptors; stand-ins, stable
  const intervals = run.intervals.map((iv) => {
    const seconds = iv.endS - iv.startS;
    const streams = run.streams.map((s, i) => ({
      socket: socketOf(i),
      start: finite(iv.startS),
      end: finite(iv.endS),
      seconds: finite(seconds),
      bytes: iv.bytes[i] ?? 0,
      bits_per_second: finite(rate(iv.bytes[i] ?? 0, seconds), 3),
      omitted: iv.omitted,
      sender: s.sender,
    }));
    const total = iv.bytes.reduce((a, b) => a + b, 0);
    return {
      streams,
      sum: {
        start: finite(iv.startS),
        end: finite(iv.endS),
        seconds: finite(seconds),
        bytes: total,
        bits_per_second: finite(rate(total, seconds), 3),
        omitted: iv.omitted,
        sender: run.streams[0]?.sender ?? true,
      },
    };
  });
  const sideJson = (
    bytes: number,
    seconds: number,
    sender: boolean,
    extra: Record<string, Json>,
  ) => ({
    start: 0,
    end: finite(seconds),
    seconds: finite(seconds),
    bytes,
    bits_per_second: finite(rate(bytes, seconds), 3),
    ...extra,
    sender,
  });
  const endStreams: Json[] = [];
  const sums = {
    sent: { bytes: 0, seconds: 0, packets: 0 },
    received: { bytes: 0, seconds: 0, packets: 0, lost: 0, jitter: 0, n: 0 },
  };
  const reverseSums = {
    sent: { bytes: 0, seconds: 0 },
    received: { bytes: 0, seconds: 0 },
  };
  for (const [i, s] of run.streams.entries()) {
    const r = byId.get(s.id);
    const mine = { bytes: s.measuredBytes, seconds: s.seconds };
    const theirs = { bytes: r?.bytes ?? 0, seconds: r ? r.endTime - r.startTime : 0 };
    const sent = s.sender ? mine : theirs;
    const received = s.sender ? theirs : mine;
    const bidirReverse = p.bidirectional && !s.sender;
    const target = bidirReverse ? reverseSums : sums;
    target.sent.bytes += sent.bytes;
    target.sent.seconds = Math.max(target.sent.seconds, sent.seconds);
    target.received.bytes += received.bytes;
    target.received.seconds = Math.max(target.received.seconds, received.seconds);
    if (udp) {
      const packets = s.sender
        ? s.count - s.omitCount
        : Math.max(0, (r?.packets ?? 0) - s.omit.highest);
      const lost = s.sender ? (r?.errors ?? 0) : s.lost(r?.packets);
      const jitterMs = s.sender ? (r?.jitter ?? 0) * 1000 : s.jitter.jitterMs;
      sums.sent.packets += packets;
      sums.received.lost += lost;
      sums.received.jitter += jitterMs;
      sums.received.n++;
      endStreams.push({
        udp: sideJson(sent.bytes, sent.seconds, s.sender, {
          socket: socketOf(i),
          jitter_ms: finite(jitterMs),
          lost_packets: lost,
          packets,
          lost_percent: finite(packets > 0 ? (100 * lost) / packets : 0),
          out_of_order: s.sender ? 0 : s.outOfOrder,
        }),
      });
    } else {
      endStreams.push({
        sender: sideJson(sent.bytes, sent.seconds, s.sender, { socket: socketOf(i) }),
        receiver: sideJson(received.bytes, received.seconds, s.sender, { socket: socketOf(i) }),
      });
    }
  }
  const end: Record<string, Json> = {
    streams: endStreams,
    sum_sent: sideJson(sums.sent.bytes, sums.sent.seconds, !p.reverse, {}),
    sum_received: sideJson(sums.received.bytes, sums.received.seconds, !p.reverse, {}),
  };
  if (udp) {
    const jitter = sums.received.n > 0 ? sums.received.jitter / sums.received.n : 0;
    const lostPct = sums.sent.packets > 0 ? (100 * sums.received.lost) / sums.sent.packets : 0;
    const udpSums = {
      jitter_ms: finite(jitter),
      lost_packets: sums.received.lost,
      packets: sums.sent.packets,
      lost_percent: finite(lostPct),
    };
    end.sum = sideJson(sums.received.bytes, sums.received.seconds, !p.reverse, udpSums);
    Object.assign(end.sum_sent as Record<string, Json>, udpSums);
    Object.assign(end.sum_received as Record<string, Json>, udpSums);
  }
  if (p.bidirectional) {
    end.sum_sent_bidir_reverse = sideJson(
      reverseSums.sent.bytes,
      reverseSums.sent.seconds,
      false,
      {},
    );
    end.sum_received_bidir_reverse = sideJson(
      reverseSums.received.bytes,
      reverseSums.received.seconds,
      false,
      {},
    );
  }
  end.cpu_utilization_percent = {
    host_total: 0,
    host_user: 0,
    host_system: 0,
    remote_total: finite(run.server.cpuUtilTotal),
    remote_user: finite(run.server.cpuUtilUser),
    remote_system: finite(run.server.cpuUtilSystem),
  };
  const target = p.bandwidth;
  return {
    start: {
      connected: run.connections.map((c, i) => ({
        socket: socketOf(i),
        local_host: c.localHost,
        local_port: c.localPort,
        remote_host: c.remoteHost,
        remote_port: c.remotePort,
      })),
      version: `netkit ${VERSION} (iperf3 protocol)`,
      system_info: `${Deno.build.os} ${Deno.build.arch}`,
      timestamp: {
        time: run.startedAt.toUTCString(),
        timesecs: Math.floor(run.startedAt.getTime() / 1000),
      },
      connecting_to: { host, port },
      cookie: run.cookie,
      target_bitrate: target,
      test_start: {
        protocol: udp ? "UDP" : "TCP",
        num_streams: p.parallel,
        blksize: p.len,
        omit: p.omitS,
        duration: p.timeS,
        bytes: 0,
        blocks: 0,
        reverse: p.reverse ? 1 : 0,
        tos: 0,
        target_bitrate: target,
        ...(p.bidirectional && { bidir: 1 }),
      },
    },
    intervals,
    end,
  };
}
