/**
 * Pick the engine for a run, `--engine auto|deno|native`, and say why, for
 * the report and the `-v` line: auto takes the native engine where libc can
 * load (Linux, glibc at a known path, ffi permitted), the deno engine
 * elsewhere. A server's auto does not open libc until its first UDP test port
 * needs it (the `dlopen` costs about 4.5 MiB, and it may never open one); if
 * it fails to load then, the run falls back to the deno engine at that point
 * and the selection's reason (and the `-v` line) says why.
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
import { findNativeEngine, loadNativeEngine } from "./native/engine.ts";
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

/** How {@linkcode selectEngine} finds and loads the native engine (tests simulate other systems). */
export interface NativeLoader {
  /** Whether it can be expected to load, without loading it. */
  find: typeof findNativeEngine;
  /** Load it (once: later calls return the same). */
  load: typeof loadNativeEngine;
}

const NATIVE: NativeLoader = { find: findNativeEngine, load: loadNativeEngine };

/** Ask {@linkcode selectEngine} to open libc on first use (see {@linkcode selectEngine}). */
export interface LazyLoad {
  /** Gets the `-v` line when libc, found at start, then fails to load and the run falls back. */
  onFallback?: (line: string) => void;
}

/**
 * Choose an engine. `native` that cannot load is an error naming why; `auto`
 * falls back to deno with the reason. Both load libc at once, unless `lazy`
 * is given (a server, which may never open a UDP port): then `auto` only finds
 * it at start (no `dlopen`) and the first `open` or `listen` loads it; should
 * that fail, the run falls back to deno there (`lazy.onFallback` gets the `-v`
 * line). The selection's reason is updated when it loads, or falls back.
 */
export function selectEngine(
  choice: EngineChoice,
  native: NativeLoader = NATIVE,
  lazy?: LazyLoad,
): EngineSelection {
  if (choice === "deno") return { engine: denoEngine, reason: "asked for (--engine deno)" };
  if (choice === "auto" && lazy) {
    const found = native.find();
    if ("reason" in found) {
      return { engine: denoEngine, reason: `auto: native engine unavailable (${found.reason})` };
    }
    const selection: EngineSelection = {
      engine: denoEngine,
      reason: `auto: libc found at ${found.path}; loaded on first use`,
    };
    selection.engine = lazyNative(selection, native.load, lazy.onFallback);
    return selection;
  }
  const loaded = native.load();
  if ("engine" in loaded) {
    return {
      engine: loaded.engine,
      reason: `${
        choice === "native" ? "asked for" : "auto"
      }: sendmmsg/recvmmsg through ${loaded.path}`,
    };
  }
  if (choice === "native") {
    throw new NetkitError(
      "usage",
      `--engine native is unavailable: ${loaded.reason}; use '--engine deno' or '--engine auto'`,
    );
  }
  return { engine: denoEngine, reason: `auto: native engine unavailable (${loaded.reason})` };
}

/**
 * The native engine, loaded by the first `open` or `listen`; the deno engine
 * from then on if it fails to load. `name` is the engine really used.
 */
function lazyNative(
  selection: EngineSelection,
  load: typeof loadNativeEngine,
  onFallback?: (line: string) => void,
): Engine {
  let chosen: Engine | undefined;
  const resolve = (): Engine => {
    if (chosen) return chosen;
    const loaded = load();
    if ("engine" in loaded) {
      selection.reason = `auto: sendmmsg/recvmmsg through ${loaded.path}`;
      return chosen = loaded.engine;
    }
    selection.reason = `auto: native engine unavailable (${loaded.reason})`;
    chosen = denoEngine;
    onFallback?.(formatSelection(selection));
    return chosen;
  };
  return {
    get name() {
      return chosen?.name ?? "native";
    },
    // Through the executor, so a failure to open rejects instead of throwing.
    open: (options) => new Promise((ok) => ok(resolve().open(options))),
    listen: (options) => new Promise((ok) => ok(resolve().listen(options))),
    receiveLowWater: (conn) => resolve().receiveLowWater?.(conn),
  };
}
