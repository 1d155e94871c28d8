/**
 * Word-wrapping of prose (help text, compare findings) to the width of the
 * terminal: `Deno.consoleSize()` when stdout is a terminal, 80 columns when it
 * is not (a pipe or a file), so output read later keeps a readable width.
 *
 * @example
 * ```ts
 * import { outputWidth, wrap } from "./wrap.ts";
 *
 * for (const line of wrap("a long sentence ...", outputWidth(), "  ")) console.log(line);
 * ```
 *
 * @module
 */

import { stripAnsiCode } from "@std/fmt/colors";

/** The width used when stdout is not a terminal, or its size cannot be read. */
export const DEFAULT_WIDTH = 80;

/** Narrowest width wrapping honours; a narrower terminal still gets this. */
const MIN_WIDTH = 40;

/** Columns of stdout: the terminal's width, or {@linkcode DEFAULT_WIDTH} when it is not one. */
export function outputWidth(): number {
  try {
    if (!Deno.stdout.isTerminal()) return DEFAULT_WIDTH;
    return Math.max(MIN_WIDTH, Deno.consoleSize().columns);
  } catch {
    return DEFAULT_WIDTH;
  }
}

/**
 * Split `text` into lines of at most `width` columns, breaking between words.
 * The first line starts with `indent`, the others with `hanging`. A word
 * longer than a line stays whole on a line of its own. Colour codes take no columns.
 */
export function wrap(text: string, width: number, indent = "", hanging = indent): string[] {
  const words = text.split(/\s+/).filter((w) => w !== "");
  const lines: string[] = [];
  let line = indent;
  let columns = indent.length;
  let empty = true;
  for (const word of words) {
    const w = stripAnsiCode(word).length; // colour codes take no columns
    if (!empty && columns + 1 + w > width) {
      lines.push(line);
      line = hanging;
      columns = hanging.length;
      empty = true;
    }
    line += empty ? word : ` ${word}`;
    columns += empty ? w : 1 + w;
    empty = false;
  }
  lines.push(line);
  return lines;
}
