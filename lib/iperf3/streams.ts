/**
 * The data streams of an iperf3 test, for both roles: TCP and UDP senders
 * that run until stopped (iperf3's client decides when a test ends), paced
 * per stream like iperf3's `-b`, and receivers that count bytes, and for UDP
 * loss, reordering, duplicates and RFC 3550 jitter from iperf3's datagram
 * header. Figures taken during the omitted warm-up (`-O`) are left out, as
 * iperf3 does. One buffer per stream, reused; no allocation per write.
 *
 * @example
 * ```ts
 * import { Iperf3Stream, sendTcp } from "./streams.ts";
 *
 * const stream = new Iperf3Stream(0, true, "tcp", 131072, false);
 * using conn = await Deno.connect({ port: 5201 });
 * const stop = new AbortController();
 * setTimeout(() => stop.abort(), 1000);
 * await sendTcp(conn, stream, 0, stop.signal);
 * console.log(stream.bytes);
 * ```
 *
 * @module
 */

import { LowWaterPolicy } from "../engine/low_water.ts";
import type { Engine } from "../engine/types.ts";
import { isClosedError, writeAll } from "../io.ts";
import { waitUntil } from "../pace.ts";
import { JitterEstimator } from "../stats/jitter.ts";
import { SequenceTracker } from "../stats/sequence_tracker.ts";
import {
  readUdpHeader,
  streamId,
  type StreamResult,
  type UdpHeader,
  writeUdpHeader,
} from "./wire.ts";

/** Wall-clock milliseconds, as iperf3 stamps its datagrams. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The largest packet number a tracker takes exactly. */
const MAX_COUNT = 2 ** 53;

/** One stream of a test, from one end: what it sent or received. */
export class Iperf3Stream {
  /** iperf3's id of the stream (1, 3, 4, …). */
  readonly id: number;
  /** Bytes sent or received, the warm-up included. */
  bytes = 0;
  /** Bytes at the end of the warm-up. */
  omitBytes = 0;
  /** UDP sender: datagrams sent (the last packet number). */
  count = 0;
  /** UDP sender: datagrams sent during the warm-up. */
  omitCount = 0;
  /** When the stream started and (once stopped) ended, `performance.now()`. */
  startedAt = 0;
  endedAt = 0;
  /** UDP receiver: sequence numbers (packet number − 1) and jitter. */
  readonly tracker: SequenceTracker | undefined;
  readonly jitter = new JitterEstimator();
  /** UDP receiver: the tracker's counts at the end of the warm-up. */
  omit = { received: 0, highest: 0, outOfOrder: 0, duplicates: 0 };
  /** UDP receiver: datagrams too short or with an impossible packet number. */
  malformed = 0;
  readonly #header: UdpHeader = { sendMs: 0, count: 0 };

  constructor(
    readonly index: number,
    readonly sender: boolean,
    readonly proto: "tcp" | "udp",
    readonly size: number,
    readonly udp64: boolean,
  ) {
    this.id = streamId(index);
    this.tracker = proto === "udp" && !sender ? new SequenceTracker() : undefined;
  }

  /** Mark the start of the measured time (TEST_START). */
  begin(now = performance.now()): void {
    this.startedAt = now;
  }

  /** The warm-up ends now: later figures count, earlier ones do not. */
  endOmit(now = performance.now()): void {
    this.omitBytes = this.bytes;
    this.omitCount = this.count;
    if (this.tracker) {
      this.omit = {
        received: this.tracker.received,
        highest: this.tracker.highest + 1,
        outOfOrder: this.tracker.outOfOrder,
        duplicates: this.tracker.duplicates,
      };
    }
    this.jitter.reset();
    this.startedAt = now;
  }

  /** Mark the end of the stream. */
  end(now = performance.now()): void {
    if (this.endedAt === 0) this.endedAt = now;
  }

  /** Bytes moved after the warm-up. */
  get measuredBytes(): number {
    return this.bytes - this.omitBytes;
  }

  /** Seconds measured (warm-up excluded). */
  get seconds(): number {
    if (this.startedAt === 0) return 0;
    return ((this.endedAt || performance.now()) - this.startedAt) / 1000;
  }

  /** This stream's entry in a results document, measured over `endTime` seconds. */
  result(endTime: number): StreamResult {
    return {
      id: this.id,
      bytes: this.measuredBytes,
      retransmits: -1,
      jitter: this.sender ? 0 : this.jitter.jitterMs / 1000,
      errors: this.sender ? 0 : this.iperfErrors,
      packets: this.sender ? this.count : this.highestCount,
      startTime: 0,
      endTime,
    };
  }

  /** UDP receiver: distinct datagrams received after the warm-up. */
  get received(): number {
    return this.tracker ? this.tracker.received - this.omit.received : 0;
  }

  /** UDP receiver: out-of-order arrivals after the warm-up. */
  get outOfOrder(): number {
    return this.tracker ? this.tracker.outOfOrder - this.omit.outOfOrder : 0;
  }

