/**
 * The data loops of a throughput test, shared by client and server: send for
 * a duration (paced by a bit rate, or unlimited), and receive while counting.
 * TCP senders share one read-only block per size (a test of 128 streams of
 * 4 MiB holds 4 MiB, not 512), dropped when the last sender of that size ends;
 * UDP senders and receivers hold one buffer per stream, reused; no allocation
 * per write or datagram.
 *
 * @example
 * ```ts
 * import { sendTcp, TcpReceiver } from "./streams.ts";
 *
 * using conn = await Deno.connect({ port: 5050 });
 * const sent = await sendTcp(conn, { stream: 0, size: 131072, bitrate: 0, durationMs: 1000 });
 * console.log(sent.bytes);
 * ```
 *
 * @module
 */

import { deadline } from "../deadline.ts";
import {
  DatagramBatch,
  type DatagramListener,
  type DatagramTransport,
  type Engine,
} from "../engine/types.ts";
import { isClosedError, writeAll } from "../io.ts";
import { pacedWriteSize, waitUntil } from "../pace.ts";
import { JitterEstimator } from "../stats/jitter.ts";
import { LowWaterPolicy } from "../engine/low_water.ts";
import { SequenceTracker } from "../stats/sequence_tracker.ts";
import {
  type ReceivedFigures,
  type SentFigures,
  UDP_HEADER_BYTES,
  type UdpHeader,
  UdpKind,
  writeUdpHeader,
} from "./protocol.ts";

/** Bytes of a TCP receiver's read buffer. */
export const TCP_RECEIVE_BYTES = 256 * 1024;
/** Bytes a UDP receiver holds (its sequence bitmap, 2^22 bits). */
export const UDP_RECEIVER_BYTES = (1 << 22) / 8;

/** The blocks TCP senders write, one per size, shared while any sender of that size runs. */
const blocks = new Map<number, { block: Uint8Array; users: number }>();

/**
 * The shared block of `size` bytes: random, as iperf3's, so a path that compresses
 * (a VPN, a WAN optimiser) cannot inflate the rate; never written after it is made.
 */
function takeBlock(size: number): Uint8Array {
  let entry = blocks.get(size);
  if (!entry) {
    const block = new Uint8Array(size);
    // getRandomValues fills at most 64 KiB per call.
    for (let at = 0; at < size; at += 65536) crypto.getRandomValues(block.subarray(at, at + 65536));
    entry = { block, users: 0 };
    blocks.set(size, entry);
  }
  entry.users++;
  return entry.block;
}

/** Give back a block from {@linkcode takeBlock}; the last user lets it be collected. */
function returnBlock(size: number): void {
  const entry = blocks.get(size);
  if (entry && --entry.users === 0) blocks.delete(size);
}

/** Options of the senders. */
export interface SendOptions {
  /** Stream index. @default {0} */
  stream: number;
  /** TCP: bytes per write; UDP: datagram size. @default {131072} */
  size: number;
  /** Bits per second; 0 = unlimited. @default {0} */
  bitrate: number;
  /** How long to send. @default {10000} */
  durationMs: number;
  /** Stops sending early. @default {undefined} */
  signal?: AbortSignal;
  /** Live counter of bytes sent, read by interval reporters. @default {undefined} */
  progress?: { bytes: number };
}

/** Send test bytes over a TCP connection for the duration, then half-close it. */
export async function sendTcp(conn: Deno.Conn, options: SendOptions): Promise<SentFigures> {
  const writeSize = pacedWriteSize(options.size, options.bitrate);
  const buf = takeBlock(writeSize);
  const start = performance.now();
  const end = start + options.durationMs;
  const bytesPerMs = options.bitrate / 8 / 1000;
  let bytes = 0;
  try {
    while (!options.signal?.aborted) {
      const now = performance.now();
      if (now >= end) break;
      if (bytesPerMs > 0) {
        const due = start + bytes / bytesPerMs;
        if (due > now) {
          await waitUntil(Math.min(due, end), buf.length / bytesPerMs);
          continue;
        }
      }
      await writeAll(conn, buf);
      bytes += buf.length;
      if (options.progress) options.progress.bytes += buf.length;
    }
    await conn.closeWrite();
  } catch (err) {
    if (!isClosedError(err)) throw err;
  } finally {
    returnBlock(options.size);
  }
  return {
    stream: options.stream,
    bytes,
    datagrams: 0,
    seconds: (performance.now() - start) / 1000,
  };
}

