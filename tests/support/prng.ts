/**
 * A tiny seeded pseudo-random generator (mulberry32) for reproducible tests:
 * the same seed gives the same sequence on every machine.
 *
 * @example
 * ```ts
 * import { mulberry32 } from "./prng.ts";
 *
 * const random = mulberry32(42);
 * random(); // a float in [0, 1), the same for every run with seed 42
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
