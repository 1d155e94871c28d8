/**
 * The ping-pong Worker of the native engine: one probe out, its echo back,
 * over and over, through BLOCKING libc `send`/`recv` on the Worker's own
 * thread, so a round trip never passes through Deno's event loop. The times
 * are taken here, right around the calls, on the main thread's clock
 * (`performance.now()` of the main thread: its time origin is passed in).
 *
 * The socket is the main thread's connected native UDP socket, or the
 * descriptor of Deno's TCP connection (found by `findSocketFd`): either way
 * the main thread does no more I/O on it until this Worker is done, and only
 * closes it then. This Worker makes it blocking with a receive timeout
 * (`SO_RCVTIMEO`, and for TCP a send timeout `SO_SNDTIMEO`, at most
 * {@linkcode SLICE_MS}), so it looks at the stop word of the shared control
 * array between waits: Ctrl-C and the probe timeout reach it within a slice.
 *
 * TCP is a byte stream: each probe goes out through a full-send loop (a
 * partial send sends the rest), and the echoes are framed out of the stream by
 * the same {@linkcode ProbeStreamFramer} the event-loop path reads with (so a
 * split echo is whole before it is timed, and bytes that are not a probe are
 * skipped and counted malformed exactly as there: once per probe's worth
 * begun). The end of the stream, a reset, or a send that could not complete
 * within the timeout end the run, and say so in {@linkcode PingPongDone}. What happened goes back in batches (every
 * {@linkcode FLUSH_MS} or {@linkcode FLUSH_PROBES} probes): the probes sent
 * with their send times, and every echo this Worker decoded (`decodeProbe`,
 * the check of the main thread's own loop: magic, run id, sequence number,
 * padding) as its sequence number, send time and arrival time; an echo that
 * does not decode is counted malformed here, as the main thread would count
 * it. The main thread then checks and counts the decoded echoes exactly as it
 * counts those of its own loop (a sequence number never sent, a send time in
 * its future, a duplicate). Only numbers cross between the threads: on one
 * shared core every byte copied and checked twice is round-trip time.
 *
 * Permissions: started by `startPingPongWorker` (./pingpong.ts) before the
 * process drops privileges, it shares the process's permissions (a revoke in
 * a Worker revokes for the whole process, measured on Deno 2.9): after the
 * drop it holds what the probe keeps (net, and ffi for libc only). It must
 * never revoke anything itself.
 *
 * @example
 * ```ts
 * // Started by ./pingpong.ts, never directly:
 * const url = new URL("./pingpong_worker.ts", import.meta.url).href;
 * const worker = new Worker(url, { type: "module" });
 * worker.terminate();
 * ```
 *
 * @module
 */

/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />

import { type Libc, loadLibc } from "../engine/native/libc.ts";
import { ERRNO_NAMES, LINUX } from "../engine/native/layout.ts";
import { readErrno } from "../engine/native/udp.ts";
import { type DecodedProbe, decodeProbe, ProbeEncoder, ProbeStreamFramer } from "./codec.ts";

/** Longest single blocking wait: how soon a stop reaches a waiting Worker. */
export const SLICE_MS = 20;
/** Results go back at least this often (ms) … */
export const FLUSH_MS = 10;
/** … or once this many probes were sent. */
export const FLUSH_PROBES = 1024;

/** Stop word values in `control[0]`. */
export const RUN = 0, STOP_SENDING = 1, STOP_NOW = 2;

/** What the main thread asks. */
export interface PingPongRequest {
  /** UDP: one probe per datagram; TCP: probes framed out of a byte stream. */
  transport: "udp" | "tcp";
  fd: number;
  size: number;
  runId: number;
  /** Probes to send; `null`: until `endBy` or a stop. */
  count: number | null;
  /** Main-thread time (ms) after which no probe is sent; `null`: none. */
  endBy: number | null;
  timeoutMs: number;
  /** The main thread's `performance.timeOrigin`. */
  timeOrigin: number;
  /** `Int32Array` over it: [0] the stop word. */
  control: SharedArrayBuffer;
}

/** One batch of what happened. */
export interface PingPongBatch {
  type: "batch";
  /** Send times (main-thread ms) of the probes `firstSeq`, `firstSeq + 1`, … */
  firstSeq: number;
  sentAt: Float64Array;
  /** Each decoded echo: its sequence number, its send time (as it came back), its arrival time. */
  echoSeq: Float64Array;
  echoSentAt: Float64Array;
  echoAt: Float64Array;
  /**
   * Echoes that did not decode; UDP: also datagrams of the wrong size; TCP:
   * also bytes skipped to find the next probe, one per probe's worth begun (as
   * the event-loop path counts them).
   */
  malformed: number;
  /** Probes whose echo did not come within the timeout (the next was sent). */
  givenUp: number;
}

