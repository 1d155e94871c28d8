/**
 * Pick the engine for a run, `--engine auto|deno|native`, and say why, for
 * the report and the `-v` line: auto takes the native engine where libc loads
 * (Linux, glibc at a known path, ffi permitted), the deno engine elsewhere.
 *
 * @example
 * ```ts
 * import { selectEngine } from "./select.ts";
 *
 * const { engine, reason } = selectEngine("auto");
 * console.log(`engine ${engine.name}: ${reason}`);
 * ```
 *
 * @module
 */

import { NetkitError } from "../errors.ts";
import { denoEngine } from "./deno.ts";
import { loadNativeEngine } from "./native/engine.ts";
import type { Engine } from "./types.ts";

/** What `--engine` accepts. */
export type EngineChoice = "auto" | "deno" | "native";

/** The `-v` line: `engine native: auto: sendmmsg/recvmmsg through /lib/…` (or why it fell back). */
export function formatSelection(selection: EngineSelection): string {
  return `engine ${selection.engine.name}: ${selection.reason}`;
}

/** The engines `--engine` can name. */
export const ENGINE_CHOICES: readonly EngineChoice[] = ["auto", "deno", "native"];

/** The engine chosen, and one sentence saying why. */
export interface EngineSelection {
  engine: Engine;
  reason: string;
}

/**
 * Choose an engine. `native` that cannot load is an error naming why;
 * `auto` falls back to deno with the reason.
 */
export function selectEngine(
  choice: EngineChoice,
  loadNative: typeof loadNativeEngine = loadNativeEngine,
): EngineSelection {
  if (choice === "deno") return { engine: denoEngine, reason: "asked for (--engine deno)" };
  const native = loadNative();
  if ("engine" in native) {
    return {
      engine: native.engine,
      reason: `${
        choice === "native" ? "asked for" : "auto"
      }: sendmmsg/recvmmsg through ${native.path}`,
    };
  }
  if (choice === "native") {
    throw new NetkitError(
      "usage",
      `--engine native is unavailable: ${native.reason}; use '--engine deno' or '--engine auto'`,
    );
  }
  return { engine: denoEngine, reason: `auto: native engine unavailable (${native.reason})` };
}
