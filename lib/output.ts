/**
 * Where results go: text lines, one JSON document, or a JSON stream of
 * `{"event": …, "data": …}` lines. Everything for stdout passes through here,
 * so `--json` output is only ever JSON. It also carries what `lib/terminal.ts`
 * decided for this run: the {@linkcode Style} of the text reports (colour only
 * on a terminal without `NO_COLOR`) and whether a live progress line may be
 * drawn on stderr. A closed stdout (`| head -1`) is noticed in one place:
 * {@linkcode writeStdout} stops writing and aborts {@linkcode stdoutClosed},
 * which ends the run quietly (exit 0).
 *
 * @example
 * ```ts
 * import { Output } from "./output.ts";
 *
 * const out = new Output("json-stream");
 * out.event("interval", { sent: 10 });
 * ```
 *
 * @module
 */

import type { OutputFormat } from "./config.ts";
import { EXIT_CODES, NetkitError } from "./errors.ts";
import { writeText } from "./io.ts";
import type { Json } from "./probe/report.ts";
import { NO_PROGRESS, type Progress, type ProgressOptions, startProgress } from "./progress.ts";
import {
  chartGlyphsFor,
  liveLineOn,
  readTerminalFacts,
  type Style,
  styleFor,
  type TerminalFacts,
} from "./terminal.ts";

/** Writes results to stdout in one of the output formats. */
export class Output {
  /** How the text reports are marked up: colours or plain. */
  readonly style: Style;
  readonly #liveLine: boolean;
  readonly #facts: TerminalFacts;
  #progress: Progress = NO_PROGRESS;

  constructor(readonly format: OutputFormat, facts: TerminalFacts = readTerminalFacts()) {
    this.style = styleFor(format, facts);
    this.#liveLine = liveLineOn(format, facts);
    this.#facts = facts;
  }

  /** How to draw the end-of-report chart (see `chartGlyphsFor`): undefined for none. */
  chartGlyphs(wanted: boolean): "unicode" | "ascii" | undefined {
    return chartGlyphsFor(this.format, this.#facts, wanted);
  }

  /** Print text lines (text format only). */
  text(...lines: string[]): void {
    if (this.format === "text") this.#progress.around(() => write(lines.join("\n") + "\n"));
  }

  /**
   * The live progress line of a long run on stderr (see `lib/progress.ts`):
   * drawn only with text output while stderr is a terminal, otherwise nothing.
   * Text printed meanwhile is written around it.
   */
  progress(options?: ProgressOptions): Progress {
    this.#progress = this.#liveLine ? startProgress(options) : NO_PROGRESS;
    return this.#progress;
  }

  /** A `--json-stream` event line (json-stream format only). */
  event(event: "interval" | "end" | "error", data: Json): void {
    if (this.format === "json-stream") write(JSON.stringify({ event, data }) + "\n");
  }

  /**
   * The final document: the whole of stdout with `--json`, an `end` event with `--json-stream`.
   * With `error` (a run that measured something, then failed), the document also
   * carries its `error` and `exit_code`.
   */
  result(doc: Json, error?: unknown): void {
    if (error !== undefined) doc = { ...(doc as Record<string, Json>), ...errorJson(error) };
    if (this.format === "json") write(JSON.stringify(doc, null, 2) + "\n");
    this.event("end", doc);
  }

  /** Report a failure in the machine formats (text failures go to stderr from main). */
  error(err: unknown): void {
    const doc = errorJson(err);
    if (this.format === "json") write(JSON.stringify(doc, null, 2) + "\n");
    this.event("error", doc);
  }
}

function errorJson(err: unknown): { error: string; exit_code: number } {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof NetkitError ? err.exitCode : EXIT_CODES.failure.code;
  return { error: message, exit_code: code };
}

const closed = new AbortController();

/**
 * Aborted once a write found stdout closed (its reader, such as `head`, went
 * away). A run listening to it stops at once and exits 0 without a message.
 */
export const stdoutClosed: AbortSignal = closed.signal;

/** Write `text` to stdout; once stdout is closed, drop it and abort {@linkcode stdoutClosed}. */
export function writeStdout(text: string): void {
  if (closed.signal.aborted) return;
  try {
    writeText(Deno.stdout, text);
  } catch (err) {
    // The same ending as netcat mode's: a reader that went away is not an error.
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
    closed.abort();
  }
}

function write(text: string): void {
  writeStdout(text);
}