/** The end of the run. */
export interface PingPongDone {
  type: "done";
  /** Set when the Worker could not run at all, or the socket failed (errno name). */
  error?: string;
  /** Not one echo within the first timeout. */
  noEcho?: boolean;
  /** TCP: the server ended the stream (what it sent before is in the batches). */
  eof?: boolean;
  /** TCP: the connection was reset (`recv` failed with this errno name, e.g. ECONNRESET). */
  reset?: string;
  /** TCP: a send failed because the connection broke (errno name: EPIPE, ECONNRESET). */
  sendBroke?: string;
  /** TCP: a probe could not be handed to the kernel within the timeout (the peer stopped reading). */
  stalled?: boolean;
}

/** Messages from the Worker. */
export type PingPongMessage = { type: "ready" } | PingPongBatch | PingPongDone;

self.onmessage = (event: MessageEvent<PingPongRequest>) => {
  let done: PingPongDone;
  try {
    done = run(event.data);
  } catch (err) {
    done = { type: "done", error: (err as Error).message };
  }
  self.postMessage(done);
};
self.postMessage({ type: "ready" });

/** The socket options set to one slice: a datagram socket waits only in recv. */
const UDP_TIMEOUTS = [["SO_RCVTIMEO", LINUX.SO_RCVTIMEO]] as const;
/** A TCP send can wait too (a full send buffer: the server is not reading). */
const TCP_TIMEOUTS = [...UDP_TIMEOUTS, ["SO_SNDTIMEO", LINUX.SO_SNDTIMEO]] as const;

/** Decoded echoes per batch: two per probe sent (a late echo and the awaited one). */
const ECHO_SLOTS = FLUSH_PROBES * 2;

/**
 * The main thread's `performance.now()` (ms), read here through libc's
 * `clock_gettime(CLOCK_MONOTONIC)`: the clock `performance.now()` counts on,
 * at about half its cost in a Worker (two readings per round trip). The
 * offset between the two is taken once, from the closest of a few paired
 * readings; a round trip is the difference of two readings of this one clock.
 */
function mainThreadClock(libc: Libc, originOffset: number): () => number {
  const s = libc.symbols;
  const ts = new Uint32Array(4); // struct timespec { i64 tv_sec; i64 tv_nsec } (little-endian)
  const tsBytes = new Uint8Array(ts.buffer);
  const mono = () => {
    s.clock_gettime(LINUX.CLOCK_MONOTONIC, tsBytes);
    return (ts[0]! + ts[1]! * 4294967296) * 1000 + ts[2]! / 1e6;
  };
  if (s.clock_gettime(LINUX.CLOCK_MONOTONIC, tsBytes) !== 0) {
    return () => performance.now() + originOffset;
  }
  let closest = Number.POSITIVE_INFINITY;
  let offset = 0;
  for (let i = 0; i < 8; i++) {
    const before = performance.now();
    const m = mono();
    const after = performance.now();
    if (after - before < closest) {
      closest = after - before;
      offset = (before + after) / 2 - m + originOffset;
    }
  }
  return () => mono() + offset;
}

function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

