/**
 * `netkit compare` (placeholder until the probe lands).
 *
 * @example
 * ```ts
 * import { runCompare } from "./compare.ts";
 * ```
 *
 * @module
 */

import type { CompareConfig } from "../config.ts";
import { NetkitError } from "../errors.ts";

/** Run a comparison; returns the exit code. */
export function runCompare(_config: CompareConfig): Promise<number> {
  return Promise.reject(new NetkitError("failure", "Compare is not built yet"));
}
