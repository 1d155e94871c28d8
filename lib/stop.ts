/**
 * Stopping a measuring run early without losing what it measured.
 *
 * A {@linkcode RunStop} turns the first Ctrl-C (SIGINT) or SIGTERM into
 * "stop sending, wait for what is in flight, then report" ({@linkcode RunStop.signal}),
 * and a second one into "skip that wait" ({@linkcode RunStop.now}). A closed
 * stdout (a reader such as `head` went away) stops both at once: nobody is left
 * to read the report, so the run ends quietly with exit code 0.
 *
 * @example
 * ```ts
 * import { RunStop } from "./stop.ts";
 *
 * using stop = RunStop.onSignals();
 * // … run with stop.signal (stop sending) and stop.now (stop waiting) …
 * if (stop.reason !== undefined) console.error(`stopped by ${stop.reason}`);
 * Deno.exit(stop.exitCode(0));
 * ```
 *
 * @module
 */

import { stdoutClosed } from "./output.ts";
import { STOP_SIGNALS } from "./signals.ts";

/** Why a run stopped early. */
export type StopReason = "SIGINT" | "SIGTERM" | "stdout";

/** The exit code of a run interrupted by each signal (128 + the signal's number, as shells do). */
export const INTERRUPTED_EXIT_CODES: Readonly<Record<"SIGINT" | "SIGTERM", number>> = {
  SIGINT: 130,
  SIGTERM: 143,
};

/** The early stop of one run: first request stops sending, a second stops waiting. */
export class RunStop implements Disposable {
  readonly #sending = new AbortController();
  readonly #waiting = new AbortController();
  readonly #cleanup: (() => void)[] = [];
  #reason: StopReason | undefined;

  /** A stop that only {@linkcode RunStop.stop} (and a closed stdout) trigger. */
  constructor() {
    const onClosed = () => this.stop("stdout");
    if (stdoutClosed.aborted) onClosed();
    stdoutClosed.addEventListener("abort", onClosed);
    this.#cleanup.push(() => stdoutClosed.removeEventListener("abort", onClosed));
  }

  /** A stop that SIGINT and SIGTERM trigger too, until disposed. */
  static onSignals(): RunStop {
    const stop = new RunStop();
    for (const signal of STOP_SIGNALS) {
      const listener = () => stop.stop(signal);
      Deno.addSignalListener(signal, listener);
      stop.#cleanup.push(() => Deno.removeSignalListener(signal, listener));
    }
    return stop;
  }

  /** Aborted at the first stop: send no more. */
  get signal(): AbortSignal {
    return this.#sending.signal;
  }

  /** Aborted at the second stop (or a closed stdout): stop waiting for replies in flight. */
  get now(): AbortSignal {
    return this.#waiting.signal;
  }

  /** What stopped the run first, if anything did. */
  get reason(): StopReason | undefined {
    return this.#reason;
  }

  /** Whether a signal interrupted the run (its report is then marked `interrupted`). */
  get interrupted(): boolean {
    return this.#reason === "SIGINT" || this.#reason === "SIGTERM";
  }

  /** Request a stop: the first stops sending, the next (or a closed stdout) stops waiting too. */
  stop(reason: StopReason): void {
    if (this.#reason === undefined) this.#reason = reason;
    if (!this.#sending.signal.aborted && reason !== "stdout") {
      this.#sending.abort(reason);
      return;
    }
    this.#sending.abort(reason);
    this.#waiting.abort(reason);
  }

  /**
   * The exit code of a run that would otherwise exit with `code`: 130 after
   * SIGINT, 143 after SIGTERM, 0 once stdout was closed.
   */
  exitCode(code: number): number {
    switch (this.#reason) {
      case "SIGINT":
      case "SIGTERM":
        return INTERRUPTED_EXIT_CODES[this.#reason];
      case "stdout":
        return 0;
      default:
        return code;
    }
  }

  /** Stop listening for signals and for a closed stdout. */
  [Symbol.dispose](): void {
    for (const undo of this.#cleanup.splice(0)) undo();
  }
}
