/**
 * A connected UDP socket through libc: `sendmmsg` and `recvmmsg` move a whole
 * {@linkcode DatagramBatch} per call, and the socket buffers are sized with
 * `SO_RCVBUF`/`SO_SNDBUF` (the `FORCE` variants first, which root may use
 * beyond `net.core.rmem_max`).
 *
 * Never blocking the event loop: the socket is non-blocking; sends and
 * receives are synchronous FFI calls with `MSG_DONTWAIT`, and only when the
 * kernel says `EAGAIN` does the socket wait. A receive waits in one of two
 * ways (`receiveWait`):
 * - `"event-loop"` (probes, messages, paced tests: traffic timed on arrival):
 *   in Deno's own event loop. Deno opens the socket (`Deno.listenDatagram`),
 *   the engine finds its descriptor and takes it out of Deno's epoll
 *   instance, and puts it back when a receive must wait, in Deno's `receive`
 *   (which takes the datagram that ends the wait). The kernel then wakes the
 *   main thread itself (measured, UDP probes at 1,000/s on loopback,
 *   unpinned, 5 alternating pairs: RTT p50 44–54 us against 71–117 us with a
 *   wait on the pool, and about a fifth less CPU). A paced socket stays in
 *   Deno's epoll (no `epoll_ctl` per wait); once it moves
 *   {@linkcode FLOOD_AFTER} datagrams without waiting (a flood) it leaves it
 *   (epoll's wake-up callback would run per datagram) and waits on the pool.
 * - `"pool"` (the default; a flood, a scan): in a `poll` declared
 *   `nonblocking`, which runs on a thread of Deno's pool and resolves a
 *   promise. The hand-over between threads lets a flood's next batch gather:
 *   `-R -b 0` received this way delivered 5–8% more, at no loss (3 alternating
 *   pairs each way). Sends always wait so, and so does an `"event-loop"`
 *   socket whose descriptor or registration could not be found.
 *
 * `close` shuts the socket down first, which wakes a poll, and releases the
 * descriptor only once no poll holds it (Deno closes its own socket, ending
 * its `receive`, at once).
 *
 * Pointer safety: the kernel reads and writes through raw addresses in the
 * `mmsghdr`/`iovec` arrays. Those arrays, and the batch buffer they point
 * into, are kept referenced by this socket for as long as it may use them
 * (`#headers` holds each batch, its headers and iovecs).
 *
 * @example
 * ```ts
 * import { loadLibc } from "./libc.ts";
 * import { NativeUdpSocket } from "./udp.ts";
 * import { DatagramBatch } from "../types.ts";
 *
 * const libc = loadLibc();
 * if (!("reason" in libc)) {
 *   using socket = NativeUdpSocket.open(libc, { remote: { hostname: "127.0.0.1", port: 5050 } });
 *   const batch = new DatagramBatch(32, 1400);
 *   batch.fill(32, 1400);
 *   await socket.sendBatch(batch);
 * }
 * ```
 *
 * @module
 */

import type {
  DatagramBatch,
  DatagramTransport,
  EngineFeatures,
  HostPort,
  OpenOptions,
} from "../types.ts";
import { type ReactorSwitch, reactorSwitch } from "./epoll_mute.ts";
import { decodeSockaddr, encodeSockaddr, ERRNO_NAMES, familyOf, LINUX } from "./layout.ts";
import type { Libc } from "./libc.ts";
import { findSocketFd } from "./socket_fd.ts";

/** A failed libc call: `code` is the errno name (`ECONNREFUSED`), like Node's system errors. */
export class ErrnoError extends Error {
  readonly code: string;

  constructor(readonly syscall: string, readonly errno: number) {
    const code = ERRNO_NAMES[errno] ?? `errno ${errno}`;
    super(`${syscall}: ${code} (errno ${errno})`);
    this.name = "ErrnoError";
    this.code = code;
  }
}

/** The address of `bytes` (its bytes must be off V8's heap: see `#headersFor`). */
export function addressOf(libc: Libc, bytes: Uint8Array): bigint {
  return BigInt(libc.symbols.address_of(bytes, bytes, 0n));
}

/** errno of the calling thread, right after a failed call. */
export function readErrno(libc: Libc): number {
  const out = new Int32Array(1);
  libc.symbols.read_at(new Uint8Array(out.buffer), BigInt(libc.symbols.__errno_location()), 4n);
  return out[0]!;
}

