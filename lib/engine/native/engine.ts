/**
 * The native engine: opens {@linkcode NativeUdpSocket}s on one libc, loaded
 * once per thread (a Worker loads its own).
 *
 * @example
 * ```ts
 * import { loadNativeEngine } from "./engine.ts";
 *
 * const native = loadNativeEngine();
 * if ("reason" in native) console.log(native.reason);
 * else {
 *   using socket = await native.engine.open({ remote: { hostname: "::1", port: 5050 } });
 *   console.log(socket.features);
 * }
 * ```
 *
 * @module
 */

import type { Engine } from "../types.ts";
import { findLibc, type Libc, loadLibc, type LoadOptions } from "./libc.ts";
import { NativeUdpSocket } from "./udp.ts";
import { NativeUdpListener } from "./listener.ts";
import { openReceiveLowWater } from "./receive_low_water.ts";

let shared: Libc | { reason: string } | undefined;
let found: { path: string } | { reason: string } | undefined;

/** The native engine over `libc`. */
function nativeEngine(libc: Libc): Engine {
  return {
    name: "native",
    // Through the executor, so a failure to open rejects instead of throwing.
    open: (options) => new Promise((resolve) => resolve(NativeUdpSocket.open(libc, options))),
    listen: (options) => new Promise((resolve) => resolve(NativeUdpListener.open(libc, options))),
    receiveLowWater: (conn) => openReceiveLowWater(libc, conn),
  };
}

/**
 * The native engine and the libc path it uses, or why it cannot run here.
 * With no options the library is loaded once and shared.
 */
export function loadNativeEngine(
  options?: LoadOptions,
): { engine: Engine; path: string } | { reason: string } {
  const libc = options ? loadLibc(options) : sharedLibc();
  return "reason" in libc ? libc : { engine: nativeEngine(libc), path: libc.path };
}

/**
 * Whether the native engine can be expected to load here, WITHOUT loading it
 * (no `dlopen`: that costs about 4.5 MiB): the first libc path
 * {@linkcode loadNativeEngine} would try, or why it cannot run. Checked once
 * and shared; call it first while `read` is still held (it checks that the
 * library exists).
 */
export function findNativeEngine(): { path: string } | { reason: string } {
  if (found) return found;
  if (shared) return found = "reason" in shared ? shared : { path: shared.path };
  const libc = findLibc();
  return found = "reason" in libc ? libc : { path: libc.paths[0]! };
}

/** The libc this thread's native engine shares (loaded once), or why it cannot load. */
export function sharedLibc(): Libc | { reason: string } {
  return shared ??= loadLibc();
}
