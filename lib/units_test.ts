/**
 * Tests for the human units of reports: grouped counts, binary byte sizes,
 * decimal bit rates, percentages, and parsing of scaled sizes.
 *
 * @example
 * ```sh
 * deno test lib/units_test.ts
 * ```
 *
 * @module
 */
import assert from "node:assert/strict";
import { formatBitRate, formatBytes, formatCount, formatPercent, parseScaled } from "./units.ts";

Deno.test("formatCount groups thousands with commas", () => {
  assert.equal(formatCount(0), "0");
  assert.equal(formatCount(999), "999");
  assert.equal(formatCount(1000), "1,000");
  assert.equal(formatCount(10_000), "10,000");
  assert.equal(formatCount(1_234_567), "1,234,567");
  assert.equal(formatCount(-2500), "-2,500");
});

Deno.test("formatBytes prints whole bytes below 1 KiB", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1), "1 B");
  assert.equal(formatBytes(1023), "1023 B");
});

Deno.test("formatBytes uses binary prefixes with two decimals", () => {
  assert.equal(formatBytes(1024), "1.00 KiB");
  assert.equal(formatBytes(1536), "1.50 KiB");
  assert.equal(formatBytes(1024 ** 2), "1.00 MiB");
  assert.equal(formatBytes(1.5 * 1024 ** 3), "1.50 GiB");
  assert.equal(formatBytes(1024 ** 4), "1.00 TiB");
});

Deno.test("formatBytes stays in TiB past its largest prefix", () => {
  assert.equal(formatBytes(1024 ** 5), "1024.00 TiB");
});

Deno.test("formatBitRate prints whole bit/s below 1 kbit/s", () => {
  assert.equal(formatBitRate(0), "0 bit/s");
  assert.equal(formatBitRate(999), "999 bit/s");
});

Deno.test("formatBitRate uses decimal prefixes with two decimals", () => {
  assert.equal(formatBitRate(1000), "1.00 kbit/s");
  assert.equal(formatBitRate(1500), "1.50 kbit/s");
  assert.equal(formatBitRate(12_345_678), "12.35 Mbit/s");
  assert.equal(formatBitRate(2.5e9), "2.50 Gbit/s");
  assert.equal(formatBitRate(3e12), "3.00 Tbit/s");
  assert.equal(formatBitRate(1e15), "1000.00 Tbit/s");
});

Deno.test("formatPercent prints a fraction as a percentage with two decimals", () => {
  assert.equal(formatPercent(0), "0.00%");
  assert.equal(formatPercent(0.0037), "0.37%");
  assert.equal(formatPercent(0.5), "50.00%");
  assert.equal(formatPercent(1), "100.00%");
  assert.equal(formatPercent(0.123456), "12.35%");
});

Deno.test("formatPercent never groups digits", () => {
  assert.equal(formatPercent(12.5), "1250.00%");
});

Deno.test("parseScaled reads plain numbers and decimals", () => {
  assert.equal(parseScaled("1400"), 1400);
  assert.equal(parseScaled("0"), 0);
  assert.equal(parseScaled("2.5"), 2.5);
  assert.equal(parseScaled(" 64 "), 64);
});

Deno.test("parseScaled reads decimal k, M and G suffixes in either case", () => {
  assert.equal(parseScaled("64k"), 64_000);
  assert.equal(parseScaled("64K"), 64_000);
  assert.equal(parseScaled("1.5M"), 1_500_000);
  assert.equal(parseScaled("1.5m"), 1_500_000);
  assert.equal(parseScaled("2G"), 2e9);
  assert.equal(parseScaled("2g"), 2e9);
});

Deno.test("parseScaled rejects negatives, unknown suffixes and garbage", () => {
  for (
    const text of ["", "k", "-1", "-64k", "1.5X", "1T", "1 k", "1kk", "1.", ".5", "1e3", "abc"]
  ) {
    assert.equal(parseScaled(text), undefined, JSON.stringify(text));
  }
});
