/**
 * Pacing: wait until a send is due, finer than a timer tick. Far from the due
 * time it sleeps on a timer; within 3 ms it yields to the event loop
 * (`setImmediate`, a few microseconds) until due, so paced sends are spread
 * evenly instead of bursting once per timer tick. The cost: a busy core while
 * sends are less than 3 ms apart.
 *
 * @example
 * ```ts
 * import { waitUntil } from "./pace.ts";
 *
 * const start = performance.now();
 * for (let i = 0; i < 10; i++) {
 *   await waitUntil(start + i * 0.5); // one send every 500 µs
 * }
 * ```
 *
 * @module
 */

import { delay } from "@std/async/delay";
// node: because Deno has no setImmediate of its own (a turn of the event loop, no 1 ms timer floor).
import { setImmediate } from "node:timers";

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Resolve once `performance.now()` reaches `due`. */
export async function waitUntil(due: number): Promise<void> {
  for (let now = performance.now(); now < due; now = performance.now()) {
    if (due - now > 3) await delay(due - now - 2);
    else await yieldToEventLoop();
  }
}
