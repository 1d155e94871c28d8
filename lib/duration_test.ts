/**
 * Tests for duration parsing (every unit, bare seconds, decimals, and the
 * rejection of negative and malformed values) and for duration formatting.
 *
 * @example
 * ```sh
 * deno test lib/duration_test.ts
 * ```
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { formatDuration, parseDuration } from "./duration.ts";

Deno.test("parseDuration reads microseconds with 'us' and 'µs'", () => {
  assertEquals(parseDuration("250us"), 0.25);
  assertEquals(parseDuration("1000µs"), 1);
});

Deno.test("parseDuration reads milliseconds with 'ms'", () => {
  assertEquals(parseDuration("250ms"), 250);
  assertEquals(parseDuration("0ms"), 0);
});

Deno.test("parseDuration reads seconds, minutes and hours", () => {
  assertEquals(parseDuration("2s"), 2000);
  assertEquals(parseDuration("2m"), 120_000);
  assertEquals(parseDuration("1h"), 3_600_000);
});

Deno.test("parseDuration reads a bare number as seconds", () => {
  assertEquals(parseDuration("3"), 3000);
  assertEquals(parseDuration("0"), 0);
  assertEquals(parseDuration("0.25"), 250);
});

Deno.test("parseDuration reads decimals, with or without a leading zero", () => {
  assertEquals(parseDuration("1.5s"), 1500);
  assertEquals(parseDuration("1.5m"), 90_000);
  assertEquals(parseDuration("0.5ms"), 0.5);
  assertEquals(parseDuration(".5s"), 500);
  assertEquals(parseDuration(".5"), 500);
});

Deno.test("parseDuration ignores surrounding spaces and a space before the unit", () => {
  assertEquals(parseDuration(" 2s "), 2000);
  assertEquals(parseDuration("2 s"), 2000);
  assertEquals(parseDuration("500 ms"), 500);
});

Deno.test("parseDuration rejects negative durations", () => {
  for (const text of ["-1", "-1s", "-0.5ms", "-.5"]) {
    assertEquals(parseDuration(text), undefined, text);
  }
});

Deno.test("parseDuration rejects garbage, unknown units and empty text", () => {
  for (
    const text of [
      "",
      " ",
      "abc",
      "s",
      "ms",
      "1d",
      "1sec",
      "1S",
      "1MS",
      "1.5.2s",
      "1.",
      "1e3",
      "Infinity",
      "NaN",
      "1s2",
      "2s ms",
      "+1s",
      "0x10",
    ]
  ) {
    assertEquals(parseDuration(text), undefined, JSON.stringify(text));
  }
});

Deno.test("formatDuration picks µs, ms, s or min by size", () => {
  assertEquals(formatDuration(0.25), "250 µs");
  assertEquals(formatDuration(5), "5.00 ms");
  assertEquals(formatDuration(850), "850 ms");
  assertEquals(formatDuration(1500), "1.50 s");
  assertEquals(formatDuration(125_000), "2 min 5 s");
});

Deno.test("formatDuration prints what parseDuration reads back, to its precision", () => {
  assertEquals(formatDuration(parseDuration("300ms") ?? NaN), "300 ms");
  assertEquals(formatDuration(parseDuration("2s") ?? NaN), "2.00 s");
});
