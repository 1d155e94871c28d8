/**
 * The native echo Worker's code: a loop that waits in libc `epoll_wait()` (its
 * own epoll instance) over the server's UDP socket, the TCP probe connections
 * handed to it, and a wake-up `eventfd`, then `recvfrom`/`sendto` (UDP) or
 * `recv`/`send` (TCP) without blocking. With one socket held alone (the UDP
 * socket, or one TCP probe connection) it skips `epoll` and blocks in the
 * receive itself, as sockperf's server does. It runs on its own thread, so an
 * echo never waits on Deno's event loop.
 *
 * The Worker starts after the server has dropped `read`, so it cannot load a
 * module file: {@linkcode workerSource} builds its whole source from the
 * `toString()` of the self-contained functions below (they reference only
 * each other, `Deno` and `Atomics`, and the data of the start message), and
 * ./native_echo.ts runs it from a `blob:` URL.
 *
 * Talking to the main thread: the main thread writes shared memory (the
 * control words and a mailbox of descriptor slots) and then the `eventfd`;
 * the Worker answers with messages (`ready`, `released`, `peer`, `denied`,
 * `datagram`, `stopped`) and counts into shared `Float64Array`s.
 *
 * @example
 * ```ts
 * import { workerSource } from "./native_echo_worker.ts";
 *
 * const url = URL.createObjectURL(new Blob([workerSource()], { type: "application/javascript" }));
 * const worker = new Worker(url, { type: "module" });
 * URL.revokeObjectURL(url);
 * worker.terminate();
 * ```
 *
 * @module
 */

