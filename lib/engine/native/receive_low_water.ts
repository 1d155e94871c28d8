/**
 * A TCP connection's receive low-water mark (`SO_RCVLOWAT`), set through libc
 * on the descriptor of a connection Deno opened. With the mark at N bytes the
 * kernel reports the socket readable only once N bytes wait (or the stream
 * ends, or fails), so a fast stream is read in fewer, fuller reads: each
 * wake-up of Deno's event loop costs about as much as copying 64 KiB, and on
 * loopback a segment of 64 KiB otherwise wakes it every time. Reads still
 * return whatever is there: the mark only changes when the reader is woken.
 *
 * @example
 * ```ts
 * import { openReceiveLowWater } from "./receive_low_water.ts";
 * import { sharedLibc } from "./engine.ts";
 *
 * const libc = sharedLibc();
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * using conn = await Deno.connect({ port: (listener.addr as Deno.NetAddr).port });
 * const mark = "reason" in libc ? undefined : openReceiveLowWater(libc, conn);
 * console.log(mark?.set(128 * 1024)); // true
 * ```
 *
 * @module
 */

import type { ReceiveLowWater } from "../types.ts";
import { LINUX } from "./layout.ts";
import type { Libc } from "./libc.ts";
import { findSocketFd, type SocketMatch, socketMatcher } from "./socket_fd.ts";

/** `SO_RCVLOWAT` on Linux (x86_64 and aarch64: the generic value). */
export const SO_RCVLOWAT = 18;

/**
 * The low-water mark of `conn`, or `undefined` when its descriptor cannot be
 * found (one scan of the process's descriptors, once per connection).
 */
export function openReceiveLowWater(libc: Libc, conn: Deno.Conn): ReceiveLowWater | undefined {
  if (conn.localAddr.transport !== "tcp" || conn.remoteAddr.transport !== "tcp") return undefined;
  const match: SocketMatch = {
    type: "tcp",
    local: conn.localAddr as Deno.NetAddr,
    remote: conn.remoteAddr as Deno.NetAddr,
  };
  const fd = findSocketFd(libc, match);
  if (fd === undefined) return undefined;
  const stillOurs = socketMatcher(libc, fd, match);
  const value = new Int32Array(1);
  const valueBytes = new Uint8Array(value.buffer);
  const mark = {
    bytes: 1,
    set(bytes: number): boolean {
      // The number may belong to another socket once Deno closed this one: check first.
      if (!stillOurs()) return false;
      value[0] = bytes;
      if (libc.symbols.setsockopt(fd, LINUX.SOL_SOCKET, SO_RCVLOWAT, valueBytes, 4) !== 0) {
        return false;
      }
      mark.bytes = bytes;
      return true;
    },
  };
  return mark;
}