/** Options of {@linkcode TcpReceiver}. */
export interface TcpReceiverOptions {
  /**
   * The engine whose `receiveLowWater` raises the connection's receive
   * low-water mark while the stream runs fast ({@linkcode LowWaterPolicy}).
   * @default {undefined} (never raised)
   */
  engine?: Engine;
}

/** Counts bytes arriving on a TCP data stream, with per-interval bins. */
export class TcpReceiver {
  bytes = 0;
  readonly bins: number[] = [];
  #start = 0;
  /** When the first byte arrived: the receiver's own time runs from here to its last byte. */
  #first = 0;
  #end = 0;

  readonly #engine: Engine | undefined;
  #policy: LowWaterPolicy | undefined;

  constructor(
    readonly stream: number,
    readonly intervalMs: number,
    options: TcpReceiverOptions = {},
  ) {
    this.#engine = options.engine;
  }

  /** The receive low-water mark this stream raised (bytes; 0: never raised). */
  get lowWater(): number {
    return this.#policy?.raised ?? 0;
  }

  /** Read until the sender half-closes (or the connection closes). */
  async run(conn: Deno.Conn, initial?: Uint8Array): Promise<void> {
    this.#start = performance.now();
    if (initial && initial.length > 0) this.#count(initial.length, this.#start);
    const buf = new Uint8Array(TCP_RECEIVE_BYTES);
    const policy = this.#policy = LowWaterPolicy.for(this.#engine, conn);
    try {
      for (let n; (n = await conn.read(buf)) !== null;) {
        const now = performance.now();
        this.#count(n, now);
        policy?.onRead(n, now);
      }
    } catch (err) {
      if (!isClosedError(err)) throw err;
    }
    this.#end = performance.now();
  }

