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
import { assertEquals } from "@std/assert";
import { mulberry32 } from "./prng.ts";
import {
  formatBitRate,
  formatBytes,
  formatCount,
  formatCountOf,
  formatPercent,
  formatSize,
  parseBlockSize,
  parseByteSize,
  parsePercent,
  parseScaled,
} from "./units.ts";

Deno.test("formatCount groups thousands with commas", () => {
  assertEquals(formatCount(0), "0");
  assertEquals(formatCount(999), "999");
  assertEquals(formatCount(1000), "1,000");
  assertEquals(formatCount(10_000), "10,000");
  assertEquals(formatCount(1_234_567), "1,234,567");
  assertEquals(formatCount(-2500), "-2,500");
});

Deno.test("formatBytes prints whole bytes below 1 KiB", () => {
  assertEquals(formatBytes(0), "0 B");
  assertEquals(formatBytes(1), "1 B");
  assertEquals(formatBytes(1023), "1,023 B");
});

Deno.test("formatSize prints a size in exact bytes with thousands separators: --size 1400 is 1,400 B", () => {
  assertEquals(formatSize(64), "64 B");
  assertEquals(formatSize(1400), "1,400 B");
  assertEquals(formatSize(1_048_575), "1,048,575 B");
});

Deno.test("formatCountOf is singular for exactly one and plural otherwise", () => {
  assertEquals(formatCountOf(1, "probe"), "1 probe");
  assertEquals(formatCountOf(0, "probe"), "0 probes");
  assertEquals(formatCountOf(3000, "datagram"), "3,000 datagrams");
  assertEquals(formatCountOf(1, "reply", "replies"), "1 reply");
  assertEquals(formatCountOf(2, "reply", "replies"), "2 replies");
});

Deno.test("formatBytes uses binary prefixes with two decimals", () => {
  assertEquals(formatBytes(1024), "1.00 KiB");
  assertEquals(formatBytes(1536), "1.50 KiB");
  assertEquals(formatBytes(1024 ** 2), "1.00 MiB");
  assertEquals(formatBytes(1.5 * 1024 ** 3), "1.50 GiB");
  assertEquals(formatBytes(1024 ** 4), "1.00 TiB");
});

Deno.test("formatBytes stays in TiB past its largest prefix", () => {
  assertEquals(formatBytes(1024 ** 5), "1024.00 TiB");
});

Deno.test("formatBitRate prints whole bit/s below 1 kbit/s", () => {
  assertEquals(formatBitRate(0), "0 bit/s");
  assertEquals(formatBitRate(999), "999 bit/s");
});

Deno.test("formatBitRate uses decimal prefixes with two decimals", () => {
  assertEquals(formatBitRate(1000), "1.00 kbit/s");
  assertEquals(formatBitRate(1500), "1.50 kbit/s");
  assertEquals(formatBitRate(12_345_678), "12.35 Mbit/s");
  assertEquals(formatBitRate(2.5e9), "2.50 Gbit/s");
  assertEquals(formatBitRate(3e12), "3.00 Tbit/s");
  assertEquals(formatBitRate(1e15), "1000.00 Tbit/s");
});

Deno.test("formatPercent prints a fraction as a percentage with two decimals", () => {
  assertEquals(formatPercent(0), "0.00%");
  assertEquals(formatPercent(0.0037), "0.37%");
  assertEquals(formatPercent(0.5), "50.00%");
  assertEquals(formatPercent(1), "100.00%");
  assertEquals(formatPercent(0.123456), "12.35%");
});

Deno.test("formatPercent never groups digits", () => {
  assertEquals(formatPercent(12.5), "1250.00%");
});

Deno.test("parseScaled reads plain numbers and decimals", () => {
  assertEquals(parseScaled("1400"), 1400);
  assertEquals(parseScaled("0"), 0);
  assertEquals(parseScaled("2.5"), 2.5);
  assertEquals(parseScaled(" 64 "), 64);
});

Deno.test("parseScaled reads decimal k, M and G suffixes in either case", () => {
  assertEquals(parseScaled("64k"), 64_000);
  assertEquals(parseScaled("64K"), 64_000);
  assertEquals(parseScaled("1.5M"), 1_500_000);
  assertEquals(parseScaled("1.5m"), 1_500_000);
  assertEquals(parseScaled("2G"), 2e9);
  assertEquals(parseScaled("2g"), 2e9);
});