/** Per batch: the mmsghdr and iovec arrays pointing into its buffer. */
interface Headers {
  batch: DatagramBatch;
  mmsg: Uint8Array<ArrayBuffer>;
  iov: Uint8Array<ArrayBuffer>;
  iovView: DataView;
  mmsgView: DataView;
  /** What the iovec lengths hold now: whole slots (receive) or the batch's lengths (send). */
  mode: "receive" | "send" | undefined;
  /** The first slot, where Deno's `receive` puts the datagram that ends a wait. */
  first: Uint8Array;
}

const WAIT_MS = 200;
/**
 * While a socket's calls never have to wait (receives that find data, sends the
 * kernel takes at once), Deno's event loop still gets a pause of
 * {@linkcode PAUSE_MS} at least this often (ms): see {@linkcode PolledFd.yield}.
 */
export const FAIR_MS = 50;
/** The pause (ms): long enough that the event loop sleeps, and so looks at every socket. */
export const PAUSE_MS = 1;

/**
 * A non-blocking descriptor that waits in bounded polls and closes safely under
 * them: `close()` shuts it down (which wakes a pending poll with POLLHUP) and
 * the descriptor itself is released only once no poll holds it, so a poll never
 * sees its number reused.
 */
export class PolledFd {
  /** The descriptor while open (-1 once released). */
  fd: number;
  /** Whether {@linkcode PolledFd.close} was called. */
  closed = false;
  #libc: Libc;
  #waits = 0;
  /** Calls since the last wait, and when it ended. */
  #eager = 0;
  #waitedAt = performance.now();
  #close: () => void;

  /** `close` releases the descriptor (default: libc's `close`; a socket Deno opened: Deno's). */
  constructor(libc: Libc, fd: number, close?: () => void) {
    this.#libc = libc;
    this.fd = fd;
    this.#close = close ?? (() => libc.symbols.close(fd));
  }

