/**
 * Keep Deno's reactor from waking for a socket another thread now serves.
 *
 * Deno registers every socket it opens with its event loop's epoll instance,
 * edge-triggered, for reading and writing. When a Worker serves such a socket
 * through libc (the server's native echo), each datagram or segment that
 * arrives still wakes the main thread's `epoll_wait`: two context switches per
 * message, which on a shared core cost about as much as the echo itself.
 * {@linkcode muteInReactor} finds the registration in `/proc/self/fdinfo` of
 * the epoll instances (read through libc: Deno's `read` permission is not
 * involved, the server has dropped it) and takes it out (`EPOLL_CTL_DEL`); the
 * function it returns adds back the very same events and data (Deno's token,
 * `EPOLL_CTL_ADD`), so Deno finds its registration unchanged and wakes at once
 * if the socket became readable meanwhile (an added descriptor that is ready
 * is reported at once). Taken out rather than narrowed to no events: a
 * registration with no events still runs the epoll's wake-up callback, under
 * its lock, for every datagram or segment that arrives (about 0.1 us of a 4 us
 * round trip on one core, measured with a bare blocking echo server). Should
 * Deno close the socket while it is out, its deregistration fails and is
 * ignored (tokio ignores it).
 *
 * {@linkcode reactorSwitch} does the same any number of times: the native
 * engine's connected UDP sockets (opened by Deno, read through libc) stay out
 * of Deno's epoll while they read in batches, and go back in only while a
 * receive waits in Deno's own `receive`.
 *
 * @example
 * ```ts
 * import { parseEpollEntry } from "./epoll_mute.ts";
 *
 * const info = "tfd:       23 events: 8000201d data:     55e835c41a00  pos:0 ino:35a3b4 sdev:9\n";
 * console.log(parseEpollEntry(info, 23)); // { events: 2147491869, data: 94536384633344n }
 * ```
 *
 * @module
 */

import type { Libc } from "./libc.ts";
import { readProcFile } from "./proc_file.ts";

const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;

/** `struct epoll_event`: packed on x86_64 (12 bytes), naturally aligned elsewhere (16). */
export function epollEventLayout(arch: string): { size: number; data: number } {
  return arch === "x86_64" ? { size: 12, data: 4 } : { size: 16, data: 8 };
}

/** The registration of descriptor `fd` in the text of an epoll instance's fdinfo. */
export function parseEpollEntry(
  text: string,
  fd: number,
): { events: number; data: bigint } | undefined {
  const re = /^tfd:\s+(\d+)\s+events:\s+([0-9a-f]+)\s+data:\s+([0-9a-f]+)/gm;
  for (const m of text.matchAll(re)) {
    if (Number(m[1]) === fd) return { events: parseInt(m[2]!, 16), data: BigInt(`0x${m[3]}`) };
  }
  return undefined;
}

/** The epoll instance that held the last socket muted (Deno's event loop has one). */
let lastEpoll = -1;
/** Reused for every fdinfo read (a line per registered descriptor: room for thousands). */
let scratch: Uint8Array | undefined;

/**
 * Deno's registration of one descriptor, which can be taken out of its epoll
 * instance and put back as it was any number of times.
 */
export interface ReactorSwitch {
  /** Take the descriptor out (`EPOLL_CTL_DEL`); false when it could not be. No-op when out. */
  mute(): boolean;
  /** Put it back with Deno's own events and data (`EPOLL_CTL_ADD`). No-op when in. */
  unmute(): void;
}

/**
 * Find `fd`'s registration in Deno's epoll instance, still in: the switch that
 * takes it out and puts it back. Undefined when no registration was found.
 */
export function reactorSwitch(
  libc: Libc,
  fd: number,
  options: { arch?: string; scan?: number } = {},
): ReactorSwitch | undefined {
  const buf = scratch ??= new Uint8Array(256 * 1024);
  const layout = epollEventLayout(options.arch ?? Deno.build.arch);
  const find = (epfd: number) => {
    const text = readProcFile(libc, `/proc/self/fdinfo/${epfd}`, buf);
    return text?.includes("tfd:") ? parseEpollEntry(text, fd) : undefined;
  };
  let epfd = lastEpoll;
  let entry = epfd >= 0 ? find(epfd) : undefined;
  // Deno's event loop creates its epoll instance at start: a low descriptor.
  for (let candidate = 0; !entry && candidate < (options.scan ?? 256); candidate++) {
    if (candidate === fd || candidate === lastEpoll) continue;
    entry = find(candidate);
    if (entry) epfd = candidate;
  }
  if (!entry) return undefined;
  lastEpoll = epfd;
  const event = new Uint8Array(layout.size);
  const view = new DataView(event.buffer);
  view.setUint32(0, entry.events >>> 0, true);
  view.setBigUint64(layout.data, entry.data, true);
  let registered = true;
  return {
    mute() {
      if (registered && libc.symbols.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, event) === 0) {
        registered = false;
      }
      return !registered;
    },
    unmute() {
      if (registered) return;
      registered = true;
      libc.symbols.epoll_ctl(epfd, EPOLL_CTL_ADD, fd, event);
    },
  };
}

/**
 * Take `fd` out of Deno's epoll instance. Returns the function that adds it back as it
 * was, or undefined when no registration was found (nothing changed).
 */
export function muteInReactor(
  libc: Libc,
  fd: number,
  options: { arch?: string; scan?: number } = {},
): (() => void) | undefined {
  const registration = reactorSwitch(libc, fd, options);
  if (!registration?.mute()) return undefined;
  return () => registration.unmute();
}
