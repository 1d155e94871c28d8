/**
 * Read a small file of `/proc/self` through libc: no Deno permission is
 * involved, so a server that has dropped `read` can still look at its own
 * descriptors (`/proc/self/fdinfo/N`, `/proc/self/status`).
 *
 * @example
 * ```ts
 * import { readProcFile } from "./proc_file.ts";
 * import { sharedLibc } from "./engine.ts";
 *
 * const libc = sharedLibc();
 * if (!("reason" in libc)) {
 *   const status = readProcFile(libc, "/proc/self/status", new Uint8Array(8192));
 *   console.log(status?.match(/^FDSize:\s+(\d+)/m)?.[1]);
 * }
 * ```
 *
 * @module
 */

import type { Libc } from "./libc.ts";

const O_RDONLY_CLOEXEC = 0o2000000;

/**
 * The text of `path` (at most `buf.length` bytes of it, read into `buf`), or
 * undefined when it cannot be opened.
 */
export function readProcFile(libc: Libc, path: string, buf: Uint8Array): string | undefined {
  const fd = libc.symbols.open(new TextEncoder().encode(path + "\0"), O_RDONLY_CLOEXEC);
  if (fd < 0) return undefined;
  try {
    let got = 0;
    while (got < buf.length) {
      const n = libc.symbols.read(fd, buf.subarray(got), BigInt(buf.length - got));
      if (n <= 0) break;
      got += n;
    }
    return new TextDecoder().decode(buf.subarray(0, got));
  } finally {
    libc.symbols.close(fd);
  }
}
