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
 * so that marking activity costs no system call. Its reading may be a sweep
 * period old: the sweeper only compares readings to see that something
 * happened, and times timeouts on `performance.now()`, so none fires early.
 */
export class CoarseClock {
  /** Milliseconds, from `performance.now()` at the last tick. */
  now: number = performance.now();

  /** Advance to the current time. */
  tick(): void {
    this.now = performance.now();
  }
}

/**
 * What a throughput test's control and data connections belong to once their
 * request is complete: while the test runs, any traffic of the test, in either
 * direction, counts as activity, so the idle timeout never closes them (the
 * test's own stall watchdog and deadline end a test whose client is gone).
 */
export interface ActivitySource {
  /** The test still runs. */
  readonly running: boolean;
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
  /** Sniffed as a throughput control or data connection: its request must complete in time. */
  awaitsRequest = false;
  /** The test this connection belongs to, once its request is complete. */
  source: ActivitySource | undefined;
  /** The sweeper's own bookkeeping: the activity it last saw, and since when (real time). */
  seenActive = NaN;
  quietSince: number;

  constructor(readonly peer: string, readonly clock: CoarseClock) {
    this.lastActive = clock.now;
    this.quietSince = this.startedAt;
  }

  /** Mark the connection active now. */
  touch(): void {
    this.lastActive = this.clock.now;
  }
}
