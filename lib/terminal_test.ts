/**
 * Tests for the one place that decides colours and the live line: colour only
 * for text output to a terminal without NO_COLOR, the live line only for text
 * output while stderr is a terminal, and the two styles.
 *
 * @example
 * ```sh
 * deno test lib/terminal_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { getColorEnabled, stripAnsiCode } from "@std/fmt/colors";
import {
  chartGlyphsFor,
  COLOR,
  colorOn,
  liveLineOn,
  PLAIN,
  styleFor,
  type TerminalFacts,
} from "./terminal.ts";

const TERMINAL: TerminalFacts = { noColor: false, stdoutIsTerminal: true, stderrIsTerminal: true };

Deno.test("colour is on for text output to a terminal without NO_COLOR", () => {
  assert(colorOn("text", TERMINAL));
  assertStrictEquals(styleFor("text", TERMINAL), COLOR);
});

Deno.test("colour is off with NO_COLOR, off when stdout is not a terminal, off with --json and --json-stream", () => {
  assertEquals(colorOn("text", { ...TERMINAL, noColor: true }), false);
  assertEquals(colorOn("text", { ...TERMINAL, stdoutIsTerminal: false }), false);
  assertEquals(colorOn("json", TERMINAL), false);
  assertEquals(colorOn("json-stream", TERMINAL), false);
  assertStrictEquals(styleFor("json", TERMINAL), PLAIN);
  assertStrictEquals(styleFor("text", { ...TERMINAL, noColor: true }), PLAIN);
});

Deno.test("colour on stderr follows stderr, not stdout", () => {
  const stderrOnly = { ...TERMINAL, stdoutIsTerminal: false };
  assert(colorOn("text", stderrOnly, "stderr"));
  assertEquals(colorOn("text", { ...TERMINAL, stderrIsTerminal: false }, "stderr"), false);
});

Deno.test("the live line is allowed only for text output while stderr is a terminal (NO_COLOR does not matter)", () => {
  assert(liveLineOn("text", TERMINAL));
  assert(liveLineOn("text", { ...TERMINAL, stdoutIsTerminal: false, noColor: true }));
  assertEquals(liveLineOn("text", { ...TERMINAL, stderrIsTerminal: false }), false);
  assertEquals(liveLineOn("json", TERMINAL), false);
  assertEquals(liveLineOn("json-stream", TERMINAL), false);
});

Deno.test("PLAIN leaves text as it is", () => {
  for (const f of [PLAIN.bold, PLAIN.dim, PLAIN.red, PLAIN.green]) {
    assertEquals(f("lost 3 (0.30%)"), "lost 3 (0.30%)");
  }
});

Deno.test("COLOR wraps text in ANSI codes (std's) that strip back to the same text", () => {
  for (const f of [COLOR.bold, COLOR.dim, COLOR.red, COLOR.green]) {
    const marked = f("lost 3");
    assertEquals(stripAnsiCode(marked), "lost 3");
    // std itself stays plain when the process started with NO_COLOR.
    assertEquals(marked.includes("\x1b["), getColorEnabled());
  }
  if (getColorEnabled()) assertEquals(COLOR.red("x"), "\x1b[31mx\x1b[39m");
});

Deno.test("the end-of-report chart: only text to a terminal, not with --no-chart; ASCII with NO_COLOR or TERM=dumb", () => {
  assertEquals(chartGlyphsFor("text", TERMINAL, true), "unicode");
  assertEquals(chartGlyphsFor("text", TERMINAL, false), undefined);
  assertEquals(chartGlyphsFor("text", { ...TERMINAL, stdoutIsTerminal: false }, true), undefined);
  assertEquals(chartGlyphsFor("json", TERMINAL, true), undefined);
  assertEquals(chartGlyphsFor("json-stream", TERMINAL, true), undefined);
  assertEquals(chartGlyphsFor("text", { ...TERMINAL, noColor: true }, true), "ascii");
  assertEquals(chartGlyphsFor("text", { ...TERMINAL, dumb: true }, true), "ascii");
});
