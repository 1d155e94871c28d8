/**
 * The descriptor number of a socket Deno opened. Deno does not expose it, so
 * the kernel is asked about each open descriptor in turn: its type
 * (`getsockopt(SO_TYPE)`), its local address (`getsockname`) and, for a
 * connected socket, its peer (`getpeername`). Exactly one match is an answer;
 * none or several is `undefined` (the caller keeps Deno's path).
 *
 * The scan covers descriptors 0 up to the size of the process's descriptor
 * table (`FDSize` of `/proc/self/status`, read through libc), at most the soft
 * `RLIMIT_NOFILE` and {@linkcode MAX_SCAN}: about a millisecond per few
 * thousand descriptors, so call it once per socket, never per message.
 *
 * The descriptor stays Deno's: Deno closes it when its object is closed, and
 * it is non-blocking (the flag is shared with Deno's reactor). Whoever uses
 * the number must stop before Deno closes it (the number can be reused by the
 * next accept), and Deno must not read a socket someone else reads.
 *
 * @example
 * ```ts
 * import { findSocketFd } from "./socket_fd.ts";
 * import { loadLibc } from "./libc.ts";
 *
 * const libc = loadLibc();
 * if (!("reason" in libc)) {
 *   const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
 *   const fd = findSocketFd(libc, { type: "udp", local: socket.addr as Deno.NetAddr });
 *   console.log(`descriptor ${fd}`);
 *   socket.close();
 * }
 * ```
 *
 * @module
 */

import { decodeSockaddr, LINUX } from "./layout.ts";
import type { Libc } from "./libc.ts";
import { readProcFile } from "./proc_file.ts";

/** The most descriptors a scan looks at. */
export const MAX_SCAN = 65536;

/** What the socket looks like from the kernel's side. */
export interface SocketMatch {
  type: "tcp" | "udp";
  /** Its local address, as Deno reports it (`conn.localAddr`, `socket.addr`). */
  local: Deno.NetAddr;
  /** Its peer, for a connected socket (`conn.remoteAddr`). */
  remote?: Deno.NetAddr;
}

/** The descriptor of the one open socket matching `match`, or `undefined`. */
export function findSocketFd(libc: Libc, match: SocketMatch): number | undefined {
  const probe = socketProbe(libc);
  let found: number | undefined;
  const limit = scanLimit(libc);
  for (let fd = 0; fd < limit; fd++) {
    if (!probe(fd, match)) continue;
    if (found !== undefined) return undefined; // ambiguous: never guess
    found = fd;
  }
  return found;
}

/**
 * A test of whether descriptor `fd` is (still) the socket `match` describes,
 * made once and called before each use of a descriptor found earlier (a
 * closed socket's number is reused by the next one opened).
 */
export function socketMatcher(libc: Libc, fd: number, match: SocketMatch): () => boolean {
  const probe = socketProbe(libc);
  return () => probe(fd, match);
}

/** A test of one descriptor against a match, with its scratch buffers allocated once. */
function socketProbe(libc: Libc): (fd: number, match: SocketMatch) => boolean {
  const s = libc.symbols;
  const int = new Int32Array(1);
  const intBytes = new Uint8Array(int.buffer);
  const len = new Uint32Array(1);
  const lenBytes = new Uint8Array(len.buffer);
  const addr = new Uint8Array(128);
  const sameAs = (
    call: (fd: number, a: Uint8Array, l: Uint8Array) => number,
    fd: number,
    expected: Deno.NetAddr,
  ): boolean => {
    len[0] = addr.length;
    if (call(fd, addr, lenBytes) !== 0) return false;
    let got: { hostname: string; port: number };
    try {
      got = decodeSockaddr(addr.subarray(0, len[0]), libc.layout);
    } catch {
      return false; // another family (Unix, netlink)
    }
    return got.port === expected.port && sameHost(got.hostname, expected.hostname);
  };
  return (fd, match) => {
    len[0] = 4;
    if (s.getsockopt(fd, LINUX.SOL_SOCKET, LINUX.SO_TYPE, intBytes, lenBytes) !== 0) return false;
    if (int[0] !== (match.type === "tcp" ? LINUX.SOCK_STREAM : LINUX.SOCK_DGRAM)) return false;
    if (!sameAs(s.getsockname, fd, match.local)) return false;
    return !match.remote || sameAs(s.getpeername, fd, match.remote);
  };
}

/**
 * How many descriptors to look at: the process's descriptor table as the kernel
 * sized it (`FDSize` in `/proc/self/status`: above the highest descriptor ever
 * open, so usually a few hundred), and never more than the soft `RLIMIT_NOFILE`
 * or {@linkcode MAX_SCAN}.
 */
function scanLimit(libc: Libc): number {
  const rlim = new BigUint64Array(2);
  let limit = libc.symbols.getrlimit(LINUX.RLIMIT_NOFILE, new Uint8Array(rlim.buffer)) === 0
    ? Number(rlim[0]! < BigInt(MAX_SCAN) ? rlim[0]! : BigInt(MAX_SCAN))
    : 1024;
  const status = readProcFile(libc, "/proc/self/status", new Uint8Array(8192));
  const table = Number(status?.match(/^FDSize:\s+(\d+)/m)?.[1] ?? NaN);
  if (table > 0) limit = Math.min(limit, table);
  return limit;
}

/** Equal addresses, with IPv4-mapped IPv6 (`::ffff:127.0.0.1`) equal to its IPv4 form. */
export function sameHost(a: string, b: string): boolean {
  return unmapped(a) === unmapped(b);
}

function unmapped(host: string): string {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  if (m) return m[1]!;
  // decodeSockaddr prints the mapped form as hex groups: ::ffff:7f00:1.
  const h = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(bare);
  if (h) {
    const hi = parseInt(h[1]!, 16), lo = parseInt(h[2]!, 16);
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return bare;
}
