/**
 * Test helper: where a descriptor is registered with the process's epoll
 * instances, read from `/proc/self/fdinfo` (tests run with `--allow-all`).
 *
 * @example
 * ```ts
 * import { registrations } from "./_epoll_test_utils.ts";
 *
 * const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
 * console.log(registrations(3)); // [] unless descriptor 3 is in an epoll instance
 * socket.close();
 * ```
 *
 * @module
 */

import { parseEpollEntry } from "./epoll_mute.ts";

/** `fd`'s registrations seen through every epoll descriptor of the process. */
export function registrations(fd: number): { events: number; data: bigint }[] {
  const found: { events: number; data: bigint }[] = [];
  for (const entry of Deno.readDirSync("/proc/self/fdinfo")) {
    let text: string;
    try {
      text = Deno.readTextFileSync(`/proc/self/fdinfo/${entry.name}`);
    } catch {
      continue; // the directory listing's own descriptor, closed since
    }
    const hit = text.includes("tfd:") ? parseEpollEntry(text, fd) : undefined;
    if (hit) found.push(hit);
  }
  return found;
}