function run(req: PingPongRequest): PingPongDone {
  const libc = loadLibc();
  if ("reason" in libc) return { type: "done", error: libc.reason };
  const s = libc.symbols;
  const control = new Int32Array(req.control);
  const now = mainThreadClock(libc, performance.timeOrigin - req.timeOrigin);
  const fd = req.fd;
  const tcp = req.transport === "tcp";
  // Blocking, with a receive (TCP: and send) timeout of one slice.
  const flags = s.fcntl(fd, LINUX.F_GETFL, 0);
  if (flags < 0 || s.fcntl(fd, LINUX.F_SETFL, flags & ~LINUX.O_NONBLOCK) !== 0) {
    return { type: "done", error: `fcntl: errno ${readErrno(libc)}` };
  }
  const slice = Math.max(1, Math.min(SLICE_MS, req.timeoutMs));
  const timeval = new Uint8Array(
    new BigInt64Array([BigInt(Math.floor(slice / 1000)), BigInt((slice % 1000) * 1000)]).buffer,
  );
  for (const [name, option] of tcp ? TCP_TIMEOUTS : UDP_TIMEOUTS) {
    if (s.setsockopt(fd, LINUX.SOL_SOCKET, option, timeval, 16) !== 0) {
      return { type: "done", error: `setsockopt ${name}: errno ${readErrno(libc)}` };
    }
  }

  const size = req.size;
  const encoder = new ProbeEncoder(size, req.runId);
  // UDP: one byte more than a probe, so a longer echo shows as malformed, not cut to fit.
  const inBuf = new Uint8Array(size + 1);
  const inProbe = inBuf.subarray(0, size);
  // TCP: the event-loop path's framer, so bytes are resynchronised and counted as there.
  const framer = tcp ? new ProbeStreamFramer(size, req.runId, Math.max(size, 64 * 1024)) : null;
  const decoded: DecodedProbe = { seq: 0, sendTimeMs: 0 };
  // Made once: the hot loop allocates nothing per probe.
  const sizeArg = BigInt(size);
  const inLenArg = BigInt(inBuf.length);
  const count = req.count ?? Number.POSITIVE_INFINITY;
  const endBy = req.endBy ?? Number.POSITIVE_INFINITY;

  // The batch being filled (fresh arrays per batch: they are transferred).
  let firstSeq = 0;
  let sentAt = new Float64Array(FLUSH_PROBES);
  let nSent = 0;
  let echoSeq = new Float64Array(ECHO_SLOTS);
  let echoSentAt = new Float64Array(ECHO_SLOTS);
  let echoAt = new Float64Array(ECHO_SLOTS);
  let nEchoes = 0;
  let malformed = 0;
  let givenUp = 0;
  let flushedAt = now();
  const flush = () => {
    const batch: PingPongBatch = {
      type: "batch",
      firstSeq,
      sentAt: sentAt.subarray(0, nSent),
      echoSeq: echoSeq.subarray(0, nEchoes),
      echoSentAt: echoSentAt.subarray(0, nEchoes),
      echoAt: echoAt.subarray(0, nEchoes),
      malformed,
      givenUp,
    };
    self.postMessage(batch, [sentAt.buffer, echoSeq.buffer, echoSentAt.buffer, echoAt.buffer]);
    firstSeq += nSent;
    sentAt = new Float64Array(FLUSH_PROBES);
    echoSeq = new Float64Array(ECHO_SLOTS);
    echoSentAt = new Float64Array(ECHO_SLOTS);
    echoAt = new Float64Array(ECHO_SLOTS);
    nSent =
      nEchoes =
      malformed =
      givenUp =
        0;
    flushedAt = now();
  };

  /** The probe whose echo is awaited, and whether it came. */
  let mine = 0;
  let back = false;
  let echoed = 0;
  /**
   * An echo of `size` bytes that arrived `at`: decoded here, kept for the main
   * thread to check and count, or counted malformed.
   */
  const onEcho = (probe: Uint8Array, at: number) => {
    if (!decodeProbe(probe, req.runId, decoded)) {
      malformed++;
      return;
    }
    if (nEchoes === ECHO_SLOTS) flush();
    echoSeq[nEchoes] = decoded.seq;
    echoSentAt[nEchoes] = decoded.sendTimeMs;
    echoAt[nEchoes++] = at;
    if (!back && decoded.seq === mine) {
      back = true;
      echoed++;
    }
  };

  let failure: string | undefined;
  let noEcho = false;
  // Set inside the TCP helpers below (closures the flow analysis does not follow).
  let eof = false as boolean;
  let reset: string | undefined;
  let sendBroke: string | undefined;
  let stalled = false as boolean;

  /** When the last receive returned (main-thread ms). */
  let t = 0;
  // TCP: each probe the framer cuts out of the stream arrived with the read that completed it.
  // One that does not decode (its padding corrupt, say) is malformed and not the awaited
  // echo, whatever sequence number it carries: the wait goes on, as on the event loop.
  const onFramed = (probe: Uint8Array) => onEcho(probe, t);
  const onSkipped = (bytes: number) => {
    malformed += Math.ceil(bytes / size); // one per probe's worth begun, as the event-loop path
  };
  let spaceLen = -1;
  let spaceArg = 0n;
  /** TCP: one blocking read (at most a slice); false once the stream ended or failed. */
  const tcpReceive = (): boolean => {
    const space = framer!.space();
    if (space.length !== spaceLen) { // the whole buffer, unless part of an echo is kept
      spaceLen = space.length;
      spaceArg = BigInt(spaceLen);
    }
    const n = s.recv(fd, space, spaceArg, 0);
    t = now();
    if (n > 0) {
      framer!.commit(n, onFramed, onSkipped);
      return true;
    }
    if (n === 0) {
      framer!.end(onSkipped); // an unfinished probe at the end is malformed, as on the event loop
      eof = true;
      return false;
    }
    const errno = readErrno(libc);
    if (errno === LINUX.EAGAIN || errno === LINUX.EINTR) return true;
    if (errno === LINUX.ECONNRESET) reset = errnoName(errno);
    else failure = `recv: ${errnoName(errno)}`;
    return false;
  };
  /** TCP: hand all of `probe` (sent at `at`) to the kernel; false if it could not. */
  const tcpSend = (probe: Uint8Array, at: number): boolean => {
    let off = 0;
    while (off < size) {
      const n = off === 0
        ? s.send(fd, probe, sizeArg, LINUX.MSG_NOSIGNAL)
        : s.send(fd, probe.subarray(off), BigInt(size - off), LINUX.MSG_NOSIGNAL);
      if (n > 0) {
        off += n;
        continue;
      }
      const errno = n < 0 ? readErrno(libc) : LINUX.EAGAIN;
      if (errno === LINUX.EAGAIN || errno === LINUX.EINTR) {
        // The send buffer stayed full for a slice: the server is not reading.
        if (Atomics.load(control, 0) === STOP_NOW) return false;
        if (now() - at >= req.timeoutMs) {
          stalled = true;
          return false;
        }
        continue;
      }
      if (errno === LINUX.EPIPE || errno === LINUX.ECONNRESET) sendBroke = errnoName(errno);
      else failure = `send: ${errnoName(errno)}`;
      return false;
    }
    return true;
  };

  let seq = 0;
  while (seq < count && Atomics.load(control, 0) === RUN) {
    // Everything but the send time is written before the clock is read: the padding's copy
    // stays out of the round trip.
    encoder.encode(seq, 0);
    const at = now();
    if (at >= endBy) break;
    const probe = encoder.stamp(at);
    sentAt[nSent++] = at;
    mine = seq++;
    back = false;
    if (tcp) {
      if (!tcpSend(probe, at)) {
        if (sendBroke !== undefined) {
          // The connection broke under the sender: as on the event loop, read what came
          // back before its end, bounded by the timeout.
          const drainBy = now() + req.timeoutMs;
          while (tcpReceive() && Atomics.load(control, 0) !== STOP_NOW && now() < drainBy);
        }
        break;
      }
    } else {
      const sent = s.send(fd, probe, sizeArg, 0);
      // An ICMP error from an earlier probe, a full buffer: this probe is lost (counted), go on.
      if (sent < 0 && readErrno(libc) === LINUX.EBADF) {
        failure = "send: EBADF";
        break;
      }
    }
    // Wait for this probe's echo: up to the timeout, a slice at a time. A TCP probe not
    // echoed by then is given up on as the event-loop path does (the next one is sent); its
    // echo, should it still come, is counted then, so it is lost only if it never does.
    const waitUntil = at + req.timeoutMs;
    while (!back) {
      if (framer !== null) {
        if (!tcpReceive()) break;
      } else {
        const n = s.recv(fd, inBuf, inLenArg, 0);
        t = now();
        if (n === size) {
          onEcho(inProbe, t);
        } else if (n >= 0) {
          if (n === 0 && Atomics.load(control, 0) !== RUN) break; // shut down by the main thread
          malformed++;
        } else {
          const errno = readErrno(libc);
          if (errno === LINUX.EBADF) {
            failure = "recv: EBADF";
            break;
          }
          // EAGAIN (a slice passed), EINTR, ECONNREFUSED (ICMP): wait on.
        }
      }
      if (Atomics.load(control, 0) === STOP_NOW) break;
      if (!back && t >= waitUntil) {
        givenUp++;
        if (echoed === 0) noEcho = true;
        break;
      }
    }
    if (
      failure !== undefined || noEcho || eof || reset !== undefined ||
      Atomics.load(control, 0) === STOP_NOW
    ) break;
    if (nSent === FLUSH_PROBES || t - flushedAt >= FLUSH_MS) flush();
  }
  // Done reading before the stream's end: bytes skipped since the last probe (the last
  // echo, with its run id corrupt, say) still count, as on the event loop. After `end`, none.
  framer?.stop(onSkipped);
  flush();
  return {
    type: "done",
    ...(failure !== undefined && { error: failure }),
    ...(noEcho && { noEcho }),
    ...(eof && { eof }),
    ...(reset !== undefined && { reset }),
    ...(sendBroke !== undefined && { sendBroke }),
    ...(stalled && { stalled }),
  };
}
