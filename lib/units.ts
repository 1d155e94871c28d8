/**
 * Human units for reports: counts with grouping, bytes (binary prefixes),
 * bit rates (decimal prefixes, as iperf3 prints them), and parsing of sizes
 * such as `64K` or `1.5M`.
 *
 * @example
 * ```ts
 * import { formatBitRate, formatBytes, formatCount } from "./units.ts";
 *
 * formatCount(10000); // "10,000"
 * formatBytes(1536); // "1.50 KiB"
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

function scaled(value: number, base: number, prefixes: readonly string[], unit: string): string {
  let i = 0;
  while (Math.abs(value) >= base && i < prefixes.length - 1) {
    value /= base;
    i++;
  }
  return i === 0 ? `${Math.round(value)} ${unit}` : `${FIXED2.format(value)} ${prefixes[i]}${unit}`;
}

/** Bytes with binary prefixes: `1536` → `"1.50 KiB"`. */
export function formatBytes(bytes: number): string {
  return scaled(bytes, 1024, ["", "Ki", "Mi", "Gi", "Ti"], "B");
}

/** A size as a person would write it: `4194304` → `"4 MiB"`, `1400` → `"1400 B"`, `1536` → `"1.50 KiB"`. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= size && bytes % size === 0 && bytes / size < 10_000) {
      return `${bytes / size} ${unit}`;
    }
  }
  return bytes < 1024 * 1024 ? `${bytes} B` : formatBytes(bytes);
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
