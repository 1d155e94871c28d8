/**
 * Impairment values: none, and whether one direction asks for anything.
 *
 * @example
 * ```ts
 * import { impaired, NO_IMPAIRMENT } from "./impairment.ts";
 *
 * impaired(NO_IMPAIRMENT); // false
 * impaired({ ...NO_IMPAIRMENT, delayMs: 30 }); // true
 * ```
 *
 * @module
 */

import type { Impairment } from "../config.ts";

/** No impairment at all. */
export const NO_IMPAIRMENT: Readonly<Impairment> = {
  loss: 0,
  duplicate: 0,
  reorder: 0,
  corrupt: 0,
  delayMs: 0,
  jitterMs: 0,
  rate: 0,
};

/** Whether `imp` changes anything. */
export function impaired(imp: Impairment): boolean {
  return imp.loss > 0 || imp.duplicate > 0 || imp.reorder > 0 || imp.corrupt > 0 ||
    imp.delayMs > 0 || imp.jitterMs > 0 || imp.rate > 0 || imp.stallAfter !== undefined ||
    imp.resetAfter !== undefined || imp.closeAfterMs !== undefined;
}
