/**
 * Parse and format durations such as `250ms`, `1.5s`, `2m` or a bare `3`
 * (seconds, as nc's `-w` and iperf3's `-t` take them).
 *
 * @example
 * ```ts
 * import { parseDuration } from "./duration.ts";
 *
 * parseDuration("1.5s"); // 1500
 * parseDuration("250ms"); // 250
 * ```
 *
 * @module
 */

const UNITS: Readonly<Record<string, number>> = {
  us: 0.001,
  µs: 0.001,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parse a duration into milliseconds.
 *
 * @param text A non-negative number with an optional unit: `us`, `ms`, `s`
 * (the default), `m` or `h`.
 * @returns The duration in milliseconds, or `undefined` when `text` is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?|\.\d+)\s*(us|µs|ms|s|m|h)?$/.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]);
  const unit = UNITS[match[2] ?? "s"];
  if (!Number.isFinite(value) || unit === undefined) return undefined;
  return value * unit;
}

/** Format milliseconds for people: `850 ms`, `1.50 s`, `2 min 5 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}