  /**
   * Wait until `events` are ready, with `pollfd` (a pollfd struct's bytes, one
   * per concurrent waiter); bounded, so a wait never outlives a close by more
   * than WAIT_MS even if no wake-up comes.
   */
  async wait(
    pollfd: Uint8Array<ArrayBuffer>,
    events: number,
    timeoutMs = WAIT_MS,
  ): Promise<void> {
    this.#eager = 0;
    const view = new DataView(pollfd.buffer);
    const { pollfd: l } = this.#libc.layout;
    view.setInt32(l.fd, this.fd, true);
    view.setInt16(l.events, events, true);
    view.setInt16(l.revents, 0, true);
    this.#waits++;
    try {
      await this.#libc.symbols.poll_wait(pollfd, 1n, timeoutMs);
    } finally {
      this.#waitedAt = performance.now();
      this.#waits--;
      if (this.closed && this.#waits === 0) this.#release();
    }
  }

  /**
   * Let Deno's event loop serve everything else, when no call on this socket
   * has waited for {@linkcode FAIR_MS} (looked at every 16th call, so the clock
   * is cheap): a pause of {@linkcode PAUSE_MS} in a poll that asks for no event.
   * A socket that never runs dry (a flood), or sends the kernel always takes at
   * once (an unpaced sender on loopback), would otherwise run on promise
   * continuations alone: the event loop would not look at its timers or other
   * sockets for as long as it lasts (measured: TCP echoes 1–4 s late). A wait
   * that returns at once is not enough: the loop only looks at its sockets when
   * it has nothing else to do, so the pause must be a real one.
   */
  yield(pollfd: Uint8Array<ArrayBuffer>): Promise<void> | undefined {
    if ((++this.#eager & 15) !== 0) return undefined;
    if (performance.now() - this.#waitedAt < FAIR_MS) return undefined;
    return this.wait(pollfd, 0, PAUSE_MS);
  }

  /**
   * Note a wait that happened elsewhere (in Deno's event loop): the event loop
   * has just run, so no pause is owed for {@linkcode FAIR_MS}.
   */
  waited(): void {
    this.#eager = 0;
    this.#waitedAt = performance.now();
  }

  #release(): void {
    if (this.fd < 0) return;
    this.#close();
    this.fd = -1;
  }

  /** Shut the socket down (waking pending polls); the fd goes once none holds it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#libc.symbols.shutdown(this.fd, 2 /* SHUT_RDWR */);
    if (this.#waits === 0) this.#release();
  }
}

/**
 * Datagrams a socket Deno opened may move (send or receive) without waiting
 * before it counts as flooded: it leaves Deno's epoll instance, and its next
 * receive wait is a poll on Deno's pool. A paced socket, a datagram or two
 * per wait, stays in and waits in the event loop.
 */
export const FLOOD_AFTER = 256;

/** A socket Deno opened, out of its event loop's epoll instance until put back. */
interface DenoOwned {
  fd: number;
  socket: Deno.DatagramConn;
  registration: ReactorSwitch;
}

/**
 * Bind a UDP socket through Deno, find its descriptor and take it out of
 * Deno's epoll instance; undefined (nothing left open) where any step fails.
 * Deno allows broadcast on its sockets; this one does not, as one from
 * libc's `socket` would not.
 */
function openThroughDeno(libc: Libc, local: HostPort): DenoOwned | undefined {
  let socket: Deno.DatagramConn;
  try {
    socket = Deno.listenDatagram({ transport: "udp", hostname: local.hostname, port: local.port });
  } catch {
    return undefined; // libc's bind says why, in the engine's own terms
  }
  const fd = findSocketFd(libc, { type: "udp", local: socket.addr as Deno.NetAddr });
  const off = new Uint8Array(4);
  const registration = fd === undefined ||
      libc.symbols.setsockopt(fd, LINUX.SOL_SOCKET, LINUX.SO_BROADCAST, off, 4) !== 0
    ? undefined
    : reactorSwitch(libc, fd);
  if (fd === undefined || !registration?.mute()) {
    socket.close();
    return undefined;
  }
  return { fd, socket, registration };
}

/** A connected, non-blocking UDP socket of the native engine. */
export class NativeUdpSocket implements DatagramTransport {
  readonly features: EngineFeatures;
  readonly local: HostPort;
  #sock: PolledFd;
  #libc: Libc;
  #errnoAt: bigint;
  #errno = new Int32Array(1);
  #errnoBytes = new Uint8Array(this.#errno.buffer);
  #pollIn = new Uint8Array(8);
  #pollOut = new Uint8Array(8);
  #headers = new WeakMap<DatagramBatch, Headers>();
  /** Deno's object for the descriptor, whose `receive` waits in the event loop. */
  #owned: DenoOwned | undefined;
  /** Datagrams sent and received since the last receive wait. */
  #moved = 0;
  /** Whether Deno's `receive` waits now: the descriptor must stay in Deno's epoll meanwhile. */
  #inLoop = false;

  private constructor(
    libc: Libc,
    fd: number,
    local: HostPort,
    features: EngineFeatures,
    owned: DenoOwned | undefined,
  ) {
    this.#libc = libc;
    this.#owned = owned;
    this.#sock = new PolledFd(libc, fd, owned && (() => owned.socket.close()));
    this.local = local;
    this.features = features;
    this.#errnoAt = BigInt(libc.symbols.__errno_location());
  }

  /** Open a UDP socket connected to `options.remote` (an IP literal). */
  static open(libc: Libc, options: OpenOptions): NativeUdpSocket {
    const s = libc.symbols;
    const errno = () => readErrno(libc);
    const family = familyOf(options.remote.hostname);
    if (!family) {
      throw new TypeError(
        `the native engine takes an IP address, not '${options.remote.hostname}'`,
      );
    }
    const af = family === "ipv4" ? LINUX.AF_INET : LINUX.AF_INET6;
    const local = options.local ??
      { hostname: family === "ipv4" ? "0.0.0.0" : "::", port: 0 };
    const owned = options.receiveWait === "event-loop" ? openThroughDeno(libc, local) : undefined;
    const fd = owned?.fd ??
      s.socket(af, LINUX.SOCK_DGRAM | LINUX.SOCK_NONBLOCK | LINUX.SOCK_CLOEXEC, 0);
    if (fd < 0) throw new ErrnoError("socket", errno());
    try {
      const int = new Int32Array(1);
      const intBytes = new Uint8Array(int.buffer);
      const setBuffer = (force: number, plain: number, bytes: number | undefined) => {
        if (bytes === undefined) return;
        int[0] = bytes;
        if (s.setsockopt(fd, LINUX.SOL_SOCKET, force, intBytes, 4) === 0) return;
        if (s.setsockopt(fd, LINUX.SOL_SOCKET, plain, intBytes, 4) !== 0) {
          throw new ErrnoError("setsockopt", errno());
        }
      };
      setBuffer(LINUX.SO_RCVBUFFORCE, LINUX.SO_RCVBUF, options.receiveBuffer);
      setBuffer(LINUX.SO_SNDBUFFORCE, LINUX.SO_SNDBUF, options.sendBuffer);
      if (!owned) {
        const bindAddr = encodeSockaddr(local.hostname, local.port, libc.layout);
        if (s.bind(fd, bindAddr, bindAddr.length) !== 0) throw new ErrnoError("bind", errno());
      }
      const peer = encodeSockaddr(options.remote.hostname, options.remote.port, libc.layout);
      if (s.connect(fd, peer, peer.length) !== 0) throw new ErrnoError("connect", errno());
      const name = new Uint8Array(libc.layout.sockaddrIn6.size);
      const nameLen = new Uint32Array([name.length]);
      if (s.getsockname(fd, name, new Uint8Array(nameLen.buffer)) !== 0) {
        throw new ErrnoError("getsockname", errno());
      }
      const get = (opt: number) => {
        const len = new Uint32Array([4]);
        return s.getsockopt(fd, LINUX.SOL_SOCKET, opt, intBytes, new Uint8Array(len.buffer)) === 0
          ? int[0]
          : undefined;
      };
      let gso = false;
      if (options.gsoSegment !== undefined) {
        int[0] = options.gsoSegment;
        gso = s.setsockopt(fd, LINUX.SOL_UDP, LINUX.UDP_SEGMENT, intBytes, 4) === 0;
      }
      const receiveBuffer = get(LINUX.SO_RCVBUF);
      const sendBuffer = get(LINUX.SO_SNDBUF);
      return new NativeUdpSocket(libc, fd, decodeSockaddr(name, libc.layout), {
        engine: "native",
        sendBatch: 1024, // UIO_MAXIOV: the kernel's cap on one sendmmsg/recvmmsg
        receiveBatch: 1024,
        gso,
        gro: false,
        ...(receiveBuffer !== undefined && { receiveBuffer }),
        ...(sendBuffer !== undefined && { sendBuffer }),
      }, owned);
    } catch (err) {
      if (owned) owned.socket.close();
      else s.close(fd);
      throw err;
    }
  }

  /** The descriptor while open (-1 once released). */
  get fd(): number {
    return this.#sock.fd;
  }

  #headersFor(batch: DatagramBatch): Headers {
    let h = this.#headers.get(batch);
    if (h) return h;
    const { mmsghdr, msghdr, iovec } = this.#libc.layout;
    const mmsg = new Uint8Array(batch.capacity * mmsghdr.size);
    const iov = new Uint8Array(batch.capacity * iovec.size);
    const mmsgView = new DataView(mmsg.buffer);
    const iovView = new DataView(iov.buffer);
    // `.buffer` moves a small typed array's bytes off V8's heap, where the GC never moves
    // them: the addresses below stay valid while the arrays are referenced (from #headers).
    void batch.data.buffer;
    const dataAddr = addressOf(this.#libc, batch.data);
    const iovAddr = addressOf(this.#libc, iov);
    for (let i = 0; i < batch.capacity; i++) {
      iovView.setBigUint64(
        i * iovec.size + iovec.base,
        dataAddr + BigInt(i * batch.slotSize),
        true,
      );
      iovView.setBigUint64(i * iovec.size + iovec.len, BigInt(batch.slotSize), true);
      const m = i * mmsghdr.size + mmsghdr.hdr;
      // msg_name stays NULL: the socket is connected.
      mmsgView.setBigUint64(m + msghdr.iov, iovAddr + BigInt(i * iovec.size), true);
      mmsgView.setBigUint64(m + msghdr.iovlen, 1n, true);
    }
    h = {
      batch,
      mmsg,
      iov,
      iovView,
      mmsgView,
      mode: "receive",
      first: batch.data.subarray(0, batch.slotSize),
    };
    this.#headers.set(batch, h);
    return h;
  }

  #lastErrno(): number {
    this.#libc.symbols.read_at(this.#errnoBytes, this.#errnoAt, 4n);
    return this.#errno[0]!;
  }

  #wait(events: number): Promise<void> {
    return this.#sock.wait(events === LINUX.POLLIN ? this.#pollIn : this.#pollOut, events);
  }

  async sendBatch(batch: DatagramBatch): Promise<number> {
    // An unpaced sender the kernel never holds back would otherwise starve the event loop too.
    const pause = this.#sock.yield(this.#pollOut);
    if (pause) await pause;
    const h = this.#headersFor(batch);
    const { iovec, mmsghdr } = this.#libc.layout;
    for (let i = 0; i < batch.count; i++) {
      h.iovView.setUint32(i * iovec.size + iovec.len, batch.lengths[i]!, true);
    }
    h.mode = "send";
    let sent = 0;
    while (sent < batch.count) {
      if (this.#sock.closed) return sent;
      const from = sent === 0 ? h.mmsg : h.mmsg.subarray(sent * mmsghdr.size);
      const n = this.#libc.symbols.sendmmsg(
        this.#sock.fd,
        from,
        batch.count - sent,
        LINUX.MSG_DONTWAIT,
      );
      if (n > 0) {
        sent += n;
        this.#moving(n);
        continue;
      }
      const errno = this.#lastErrno();
      if (errno === LINUX.EAGAIN || errno === LINUX.ENOBUFS) await this.#wait(LINUX.POLLOUT);
      else if (errno !== LINUX.EINTR) throw new ErrnoError("sendmmsg", errno);
    }
    return sent;
  }

  async receiveBatch(batch: DatagramBatch): Promise<number> {
    const h = this.#headersFor(batch);
    const { iovec, mmsghdr } = this.#libc.layout;
    if (h.mode !== "receive") {
      for (let i = 0; i < batch.capacity; i++) {
        h.iovView.setUint32(i * iovec.size + iovec.len, batch.slotSize, true);
      }
      h.mode = "receive";
    }
    const pause = this.#sock.yield(this.#pollIn);
    if (pause) await pause;
    for (;;) {
      if (this.#sock.closed) {
        batch.count = 0;
        return 0;
      }
      const n = this.#libc.symbols.recvmmsg(
        this.#sock.fd,
        h.mmsg,
        batch.capacity,
        LINUX.MSG_DONTWAIT,
        null,
      );
      if (n > 0) {
        for (let i = 0; i < n; i++) {
          batch.lengths[i] = h.mmsgView.getUint32(i * mmsghdr.size + mmsghdr.len, true);
        }
        batch.count = n;
        this.#moving(n);
        return n;
      }
      const errno = this.#lastErrno();
      if (errno === LINUX.EAGAIN) {
        if (this.#owned && this.#moved <= FLOOD_AFTER) {
          return await this.#receiveInEventLoop(this.#owned, batch, h.first);
        }
        this.#moved = 0;
        await this.#wait(LINUX.POLLIN);
      } else if (errno !== LINUX.EINTR) throw new ErrnoError("recvmmsg", errno);
    }
  }

