/**
 * Bound a promise by a timeout, clearing the timer either way (no timer is
 * left behind for leak detection to find).
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

/** Resolve as `promise` does, or reject with `onTimeout()` after `ms` milliseconds. */
export async function deadline<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => Error,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
