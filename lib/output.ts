/**
 * Where results go: text lines, one JSON document, or a JSON stream of
 * `{"event": …, "data": …}` lines. Everything for stdout passes through here,
 * so `--json` output is only ever JSON.
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

/** Writes results to stdout in one of the output formats. */
export class Output {
  constructor(readonly format: OutputFormat) {}

  /** Print text lines (text format only). */
  text(...lines: string[]): void {
    if (this.format === "text") write(lines.join("\n") + "\n");
  }

  /** A `--json-stream` event line (json-stream format only). */
  event(event: "interval" | "end" | "error", data: Json): void {
    if (this.format === "json-stream") write(JSON.stringify({ event, data }) + "\n");
  }

  /** The final document: the whole of stdout with `--json`, an `end` event with `--json-stream`. */
  result(doc: Json): void {
    if (this.format === "json") write(JSON.stringify(doc, null, 2) + "\n");
    this.event("end", doc);
  }

  /** Report a failure in the machine formats (text failures go to stderr from main). */
  error(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof NetkitError ? err.exitCode : EXIT_CODES.failure.code;
    const doc = { error: message, exit_code: code };
    if (this.format === "json") write(JSON.stringify(doc, null, 2) + "\n");
    this.event("error", doc);
  }
}

function write(text: string): void {
  writeText(Deno.stdout, text);
}