  #count(n: number, now: number): void {
    if (this.bytes === 0) this.#first = now;
    this.bytes += n;
    if (this.intervalMs > 0) {
      const bin = Math.floor((now - this.#start) / this.intervalMs);
      while (this.bins.length <= bin) this.bins.push(0);
      this.bins[bin]! += n;
    }
  }

  /** Figures for the report. */
  figures(): ReceivedFigures {
    return {
      stream: this.stream,
      bytes: this.bytes,
      datagrams: 0,
      lost: 0,
      out_of_order: 0,
      duplicates: 0,
      jitter_ms: null,
      seconds: this.#first > 0 ? ((this.#end || performance.now()) - this.#first) / 1000 : 0,
      intervals: this.bins,
    };
  }
}

/** Options of {@linkcode sendUdp}. */
export interface UdpSendOptions extends SendOptions {
  /** The test's key, written into every datagram. */
  key: number;
}

/** Send test datagrams for the duration, then three `end` datagrams. */
export async function sendUdp(
  socket: DatagramListener,
  peer: Deno.NetAddr,
  options: UdpSendOptions,
): Promise<SentFigures> {
  const buf = new Uint8Array(Math.max(UDP_HEADER_BYTES, options.size));
  const view = new DataView(buf.buffer);
  const start = performance.now();
  const end = start + options.durationMs;
  const gapMs = options.bitrate > 0 ? (buf.length * 8 * 1000) / options.bitrate : 0;
  let seq = 0;
  try {
    while (!options.signal?.aborted) {
      const now = performance.now();
      if (now >= end) break;
      if (gapMs > 0) {
        const due = start + seq * gapMs;
        if (due > now) {
          await waitUntil(Math.min(due, end), gapMs);
          continue;
        }
      }
      writeUdpHeader(view, options.key, options.stream, UdpKind.data, seq, now);
      try {
        await socket.send(buf, peer);
      } catch (err) {
        if (err instanceof Deno.errors.BadResource) throw err;
        // ENOBUFS or an ICMP error: this datagram is lost, which the receiver counts.
      }
      seq++;
      if (options.progress) options.progress.bytes += buf.length;
    }
    const seconds = (performance.now() - start) / 1000;
    for (let i = 0; i < 3; i++) {
      writeUdpHeader(view, options.key, options.stream, UdpKind.end, seq, performance.now());
      await socket.send(buf.subarray(0, UDP_HEADER_BYTES), peer).catch(() => {});
    }
    return { stream: options.stream, bytes: seq * buf.length, datagrams: seq, seconds };
  } catch (err) {
    if (!isClosedError(err)) throw err;
    return {
      stream: options.stream,
      bytes: seq * buf.length,
      datagrams: seq,
      seconds: (performance.now() - start) / 1000,
    };
  }
}

/** Datagrams per send call of {@linkcode sendUdpBatches} (the prototype's best on loopback). */
export const UDP_SEND_BATCH = 32;
/** Messages per send call with GSO, each of {@linkcode udpGsoSegments} datagrams. */
export const UDP_GSO_MESSAGES = 4;

/**
 * Datagrams of `size` bytes per GSO message: as many as fit in 65,000 bytes
 * (under IPv4's 65,507-byte UDP payload), at most 64 (the kernel's
 * UDP_MAX_SEGMENTS on older kernels).
 */
export function udpGsoSegments(size: number): number {
  return Math.max(1, Math.min(64, Math.floor(65_000 / size)));
}

/**
 * {@linkcode sendUdp} through an engine's connected socket: every datagram
 * that is due (all {@linkcode UDP_SEND_BATCH} when unlimited) goes in one
 * `sendBatch` (one `sendmmsg` on the native engine), each with its own
 * sequence number and send time. A batch the kernel refuses (ENOBUFS, an
 * ICMP error) is counted as sent and so as lost, as `sendUdp` counts a
 * refused datagram.
 */
export async function sendUdpBatches(
  socket: DatagramTransport,
  options: UdpSendOptions,
): Promise<SentFigures> {
  const size = Math.max(UDP_HEADER_BYTES, options.size);
  // With GSO (the socket segments at `size`) each message carries up to `perMessage` datagrams.
  const perMessage = socket.features.gso ? udpGsoSegments(size) : 1;
  const messages = socket.features.gso ? UDP_GSO_MESSAGES : UDP_SEND_BATCH;
  const most = messages * perMessage;
  const slot = size * perMessage;
  const batch = new DatagramBatch(messages, slot);
  const views = Array.from({ length: most }, (_, i) => {
    const at = Math.floor(i / perMessage) * slot + (i % perMessage) * size;
    return new DataView(batch.data.buffer, at, UDP_HEADER_BYTES);
  });
  const start = performance.now();
  const end = start + options.durationMs;
  const gapMs = options.bitrate > 0 ? (size * 8 * 1000) / options.bitrate : 0;
  let seq = 0;
  const figures = () => ({
    stream: options.stream,
    bytes: seq * size,
    datagrams: seq,
    seconds: (performance.now() - start) / 1000,
  });
  try {
    while (!options.signal?.aborted) {
      const now = performance.now();
      if (now >= end) break;
      let due = most;
      if (gapMs > 0) {
        const next = start + seq * gapMs;
        if (next > now) {
          await waitUntil(Math.min(next, end));
          continue;
        }
        due = Math.min(most, Math.floor((now - start) / gapMs) - seq + 1);
      }
      for (let i = 0; i < due; i++) {
        writeUdpHeader(views[i]!, options.key, options.stream, UdpKind.data, seq + i, now);
      }
      const full = Math.floor(due / perMessage);
      batch.fill(full, slot);
      if (due % perMessage > 0) batch.lengths[batch.count++] = (due % perMessage) * size;
      let taken = due;
      try {
        // Fewer messages only once the socket is closed.
        const sent = await socket.sendBatch(batch);
        if (sent < batch.count) taken = Math.min(due, sent * perMessage);
      } catch (err) {
        if (isClosedError(err)) throw err;
        // Refused by the kernel: these datagrams are lost, which the receiver counts.
      }
      seq += taken;
      if (options.progress) options.progress.bytes += taken * size;
      if (taken < due) return figures();
    }
    const sent = figures();
    const ends = new DatagramBatch(3, UDP_HEADER_BYTES);
    for (let i = 0; i < 3; i++) {
      const view = new DataView(ends.data.buffer, i * UDP_HEADER_BYTES, UDP_HEADER_BYTES);
      writeUdpHeader(view, options.key, options.stream, UdpKind.end, seq, performance.now());
    }
    ends.fill(3, UDP_HEADER_BYTES);
    await socket.sendBatch(ends).catch(() => {});
    return sent;
  } catch (err) {
    if (!isClosedError(err)) throw err;
    return figures();
  }
}

/** Counts test datagrams of one stream: loss, order, duplicates, jitter, bins. */
export class UdpReceiver {
  bytes = 0;
  datagrams = 0;
  /** Resolves when the sender's `end` datagram arrives. */
  readonly whenEnded: Promise<void>;
  /** Call on the sender's `end` datagram. */
  readonly end: () => void;
  readonly bins: number[] = [];
  /** Per interval: distinct datagrams, the highest sequence number seen, the jitter at its end. */
  readonly #binDatagrams: number[] = [];
  readonly #binHighest: number[] = [];
  readonly #binJitter: (number | null)[] = [];
  readonly tracker = new SequenceTracker();
  readonly jitter = new JitterEstimator();
  #start = 0;
  #last = 0;

