/**
 * Linux constants and C struct layouts for the native engine, per
 * architecture, and the encoders that fill them. Pure: no FFI here, so the
 * offsets are unit-tested everywhere. x86_64 and aarch64 are both LP64 with
 * natural alignment, so the structs agree; the table still names each
 * architecture so a new one must be checked, not assumed.
 *
 * @example
 * ```ts
 * import { encodeSockaddr, layoutFor } from "./layout.ts";
 *
 * const layout = layoutFor("x86_64")!;
 * const addr = encodeSockaddr("127.0.0.1", 5050); // 16-byte sockaddr_in
 * console.log(layout.mmsghdr.size, addr.length); // 64 16
 * ```
 *
 * @module
 */

/** Offsets and sizes (bytes) of the structs the engine hands to the kernel. */
export interface StructLayouts {
  /** `struct sockaddr_in`: family, port (big-endian), address. */
  sockaddrIn: { size: number; family: number; port: number; addr: number };
  /** `struct sockaddr_in6`: family, port, flow info, address, scope id. */
  sockaddrIn6: {
    size: number;
    family: number;
    port: number;
    flowinfo: number;
    addr: number;
    scopeId: number;
  };
  /** `struct iovec`: base pointer, length. */
  iovec: { size: number; base: number; len: number };
  /** `struct msghdr`. */
  msghdr: {
    size: number;
    name: number;
    namelen: number;
    iov: number;
    iovlen: number;
    control: number;
    controllen: number;
    flags: number;
  };
  /** `struct mmsghdr`: a msghdr and the byte count the kernel fills in. */
  mmsghdr: { size: number; hdr: number; len: number };
  /** `struct pollfd`: fd, events, revents. */
  pollfd: { size: number; fd: number; events: number; revents: number };
}

const LP64: StructLayouts = {
  sockaddrIn: { size: 16, family: 0, port: 2, addr: 4 },
  sockaddrIn6: { size: 28, family: 0, port: 2, flowinfo: 4, addr: 8, scopeId: 24 },
  iovec: { size: 16, base: 0, len: 8 },
  msghdr: {
    size: 56,
    name: 0,
    namelen: 8,
    iov: 16,
    iovlen: 24,
    control: 32,
    controllen: 40,
    flags: 48,
  },
  mmsghdr: { size: 64, hdr: 0, len: 56 },
  pollfd: { size: 8, fd: 0, events: 4, revents: 6 },
};

/** The architectures whose layouts are checked (Deno's `Deno.build.arch` names). */
export const LAYOUTS: Readonly<Record<"x86_64" | "aarch64", StructLayouts>> = {
  x86_64: LP64,
  aarch64: LP64,
};

/** The layouts for `arch`, or `undefined` where the native engine has none. */
export function layoutFor(arch: string): StructLayouts | undefined {
  return Object.hasOwn(LAYOUTS, arch) ? LAYOUTS[arch as keyof typeof LAYOUTS] : undefined;
}

/** Linux constants, the same on x86_64 and aarch64 (asm-generic values). */
export const LINUX = {
  AF_INET: 2,
  AF_INET6: 10,
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  SOCK_NONBLOCK: 0o4000,
  SOCK_CLOEXEC: 0o2000000,
  IPPROTO_UDP: 17,
  SOL_UDP: 17,
  UDP_SEGMENT: 103,
  UDP_GRO: 104,
  SOL_SOCKET: 1,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  SO_BROADCAST: 6,
  SO_SNDBUFFORCE: 32,
  SO_RCVBUFFORCE: 33,
  SO_RCVTIMEO: 20,
  SO_TYPE: 3,
  RLIMIT_NOFILE: 7,
  F_GETFL: 3,
  F_SETFL: 4,
  CLOCK_MONOTONIC: 1,
  O_NONBLOCK: 0o4000,
  MSG_DONTWAIT: 0x40,
  /** send(2) on a TCP socket whose peer is gone: EPIPE, not a SIGPIPE. */
  MSG_NOSIGNAL: 0x4000,
  SO_SNDTIMEO: 21,
  POLLIN: 0x1,
  POLLOUT: 0x4,
  POLLERR: 0x8,
  EINTR: 4,
  EBADF: 9,
  EAGAIN: 11,
  ENOBUFS: 105,
  ECONNREFUSED: 111,
  EPIPE: 32,
  ECONNRESET: 104,
  ENOENT: 2,
} as const;

