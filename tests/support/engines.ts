/**
 * Run one end-to-end test against each UDP engine (`--engine deno` and
 * `--engine native`), so the same assertions hold for both; the native run is
 * skipped (and named as such) where the native engine cannot load.
 *
 * @example
 * ```ts
 * import { engineTest } from "./engines.ts";
 *
 * engineTest("udp probe echoes every probe", async (engine) => {
 *   // run netkit with "--engine", engine …
 * });
 * ```
 *
 * @module
 */

import { loadNativeEngine } from "../../lib/engine/native/engine.ts";

/** The engines a UDP test runs against. */
export const ENGINES = ["deno", "native"] as const;

/** An engine's name as `--engine` takes it. */
export type EngineName = typeof ENGINES[number];

/** Why the native engine cannot run here, or `undefined` where it can. */
export const NATIVE_MISSING: string | undefined = (() => {
  const native = loadNativeEngine();
  return "reason" in native ? native.reason : undefined;
})();

/** Register `fn` once per engine, as `NAME [--engine E]`. */
export function engineTest(name: string, fn: (engine: EngineName) => Promise<void>): void {
  for (const engine of ENGINES) {
    Deno.test({
      name: `${name} [--engine ${engine}]`,
      ignore: engine === "native" && NATIVE_MISSING !== undefined,
      fn: () => fn(engine),
    });
  }
}
