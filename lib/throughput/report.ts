/**
 * Presentation of throughput results: interval lines and a summary per
 * direction (sender and receiver view) for people, and snake_case JSON in
 * iperf3's style for scripts.
 *
 * @example
 * ```ts
 * import { formatThroughput, throughputJson } from "./report.ts";
 * import type { ThroughputResult } from "./client.ts";
 *
 * declare const result: ThroughputResult;
 * console.log(formatThroughput(result).join("\n"));
 * console.log(JSON.stringify(throughputJson(result)));
 * ```
 *
 * @module
 */

import { format as formatStdBytes } from "@std/fmt/bytes";
import { PACED_WRITE_MS, pacedWriteSize } from "../pace.ts";
import { engineJson, formatEngine } from "../engine/report.ts";
import { finite, formatLoss, type Json, zeroDim } from "../probe/report.ts";
import { bar, elapsedText } from "../progress.ts";
import { PLAIN, type Style } from "../terminal.ts";
import { formatBitRate, formatBytes, formatCount, formatCountOf, formatSize } from "../units.ts";
import { formatEndpoint, isLoopback } from "../address.ts";
import type {
  DirectionResult,
  ThroughputInterval,
  ThroughputLive,
  ThroughputResult,
} from "./client.ts";

function rate(bytes: number, seconds: number): number {
  return seconds > 0 ? (bytes * 8) / seconds : 0;
}

/**
 * The receiver's time: the test's, or longer when bytes still arrived after the
 * sender stopped (a queue on a slow path drains): never a rate faster than the
 * receiver really took them in.
 */
export function receiverSeconds(d: DirectionResult): number {
  return Math.max(d.sent.seconds, d.received.seconds);
}

/** One live interval line (the client's own view). */
export function formatThroughputInterval(
  i: ThroughputInterval,
  direction: string,
  style: Style = PLAIN,
): string {
  const span = `[${i.startS.toFixed(1).padStart(5)}-${i.endS.toFixed(1).padStart(5)} s]`;
  const seconds = i.endS - i.startS;
  const parts: string[] = [];
  // Fixed widths ("1023.99 MiB", "999.99 Mbit/s") keep successive lines' columns aligned.
  const figures = (bytes: number) =>
    `${formatBytes(bytes).padStart(11)}  ${formatBitRate(rate(bytes, seconds)).padStart(13)}`;
  if (direction !== "down") parts.push(`sent ${figures(i.sentBytes)}`);
  if (direction !== "up") parts.push(`received ${figures(i.receivedBytes)}`);
  return `${style.dim(span)} ${parts.join("   ")}`;
}

/** One interval in JSON. */
export function throughputIntervalJson(i: ThroughputInterval): Json {
  const seconds = i.endS - i.startS;
  return {
    start_s: finite(i.startS, 3),
    end_s: finite(i.endS, 3),
    sent_bytes: i.sentBytes,
    sent_bits_per_second: finite(rate(i.sentBytes, seconds), 1),
    received_bytes: i.receivedBytes,
    received_bits_per_second: finite(rate(i.receivedBytes, seconds), 1),
  };
}

/**
 * The plain sentence saying that netkit's own receiver dropped datagrams (the
 * kernel counted receive-buffer drops), or, on loopback where no counter is
 * readable, that the loss can only be on this host; undefined otherwise.
 */
export function receiverLimit(d: DirectionResult, loopback: boolean): string | undefined {
  if (d.received.lost === 0 && !(d.rcvbufErrors !== null && d.rcvbufErrors > 0)) return undefined;
  if (d.rcvbufErrors !== null && d.rcvbufErrors > 0) {
    return `netkit's receiver could not keep up: the kernel dropped ${
      formatCountOf(d.rcvbufErrors, "datagram")
    } for a full receive buffer (RcvbufErrors), so that loss is on the receiving host, not the network`;
  }
  if (loopback && d.rcvbufErrors === null) {
    return "on loopback there is no network: the loss is on this host, where a receiver " +
      "(netkit's) could not keep up (run under deno run -A to read the kernel's drop counters)";
  }
  return undefined;
}

