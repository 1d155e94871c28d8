/**
 * The signals that stop a run or a server, in one place: SIGINT and SIGTERM
 * (Windows delivers only SIGINT).
 *
 * @example
 * ```ts
 * import { STOP_SIGNALS } from "./signals.ts";
 *
 * const onStop = () => console.log("stopping");
 * for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, onStop);
 * for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, onStop);
 * ```
 *
 * @module
 */

/** SIGINT and SIGTERM (Windows has only SIGINT). */
export const STOP_SIGNALS: readonly ("SIGINT" | "SIGTERM")[] = Deno.build.os === "windows"
  ? ["SIGINT"]
  : ["SIGINT", "SIGTERM"];