/** errno values by name, for messages and `code` (the ones a UDP socket meets). */
export const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  4: "EINTR",
  9: "EBADF",
  11: "EAGAIN",
  13: "EACCES",
  22: "EINVAL",
  24: "EMFILE",
  32: "EPIPE",
  90: "EMSGSIZE",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  101: "ENETUNREACH",
  104: "ECONNRESET",
  105: "ENOBUFS",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
};

function ipv4Bytes(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  return bytes.every((b) => b >= 0 && b <= 255) ? bytes : undefined;
}

function ipv6Bytes(text: string): number[] | undefined {
  if (!text.includes(":")) return undefined;
  let head = text;
  let tail4: number[] = [];
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    const v4 = ipv4Bytes(text.slice(lastColon + 1));
    if (!v4) return undefined;
    tail4 = v4;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const group = (s: string) => (s === "" ? [] : s.split(":"));
  const left = group(halves[0]!);
  const right = halves.length === 2 ? group(halves[1]!) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...left, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...right];
  const out: number[] = [];
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    const v = parseInt(g, 16);
    out.push(v >> 8, v & 0xff);
  }
  if (tail4.length) out.splice(12, 4, ...tail4);
  return out;
}

/** The address family of an IP literal, or `undefined` for anything else (names included). */
export function familyOf(hostname: string): "ipv4" | "ipv6" | undefined {
  if (ipv4Bytes(hostname)) return "ipv4";
  if (ipv6Bytes(hostname.replace(/^\[|\]$/g, ""))) return "ipv6";
  return undefined;
}

/**
 * A `sockaddr_in` or `sockaddr_in6` for an IP literal and port (host byte
 * order for the family, network order for port and address).
 */
export function encodeSockaddr(
  hostname: string,
  port: number,
  layout: StructLayouts = LP64,
): Uint8Array<ArrayBuffer> {
  const v4 = ipv4Bytes(hostname);
  if (v4) {
    const l = layout.sockaddrIn;
    const out = new Uint8Array(l.size);
    const view = new DataView(out.buffer);
    view.setUint16(l.family, LINUX.AF_INET, true);
    view.setUint16(l.port, port, false);
    out.set(v4, l.addr);
    return out;
  }
  const v6 = ipv6Bytes(hostname.replace(/^\[|\]$/g, ""));
  if (v6) {
    const l = layout.sockaddrIn6;
    const out = new Uint8Array(l.size);
    const view = new DataView(out.buffer);
    view.setUint16(l.family, LINUX.AF_INET6, true);
    view.setUint16(l.port, port, false);
    out.set(v6, l.addr);
    return out;
  }
  throw new TypeError(`not an IP address: ${hostname}`);
}

/** The address and port in a `sockaddr_in`/`sockaddr_in6` the kernel filled in. */
export function decodeSockaddr(
  bytes: Uint8Array,
  layout: StructLayouts = LP64,
): { hostname: string; port: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const family = view.getUint16(0, true);
  if (family === LINUX.AF_INET) {
    const l = layout.sockaddrIn;
    return {
      hostname: Array.from(bytes.subarray(l.addr, l.addr + 4)).join("."),
      port: view.getUint16(l.port, false),
    };
  }
  if (family === LINUX.AF_INET6) {
    const l = layout.sockaddrIn6;
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(view.getUint16(l.addr + 2 * i, false).toString(16));
    // Compress the longest run of zero groups, as inet_ntop does.
    let best = -1, bestLen = 0;
    for (let i = 0; i < 8;) {
      if (groups[i] !== "0") {
        i++;
        continue;
      }
      let j = i;
      while (j < 8 && groups[j] === "0") j++;
      if (j - i > bestLen && j - i > 1) [best, bestLen] = [i, j - i];
      i = j;
    }
    const hostname = best < 0
      ? groups.join(":")
      : `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
    return { hostname, port: view.getUint16(l.port, false) };
  }
  throw new TypeError(`unknown address family ${family}`);
}
