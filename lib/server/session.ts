/**
 * One served connection's bookkeeping: peer, byte counts, last activity.
 * Shared by every behaviour so `-v` logs, idle timeouts and the summary count
 * the same things.
 *
 * @example
 * ```ts
 * import { CoarseClock, Session } from "./session.ts";
 *
 * const clock = new CoarseClock();
 * const session = new Session("127.0.0.1:40000", clock);
 * session.bytesIn += 5;
 * session.touch();
 * ```
 *
 * @module
 */

/**
 * A clock read on hot paths: a plain field, advanced by the server's sweeper,
 * so that marking activity costs no system call.
 */
export class CoarseClock {
  /** Milliseconds, from `performance.now()` at the last tick. */
  now: number = performance.now();

  /** Advance to the current time. */
  tick(): void {
    this.now = performance.now();
  }
}

/** Counters of one connection. */
export class Session {
  bytesIn = 0;
  bytesOut = 0;
  readonly startedAt: number = performance.now();
  lastActive: number;
  /** Why it ended, when the server ended it (idle, shutdown, too slow). */
  closeReason: string | undefined;
  /** Writing an echo now: shutdown lets it finish (up to the drain timeout). */
  busy = false;
  /** The server is shutting down: finish what is in flight, read no more. */
  draining = false;
  /** The first bytes were read (so the first-byte timeout no longer applies). */
  sniffed = false;

  constructor(readonly peer: string, readonly clock: CoarseClock) {
    this.lastActive = clock.now;
  }

  /** Mark the connection active now. */
  touch(): void {
    this.lastActive = this.clock.now;
  }
}
