/**
 * The stream relay (TCP, Unix, TLS, in any combination): one outbound
 * connection per inbound one, bytes copied both ways as they come, a
 * half-close passed on each way (one side's end of data becomes the other
 * side's), and a reset or error on either side closing both. The server's
 * defences apply: `--allow`/`--deny` before anything is read, `--max-conns`,
 * `--idle-timeout`, and a first-byte timeout (no byte either way).
 *
 * Impairments are what a relay that terminates TCP can honestly do (it cannot
 * drop segments): delay and jitter with order kept (a delay line), a rate
 * (bits per second), and toxiproxy's toxics: stall after N bytes, reset after
 * N bytes, end a direction after a time. Each direction holds at most
 * `queueBytes`; past that the relay stops reading (back-pressure).
 *
 * @example
 * ```ts
 * import { serveStreamRelay } from "./stream.ts";
 * import { emptyRelayCounters } from "./counters.ts";
 * import { NO_IMPAIRMENT } from "./impairment.ts";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const stop = new AbortController();
 * const done = serveStreamRelay(listener, {
 *   dial: () => Deno.connect({ hostname: "127.0.0.1", port: 5050 }),
 *   up: NO_IMPAIRMENT,
 *   down: NO_IMPAIRMENT,
 *   counters: emptyRelayCounters(),
 *   signal: stop.signal,
 * });
 * stop.abort();
 * await done;
 * ```
 *
 * @module
 */

import { delay } from "@std/async/delay";
import { formatAddr } from "../address.ts";
import type { StreamConn } from "../client/dial.ts";
import type { Impairment } from "../config.ts";
import { formatDuration } from "../duration.ts";
import { closeQuietly, isClosedError, writeAll } from "../io.ts";
import { mixSeed, mulberry32 } from "../prng.ts";
import type { Gate } from "../server/gate.ts";
import { CoarseClock, Session } from "../server/session.ts";
import { formatBytes, formatCount } from "../units.ts";
import type { DirectionCounters, RelayCounters } from "./counters.ts";
import { impaired } from "./impairment.ts";

/** Options of {@linkcode serveStreamRelay}. */
export interface StreamRelayOptions {
  /** Open the outbound connection for one inbound one (typed errors, bounded in time). */
  dial: () => Promise<StreamConn>;
  up: Impairment;
  down: Impairment;
  counters: RelayCounters;
  /** Aborting it stops the relay: the listener closes, then every connection. */
  signal: AbortSignal;
  /**
   * @default {1024}
   */
  maxConns?: number;
  /**
   * Close a connection idle (no byte either way) this long; 0 never.
   * @default {0}
   */
  idleTimeoutMs?: number;
  /**
   * Close a connection through which no byte flowed either way this long; 0 never.
   * @default {0}
   */
  firstByteTimeoutMs?: number;
  /**
   * The server's gate (`--allow`/`--deny`), applied before a byte is read.
   * @default {undefined} (everyone)
   */
  gate?: Gate;
  /**
   * Seed of the jitter draws.
   * @default {1}
   */
  seed?: number;
  /**
   * Bytes held at most per direction of a connection.
   * @default {1048576}
   */
  queueBytes?: number;
  /**
   * Wrap each accepted connection before a byte is read (TLS termination: the
   * server's ServerTlsConn over the TCP socket).
   * @default {undefined} (the connection as accepted)
   */
  wrap?: (accepted: Deno.Conn) => Deno.Conn;
  /**
   * `-v` lines (connects, disconnects with bytes and why); refusals are logged regardless.
   * @default {undefined}
   */
  log?: (line: string) => void;
  /**
   * Where refusals are logged without -v (a count at most once a second).
   * @default {undefined}
   */
  warn?: (line: string) => void;
}

/** The largest read of one direction. */
const CHUNK = 64 * 1024;

/** Thrown inside a pump when `--reset-after` is reached. */
class ResetAfter extends Error {}

