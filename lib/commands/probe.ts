/**
 * `netkit client --probe` (placeholder until the probe lands).
 *
 * @example
 * ```ts
 * import { runProbeCommand } from "./probe.ts";
 * ```
 *
 * @module
 */

import type { ProbeConfig } from "../config.ts";
import { NetkitError } from "../errors.ts";

/** Run a probe; returns the exit code. */
export function runProbeCommand(_config: ProbeConfig): Promise<number> {
  return Promise.reject(new NetkitError("failure", "Probe mode is not built yet"));
}
