/**
 * The live progress line of long runs (probe, throughput, compare): once a run
 * has lasted `delayMs` (2 s), a spinner from `@std/cli/unstable-spinner` and a
 * status text re-read every frame appear on stderr; they are wiped off the
 * line at the end, on error (`stop()` / `using`), and on Ctrl-C or SIGTERM.
 * Whether it is drawn at all is decided by `lib/terminal.ts` (through
 * `Output.progress()`); {@linkcode NO_PROGRESS} draws nothing.
 *
 * @example
 * ```ts
 * import { startProgress } from "./progress.ts";
 *
 * let sent = 0;
 * using progress = startProgress();
 * progress.follow(() => `sent ${sent}`);
 * for (; sent < 1000; sent++) await new Promise((r) => setTimeout(r, 5));
 * ```
 *
 * @module
 */

import { Spinner } from "@std/cli/unstable-spinner";
import { format as formatElapsed } from "@std/fmt/duration";
import { STOP_SIGNALS } from "./signals.ts";

/** A live status line; every method is safe to call at any time, in any order. */
export interface Progress extends Disposable {
  /** Show `status()` from now on (re-read at every frame). */
  follow(status: () => string): void;
  /** Run `write` (output to the same terminal) with the line taken off the screen, then redraw it. */
  around(write: () => void): void;
  /** Wipe the line for good (also what disposing does). */
  stop(): void;
}

/** A progress line that draws nothing: for pipes, files, `--json` and short runs. */
export const NO_PROGRESS: Progress = {
  follow() {},
  around(write) {
    write();
  },
  stop() {},
  [Symbol.dispose]() {},
};

/** Options of {@linkcode startProgress}. */
export interface ProgressOptions {
  /**
   * Nothing is drawn before the run has lasted this long.
   * @default {2000}
   */
  delayMs?: number;
  /**
   * Redraw period.
   * @default {100}
   */
  frameMs?: number;
  /**
   * Where the line goes.
   * @default {Deno.stderr}
   */
  output?: typeof Deno.stderr;
}

class LiveLine implements Progress {
  readonly #spinner: Spinner;
  readonly #frameMs: number;
  #status: (() => string) | undefined;
  #delay: ReturnType<typeof setTimeout> | undefined;
  #refresh: ReturnType<typeof setInterval> | undefined;
  #shown = false;
  #stopped = false;
  // On SIGINT/SIGTERM the line goes at once; the run (lib/stop.ts) handles the signal itself and
  // prints what it measured, which must not land behind a half-drawn line.
  readonly #onSignal = STOP_SIGNALS.map((signal) => [signal, () => this.stop()] as const);

  constructor(options: ProgressOptions) {
    this.#frameMs = options.frameMs ?? 100;
    this.#spinner = new Spinner({ output: options.output ?? Deno.stderr, interval: this.#frameMs });
    this.#delay = setTimeout(() => this.#show(), options.delayMs ?? 2000);
  }

  follow(status: () => string): void {
    this.#status = status;
  }

  around(write: () => void): void {
    if (!this.#shown) return write();
    this.#spinner.stop();
    try {
      write();
    } finally {
      this.#update();
      this.#spinner.start();
    }
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#delay);
    clearInterval(this.#refresh);
    if (!this.#shown) return;
    this.#shown = false;
    this.#spinner.stop(); // writes "\r\x1b[K": the line is gone
    for (const [signal, listener] of this.#onSignal) Deno.removeSignalListener(signal, listener);
  }

  [Symbol.dispose](): void {
    this.stop();
  }

  #show(): void {
    this.#delay = undefined;
    if (this.#stopped) return;
    this.#shown = true;
    for (const [signal, listener] of this.#onSignal) Deno.addSignalListener(signal, listener);
    this.#update();
    this.#spinner.start();
    this.#refresh = setInterval(() => this.#update(), this.#frameMs);
  }

  #update(): void {
    this.#spinner.message = fitToWidth(this.#status?.() ?? "starting…", terminalColumns() - 3);
  }
}

/**
 * A live line that appears once `delayMs` has passed. Call it only where a
 * person watches (see `liveLineOn` in `lib/terminal.ts`); elsewhere use
 * {@linkcode NO_PROGRESS}.
 */
export function startProgress(options: ProgressOptions = {}): Progress {
  return new LiveLine(options);
}

/** Cut `text` to `columns` characters, so that the line never wraps (a wrapped line cannot be wiped). */
export function fitToWidth(text: string, columns: number): string {
  const flat = text.replace(/[\r\n]+/g, " ");
  if (flat.length <= columns) return flat;
  return columns <= 1 ? flat.slice(0, Math.max(0, columns)) : `${flat.slice(0, columns - 1)}…`;
}

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

/**
 * A 20-character bar for a known fraction, in the style of
 * `@std/cli/unstable-progress-bar`: `[#####---------------]`.
 */
export function bar(fraction: number, width = 20): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
}

/** Whole seconds for the live line, by `@std/fmt/duration`: `0s`, `7s`, `2m 5s`. */
export function elapsedText(seconds: number): string {
  return formatElapsed(Math.floor(Math.max(0, seconds)) * 1000, { ignoreZero: true }) || "0s";
}
