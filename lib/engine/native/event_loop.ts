/**
 * Take a socket Deno opened off Deno's event loop. Deno registers every socket
 * with its reactor (epoll, edge-triggered, for reads and writes), so each
 * packet that arrives on it wakes the thread that runs the event loop, even
 * when nothing on that thread waits for it. A socket that a Worker now reads
 * with blocking calls (the ping-pong Worker) would cost a context switch per
 * round trip on the main thread, which on one CPU is added to every round
 * trip. {@linkcode leaveEventLoops} removes the socket from every epoll
 * instance of the process that watches it (`epoll_ctl(EPOLL_CTL_DEL)` on each
 * descriptor in turn: others answer EINVAL, EBADF or ENOENT).
 *
 * Afterwards Deno must never read or write the socket again (it would wait for
 * readiness that never comes); closing it stays Deno's job and works as
 * before: its own removal then fails with ENOENT, which Deno (tokio) ignores.
 *
 * @example
 * ```ts
 * import { leaveEventLoops } from "./event_loop.ts";
 * import { findSocketFd } from "./socket_fd.ts";
 * import { loadLibc } from "./libc.ts";
 *
 * const libc = loadLibc();
 * if (!("reason" in libc)) {
 *   using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 *   using conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 *   const local = conn.localAddr as Deno.NetAddr;
 *   const fd = findSocketFd(libc, { type: "tcp", local, remote: conn.remoteAddr as Deno.NetAddr });
 *   if (fd !== undefined) console.log(`left ${leaveEventLoops(libc, fd)} event loop(s)`);
 * }
 * ```
 *
 * @module
 */

import { LINUX } from "./layout.ts";
import type { Libc } from "./libc.ts";
import { scanLimit } from "./socket_fd.ts";

/** How many epoll instances stopped watching `fd` (Deno's main thread: 1). */
export function leaveEventLoops(libc: Libc, fd: number): number {
  // Ignored by DEL, but kernels before 2.6.9 wanted a non-null event.
  const event = new Uint8Array(16);
  const limit = scanLimit(libc);
  let left = 0;
  for (let epfd = 0; epfd < limit; epfd++) {
    if (epfd === fd) continue;
    if (libc.symbols.epoll_ctl(epfd, LINUX.EPOLL_CTL_DEL, fd, event) === 0) left++;
  }
  return left;
}
