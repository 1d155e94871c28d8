/**
 * Bound a promise by a timeout that rejects with the caller's own error (a
 * `NetkitError` naming what timed out, for one), on `@std/async`'s
 * `abortable` and `AbortSignal.timeout`: the timer holds no resource, so
 * nothing is left behind for leak detection to find, and `FakeTime` drives it
 * in tests.
 *
 * @example
 * ```ts
 * import { deadline } from "./deadline.ts";
 *
 * const conn = await deadline(Deno.connect({ port: 5050 }), 5000, () => new Error("timed out"));
 * ```
 *
 * @module
 */

import { abortable } from "@std/async/abortable";

/** Resolve as `promise` does, or reject with `onTimeout()` after `ms` milliseconds. */
export async function deadline<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => Error,
): Promise<T> {
  const timeout = AbortSignal.timeout(ms);
  try {
    return await abortable(promise, timeout);
  } catch (err) {
    // Only our own timeout maps to the caller's error; the promise's rejections pass through.
    if (timeout.aborted && err === timeout.reason) throw onTimeout();
    throw err;
  }
}
