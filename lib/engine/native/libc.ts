/**
 * Open the system C library (glibc) through Deno FFI, by ABSOLUTE path from a
 * short list of known locations, and declare the few symbols the native
 * engine calls. Anything else (musl, macOS, Windows, another architecture, no
 * `ffi` permission for those paths) yields a reason instead of a library, so
 * the caller falls back to the deno engine and can say why.
 *
 * Deno's `--allow-ffi=PATH` matches the path as written and does not follow
 * symlinks, so `deno.json` (permission set `netkit`) grants exactly
 * {@linkcode LIBC_PATHS} and this module opens exactly those strings.
 *
 * @example
 * ```ts
 * import { loadLibc } from "./libc.ts";
 *
 * const libc = loadLibc();
 * if ("reason" in libc) console.log(`native engine unavailable: ${libc.reason}`);
 * else console.log(`libc at ${libc.path}`);
 * ```
 *
 * @module
 */

import { layoutFor, type StructLayouts } from "./layout.ts";

/** Where glibc lives on Debian/Ubuntu (multiarch) and Fedora/RHEL (lib64), per architecture. */
export const LIBC_PATHS: Readonly<Record<"x86_64" | "aarch64", readonly string[]>> = {
  x86_64: [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/libc.so.6",
    "/usr/lib64/libc.so.6",
  ],
  aarch64: [
    "/lib/aarch64-linux-gnu/libc.so.6",
    "/usr/lib/aarch64-linux-gnu/libc.so.6",
    "/lib64/libc.so.6",
    "/usr/lib64/libc.so.6",
  ],
};

/** The libc symbols the native engine uses. */
export const LIBC_SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // getrlimit(RLIMIT_NOFILE, &rlim): how far socket_fd.ts scans descriptors.
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  // ssize_t, read as i32: a datagram's length or -1 (the low half of the register).
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  // Blocking calls of the ping-pong Worker (lib/probe/pingpong_worker.ts): its
  // own thread waits in the kernel, never Deno's event loop. ssize_t read as i32.
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  // fcntl(fd, F_GETFL/F_SETFL, flags): variadic, called with one int (same registers on LP64 Linux).
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // epoll_ctl(epfd, op, fd, &event): a socket a Worker serves is muted in Deno's event loop
  // (epoll_mute.ts), which every packet on it would otherwise wake; the echo Worker's own epoll.
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // clock_gettime(CLOCK_MONOTONIC, &ts): the ping-pong Worker's clock (vDSO, no system call),
  // the clock performance.now() counts on, read at half its cost in a Worker.
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  // write(eventfd, &one, 8): wakes the server's native echo Worker (lib/server/native_echo.ts).
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // Reading /proc/self/fdinfo for epoll_ctl(EPOLL_CTL_MOD): lib/engine/native/epoll_mute.ts.
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // Deno's pointer helpers (UnsafePointer.of, UnsafePointerView) need ffi for
  // every path, which the binary is not granted: addresses and errno come
  // through libc itself. The errno location as a number (thread-local: read it
  // on the thread that made the call).
  __errno_location: { parameters: [], result: "usize" },
  // memcpy(dst, src, 0) returns dst: the address of a buffer, with no pointer object.
  address_of: { name: "memcpy", parameters: ["buffer", "buffer", "usize"], result: "usize" },
  // memcpy(dst, address, n): copy n bytes from an address (errno) into a buffer.
  read_at: { name: "memcpy", parameters: ["buffer", "usize", "usize"], result: "usize" },
  // Waiting runs on a thread of Deno's pool (nonblocking), so the event loop
  // never blocks (sends, the listener's receives, and a socket Deno could not
  // open); errno of that thread is not readable here, so poll's
  // failures are judged by its result alone.
  poll_wait: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** An opened libc. */
export interface Libc {
  path: string;
  symbols: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];
  layout: StructLayouts;
  close(): void;
}

/** Where to look (tests override it to simulate other systems). */
export interface LoadOptions {
  os?: string;
  arch?: string;
  paths?: readonly string[];
}

function ffiGranted(path: string): boolean {
  return Deno.permissions.querySync({ name: "ffi", path }).state === "granted";
}

/** Whether `path` may exist: false only when it is known to be missing (read may be dropped). */
function mayExist(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (err) {
    return !(err instanceof Deno.errors.NotFound);
  }
}

/** Where libc would be opened from, without opening it (cheap: no `dlopen`). */
export interface LibcCandidates {
  /** The granted paths that exist (or cannot be checked), in the order {@linkcode loadLibc} tries them. */
  paths: string[];
  layout: StructLayouts;
}

/**
 * Everything {@linkcode loadLibc} checks before it calls `dlopen` (Linux, a
 * checked layout for the architecture, ffi granted for a known path that
 * exists), or why the native engine cannot run here. `dlopen` of libc costs
 * the process about 4.5 MiB, so a run that may never move UDP (a server)
 * decides with this and loads on first use. Call while `read` is held: after
 * it is dropped, existence cannot be checked and every granted path counts.
 */
export function findLibc(options: LoadOptions = {}): LibcCandidates | { reason: string } {
  const os = options.os ?? Deno.build.os;
  const arch = options.arch ?? Deno.build.arch;
  if (os !== "linux") return { reason: `the native engine needs Linux (this is ${os})` };
  const layout = layoutFor(arch);
  if (!layout) return { reason: `no checked struct layouts for ${arch}` };
  const paths = options.paths ?? LIBC_PATHS[arch as keyof typeof LIBC_PATHS];
  const allowed = paths.filter(ffiGranted);
  if (allowed.length === 0) {
    return { reason: `no ffi permission for libc (${paths.join(", ")})` };
  }
  const present = allowed.filter(mayExist);
  if (present.length === 0) {
    return {
      reason: `no glibc at the known paths (musl or another layout?): none of ${
        allowed.join(", ")
      } exists`,
    };
  }
  return { paths: present, layout };
}

/** Open libc, or say why the native engine cannot run here. */
export function loadLibc(options: LoadOptions = {}): Libc | { reason: string } {
  const found = findLibc(options);
  if ("reason" in found) return found;
  const { paths: allowed, layout } = found;
  const failures: string[] = [];
  for (const path of allowed) {
    try {
      const lib = Deno.dlopen(path, LIBC_SYMBOLS);
      return { path, symbols: lib.symbols, layout, close: () => lib.close() };
    } catch (err) {
      failures.push(`${path}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  return {
    reason: `no glibc at the known paths (musl or another layout?): ${failures.join("; ")}`,
  };
}