interface Live {
  session: Session;
  inbound: Deno.Conn;
  outbound: StreamConn | undefined;
  /** Aborted when the connection ends: stops sleeping writers. */
  ended: AbortController;
  /** Bytes seen either way (the first-byte timeout's test). */
  flowed: boolean;
  /** Directions ended by `--close-after`; both: the connection closes. */
  cut: number;
  /** Close the connection (both sockets) now, saying why. */
  end: (why: string) => void;
}

/** Relay every connection `listener` accepts until `options.signal` aborts. */
export async function serveStreamRelay(
  listener: Deno.Listener,
  options: StreamRelayOptions,
): Promise<void> {
  const { counters, log, warn, signal } = options;
  const maxConns = options.maxConns ?? 1024;
  const idleMs = options.idleTimeoutMs ?? 0;
  const firstByteMs = options.firstByteTimeoutMs ?? 0;
  const clock = new CoarseClock();
  const live = new Set<Live>();
  const handlers = new Set<Promise<void>>();
  let nextId = 0;
  let refusedUnlogged = 0;

  const endLive = (c: Live, why: string) => {
    c.session.closeReason ??= why;
    c.ended.abort();
    closeQuietly(c.inbound);
    if (c.outbound) closeQuietly(c.outbound);
  };
  const period = Math.max(
    10,
    Math.min(1000, idleMs > 0 ? idleMs / 4 : 1000, firstByteMs > 0 ? firstByteMs / 4 : 1000),
  );
  const sweeper = setInterval(() => {
    clock.tick();
    if (refusedUnlogged > 0) {
      warn?.(
        `refused ${formatCount(refusedUnlogged)} connection(s): --max-conns ${maxConns} reached`,
      );
      refusedUnlogged = 0;
    }
    for (const c of live) {
      if (c.ended.signal.aborted) continue;
      if (idleMs > 0 && clock.now - c.session.lastActive >= idleMs) {
        counters.expired++;
        endLive(c, `idle for ${formatDuration(idleMs)}`);
      } else if (!c.flowed && firstByteMs > 0 && clock.now - c.session.startedAt >= firstByteMs) {
        counters.expired++;
        endLive(c, `no byte either way within ${formatDuration(firstByteMs)}`);
      }
    }
  }, period);
  const onAbort = () => {
    closeQuietly(listener);
    for (const c of live) endLive(c, "relay stopped");
  };
  signal.addEventListener("abort", onAbort, { once: true });

  const handle = async (inbound: Deno.Conn) => {
    const id = nextId++;
    const c: Live = {
      session: new Session(formatAddr(inbound.remoteAddr), clock),
      inbound,
      outbound: undefined,
      ended: new AbortController(),
      flowed: false,
      cut: 0,
      end: (why) => endLive(c, why),
    };
    live.add(c);
    counters.connections++;
    log?.(`connect ${c.session.peer}`);
    try {
      if ("setNoDelay" in inbound) (inbound as Deno.TcpConn).setNoDelay(true);
      try {
        c.outbound = await options.dial();
      } catch (err) {
        counters.failed++;
        c.session.closeReason = `cannot reach the target: ${(err as Error).message}`;
        return;
      }
      if (c.ended.signal.aborted) return; // stopped or timed out while dialing
      const random = mulberry32(mixSeed(options.seed ?? 1, id));
      const queueBytes = options.queueBytes ?? 1 << 20;
      const pumpUp = pump(
        inbound,
        c.outbound,
        options.up,
        counters.up,
        c,
        random,
        queueBytes,
        true,
      );
      const pumpDown = pump(
        c.outbound,
        inbound,
        options.down,
        counters.down,
        c,
        random,
        queueBytes,
        false,
      );
      // Whichever side fails (reset, broken pipe, reset-after) ends both at once.
      const failed = (err: unknown) => {
        if (err instanceof ResetAfter) {
          counters.resets++;
          endLive(c, "--reset-after reached");
        } else if (
          err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe ||
          err instanceof Deno.errors.ConnectionAborted ||
          // A half-close of a socket the peer has just reset fails with ENOTCONN.
          err instanceof Deno.errors.NotConnected
        ) {
          if (!c.ended.signal.aborted) counters.resets++;
          endLive(c, `reset: ${(err as Error).message.replace(/ \(os error.*$/, "")}`);
        } else if (!isClosedError(err) && !(err instanceof DOMException)) {
          endLive(c, `error: ${(err as Error).message}`);
        } else {
          endLive(c, "closed");
        }
      };
      await Promise.all([pumpUp.catch(failed), pumpDown.catch(failed)]);
    } finally {
      live.delete(c);
      endLive(c, "closed by both sides");
      const took = formatDuration(performance.now() - c.session.startedAt);
      log?.(
        `disconnect ${c.session.peer}: ${formatBytes(c.session.bytesIn)} up, ${
          formatBytes(c.session.bytesOut)
        } down, ${took} (${c.session.closeReason})`,
      );
    }
  };

  try {
    while (!signal.aborted) {
      let inbound: Deno.Conn;
      try {
        inbound = await listener.accept();
      } catch (err) {
        if (signal.aborted || isClosedError(err)) break;
        warn?.(`accept failed: ${(err as Error).message}`);
        await delay(50);
        continue;
      }
      const from = inbound.remoteAddr;
      if (options.gate && !options.gate.admitConnection(from)) {
        closeQuietly(inbound); // counted and logged by the gate
        continue;
      }
      if (live.size >= maxConns) {
        counters.refused++;
        if (log) log(`refused ${formatAddr(from)}: --max-conns ${maxConns} reached`);
        else refusedUnlogged++;
        closeQuietly(inbound);
        continue;
      }
      // A bug in one connection's handling must never take the relay down.
      const task = handle(options.wrap ? options.wrap(inbound) : inbound).catch((err) =>
        warn?.(`internal error: ${(err as Error).message}`)
      );
      handlers.add(task);
      task.finally(() => handlers.delete(task));
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    onAbort();
    await Promise.allSettled(handlers);
    clearInterval(sweeper);
    if (refusedUnlogged > 0) {
      warn?.(
        `refused ${formatCount(refusedUnlogged)} connection(s): --max-conns ${maxConns} reached`,
      );
    }
  }
}

/** Copy `src` to `dst` until `src` ends, then pass the end on (half-close). */
async function pump(
  src: StreamConn,
  dst: StreamConn,
  imp: Impairment,
  counters: DirectionCounters,
  c: Live,
  random: () => number,
  queueBytes: number,
  up: boolean,
): Promise<void> {
  const session = c.session;
  const seen = (n: number) => {
    counters.bytesIn += n;
    if (up) session.bytesIn += n;
    else session.bytesOut += n;
    c.flowed = true;
    session.touch();
  };
  if (!impaired(imp)) {
    const buf = new Uint8Array(CHUNK);
    for (;;) {
      const n = await src.read(buf);
      if (n === null) break;
      seen(n);
      await writeAll(dst, buf.subarray(0, n));
      counters.bytesOut += n;
    }
    await dst.closeWrite();
    return;
  }
  await impairedPump(src, dst, imp, counters, c, random, queueBytes, seen);
}

/**
 * A delay line with a byte cap: the reader queues chunks with their departure
 * time (now + delay ± jitter, never before the chunk ahead), the writer sends
 * each when due, paced by the rate; the reader waits while the queue is full.
 */
async function impairedPump(
  src: StreamConn,
  dst: StreamConn,
  imp: Impairment,
  counters: DirectionCounters,
  c: Live,
  random: () => number,
  queueBytes: number,
  seen: (n: number) => void,
): Promise<void> {
  const queue: { data: Uint8Array; at: number }[] = [];
  let queued = 0;
  let readerDone = false;
  let stalled = false;
  let resetDue = false;
  let readerError: unknown;
  let cut = false; // --close-after reached: this direction is over
  let wakeWriter: (() => void) | undefined;
  let wakeReader: (() => void) | undefined;
  const wake = (which: "reader" | "writer") => {
    const w = which === "reader" ? wakeReader : wakeWriter;
    if (which === "reader") wakeReader = undefined;
    else wakeWriter = undefined;
    w?.();
  };
  const ended = c.ended.signal;
  const cutter = new AbortController();
  const stop = AbortSignal.any([ended, cutter.signal]);
  const cutTimer = imp.closeAfterMs === undefined ? undefined : setTimeout(() => {
    cut = true;
    cutter.abort();
    if (++c.cut === 2) c.end("--close-after reached");
    wake("writer");
    wake("reader");
  }, Math.max(0, imp.closeAfterMs - (performance.now() - c.session.startedAt)));
  const limit = imp.resetAfter ?? imp.stallAfter;
  let accepted = 0;
  let lastAt = 0;

  const reader = (async () => {
    const buf = new Uint8Array(CHUNK);
    try {
      while (!ended.aborted) {
        while (queued >= queueBytes && !cut && !ended.aborted) {
          await new Promise<void>((resolve) => (wakeReader = resolve));
        }
        if (ended.aborted) return;
        const n = await src.read(buf);
        if (n === null) return;
        seen(n);
        if (cut) continue; // this direction is closed: discard what still comes
        // A copy of exactly what was read: the queue's byte count is then the memory it holds.
        let data = buf.slice(0, n);
        if (limit !== undefined && accepted + n >= limit) {
          data = data.subarray(0, limit - accepted);
          if (imp.resetAfter !== undefined) resetDue = true;
          else stalled = true;
        }
        accepted += data.length;
        const now = performance.now();
        const jitter = imp.jitterMs > 0 ? (2 * random() - 1) * imp.jitterMs : 0;
        const at = Math.max(now + Math.max(0, imp.delayMs + jitter), lastAt);
        lastAt = at;
        if (at > now || imp.rate > 0) counters.delayed++;
        if (data.length > 0) {
          queue.push({ data, at });
          queued += data.length;
        }
        wake("writer");
        if (resetDue || stalled) return;
      }
    } catch (err) {
      readerError = err;
    } finally {
      readerDone = true;
      wake("writer");
    }
  })();

  let rateFree = 0;
  const slice = imp.rate > 0 ? Math.max(1, Math.floor(imp.rate / 8 / 50)) : CHUNK;
  const writer = async () => {
    for (;;) {
      if (cut) return;
      const item = queue.shift();
      if (item === undefined) {
        if (readerDone) return;
        await new Promise<void>((resolve) => (wakeWriter = resolve));
        continue;
      }
      const wait = item.at - performance.now();
      if (wait > 0) await delay(wait, { signal: stop });
      for (let off = 0; off < item.data.length && !cut;) {
        const piece = item.data.subarray(off, off + slice);
        if (imp.rate > 0) {
          const now = performance.now();
          if (rateFree > now) await delay(rateFree - now, { signal: stop });
          rateFree = Math.max(now, rateFree) + (piece.length * 8 * 1000) / imp.rate;
        }
        await writeAll(dst, piece);
        counters.bytesOut += piece.length;
        off += piece.length;
      }
      queued -= item.data.length;
      wake("reader");
    }
  };

  try {
    try {
      await writer();
    } catch (err) {
      if (!cut) throw err; // a sleep cut short by --close-after ends this direction
    }
    if (readerError !== undefined) throw readerError;
    if (resetDue && !cut) throw new ResetAfter();
    if (stalled && !cut) {
      // Stall: nothing more passes this way; the connection stays until something else ends it.
      await new Promise<void>((resolve) => {
        if (stop.aborted) resolve();
        else stop.addEventListener("abort", () => resolve(), { once: true });
      });
      if (!cut) return;
    }
    await dst.closeWrite();
    await reader;
    if (readerError !== undefined) throw readerError;
  } finally {
    clearTimeout(cutTimer);
    wake("reader");
  }
}
