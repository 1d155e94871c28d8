/**
 * Tests for word-wrapping help and findings to a width.
 *
 * @example
 * ```sh
 * deno test lib/wrap_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { DEFAULT_WIDTH, outputWidth, wrap } from "./wrap.ts";

Deno.test("wrap breaks between words so that no line passes the width", () => {
  const text = "UDP lost 37 of 10,000 probes (0.37%); TCP delivered all 10,000 in order, " +
    "and every probe behind a lost segment waited for the retransmission.";
  const lines = wrap(text, 40, "  ");
  assert(lines.length > 2, JSON.stringify(lines));
  for (const line of lines) assert(line.length <= 40, JSON.stringify(line));
  assertEquals(lines.map((l) => l.trim()).join(" "), text, "no word lost or split");
  assert(lines.every((l) => l.startsWith("  ") && !l.startsWith("   ")), "indented by two");
});

Deno.test("wrap gives the first line its indent and the rest the hanging indent", () => {
  assertEquals(wrap("one two three four", 12, "- ", "  "), ["- one two", "  three four"]);
});

Deno.test("wrap keeps a word longer than the width whole on its own line", () => {
  assertEquals(wrap("a verylongwordindeed b", 8), ["a", "verylongwordindeed", "b"]);
});

Deno.test("wrap of text that fits is the text itself, one line", () => {
  assertEquals(wrap("fits here", 80, "  "), ["  fits here"]);
});

Deno.test("outputWidth is 80 when stdout is not a terminal", () => {
  if (Deno.stdout.isTerminal()) return; // under a terminal the test run's width applies
  assertEquals(outputWidth(), DEFAULT_WIDTH);
  assertEquals(DEFAULT_WIDTH, 80);
});

Deno.test("wrap counts colour codes as no columns", () => {
  const red = (t: string) => `\x1b[31m${t}\x1b[39m`;
  const lines = wrap(`${red("UDP lost 37")} of 10,000 probes`, 20);
  assertEquals(lines, [`${red("UDP lost 37")} of`, "10,000 probes"]);
});