  /**
   * Count datagrams moved since the last receive wait; past
   * {@linkcode FLOOD_AFTER} (a flood), the descriptor leaves Deno's epoll
   * instance, whose wake-up callback would otherwise run for every datagram.
   */
  #moving(datagrams: number): void {
    if (!this.#owned || (this.#moved += datagrams) <= FLOOD_AFTER) return;
    // Never under a receive that waits (a flood sent while it does): it would never wake.
    if (!this.#inLoop) this.#owned.registration.mute();
  }

  /**
   * Wait in Deno's event loop: the descriptor back in its epoll instance (it
   * stays there while the socket is paced, so a wait costs no `epoll_ctl`);
   * the datagram Deno's `receive` takes is the batch's only one.
   */
  async #receiveInEventLoop(
    owned: DenoOwned,
    batch: DatagramBatch,
    first: Uint8Array,
  ): Promise<number> {
    owned.registration.unmute();
    this.#inLoop = true;
    try {
      const [datagram] = await owned.socket.receive(first);
      this.#sock.waited();
      this.#moved = 0;
      // Shut down while waiting: the wake-up is the end, not a datagram.
      batch.count = this.#sock.closed ? 0 : 1;
      batch.lengths[0] = datagram.length;
      return batch.count;
    } catch (err) {
      batch.count = 0;
      if (this.#sock.closed) return 0;
      // ICMP port unreachable, as recvmmsg reports it.
      if (err instanceof Deno.errors.ConnectionRefused) {
        throw new ErrnoError("recv", LINUX.ECONNREFUSED);
      }
      throw err;
    } finally {
      this.#inLoop = false;
    }
  }

  close(): void {
    this.#sock.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