/** The libc symbols the Worker opens (its own `dlopen`, on its own thread). */
export const WORKER_SYMBOLS = {
  // Blocking in the Worker's own thread (never Deno's event loop).
  poll: { parameters: ["buffer", "usize", "i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  recvfrom: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"],
    result: "i32",
  },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  // Single-socket blocking mode (UDP): O_NONBLOCK off, SO_RCVTIMEO set (and both put back).
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "usize" },
  read_at: { name: "memcpy", parameters: ["buffer", "usize", "usize"], result: "usize" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Linux constants the Worker uses (x86_64 and aarch64 agree). */
export const WORKER_CONSTANTS = {
  POLLIN: 0x1,
  POLLOUT: 0x4,
  POLLERR: 0x8,
  POLLHUP: 0x10,
  MSG_DONTWAIT: 0x40,
  MSG_NOSIGNAL: 0x4000,
  EINTR: 4,
  EBADF: 9,
  EAGAIN: 11,
  ECONNRESET: 104,
  SHUT_WR: 1,
  EFD_NONBLOCK: 0o4000,
  EFD_CLOEXEC: 0o2000000,
  AF_INET: 2,
  AF_INET6: 10,
  EPOLL_CLOEXEC: 0o2000000,
  EPOLL_CTL_ADD: 1,
  EPOLL_CTL_DEL: 2,
  EPOLL_CTL_MOD: 3,
  F_GETFL: 3,
  F_SETFL: 4,
  O_NONBLOCK: 0o4000,
  SOL_SOCKET: 1,
  SO_RCVTIMEO: 20,
} as const;

/** TCP connections one Worker serves at most (beyond: the event loop). */
export const MAX_SLOTS = 64;
/** Longest wait in `epoll_wait()`: a safety net only (every hand-over also writes the eventfd). */
export const SLICE_MS = 500;
/**
 * Longest wait in a blocking `recvfrom` (single-socket mode, see {@linkcode echoLoop}):
 * the worst-case delay before the Worker takes a hand-over (or a stop, a drop) while it
 * blocks on its one idle socket, once the kernel has rounded it up to its tick (8 ms at
 * HZ=250, 10 ms at HZ=100). Each expiry wakes an idle Worker (at most 200 times a second).
 */
export const BLOCK_SLICE_MS = 5;
/** Largest TCP read (and so the most a connection holds unsent). */
export const TCP_BUFFER_BYTES = 64 * 1024;

/** Words of the control `Int32Array`. */
export const CTL = {
  /** 1: stop (release everything: TCP after sending what it holds). */
  STOP: 0,
  /** The UDP descriptor handed over, or -1. */
  UDP_FD: 1,
  /** {@linkcode SLOT} states, for the UDP socket. */
  UDP_STATE: 2,
  /** 1: pass every datagram to the main thread (an iperf3 test may want it; --rate-limit). */
  PASS_ALL: 3,
  /** 1: echo; 0: discard. */
  ECHO: 4,
  /** Bumped by the main thread before each eventfd write (seen by a Worker blocked in a recv). */
  MAIL: 5,
  WORDS: 8,
} as const;

/** Per TCP slot, 4 words of the slots `Int32Array`: state, fd, command. */
export const SLOT = {
  STATE: 0,
  FD: 1,
  CMD: 2,
  WORDS: 4,
  FREE: 0,
  /** Written by the main thread: the Worker takes it at its next wake-up. */
  HANDED: 1,
  OWNED: 2,
  /** The Worker let go: the main thread may close the descriptor. */
  RELEASED: 3,
  /** CMD: stop reading, send what is held, then release. */
  DRAIN: 1,
  /** CMD: release now. */
  NOW: 2,
} as const;

/** Indices of the counters `Float64Array`: UDP first, then 3 per TCP slot. */
export const COUNT = {
  DATAGRAMS_IN: 0,
  DATAGRAMS_OUT: 1,
  BYTES_IN: 2,
  BYTES_OUT: 3,
  DENIED: 4,
  /** Per slot `k`: `SLOTS + 3k` bytes in, `+1` bytes out, `+2` activity (reads and sends). */
  SLOTS: 8,
  PER_SLOT: 3,
} as const;

/** An `--allow`/`--deny` rule as data: address bytes and prefix length. */
export interface CidrData {
  bytes: number[];
  prefix: number;
}

/** The start message. */
export interface EchoInit {
  libcPath: string;
  symbols: typeof WORKER_SYMBOLS;
  k: typeof WORKER_CONSTANTS;
  ctl: typeof CTL;
  slot: typeof SLOT;
  count: typeof COUNT;
  maxSlots: number;
  sliceMs: number;
  blockSliceMs: number;
  tcpBufferBytes: number;
  /** `struct epoll_event` on this architecture: its size and where its data is. */
  epollEvent: { size: number; data: number };
  control: SharedArrayBuffer;
  slots: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  /** `--allow`/`--deny`, or null when no rule is set. */
  acl: { allow: CidrData[]; deny: CidrData[] } | null;
  /** Post `peer` for the first datagram of each source (`-v`). */
  verbose: boolean;
}

/** Messages from the Worker. */
export type EchoMessage =
  | { type: "ready"; wakeFd: number }
  | { type: "failed"; message: string }
  | { type: "released"; slot: number; reason: string }
  | { type: "udp-released" }
  | { type: "peer"; addr: Uint8Array }
  | { type: "denied"; addr: Uint8Array }
  | { type: "datagram"; data: Uint8Array; addr: Uint8Array }
  | { type: "stopped"; error?: string };

/** How the Worker posts (its `self.postMessage`). */
export type Post = (message: EchoMessage) => void;

/**
 * Whether the source in a `sockaddr_in`/`sockaddr_in6` passes `--allow`/`--deny`
 * (IPv4-mapped IPv6 compared as IPv4), as lib/acl.ts decides for a text address.
 */
export function aclPermits(
  acl: { allow: CidrData[]; deny: CidrData[] },
  sa: Uint8Array,
  k: typeof WORKER_CONSTANTS,
): boolean {
  const family = sa[0]! | (sa[1]! << 8);
  let off = 4, len = 4;
  if (family === k.AF_INET6) {
    off = 8;
    len = 16;
    let mapped = sa[18] === 0xff && sa[19] === 0xff;
    for (let i = 8; mapped && i < 18; i++) mapped = sa[i] === 0;
    if (mapped) {
      off = 20;
      len = 4;
    }
  } else if (family !== k.AF_INET) return false;
  const within = (c: CidrData) => {
    if (c.bytes.length !== len) return false;
    let bits = c.prefix;
    for (let i = 0; bits > 0; i++, bits -= 8) {
      const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
      if ((sa[off + i]! & mask) !== (c.bytes[i]! & mask)) return false;
    }
    return true;
  };
  if (acl.deny.some(within)) return false;
  return acl.allow.length === 0 || acl.allow.some(within);
}

/** A number (IPv4: address and port) or string naming the source of a sockaddr. */
export function sourceKey(sa: Uint8Array, withPort: boolean): number | string {
  if (sa[0] === 2 && sa[1] === 0) {
    const ip = ((sa[4]! << 24) >>> 0) + (sa[5]! << 16) + (sa[6]! << 8) + sa[7]!;
    return withPort ? ip * 65536 + (sa[2]! << 8) + sa[3]! : ip;
  }
  let text = "";
  for (let i = withPort ? 2 : 8; i < 24; i++) text += String.fromCharCode(sa[i]!);
  return text;
}

/**
 * The Worker's whole life: open libc, create the eventfd, say `ready`, serve
 * until the stop word, release everything, say `stopped`.
 */
export function echoLoop(init: EchoInit, post: Post): void {
  const lib = Deno.dlopen(init.libcPath, init.symbols);
  const s = lib.symbols;
  const k = init.k, ctl = init.ctl, SL = init.slot, C = init.count;
  const control = new Int32Array(init.control);
  const slots = new Int32Array(init.slots);
  const counters = new Float64Array(init.counters);
  // usize arguments as BigInts: a plain number takes Deno's slow FFI path (about 130 ns more
  // per call, measured), a fresh BigInt per call would allocate. The fixed lengths are made
  // once (below); `z` keeps the last length it made (an echo's length repeats), and never
  // indexes an array by length (an array indexed up to 65536 turns into a hash table).
  let lastLength = -1;
  let lastLengthArg = 0n;
  const z = (n: number): bigint => {
    if (n !== lastLength) {
      lastLength = n;
      lastLengthArg = BigInt(n);
    }
    return lastLengthArg;
  };
  const ONE = 1n, EIGHT = 8n;
  const errnoAt = BigInt(s.__errno_location());
  const errnoBox = new Int32Array(1);
  const errnoBytes = new Uint8Array(errnoBox.buffer);
  const errno = () => {
    s.read_at(errnoBytes, errnoAt, 4n);
    return errnoBox[0]!;
  };
  const wakeFd = s.eventfd(0, k.EFD_NONBLOCK | k.EFD_CLOEXEC);
  if (wakeFd < 0) {
    const message = `eventfd: errno ${errno()}`;
    lib.close();
    post({ type: "failed", message });
    return;
  }
  post({ type: "ready", wakeFd });
  let error: string | undefined;
  try {
    serveLoop();
  } catch (err) {
    error = (err as Error).message;
  } finally {
    // Everything still held goes back (the main thread closes it).
    for (let i = 0; i < init.maxSlots; i++) {
      const st = Atomics.load(slots, i * SL.WORDS + SL.STATE);
      if (st === SL.OWNED || st === SL.HANDED) {
        Atomics.store(slots, i * SL.WORDS + SL.STATE, SL.RELEASED);
        post({
          type: "released",
          slot: i,
          reason: error === undefined ? "server stopping" : "native echo stopped",
        });
      }
    }
    const udpState = Atomics.load(control, ctl.UDP_STATE);
    if (udpState === SL.OWNED || udpState === SL.HANDED) {
      Atomics.store(control, ctl.UDP_STATE, SL.RELEASED);
      post({ type: "udp-released" });
    }
    // The eventfd stays open: the main thread may still write it, and closes it on `stopped`.
    lib.close();
    post({ type: "stopped", ...(error !== undefined && { error }) });
  }

  function serveLoop(): void {
    const max = init.maxSlots;
    const E = init.epollEvent;
    const ep = s.epoll_create1(k.EPOLL_CLOEXEC);
    if (ep < 0) throw new Error(`epoll_create1: errno ${errno()}`);
    try {
      serveWith(ep);
    } finally {
      s.close(ep);
    }

    function serveWith(ep: number): void {
      const ev = new Uint8Array(E.size);
      const evView = new DataView(ev.buffer);
      const evBuf = new Uint8Array(E.size * (max + 2));
      const evBufView = new DataView(evBuf.buffer);
      /** Tags in an event's data: 0 the eventfd, 1 UDP, 2 + k TCP slot k. */
      const control_ = (op: number, fd: number, events: number, tag: number) => {
        evView.setUint32(0, events, true);
        evView.setUint32(E.data, tag, true);
        evView.setUint32(E.data + 4, 0, true);
        return s.epoll_ctl(ep, op, fd, ev);
      };
      if (control_(k.EPOLL_CTL_ADD, wakeFd, k.POLLIN, 0) !== 0) {
        throw new Error(`epoll_ctl: errno ${errno()}`);
      }
      const pfd = new Uint8Array(8);
      const pfdInt = new Int32Array(pfd.buffer);
      const pfdShort = new Int16Array(pfd.buffer);
      const wakeBuf = new Uint8Array(8);
      // UDP.
      const dgram = new Uint8Array(65536);
      const dgramLength = BigInt(dgram.length);
      const sa = new Uint8Array(128);
      const saLen = new Uint32Array(1);
      const saLenBytes = new Uint8Array(saLen.buffer);
      let udpFd = -1;
      const peers = new Set<number | string>();
      const noted = new Set<number | string>();
      const acl = init.acl;
      // TCP, per slot.
      const fds = new Int32Array(max).fill(-1);
      const bufs: (Uint8Array | undefined)[] = new Array(max);
      const tcpBufferLength = BigInt(init.tcpBufferBytes);
      const pendFrom = new Int32Array(max);
      const pendTo = new Int32Array(max);
      const eof = new Uint8Array(max);
      const draining = new Uint8Array(max);
      /** The events each slot is registered for (0: not registered). */
      const mode = new Int32Array(max);
      let held = 0;
      let stopping = false;

      /**
       * Register slot `i` for what it waits for now: room to send, or bytes to read. Not
       * while it is served in blocking receives (out of the epoll set meanwhile).
       */
      const interest = (i: number) => {
        if (fds[i]! < 0 || fds[i] === blockedFd) return;
        const want = pendTo[i]! > 0 ? k.POLLOUT : !draining[i] && !eof[i] ? k.POLLIN : 0;
        if (want === mode[i]) return;
        const op = mode[i] === 0 ? k.EPOLL_CTL_ADD : want === 0 ? k.EPOLL_CTL_DEL : k.EPOLL_CTL_MOD;
        control_(op, fds[i]!, want, 2 + i);
        mode[i] = want;
      };
      const release = (i: number, reason: string) => {
        // Its flags back, and out of this thread's epoll, before the main thread may close it.
        if (fds[i] === blockedFd) unblock();
        if (mode[i] !== 0) control_(k.EPOLL_CTL_DEL, fds[i]!, 0, 2 + i);
        mode[i] = 0;
        fds[i] = -1;
        held--;
        pendFrom[i] = pendTo[i] = 0;
        eof[i] = draining[i] = 0;
        Atomics.store(slots, i * SL.WORDS + SL.STATE, SL.RELEASED);
        post({ type: "released", slot: i, reason });
      };
      const base = (i: number) => C.SLOTS + i * C.PER_SLOT;
      /** Send what slot `i` holds; false when the connection failed (released). */
      const flush = (i: number): boolean => {
        const buf = bufs[i]!;
        while (pendFrom[i]! < pendTo[i]!) {
          const n = s.send(
            fds[i]!,
            pendFrom[i] === 0 ? buf : buf.subarray(pendFrom[i]!, pendTo[i]!),
            z(pendTo[i]! - pendFrom[i]!),
            k.MSG_DONTWAIT | k.MSG_NOSIGNAL,
          );
          if (n < 0) {
            const e = errno();
            if (e === k.EAGAIN) return true;
            if (e === k.EINTR) continue;
            release(i, e === k.ECONNRESET || e === 32 ? "reset by peer" : `error: send errno ${e}`);
            return false;
          }
          pendFrom[i] = pendFrom[i]! + n;
          counters[base(i) + 1] = counters[base(i) + 1]! + n;
          counters[base(i) + 2] = counters[base(i) + 2]! + 1;
        }
        pendFrom[i] = pendTo[i] = 0;
        return true;
      };
      /** After sending: a connection whose peer ended, or that drains, is done once empty. */
      const settle = (i: number) => {
        if (fds[i]! < 0) return;
        if (pendTo[i]! === 0) {
          if (eof[i]) {
            s.shutdown(fds[i]!, k.SHUT_WR);
            release(i, "");
            return;
          }
          if (draining[i]) {
            release(i, "drained");
            return;
          }
        }
        interest(i);
      };
      const takeMail = () => {
        for (let i = 0; i < max; i++) {
          const at = i * SL.WORDS;
          const st = Atomics.load(slots, at + SL.STATE);
          if (st === SL.HANDED) {
            fds[i] = Atomics.load(slots, at + SL.FD);
            bufs[i] ??= new Uint8Array(init.tcpBufferBytes);
            held++;
            Atomics.store(slots, at + SL.STATE, SL.OWNED);
          }
          if (fds[i]! < 0) continue;
          const cmd = Atomics.load(slots, at + SL.CMD);
          if (cmd === SL.NOW) release(i, "dropped");
          else {
            if (cmd === SL.DRAIN || stopping) draining[i] = 1;
            settle(i);
          }
        }
        if (udpFd < 0 && Atomics.load(control, ctl.UDP_STATE) === SL.HANDED) {
          udpFd = Atomics.load(control, ctl.UDP_FD);
          Atomics.store(control, ctl.UDP_STATE, SL.OWNED);
          if (control_(k.EPOLL_CTL_ADD, udpFd, k.POLLIN, 1) !== 0) {
            throw new Error(`epoll_ctl udp: errno ${errno()}`);
          }
        }
        if (stopping && udpFd >= 0) {
          control_(k.EPOLL_CTL_DEL, udpFd, 0, 1);
          udpFd = -1;
          Atomics.store(control, ctl.UDP_STATE, SL.RELEASED);
          post({ type: "udp-released" });
        }
      };
      const onDatagram = () => {
        saLen[0] = 128;
        const n = s.recvfrom(udpFd, dgram, dgramLength, k.MSG_DONTWAIT, sa, saLenBytes);
        if (n < 0) {
          const e = errno();
          if (e === k.EBADF) throw new Error("recvfrom: EBADF");
          return; // EAGAIN, EINTR, an ICMP error: serve on
        }
        onDatagramRead(n, Atomics.load(control, ctl.PASS_ALL) === 1);
      };
      /** Tell the main thread of the source in `sa` once per `key` (the set bounded at 1,024). */
      const noteOnce = (
        seen: Set<number | string>,
        key: number | string,
        type: "denied" | "peer",
        len: number,
      ) => {
        if (seen.has(key)) return;
        if (seen.size >= 1024) seen.clear();
        seen.add(key);
        post({ type, addr: sa.slice(0, len) });
      };
      /** The `n` bytes in `dgram` from `sa`; `passAll`: the PASS_ALL word when it was read. */
      const onDatagramRead = (n: number, passAll: boolean) => {
        const len = saLen[0]!;
        if (passAll) {
          post({ type: "datagram", data: dgram.slice(0, n), addr: sa.slice(0, len) });
          return;
        }
        if (acl && !aclPermits(acl, sa, k)) {
          counters[C.DENIED] = counters[C.DENIED]! + 1;
          if (init.verbose) noteOnce(noted, sourceKey(sa, false), "denied", len);
          return;
        }
        counters[C.DATAGRAMS_IN] = counters[C.DATAGRAMS_IN]! + 1;
        counters[C.BYTES_IN] = counters[C.BYTES_IN]! + n;
        if (init.verbose) noteOnce(peers, sourceKey(sa, true), "peer", len);
        if (Atomics.load(control, ctl.ECHO) !== 1) return;
        // Never amplify: exactly the bytes received, to their sender.
        for (let tries = 0; tries < 2; tries++) {
          const sent = s.sendto(udpFd, dgram, z(n), k.MSG_DONTWAIT | k.MSG_NOSIGNAL, sa, len);
          if (sent >= 0) {
            counters[C.DATAGRAMS_OUT] = counters[C.DATAGRAMS_OUT]! + 1;
            counters[C.BYTES_OUT] = counters[C.BYTES_OUT]! + sent;
            return;
          }
          if (errno() !== k.EAGAIN) return; // the sender vanished: drop this reply
          // The send buffer is full: wait a little for room, once.
          pfdInt[0] = udpFd;
          pfdShort[2] = k.POLLOUT;
          pfdShort[3] = 0;
          s.poll(pfd, ONE, 10);
        }
      };
      /** Slot `i` is ready (`revents`); `recvFlags` 0 in blocking mode (a wait of one slice). */
      const onStream = (i: number, revents: number, recvFlags: number = k.MSG_DONTWAIT) => {
        if (pendTo[i]! > 0) {
          if (revents & (k.POLLOUT | k.POLLERR | k.POLLHUP) && flush(i)) settle(i);
          return;
        }
        const buf = bufs[i]!;
        const n = s.recv(fds[i]!, buf, tcpBufferLength, recvFlags);
        if (n < 0) {
          const e = errno();
          if (e === k.EAGAIN || e === k.EINTR) return;
          release(i, e === k.ECONNRESET ? "reset by peer" : `error: recv errno ${e}`);
          return;
        }
        if (n === 0) {
          eof[i] = 1;
          settle(i);
          return;
        }
        counters[base(i)] = counters[base(i)]! + n;
        pendFrom[i] = 0;
        pendTo[i] = n;
        if (flush(i)) settle(i);
      };

      // Single-socket blocking mode. With one socket held alone (the UDP socket, or one TCP
      // connection), a blocking receive on it (as sockperf's server) saves the epoll_wait of
      // each round trip: about 0.3 us of a 4-5 us round trip on one core (measured with bare
      // servers, and with this one). The eventfd is not watched meanwhile: SO_RCVTIMEO ends
      // the wait every BLOCK_SLICE_MS (rounded up to the kernel's tick) to look at the MAIL word,
      // so a hand-over, a drop or a stop waits at most that long (8 ms at HZ=250).
      // Not in pass-all mode: the main thread may then send on the UDP socket, and must never
      // block. Sends stay non-blocking (MSG_DONTWAIT): a TCP echo that does not fit goes back
      // to epoll mode. The flags go back (O_NONBLOCK, the previous SO_RCVTIMEO) before epoll
      // mode, before the Worker lets go of the socket (release), and on every exit (finally).
      /** The MAIL word when the eventfd was last read. */
      let seenMail = 0;
      let blockable = true;
      let blockedFd = -1;
      let savedFlags = 0;
      const savedTv = new Uint8Array(16);
      const tvLen = new Uint32Array(1);
      const tvLenBytes = new Uint8Array(tvLen.buffer);
      const sliceTv = new Uint8Array(16); // struct timeval { 0 s, BLOCK_SLICE_MS ms } (LP64)
      new DataView(sliceTv.buffer).setBigInt64(8, BigInt(init.blockSliceMs * 1000), true);
      /** The UDP socket is held alone, and the Worker may block on it. */
      const soleDatagrams = (): boolean =>
        blockable && !stopping && udpFd >= 0 && held === 0 &&
        Atomics.load(control, ctl.MAIL) === seenMail &&
        Atomics.load(control, ctl.PASS_ALL) !== 1;
      /** TCP slot `i` can be served in blocking receives: it waits only for bytes to echo. */
      const streamIdle = (i: number): boolean =>
        fds[i]! >= 0 && pendTo[i] === 0 && !eof[i] && !draining[i] && !stopping &&
        Atomics.load(control, ctl.MAIL) === seenMail;
      const isOpen = (fd: number) => fd >= 0;
      /** The TCP slot held alone (and no UDP socket), if the Worker may block on it; else -1. */
      const soleStream = (): number => {
        if (!blockable || held !== 1 || udpFd >= 0) return -1;
        const i = fds.findIndex(isOpen);
        return i >= 0 && streamIdle(i) ? i : -1;
      };
      const block = (fd: number): boolean => {
        const flags = s.fcntl(fd, k.F_GETFL, 0);
        tvLen[0] = 16;
        if (
          flags < 0 ||
          s.getsockopt(fd, k.SOL_SOCKET, k.SO_RCVTIMEO, savedTv, tvLenBytes) !== 0 ||
          s.setsockopt(fd, k.SOL_SOCKET, k.SO_RCVTIMEO, sliceTv, 16) !== 0
        ) return false;
        blockedFd = fd;
        savedFlags = flags;
        if (s.fcntl(fd, k.F_SETFL, flags & ~k.O_NONBLOCK) === 0) return true;
        unblock();
        return false;
      };
      const unblock = () => {
        if (blockedFd < 0) return;
        const fd = blockedFd;
        blockedFd = -1;
        s.fcntl(fd, k.F_SETFL, savedFlags);
        s.setsockopt(fd, k.SOL_SOCKET, k.SO_RCVTIMEO, savedTv, 16);
      };
      /** Serve the UDP socket alone in blocking calls until mail or pass-all mode. */
      const serveBlocking = () => {
        const fd = udpFd;
        if (!block(fd)) {
          blockable = false; // epoll mode from now on
          return;
        }
        try {
          while (Atomics.load(control, ctl.MAIL) === seenMail) {
            saLen[0] = 128;
            const n = s.recvfrom(fd, dgram, dgramLength, 0, sa, saLenBytes);
            if (n < 0) {
              if (errno() === k.EBADF) throw new Error("recvfrom: EBADF");
              continue; // EAGAIN (the slice ended), EINTR, an ICMP error
            }
            if (Atomics.load(control, ctl.PASS_ALL) === 1) {
              unblock(); // the main thread may send on it from now on
              onDatagramRead(n, true);
              return;
            }
            onDatagramRead(n, false);
          }
        } finally {
          unblock();
        }
      };

      /** Serve TCP slot `i` alone in blocking receives while it only echoes, until mail. */
      const serveBlockingStream = (i: number) => {
        const fd = fds[i]!;
        if (mode[i] !== 0) control_(k.EPOLL_CTL_DEL, fd, 0, 2 + i);
        mode[i] = 0;
        if (!block(fd)) {
          blockable = false; // epoll mode from now on
          interest(i);
          return;
        }
        try {
          while (streamIdle(i)) onStream(i, k.POLLIN, 0);
        } finally {
          unblock(); // (release did, if it let go)
          interest(i);
        }
      };

      const maxEvents = max + 2;
      while (true) {
        if (stopping && held === 0 && udpFd < 0) return;
        if (soleDatagrams()) {
          serveBlocking();
          continue;
        }
        const alone = soleStream();
        if (alone >= 0) {
          serveBlockingStream(alone);
          continue;
        }
        const ready = s.epoll_wait(ep, evBuf, maxEvents, init.sliceMs);
        if (ready < 0) {
          const e = errno();
          if (e === k.EINTR) continue;
          throw new Error(`epoll_wait: errno ${e}`);
        }
        let woken = ready === 0;
        for (let j = 0; j < ready; j++) {
          if (evBufView.getUint32(j * E.size + E.data, true) === 0) woken = true;
        }
        if (woken) {
          seenMail = Atomics.load(control, ctl.MAIL);
          s.read(wakeFd, wakeBuf, EIGHT);
          if (Atomics.load(control, ctl.STOP) === 1) stopping = true;
          takeMail();
        }
        for (let j = 0; j < ready; j++) {
          const tag = evBufView.getUint32(j * E.size + E.data, true);
          if (tag === 1) {
            if (udpFd >= 0) onDatagram();
          } else if (tag >= 2 && fds[tag - 2]! >= 0) {
            onStream(tag - 2, evBufView.getUint32(j * E.size, true));
          }
        }
      }
    }
  }
}

/** The Worker's whole source: the functions above, their data, and the message hook. */
export function workerSource(): string {
  return [
    aclPermits.toString(),
    sourceKey.toString(),
    echoLoop.toString(),
    "self.onmessage = (event) => {",
    "  self.onmessage = null;",
    "  try {",
    "    echoLoop(event.data, (message) => self.postMessage(message));",
    "  } catch (err) {",
    '    self.postMessage({ type: "failed", message: String(err && err.message || err) });',
    "  }",
    "};",
  ].join("\n");
}
