/**
 * Human units for reports: counts with grouping, bytes (binary prefixes),
 * bit rates (decimal prefixes, as iperf3 prints them), and parsing of sizes
 * such as `64K` or `1.5M`.
 *
 * @example
 * ```ts
 * import { formatBitRate, formatBytes, formatCount, formatCountOf, formatSize } from "./units.ts";
 *
 * formatCount(10000); // "10,000"
 * formatCountOf(1, "probe"); // "1 probe"
 * formatBytes(1536); // "1.50 KiB"
 * formatSize(1400); // "1,400 B"
 * formatBitRate(2.5e9); // "2.50 Gbit/s"
 * ```
 *
 * @module
 */

// Numbers are formatted by hand, exactly as en-US would: `Intl.NumberFormat` pages in ICU's
// locale data (about 6 MiB of resident memory, measured on a server) that a network tool never
// needs. Like Intl, rounding works on the shortest decimal that reads back as the number
// (`1.005` → `"1.01"`, where `toFixed` gives `"1.00"`), half away from zero.

/** `|n|` rounded to `digits` decimals: the integer digits, the decimals. */
function decimal(n: number, digits: number): [string, string] {
  const [mantissa, exponent] = Math.abs(n).toExponential().split("e") as [string, string];
  let all = mantissa.replace(".", "");
  let point = Number(exponent) + 1; // digits before the decimal point
  if (point <= 0) {
    all = "0".repeat(1 - point) + all;
    point = 1;
  }
  if (all.length < point + digits) all += "0".repeat(point + digits - all.length);
  let kept = all.slice(0, point + digits);
  if (all.charCodeAt(point + digits) >= 0x35) { // the first digit dropped is 5 or more
    let i = kept.length - 1;
    while (i >= 0 && kept[i] === "9") i--;
    kept = i < 0
      ? `1${"0".repeat(kept.length)}`
      : `${kept.slice(0, i)}${Number(kept[i]) + 1}${"0".repeat(kept.length - i - 1)}`;
    if (i < 0) point++;
  }
  return [kept.slice(0, point).replace(/^0+(?=\d)/, ""), kept.slice(point)];
}

/** en-US's sign: `-` on every negative number, -0 and those that round to 0 included. */
function sign(n: number): string {
  return n < 0 || Object.is(n, -0) ? "-" : "";
}

/** `12345.6789` → `"12,345.679"`: Intl's en-US default (grouping, at most 3 decimals). */
function count(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? "NaN" : `${sign(n)}∞`;
  let [int, fraction] = decimal(n, 3);
  fraction = fraction.replace(/0+$/, "");
  for (let i = int.length - 3; i > 0; i -= 3) int = `${int.slice(0, i)},${int.slice(i)}`;
  return `${sign(n)}${int}${fraction ? `.${fraction}` : ""}`;
}

/** `1.005` → `"1.01"`: two decimals, no grouping. */
function fixed2(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? "NaN" : `${sign(n)}∞`;
  const [int, fraction] = decimal(n, 2);
  return `${sign(n)}${int}.${fraction}`;
}

/** `10000` → `"10,000"`. */
export function formatCount(n: number): string {
  return count(n);
}

/**
 * A count and its noun, singular for exactly one: `(1, "probe")` → `"1 probe"`,
 * `(3000, "probe")` → `"3,000 probes"`.
 */
export function formatCountOf(n: number, noun: string, plural = `${noun}s`): string {
  return `${formatCount(n)} ${n === 1 ? noun : plural}`;
}

function scaled(value: number, base: number, prefixes: readonly string[], unit: string): string {
  let i = 0;
  while (Math.abs(value) >= base && i < prefixes.length - 1) {
    value /= base;
    i++;
  }
  return i === 0
    ? `${formatCount(Math.round(value))} ${unit}`
    : `${fixed2(value)} ${prefixes[i]}${unit}`;
}

/** Bytes with binary prefixes: `1536` → `"1.50 KiB"`. */
export function formatBytes(bytes: number): string {
  return scaled(bytes, 1024, ["", "Ki", "Mi", "Gi", "Ti"], "B");
}

/**
 * A size as a person would write it, exact where it can be: `4194304` → `"4 MiB"`,
 * `1400` → `"1,400 B"` (never `"1.37 KiB"`), `5242881` → `"5.00 MiB"`.
 */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= size && bytes % size === 0 && bytes / size < 10_000) {
      return `${bytes / size} ${unit}`;
    }
  }
  return bytes < 1024 * 1024 ? `${formatCount(bytes)} B` : formatBytes(bytes);
}

/** Bits per second with decimal prefixes: `2.5e9` → `"2.50 Gbit/s"`. */
export function formatBitRate(bitsPerSecond: number): string {
  return scaled(bitsPerSecond, 1000, ["", "k", "M", "G", "T"], "bit/s");
}

/** A percentage with two decimals: `0.0037` → `"0.37%"`. */
export function formatPercent(fraction: number): string {
  return `${fixed2(fraction * 100)}%`;
}

const SIZE_SUFFIX: Readonly<Record<string, number>> = {
  "": 1,
  k: 1e3,
  K: 1e3,
  m: 1e6,
  M: 1e6,
  g: 1e9,
  G: 1e9,
};

/**
 * Parse a non-negative number with an optional decimal suffix `k`, `M` or `G`
 * (`1400`, `64k`, `1.5M`), as iperf3 takes `-b` and `-l`.
 *
 * @returns `undefined` when `text` is not such a number.
 */
export function parseScaled(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(text.trim());
  if (!match) return undefined;
  const factor = SIZE_SUFFIX[match[2] ?? ""];
  if (factor === undefined) return undefined;
  return Number(match[1]) * factor;
}

const BYTE_SUFFIX: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/**
 * Parse a byte count: a whole or decimal number with an optional unit, decimal
 * (`k`, `KB`, `M`, `MB`, `G`, `GB`) or binary (`KiB`, `MiB`, `GiB`), as in
 * `--reset-after 10MB` or `--queue 256KiB`. Rounds down to whole bytes.
 *
 * @returns `undefined` when `text` is not such a count.
 */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  if (!match) return undefined;
  const factor = BYTE_SUFFIX[(match[2] ?? "").toLowerCase()];
  if (factor === undefined) return undefined;
  const bytes = Math.floor(Number(match[1]) * factor);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/**
 * Parse a block size as iperf3's `-l` does: a whole number of bytes, or a
 * number with `K`, `M` or `G` in either case, which count in 1024s (`128K` is
 * 131,072, `1M` is 1,048,576); `KiB`, `MiB` and `GiB` say the same. Rounds
 * down to whole bytes.
 *
 * @returns `undefined` when `text` is not such a size.
 */
export function parseBlockSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)([kmg](?:ib)?)?$/i.exec(text.trim());
  if (!match) return undefined;
  const unit = (match[2] ?? "").toLowerCase().charAt(0);
  const factor = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  if (factor === 1 && match[1]!.includes(".")) return undefined;
  const bytes = Math.floor(Number(match[1]) * factor);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/**
 * Parse a percentage, `5%`, `0.5%` or `5` (a bare number is percent too), as a
 * fraction from 0 to 1.
 *
 * @returns `undefined` unless `text` is a percentage from 0 to 100.
 */
export function parsePercent(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*%?$/.exec(text.trim());
  if (!match) return undefined;
  const percent = Number(match[1]);
  return percent <= 100 ? percent / 100 : undefined;
}