  /** UDP receiver: duplicates after the warm-up. */
  get duplicates(): number {
    return this.tracker ? this.tracker.duplicates - this.omit.duplicates : 0;
  }

  /** UDP receiver: the highest packet number seen (iperf3's `packets` of a receiver). */
  get highestCount(): number {
    return this.tracker ? this.tracker.highest + 1 : 0;
  }

  /**
   * UDP receiver: datagrams lost, given how many the sender says it sent in
   * all (`sent`; its warm-up included), or from the highest number seen.
   */
  lost(sent?: number): number {
    if (!this.tracker) return 0;
    const total = sent ?? this.highestCount;
    return Math.max(0, total - this.omit.highest - this.received);
  }

  /** UDP receiver: iperf3's `errors` (gaps in the numbers; duplicates not told apart). */
  get iperfErrors(): number {
    return this.tracker ? Math.max(0, this.highestCount - this.tracker.received) : 0;
  }

  /** Count one received datagram (UDP receiver). */
  record(data: Uint8Array, arrivalWallMs: number): void {
    const h = this.#header;
    if (!readUdpHeader(data, this.udp64, h) || h.count < 1 || h.count > MAX_COUNT) {
      this.malformed++;
      return;
    }
    if (this.tracker!.record(h.count - 1) === "duplicate") return;
    this.bytes += data.length;
    this.jitter.update(h.sendMs, arrivalWallMs);
  }
}

/**
 * Send on a TCP data connection until `signal` aborts or `performance.now()`
 * reaches `until` (checked before every write, so a busy event loop cannot
 * make it late), paced at `bitrate` (0 = unlimited).
 */
export async function sendTcp(
  conn: Deno.Conn,
  stream: Iperf3Stream,
  bitrate: number,
  signal: AbortSignal,
  until = Infinity,
): Promise<void> {
  const buf = new Uint8Array(stream.size);
  crypto.getRandomValues(buf.subarray(0, Math.min(buf.length, 65536)));
  const start = performance.now();
  const bytesPerMs = bitrate / 8 / 1000;
  try {
    while (!signal.aborted) {
      const now = performance.now();
      if (now >= until) break;
      if (bytesPerMs > 0) {
        const due = start + stream.bytes / bytesPerMs;
        if (due > now) {
          await waitUntil(Math.min(due, until));
          continue;
        }
      }
      await writeAll(conn, buf);
      stream.bytes += buf.length;
    }
  } catch (err) {
    if (!isClosedError(err) && !signal.aborted) throw err;
  } finally {
    stream.end();
  }
}

/** Options of {@linkcode receiveTcp}. */
export interface ReceiveTcpOptions {
  /** Bytes already read from the connection (after the cookie). @default {undefined} */
  initial?: Uint8Array;
  /**
   * The engine whose `receiveLowWater` raises the connection's receive
   * low-water mark while the stream runs fast ({@linkcode LowWaterPolicy}).
   * @default {undefined} (never raised)
   */
  engine?: Engine;
}

/** Count what arrives on a TCP data connection until it closes; the mark it raised (0: none). */
export async function receiveTcp(
  conn: Deno.Conn,
  stream: Iperf3Stream,
  options: ReceiveTcpOptions = {},
): Promise<number> {
  if (options.initial) stream.bytes += options.initial.length;
  const buf = new Uint8Array(256 * 1024);
  const policy = LowWaterPolicy.for(options.engine, conn);
  try {
    for (let n; (n = await conn.read(buf)) !== null;) {
      stream.bytes += n;
      policy?.onRead(n, performance.now());
    }
  } catch (err) {
    if (!isClosedError(err)) throw err;
  } finally {
    stream.end();
  }
  return policy?.raised ?? 0;
}

/**
 * Send iperf3 datagrams to `peer` until `signal` aborts or `performance.now()`
 * reaches `until`, paced at `bitrate` (0 = unlimited).
 */
export async function sendUdp(
  socket: Deno.DatagramConn,
  peer: Deno.NetAddr,
  stream: Iperf3Stream,
  bitrate: number,
  signal: AbortSignal,
  until = Infinity,
): Promise<void> {
  const buf = new Uint8Array(stream.size);
  const view = new DataView(buf.buffer);
  const start = performance.now();
  const gapMs = bitrate > 0 ? (buf.length * 8 * 1000) / bitrate : 0;
  try {
    while (!signal.aborted) {
      const now = performance.now();
      if (now >= until) break;
      if (gapMs > 0) {
        const due = start + stream.count * gapMs;
        if (due > now) {
          await waitUntil(Math.min(due, until));
          continue;
        }
      }
      stream.count++;
      writeUdpHeader(view, stream.udp64, stream.count, wallMs());
      try {
        await socket.send(buf, peer);
        stream.bytes += buf.length;
      } catch (err) {
        if (err instanceof Deno.errors.BadResource) throw err;
        // ENOBUFS or an ICMP error: the datagram is lost, which the receiver counts.
      }
    }
  } catch (err) {
    if (!isClosedError(err) && !signal.aborted) throw err;
  } finally {
    stream.end();
  }
}