function directionLines(
  label: string,
  d: DirectionResult,
  udp: boolean,
  style: Style,
  loopback: boolean,
): string[] {
  const lines = [
    style.bold(label),
    `  sender    ${formatBytes(d.sent.bytes).padStart(11)}  ${
      formatBitRate(rate(d.sent.bytes, d.sent.seconds))
    }`,
    `  receiver  ${formatBytes(d.received.bytes).padStart(11)}  ${
      formatBitRate(rate(d.received.bytes, receiverSeconds(d)))
    }`,
  ];
  if (udp) {
    const lostFraction = d.sent.datagrams > 0 ? d.received.lost / d.sent.datagrams : 0;
    lines.push(
      `  datagrams sent ${formatCount(d.sent.datagrams)}  received ${
        formatCount(d.received.datagrams)
      }  lost ${formatLoss(d.received.lost, lostFraction, style)}  ${
        zeroDim(style, "out of order", d.received.outOfOrder)
      }  ${zeroDim(style, "duplicates", d.received.duplicates)}  jitter ${
        d.received.jitterMs === null ? "-" : d.received.jitterMs.toFixed(3)
      } ms`,
    );
    const own = receiverLimit(d, loopback);
    if (own) lines.push(style.red(`  ${own}`));
  }
  return lines;
}

/** The summary for people. */
export function formatThroughput(r: ThroughputResult, style: Style = PLAIN): string[] {
  const p = r.plan;
  const udp = p.proto === "udp";
  const loopback = isLoopback(p.endpoint.hostname);
  const write = udp ? p.size : pacedWriteSize(p.size, p.bitrate);
  const blocks = write === p.size
    ? `${formatSize(p.size)} ${udp ? "datagrams" : "writes"}`
    : `${formatSize(write)} writes (--size ${
      formatSize(p.size)
    } is more than ${PACED_WRITE_MS} ms at this bit rate)`;
  const head = `${p.proto} throughput, ${p.parallel} stream${p.parallel === 1 ? "" : "s"}, ${
    (p.durationMs / 1000).toFixed(1)
  } s, ${blocks}${p.bitrate > 0 ? `, paced at ${formatBitRate(p.bitrate)} per stream` : ""}${
    p.bitrateIsDefault ? " (UDP's default, as iperf3's; -b 0 for unlimited)" : ""
  }${r.interrupted ? " (interrupted: the report covers what ran)" : ""}`;
  const lines = [style.bold(head)];
  if (udp && p.bitrate > 0 && p.size * 8 * 1000 / p.bitrate > p.durationMs) {
    lines.push(
      `  note: one ${formatSize(p.size)} datagram is more than ${
        formatBitRate(p.bitrate)
      } allows in the whole test; each stream sent at least one (use a smaller --size)`,
    );
  }
  if (r.engine) lines.push(style.dim(`  ${formatEngine(r.engine)}`));
  if (r.clientOnly) {
    const c = r.clientOnly;
    lines.push(
      `  the server's figures never arrived; this client counted in ${c.seconds.toFixed(2)} s:`,
    );
    if (p.direction !== "down") {
      lines.push(
        `  sent      ${formatBytes(c.sentBytes).padStart(11)}  ${
          formatBitRate(rate(c.sentBytes, c.seconds))
        }`,
      );
    }
    if (p.direction !== "up") {
      lines.push(
        `  received  ${formatBytes(c.receivedBytes).padStart(11)}  ${
          formatBitRate(rate(c.receivedBytes, c.seconds))
        }`,
      );
    }
  }
  if (r.up) lines.push(...directionLines("up (client → server):", r.up, udp, style, loopback));
  if (r.down) {
    lines.push(...directionLines("down (server → client):", r.down, udp, style, loopback));
  }
  return lines;
}

