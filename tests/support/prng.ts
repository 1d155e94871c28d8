/**
 * The seeded generator now lives in the product (`lib/prng.ts`, which the
 * relay's impairments draw from); tests may import it from here as before.
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

export { mixSeed, mulberry32 } from "../../lib/prng.ts";
