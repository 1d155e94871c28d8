/**
 * A tiny seeded pseudo-random generator (mulberry32): the same seed gives the
 * same sequence on every machine. The relay's impairments draw from it so that
 * `--seed` makes a run reproducible; tests use it for reproducible data.
 *
 * @example
 * ```ts
 * import { mixSeed, mulberry32 } from "./prng.ts";
 *
 * const random = mulberry32(42);
 * random(); // a float in [0, 1), the same for every run with seed 42
 * const perSession = mulberry32(mixSeed(42, 3, 1)); // an independent stream for session 3, direction 1
 * ```
 *
 * @module
 */

/** A generator of floats in [0, 1) from `seed`. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit seed derived from `seed` and a stream's coordinates (murmur3's finaliser per part). */
export function mixSeed(seed: number, ...parts: number[]): number {
  let h = seed >>> 0;
  for (const part of parts) {
    h ^= Math.imul((part >>> 0) + 0x9e3779b9, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}