const STD_BYTES = {
  binary: true,
  locale: "en-US",
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
};

/**
 * The live progress text of a test: a bar over its duration, the bytes moved
 * so far (by `@std/fmt/bytes`) at their average rate, and the time.
 */
export function formatThroughputProgress(
  live: ThroughputLive,
  plan: { proto: string; direction: string; durationMs: number },
): string {
  const part = (what: string, bytes: number) =>
    `${what} ${formatStdBytes(bytes, STD_BYTES)} ${formatBitRate(rate(bytes, live.elapsedS))}`;
  const parts = [
    ...(plan.direction !== "down" ? [part("sent", live.sentBytes)] : []),
    ...(plan.direction !== "up" ? [part("received", live.receivedBytes)] : []),
  ];
  return `${bar((live.elapsedS * 1000) / plan.durationMs)} ${plan.proto} ${plan.direction}  ${
    parts.join("  ")
  }  ${elapsedText(live.elapsedS)} of ${elapsedText(plan.durationMs / 1000)}`;
}

function directionJson(d: DirectionResult, proto: "tcp" | "udp"): Json {
  const seconds = d.sent.seconds;
  const sent: Record<string, Json> = {
    bytes: d.sent.bytes,
    seconds: finite(seconds),
    bits_per_second: finite(rate(d.sent.bytes, seconds), 1),
  };
  const received: Record<string, Json> = {
    bytes: d.received.bytes,
    seconds: finite(receiverSeconds(d)),
    bits_per_second: finite(rate(d.received.bytes, receiverSeconds(d)), 1),
  };
  if (proto === "udp") {
    sent.datagrams = d.sent.datagrams;
    received.datagrams = d.received.datagrams;
    received.lost = d.received.lost;
    received.lost_percent = finite(
      d.sent.datagrams > 0 ? (d.received.lost / d.sent.datagrams) * 100 : 0,
      4,
    );
    received.out_of_order = d.received.outOfOrder;
    received.duplicates = d.received.duplicates;
    received.jitter_ms = finite(d.received.jitterMs);
    received.rcvbuf_errors = d.rcvbufErrors;
  }
  return {
    sum_sent: sent,
    sum_received: received,
    // A TCP stream has no datagrams: its entries carry only what a byte stream has.
    streams: d.received.streams.map((s): Json =>
      proto === "udp"
        ? {
          stream: s.stream,
          bytes: s.bytes,
          datagrams: s.datagrams,
          lost: s.lost,
          out_of_order: s.out_of_order,
          duplicates: s.duplicates,
          jitter_ms: finite(s.jitter_ms),
          interval_bytes: s.intervals,
        }
        : { stream: s.stream, bytes: s.bytes, interval_bytes: s.intervals }
    ),
  };
}

/** The documented JSON document. */
export function throughputJson(r: ThroughputResult): Json {
  const p = r.plan;
  return {
    proto: p.proto,
    direction: p.direction,
    parallel: p.parallel,
    duration_s: p.durationMs / 1000,
    size: p.size,
    bitrate_requested: p.bitrate,
    bitrate_is_default: p.bitrateIsDefault === true,
    // The probe report's form: the transport measured, then HOST:PORT ([V6]:PORT).
    target: formatEndpoint({ ...p.endpoint, transport: p.proto }),
    elapsed_s: finite(r.elapsedS),
    up: r.up ? directionJson(r.up, p.proto) : null,
    down: r.down ? directionJson(r.down, p.proto) : null,
    interrupted: r.interrupted === true,
    ...(r.clientOnly && {
      client_only: {
        sent_bytes: r.clientOnly.sentBytes,
        received_bytes: r.clientOnly.receivedBytes,
        seconds: finite(r.clientOnly.seconds),
      },
    }),
    ...(r.engine && engineJson(r.engine)),
  };
}