  constructor(readonly stream: number, readonly intervalMs: number) {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.whenEnded = promise;
    this.end = resolve;
  }

  /** Mark the start of the test (go). */
  begin(now: number): void {
    this.#start = now;
  }

  /** Count one data datagram. */
  record(header: UdpHeader, length: number, now: number): void {
    if (this.tracker.record(header.seq) === "duplicate") return;
    this.bytes += length;
    this.datagrams++;
    this.#last = now;
    this.jitter.update(header.sendTimeMs, now);
    if (this.intervalMs > 0 && this.#start > 0) {
      const bin = Math.max(0, Math.floor((now - this.#start) / this.intervalMs));
      while (this.bins.length <= bin) {
        this.bins.push(0);
        this.#binDatagrams.push(0);
        this.#binHighest.push(-1);
        this.#binJitter.push(null);
      }
      this.bins[bin]! += length;
      this.#binDatagrams[bin]!++;
      if (header.seq > this.#binHighest[bin]!) this.#binHighest[bin] = header.seq;
      this.#binJitter[bin] = this.jitter.samples > 1 ? this.jitter.jitterMs : null;
    }
  }

  /** Datagrams lost per interval: the sequence numbers first due in it, less those that came. */
  #lostPerInterval(): number[] {
    let highest = -1;
    return this.#binDatagrams.map((got, i) => {
      const top = Math.max(highest, this.#binHighest[i]!);
      const due = top - highest;
      highest = top;
      return Math.max(0, due - got);
    });
  }

  /** Figures for the report, given how many datagrams the sender says it sent. */
  figures(sent: number | undefined): ReceivedFigures {
    const lost = sent === undefined
      ? Math.max(0, this.tracker.highest + 1 - this.tracker.received)
      : this.tracker.lost(sent);
    return {
      stream: this.stream,
      bytes: this.bytes,
      datagrams: this.datagrams,
      lost,
      out_of_order: this.tracker.outOfOrder,
      duplicates: this.tracker.duplicates,
      jitter_ms: this.jitter.samples > 1 ? this.jitter.jitterMs : null,
      seconds: this.#start > 0 ? ((this.#last || this.#start) - this.#start) / 1000 : 0,
      intervals: this.bins,
      interval_lost: this.#lostPerInterval(),
      interval_jitter_ms: this.#binJitter,
    };
  }
}

/**
 * Wait until every receiver has seen its sender's `end` datagrams, or until
 * `by` (a `performance.now()` time) if an `end` was lost on the way.
 */
export async function drainUdp(receivers: Iterable<UdpReceiver>, by: number): Promise<void> {
  const left = by - performance.now();
  if (left <= 0) return;
  const ended = Promise.all(Array.from(receivers, (r) => r.whenEnded));
  await deadline(ended, left, () => new Error("end not seen")).catch(() => {});
}
