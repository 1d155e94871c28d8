/**
 * Pacing without burning a core. Send `n` (from 0) is due at
 * `start + n · gap`; a sender waits with {@linkcode waitUntil} until its next
 * send is due, then sends everything that has come due meanwhile (a catch-up
 * batch), stamping each send with the time it actually goes out. The
 * schedule never slips: a late wake-up is made up by the batch, so the
 * average rate stays exact.
 *
 * How it waits depends on the gap. A timer wakes about every
 * {@linkcode TIMER_TICK_MS} whatever is asked, so while a tick's worth of
 * sends is at most {@linkcode MAX_BURST} (up to 16,000 sends a second) the
 * wait is on timers only: the sends per wake-up grow with the rate (about 2 at
 * 1,000/s) and the process sleeps in between (a UDP probe at 1,000/s measured
 * about 8% of a core on a 2-core VM: each wake-up, a timer's or an echo's, is a
 * turn of Deno's event loop). Faster than that, bursts of a tick's worth would overrun a
 * receiver's socket buffer (about 90 datagrams of 1,400 B in Linux's default
 * 208 KiB), so the last tick before a send is spent yielding to the event
 * loop (`setImmediate`) instead: sends stay evenly spread, at the price of a
 * busy core, which sends at that rate nearly fill anyway.
 *
 * @example
 * ```ts
 * import { dueCount, waitUntil } from "./pace.ts";
 *
 * const start = performance.now();
 * const gapMs = 0.5; // 2,000 sends per second
 * let sent = 0;
 * while (sent < 20) {
 *   if (dueCount(start, gapMs, sent, performance.now()) === 0) {
 *     await waitUntil(start + sent * gapMs, gapMs);
 *     continue;
 *   }
 *   sent++; // send one, stamped with performance.now(); loop for the rest of the batch
 * }
 * ```
 *
 * @module
 */

import { delay } from "@std/async/delay";

/** How late a timer wake-up comes at worst on Linux under Deno (measured: 2.1 ms). */
export const TIMER_TICK_MS = 2;
/** The most sends one timer wake-up may release at once before pacing turns fine. */
export const MAX_BURST = 32;

/** A clock in milliseconds; `performance` by default. */
export interface Clock {
  now(): number;
}

/**
 * How many sends are due at `now` when send `n` (counting from 0) is due at
 * `start + n · gapMs` and `done` have gone: 0 when the next is not due yet.
 * A gap of 0 (unpaced) makes every send due at once (`Infinity`).
 */
export function dueCount(start: number, gapMs: number, done: number, now: number): number {
  if (!(gapMs > 0)) return Number.POSITIVE_INFINITY;
  if (now < start) return 0;
  return Math.max(0, Math.floor((now - start) / gapMs) + 1 - done);
}

/** Whether sends `gapMs` apart are paced on timers alone (a tick's burst ≤ {@linkcode MAX_BURST}). */
export function timersOnly(gapMs: number): boolean {
  return gapMs * MAX_BURST >= TIMER_TICK_MS;
}

/**
 * Resolve once `clock.now()` reaches `due`, for sends `gapMs` apart. Sleeps
 * on timers; only when {@linkcode timersOnly} is false does it spend the last
 * {@linkcode TIMER_TICK_MS} before `due` yielding to the event loop.
 */
export async function waitUntil(
  due: number,
  gapMs = Number.POSITIVE_INFINITY,
  clock: Clock = performance,
): Promise<void> {
  const fine = !timersOnly(gapMs);
  for (let now = clock.now(); now < due; now = clock.now()) {
    if (fine && due - now <= TIMER_TICK_MS) await yieldToEventLoop();
    else {
      const sleep = fine ? due - now - TIMER_TICK_MS : due - now;
      await delay(Math.max(1, Math.ceil(sleep)));
    }
  }
}

// node: because Deno has no setImmediate of its own (a turn of the event loop, no 1 ms timer floor).
// Imported on first use: loading a node: module sets up Deno's Node compatibility layer, about
// 4 MiB of resident memory that a process which never paces finely (a server receiving a TCP
// test) does not need.
let setImmediate: ((callback: () => void) => unknown) | undefined;

/** Let the event loop run once (timers, socket reads) before continuing. */
export function yieldToEventLoop(): Promise<void> {
  if (setImmediate) return new Promise<void>((resolve) => setImmediate!(resolve));
  return import("node:timers").then((timers) => {
    setImmediate = timers.setImmediate;
    return new Promise<void>((resolve) => setImmediate!(resolve));
  });
}

/** A paced byte-stream sender writes at most this many milliseconds' worth of bytes at once. */
export const PACED_WRITE_MS = 20;

/**
 * Bytes per write of a paced byte-stream sender: `size`, or less when
 * `bitsPerSecond` allows fewer than `size` bytes per {@linkcode PACED_WRITE_MS}
 * (`-b 10K` writes 25 B every 20 ms rather than 1 MiB at once, which would
 * be more than a whole 10 s test's worth). 0 = unpaced: `size`.
 */
export function pacedWriteSize(size: number, bitsPerSecond: number): number {
  if (!(bitsPerSecond > 0)) return size;
  return Math.min(size, Math.max(1, Math.round((bitsPerSecond / 8 / 1000) * PACED_WRITE_MS)));
}
