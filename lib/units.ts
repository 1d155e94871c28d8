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

const COUNT = new Intl.NumberFormat("en-US");
const FIXED2 = new Intl.NumberFormat("en-US", {
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
  useGrouping: false,
});

/** `10000` → `"10,000"`. */
export function formatCount(n: number): string {
  return COUNT.format(n);
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
    : `${FIXED2.format(value)} ${prefixes[i]}${unit}`;
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
  return `${FIXED2.format(fraction * 100)}%`;
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