Deno.test("parseScaled rejects negatives, unknown suffixes and garbage", () => {
  for (
    const text of ["", "k", "-1", "-64k", "1.5X", "1T", "1 k", "1kk", "1.", ".5", "1e3", "abc"]
  ) {
    assertEquals(parseScaled(text), undefined, JSON.stringify(text));
  }
});

Deno.test("formatSize writes whole KiB, MiB and GiB without decimals, small sizes in bytes", () => {
  assertEquals(formatSize(4 * 1024 * 1024), "4 MiB");
  assertEquals(formatSize(256 * 1024 * 1024), "256 MiB");
  assertEquals(formatSize(1024 ** 3), "1 GiB");
  assertEquals(formatSize(128 * 1024), "128 KiB");
  assertEquals(formatSize(0), "0 B");
  assertEquals(formatSize(512 * 1024 * 1024 + 65536), "512.06 MiB");
  assertEquals(formatSize(5 * 1024 * 1024 + 1), "5.00 MiB");
});

Deno.test("parseByteSize reads decimal and binary units and rejects the rest", () => {
  assertEquals(parseByteSize("1400"), 1400);
  assertEquals(parseByteSize("10MB"), 10_000_000);
  assertEquals(parseByteSize("1.5k"), 1500);
  assertEquals(parseByteSize("256KiB"), 262_144);
  assertEquals(parseByteSize("1 GiB"), 1024 ** 3);
  for (const bad of ["", "-1", "5XB", "1e3", "MB", "1..2"]) {
    assertEquals(parseByteSize(bad), undefined);
  }
});

Deno.test("parseBlockSize counts K, M and G in 1024s (iperf3's -l) and rejects the rest", () => {
  assertEquals(parseBlockSize("1400"), 1400);
  assertEquals(parseBlockSize("128K"), 131_072);
  assertEquals(parseBlockSize("1m"), 1_048_576);
  assertEquals(parseBlockSize("1MiB"), 1_048_576);
  assertEquals(parseBlockSize("0.5K"), 512);
  for (const bad of ["", "-1", "1.5", "5X", "1e3", "M", "1MB", "1..2"]) {
    assertEquals(parseBlockSize(bad), undefined, bad);
  }
});

Deno.test("parsePercent reads 5%, 0.5% and 5 as fractions, up to 100%", () => {
  assertEquals(parsePercent("5%"), 0.05);
  assertEquals(parsePercent("0.5%"), 0.005);
  assertEquals(parsePercent("10"), 0.1);
  assertEquals(parsePercent("100%"), 1);
  for (const bad of ["", "101%", "-1%", "5%%", "x"]) assertEquals(parsePercent(bad), undefined);
});

Deno.test("formatCount and formatPercent write exactly what Intl's en-US formatters write, without loading them", () => {
  const count = new Intl.NumberFormat("en-US");
  const fixed2 = new Intl.NumberFormat("en-US", {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
    useGrouping: false,
  });
  // Ties Intl rounds on the shortest decimal (1.005 -> 1.01, where toFixed gives 1.00), carries,
  // signs of zero, numbers past 1e21 and below 1e-6, and the non-finite.
  const values = [
    0,
    -0,
    1.005,
    2.675,
    -0.125,
    999.9995,
    0.0005,
    -0.0004,
    9.995,
    99999.9996,
    1e21,
    1.2345678901234567e25,
    123456789012345680000,
    1e-7,
    -3.5e-9,
    4503599627370497.5,
    NaN,
    Infinity,
    -Infinity,
  ];
  const random = mulberry32(11);
  for (let i = 0; i < 20_000; i++) {
    let v = random() * 10 ** (Math.floor(random() * 30) - 8);
    if (random() < 0.3) v = Math.round(v);
    if (random() < 0.2) v = Math.round(v * 1000) / 1000 + 0.0005;
    values.push(random() < 0.3 ? -v : v);
  }
  for (const v of values) {
    assertEquals(formatCount(v), count.format(v), `formatCount(${v})`);
    assertEquals(
      formatPercent(v / 100),
      `${fixed2.format((v / 100) * 100)}%`,
      `formatPercent(${v / 100})`,
    );
  }
});
