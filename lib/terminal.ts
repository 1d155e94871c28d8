/**
 * What netkit does to a terminal, decided in this one place: colours in the
 * human reports, and the live progress line. Colour is on only for text
 * output to a terminal without `NO_COLOR`; the live line only for text output
 * while stderr is a terminal. Reports never look at the environment: they are
 * handed a {@linkcode Style}, and {@linkcode readTerminalFacts} is the only
 * reader of `Deno.noColor` and `isTerminal()`.
 *
 * @example
 * ```ts
 * import { readTerminalFacts, styleFor } from "./terminal.ts";
 *
 * const style = styleFor("text", readTerminalFacts());
 * console.log(style.bold("udp probe"), style.red("lost 3 (0.30%)"));
 * ```
 *
 * @module
 */

import { bold, dim, green, red } from "@std/fmt/colors";
import type { OutputFormat } from "./config.ts";

/** What the process's standard streams and environment allow. */
export interface TerminalFacts {
  /** `NO_COLOR` is set (Deno reads it at start-up; no env permission needed). */
  noColor: boolean;
  stdoutIsTerminal: boolean;
  stderrIsTerminal: boolean;
  /** `TERM=dumb`: no cursor tricks, and charts in ASCII. @default {false} */
  dumb?: boolean;
}

/**
 * `TERM` as it was at start-up: read when this module loads, before `main.ts`
 * revokes `env` (the binary is granted `env` for `TERM` only), so the reports
 * need no permission later. Undefined without that permission.
 */
const TERM_AT_START: string | undefined = (() => {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: "TERM" }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get("TERM");
  } catch {
    return undefined;
  }
})();

/** Read the facts of this process (the only place that does). */
export function readTerminalFacts(): TerminalFacts {
  return {
    noColor: Deno.noColor,
    stdoutIsTerminal: Deno.stdout.isTerminal(),
    stderrIsTerminal: Deno.stderr.isTerminal(),
    dumb: TERM_AT_START === "dumb",
  };
}

/** How report text is marked up: each function wraps a piece of text. */
export interface Style {
  /** Headers. */
  bold(text: string): string;
  /** Secondary figures. */
  dim(text: string): string;
  /** Loss. */
  red(text: string): string;
  /** No loss: everything delivered. */
  green(text: string): string;
}

const same = (text: string) => text;

/** No markup: what pipes, files, `--json` and `NO_COLOR` get. */
export const PLAIN: Style = { bold: same, dim: same, red: same, green: same };

/** ANSI colours from `@std/fmt/colors`. */
export const COLOR: Style = { bold, dim, red, green };

/**
 * Whether text written to `stream` is coloured: only in the text format, to a
 * terminal, without `NO_COLOR`.
 */
export function colorOn(
  format: OutputFormat,
  facts: TerminalFacts,
  stream: "stdout" | "stderr" = "stdout",
): boolean {
  const terminal = stream === "stdout" ? facts.stdoutIsTerminal : facts.stderrIsTerminal;
  return format === "text" && terminal && !facts.noColor;
}

/** The {@linkcode Style} for text written to `stream`. */
export function styleFor(
  format: OutputFormat,
  facts: TerminalFacts,
  stream: "stdout" | "stderr" = "stdout",
): Style {
  return colorOn(format, facts, stream) ? COLOR : PLAIN;
}

/**
 * Whether a live progress line may be drawn on stderr: only in the text
 * format (never with `--json` or `--json-stream`) and only while stderr is a
 * terminal that a person watches.
 */
export function liveLineOn(format: OutputFormat, facts: TerminalFacts): boolean {
  return format === "text" && facts.stderrIsTerminal;
}

/**
 * How the compact chart at the end of a text report is drawn: not at all
 * unless the text goes to a terminal and `--no-chart` was not given; in ASCII
 * with `NO_COLOR` or `TERM=dumb`; otherwise with Unicode block characters.
 */
export function chartGlyphsFor(
  format: OutputFormat,
  facts: TerminalFacts,
  wanted: boolean,
): "unicode" | "ascii" | undefined {
  if (!wanted || format !== "text" || !facts.stdoutIsTerminal) return undefined;
  return facts.noColor || facts.dumb ? "ascii" : "unicode";
}
