/**
 * What a relay did, per direction: plain counters (results are data), the
 * closing text line and the `--json` document.
 *
 * @example
 * ```ts
 * import { emptyRelayCounters, formatRelaySummary } from "./counters.ts";
 *
 * const counters = emptyRelayCounters();
 * counters.up.bytesIn += 5;
 * console.log(formatRelaySummary(counters, "stream", 7).join("\n"));
 * ```
 *
 * @module
 */

import type { Json } from "../probe/report.ts";
import { formatBytes, formatCount } from "../units.ts";

/** One direction (up: client → target; down: target → client). */
export interface DirectionCounters {
  bytesIn: number;
  bytesOut: number;
  datagramsIn: number;
  /** Datagrams sent (each duplicate copy counts). */
  datagramsOut: number;
  /** Datagrams dropped by `--loss`. */
  dropped: number;
  /** Datagrams dropped because the `--queue` byte cap was full (tail drop). */
  queueDropped: number;
  /** Extra copies sent by `--duplicate`. */
  duplicated: number;
  /** Datagrams held back by `--reorder`. */
  reordered: number;
  /** Datagrams with one bit flipped by `--corrupt`. */
  corrupted: number;
  /** Datagrams or TCP chunks held by `--delay`, `--jitter` or `--rate`. */
  delayed: number;
}

/** The whole relay. */
export interface RelayCounters {
  /** Connections (TCP, Unix, TLS) or sessions (UDP) served. */
  connections: number;
  /** Refused because `--max-conns` was reached (UDP: datagrams of new clients). */
  refused: number;
  /** Refused by `--allow`/`--deny` (UDP: datagrams). */
  denied: number;
  /** UDP datagrams dropped by `--rate-limit`. */
  rateLimited: number;
  /** Inbound connections closed because the target could not be reached. */
  failed: number;
  /** Closed or expired by `--idle-timeout` or the first-byte timeout. */
  expired: number;
  /** Connections ended by a reset (either side's, or `--reset-after`). */
  resets: number;
  up: DirectionCounters;
  down: DirectionCounters;
}

/** A direction with every counter at zero. */
export function emptyDirection(): DirectionCounters {
  return {
    bytesIn: 0,
    bytesOut: 0,
    datagramsIn: 0,
    datagramsOut: 0,
    dropped: 0,
    queueDropped: 0,
    duplicated: 0,
    reordered: 0,
    corrupted: 0,
    delayed: 0,
  };
}

/** Relay counters at zero. */
export function emptyRelayCounters(): RelayCounters {
  return {
    connections: 0,
    refused: 0,
    denied: 0,
    rateLimited: 0,
    failed: 0,
    expired: 0,
    resets: 0,
    up: emptyDirection(),
    down: emptyDirection(),
  };
}

function direction(name: string, d: DirectionCounters, kind: "stream" | "datagram"): string {
  const parts = [`${formatBytes(d.bytesIn)} in`, `${formatBytes(d.bytesOut)} out`];
  if (kind === "datagram") {
    parts.push(
      `${formatCount(d.datagramsIn)} datagrams in`,
      `${formatCount(d.datagramsOut)} out`,
      `${formatCount(d.dropped)} dropped`,
      `${formatCount(d.queueDropped)} queue-dropped`,
      `${formatCount(d.duplicated)} duplicated`,
      `${formatCount(d.reordered)} reordered`,
      `${formatCount(d.corrupted)} corrupted`,
    );
  }
  parts.push(`${formatCount(d.delayed)} delayed`);
  return `  ${name}: ${parts.join(", ")}`;
}

/** The closing lines (stderr): totals, then one line per direction. */
export function formatRelaySummary(
  c: RelayCounters,
  kind: "stream" | "datagram",
  seed: number,
): string[] {
  const what = kind === "stream" ? "connection" : "session";
  const parts = [
    `${formatCount(c.connections)} ${what}${c.connections === 1 ? "" : "s"}`,
    `${formatCount(c.refused)} refused`,
    `${formatCount(c.denied)} denied`,
    `${formatCount(c.expired)} ${kind === "stream" ? "timed out" : "expired"}`,
  ];
  if (kind === "datagram") parts.push(`${formatCount(c.rateLimited)} rate-limited`);
  if (kind === "stream") {
    parts.push(`${formatCount(c.failed)} failed`, `${formatCount(c.resets)} reset`);
  }
  parts.push(`seed ${seed}`);
  return [
    `summary: ${parts.join(", ")}`,
    direction("up (client → target)", c.up, kind),
    direction("down (target → client)", c.down, kind),
  ];
}

/** The `--json` document: snake_case keys, as netkit's other JSON. */
export function relaySummaryJson(
  c: RelayCounters,
  info: { listen: string; target: string; seed: number },
): Json {
  const dir = (d: DirectionCounters) => ({
    bytes_in: d.bytesIn,
    bytes_out: d.bytesOut,
    datagrams_in: d.datagramsIn,
    datagrams_out: d.datagramsOut,
    dropped: d.dropped,
    queue_dropped: d.queueDropped,
    duplicated: d.duplicated,
    reordered: d.reordered,
    corrupted: d.corrupted,
    delayed: d.delayed,
  });
  return {
    listen: info.listen,
    target: info.target,
    seed: info.seed,
    connections: c.connections,
    refused: c.refused,
    denied: c.denied,
    rate_limited: c.rateLimited,
    failed: c.failed,
    expired: c.expired,
    resets: c.resets,
    up: dir(c.up),
    down: dir(c.down),
  };
}
