/**
 * The ping-pong Worker of the native engine: one probe out, its echo back,
 * over and over, through BLOCKING libc `send`/`recv` on the Worker's own
 * thread, so a round trip never passes through Deno's event loop. The times
 * are taken here, right around the calls, on the main thread's clock
 * (`performance.now()` of the main thread: its time origin is passed in).
 *
 * The socket is the main thread's connected native UDP socket (its
 * descriptor); this Worker makes it blocking with a receive timeout
 * (`SO_RCVTIMEO`, at most {@linkcode SLICE_MS}), so it looks at the stop word
 * of the shared control array between waits: Ctrl-C and the probe timeout
 * reach it within a slice. What happened goes back in batches (every
 * {@linkcode FLUSH_MS} or {@linkcode FLUSH_PROBES} probes): the probes sent
 * with their send times, and every echo's bytes with its arrival time, which
 * the main thread checks and counts exactly as it counts the echoes of its
 * own loop.
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

import { loadLibc } from "../engine/native/libc.ts";
import { LINUX } from "../engine/native/layout.ts";
import { readErrno } from "../engine/native/udp.ts";
import { type DecodedProbe, decodeProbe, ProbeEncoder } from "./codec.ts";

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
  /** Echoes of the right size back to back (`size` bytes each) and their arrival times. */
  echoes: Uint8Array;
  echoAt: Float64Array;
  /** Datagrams of the wrong size. */
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

function run(req: PingPongRequest): PingPongDone {
  const libc = loadLibc();
  if ("reason" in libc) return { type: "done", error: libc.reason };
  const s = libc.symbols;
  const control = new Int32Array(req.control);
  const offset = performance.timeOrigin - req.timeOrigin;
  const now = () => performance.now() + offset;
  const fd = req.fd;
  // Blocking, with a receive timeout of one slice.
  const flags = s.fcntl(fd, LINUX.F_GETFL, 0);
  if (flags < 0 || s.fcntl(fd, LINUX.F_SETFL, flags & ~LINUX.O_NONBLOCK) !== 0) {
    return { type: "done", error: `fcntl: errno ${readErrno(libc)}` };
  }
  const slice = Math.max(1, Math.min(SLICE_MS, req.timeoutMs));
  const timeval = new BigInt64Array([
    BigInt(Math.floor(slice / 1000)),
    BigInt((slice % 1000) * 1000),
  ]);
  if (
    s.setsockopt(fd, LINUX.SOL_SOCKET, LINUX.SO_RCVTIMEO, new Uint8Array(timeval.buffer), 16) !== 0
  ) {
    return { type: "done", error: `setsockopt SO_RCVTIMEO: errno ${readErrno(libc)}` };
  }

  const size = req.size;
  const encoder = new ProbeEncoder(size, req.runId);
  // One byte more than a probe: a longer echo shows as malformed, not cut to fit.
  const inBuf = new Uint8Array(size + 1);
  const inProbe = inBuf.subarray(0, size);
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
  let echoes = new Uint8Array(FLUSH_PROBES * 2 * size);
  let echoAt = new Float64Array(FLUSH_PROBES * 2);
  let nEchoes = 0;
  let malformed = 0;
  let givenUp = 0;
  let flushedAt = now();
  const flush = () => {
    const batch: PingPongBatch = {
      type: "batch",
      firstSeq,
      sentAt: sentAt.subarray(0, nSent),
      echoes: echoes.subarray(0, nEchoes * size),
      echoAt: echoAt.subarray(0, nEchoes),
      malformed,
      givenUp,
    };
    self.postMessage(batch, [sentAt.buffer, echoes.buffer, echoAt.buffer]);
    firstSeq += nSent;
    sentAt = new Float64Array(FLUSH_PROBES);
    echoes = new Uint8Array(FLUSH_PROBES * 2 * size);
    echoAt = new Float64Array(FLUSH_PROBES * 2);
    nSent =
      nEchoes =
      malformed =
      givenUp =
        0;
    flushedAt = now();
  };

  let seq = 0;
  let echoed = 0;
  let failure: string | undefined;
  let noEcho = false;
  while (seq < count && Atomics.load(control, 0) === RUN) {
    const at = now();
    if (at >= endBy) break;
    const probe = encoder.encode(seq, at);
    const sent = s.send(fd, probe, sizeArg, 0);
    sentAt[nSent++] = at;
    const mine = seq++;
    // An ICMP error from an earlier probe, a full buffer: this probe is lost (counted), go on.
    if (sent < 0 && readErrno(libc) === LINUX.EBADF) {
      failure = "send: EBADF";
      break;
    }
    // Wait for this probe's echo: up to the timeout, a slice at a time.
    const waitUntil = at + req.timeoutMs;
    let back = false;
    while (!back) {
      const n = s.recv(fd, inBuf, inLenArg, 0);
      const t = now();
      if (n === size) {
        if (nEchoes === echoAt.length) flush();
        echoes.set(inProbe, nEchoes * size);
        echoAt[nEchoes++] = t;
        if (decodeProbe(inProbe, req.runId, decoded) && decoded.seq === mine) {
          back = true;
          echoed++;
        }
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
      if (Atomics.load(control, 0) === STOP_NOW) break;
      if (!back && t >= waitUntil) {
        givenUp++;
        if (echoed === 0) noEcho = true;
        break;
      }
    }
    if (failure !== undefined || noEcho || Atomics.load(control, 0) === STOP_NOW) break;
    if (nSent === FLUSH_PROBES || now() - flushedAt >= FLUSH_MS) flush();
  }
  flush();
  return {
    type: "done",
    ...(failure !== undefined && { error: failure }),
    ...(noEcho && { noEcho }),
  };
}
