/**
 * The result types of a throughput test, and how per-stream figures combine
 * into one direction's totals; the client, the report and iperf3 read these.
 *
 * @example
 * ```ts
 * import { combineDirection } from "./result.ts";
 *
 * const d = combineDirection(
 *   [{ stream: 0, bytes: 1000, datagrams: 0, seconds: 1 }],
 *   [{
 *     stream: 0, bytes: 1000, datagrams: 0, lost: 0, out_of_order: 0, duplicates: 0,
 *     jitter_ms: null, seconds: 1, intervals: [],
 *   }],
 *   null,
 * );
 * console.log(d.received.bytes); // 1000
 * ```
 *
 * @module
 */

import type { ReceivedFigures, SentFigures } from "./protocol.ts";

/** Totals of one direction, from both ends. */
export interface DirectionResult {
  sent: { bytes: number; datagrams: number; seconds: number; streams: SentFigures[] };
  received: {
    bytes: number;
    datagrams: number;
    lost: number;
    outOfOrder: number;
    duplicates: number;
    jitterMs: number | null;
    seconds: number;
    streams: ReceivedFigures[];
  };
  /** Receiver's kernel UDP receive-buffer drops during the test, where it could tell. */
  rcvbufErrors: number | null;
}

/**
 * One direction's totals from its streams' figures: bytes, datagrams, lost,
 * out-of-order and duplicates summed, jitter the mean of the streams that
 * measured one, seconds the longest stream's.
 */
export function combineDirection(
  sent: SentFigures[],
  received: ReceivedFigures[],
  rcvbufErrors: number | null,
): DirectionResult {
  const sum = <T>(items: T[], f: (t: T) => number) => items.reduce((a, t) => a + f(t), 0);
  const jitters = received.map((r) => r.jitter_ms).filter((j): j is number => j !== null);
  return {
    sent: {
      bytes: sum(sent, (s) => s.bytes),
      datagrams: sum(sent, (s) => s.datagrams),
      seconds: Math.max(0, ...sent.map((s) => s.seconds)),
      streams: sent,
    },
    received: {
      bytes: sum(received, (r) => r.bytes),
      datagrams: sum(received, (r) => r.datagrams),
      lost: sum(received, (r) => r.lost),
      outOfOrder: sum(received, (r) => r.out_of_order),
      duplicates: sum(received, (r) => r.duplicates),
      jitterMs: jitters.length > 0 ? jitters.reduce((a, j) => a + j, 0) / jitters.length : null,
      seconds: Math.max(0, ...received.map((r) => r.seconds)),
      streams: received,
    },
    rcvbufErrors,
  };
}
