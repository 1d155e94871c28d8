/**
 * An unconnected UDP socket through libc for a server that serves many
 * peers (a throughput test's UDP port): one `recvmmsg` fills a batch of
 * datagrams with their source addresses, handed out one `receive` at a time
 * (Deno's shape, so the server's loop is the same on both engines); `send`
 * is one `sendto`. The receive buffer is sized with `SO_RCVBUFFORCE` (root)
 * or `SO_RCVBUF` (up to `net.core.rmem_max`).
 *
 * The batch, its headers and the address slots are kept referenced by the
 * listener while the kernel may write through their addresses; the socket is
 * non-blocking and waits with a `poll` on Deno's thread pool. (Waiting in
 * Deno's event loop instead, as {@linkcode NativeUdpSocket}'s receives do,
 * measured worse here: a flooded test port delivered 3–4% less, and a paced
 * test's jitter rose from about 0.01 to 0.05 ms, pinned, 3–4 alternating runs
 * each.) Source addresses are decoded only when
 * they change from one datagram to the next (the same `Deno.NetAddr` object
 * comes back for a run of datagrams from one peer).
 *
 * @example
 * ```ts
 * import { loadLibc } from "./libc.ts";
 * import { NativeUdpListener } from "./listener.ts";
 *
 * const libc = loadLibc();
 * if (!("reason" in libc)) {
 *   using socket = NativeUdpListener.open(libc, {
 *     local: { hostname: "127.0.0.1", port: 0 },
 *     maxDatagram: 1400,
 *   });
 *   console.log(socket.addr);
 * }
 * ```
 *
 * @module
 */

import { type DatagramListener, GRO_BATCH_BYTES, type ListenOptions } from "../types.ts";
import { decodeSockaddr, encodeSockaddr, familyOf, LINUX } from "./layout.ts";
import type { Libc } from "./libc.ts";
import { addressOf, ErrnoError, PolledFd, readErrno } from "./udp.ts";
import { DatagramBatch } from "../types.ts";

/** Bytes per source-address slot (a sockaddr_in6 is 28). */
const NAME_STRIDE = 32;
/** Bytes of ancillary data per message with GRO: one cmsghdr (16) and its int, aligned. */
const CONTROL_STRIDE = 32;
/** The same, as the BigInt a `size_t` field takes (made once, not per receive). */
const CONTROL_STRIDE_LENGTH = BigInt(CONTROL_STRIDE);
/** The largest GRO run the kernel hands over: one UDP datagram's worth. */
const GRO_SLOT = 65_535;
/** Receive batch bytes at most, within what a test's memory budget counts for its socket. */
const BATCH_BYTES = 64 * 1024;

/** An unconnected, non-blocking UDP socket of the native engine. */
export class NativeUdpListener implements DatagramListener, Disposable {
  readonly addr: Deno.NetAddr;
  readonly gro: boolean;
  /** GRO runs received: messages the kernel handed over holding more than one datagram. */
  groRuns = 0;
  #libc: Libc;
  #sock: PolledFd;
  #batch: DatagramBatch;
  #mmsg: Uint8Array<ArrayBuffer>;
  #mmsgView: DataView;
  #iov: Uint8Array<ArrayBuffer>;
  #names: Uint8Array<ArrayBuffer>;
  /** GRO: each message's ancillary data, and the segment size read from it (0: one datagram). */
  #control: Uint8Array<ArrayBuffer> | undefined;
  #controlView: DataView | undefined;
  #segments: Uint32Array;
  /** Where in the current message the next datagram starts (GRO runs hold several). */
  #offset = 0;
  #next = 0;
  #count = 0;
  /** One pollfd per direction: a receive and a send may wait at the same time. */
  #pollIn = new Uint8Array(8);
  #pollOut = new Uint8Array(8);
  /** The last source decoded, and its raw bytes: a run from one peer decodes once. */
  #from: Deno.NetAddr | undefined;
  #fromRaw = new Uint8Array(NAME_STRIDE);
  /** The last destination encoded. */
  #to: Deno.Addr | undefined;
  #toRaw: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  /** The last send's length as the BigInt the FFI call takes (made again only when it changes). */
  #sendLength = 0;
  #sendLengthBig = 0n;

  private constructor(
    libc: Libc,
    fd: number,
    addr: Deno.NetAddr,
    maxDatagram: number,
    gro: boolean,
  ) {
    this.#libc = libc;
    this.#sock = new PolledFd(libc, fd);
    this.addr = addr;
    this.gro = gro;
    const slot = gro ? GRO_SLOT : Math.min(65_535, Math.max(64, maxDatagram));
    const bytes = gro ? GRO_BATCH_BYTES : BATCH_BYTES;
    this.#batch = new DatagramBatch(Math.max(1, Math.min(64, Math.floor(bytes / slot))), slot);
    this.#segments = new Uint32Array(this.#batch.capacity);
    const { mmsghdr, msghdr, iovec } = libc.layout;
    const n = this.#batch.capacity;
    // At least 128 bytes each, and `.buffer` touched: off V8's heap, where the GC never moves them.
    this.#mmsg = new Uint8Array(Math.max(128, n * mmsghdr.size));
    this.#iov = new Uint8Array(Math.max(128, n * iovec.size));
    this.#names = new Uint8Array(Math.max(128, n * NAME_STRIDE));
    void this.#batch.data.buffer;
    this.#mmsgView = new DataView(this.#mmsg.buffer);
    const iovView = new DataView(this.#iov.buffer);
    void this.#names.buffer;
    const dataAt = addressOf(libc, this.#batch.data);
    const iovAt = addressOf(libc, this.#iov);
    const namesAt = addressOf(libc, this.#names);
    for (let i = 0; i < n; i++) {
      iovView.setBigUint64(i * iovec.size + iovec.base, dataAt + BigInt(i * slot), true);
      iovView.setBigUint64(i * iovec.size + iovec.len, BigInt(slot), true);
      const m = i * mmsghdr.size + mmsghdr.hdr;
      this.#mmsgView.setBigUint64(m + msghdr.name, namesAt + BigInt(i * NAME_STRIDE), true);
      this.#mmsgView.setBigUint64(m + msghdr.iov, iovAt + BigInt(i * iovec.size), true);
      this.#mmsgView.setBigUint64(m + msghdr.iovlen, 1n, true);
    }
    if (gro) {
      this.#control = new Uint8Array(Math.max(128, n * CONTROL_STRIDE));
      this.#controlView = new DataView(this.#control.buffer);
      const controlAt = addressOf(libc, this.#control);
      for (let i = 0; i < n; i++) {
        const m = i * mmsghdr.size + mmsghdr.hdr;
        this.#mmsgView.setBigUint64(
          m + msghdr.control,
          controlAt + BigInt(i * CONTROL_STRIDE),
          true,
        );
      }
    }
  }

  /** Bind an unconnected UDP socket to `options.local` (an IP literal). */
  static open(libc: Libc, options: ListenOptions): NativeUdpListener {
    const s = libc.symbols;
    const family = familyOf(options.local.hostname);
    if (!family) {
      throw new TypeError(`the native engine takes an IP address, not '${options.local.hostname}'`);
    }
    const af = family === "ipv4" ? LINUX.AF_INET : LINUX.AF_INET6;
    const fd = s.socket(af, LINUX.SOCK_DGRAM | LINUX.SOCK_NONBLOCK | LINUX.SOCK_CLOEXEC, 0);
    if (fd < 0) throw new ErrnoError("socket", readErrno(libc));
    try {
      if (options.receiveBuffer !== undefined) {
        const int = new Uint8Array(new Int32Array([options.receiveBuffer]).buffer);
        if (s.setsockopt(fd, LINUX.SOL_SOCKET, LINUX.SO_RCVBUFFORCE, int, 4) !== 0) {
          s.setsockopt(fd, LINUX.SOL_SOCKET, LINUX.SO_RCVBUF, int, 4); // capped at rmem_max
        }
      }
      const bindAddr = encodeSockaddr(options.local.hostname, options.local.port, libc.layout);
      if (s.bind(fd, bindAddr, bindAddr.length) !== 0) {
        throw new ErrnoError("bind", readErrno(libc));
      }
      const name = new Uint8Array(libc.layout.sockaddrIn6.size);
      const nameLen = new Uint32Array([name.length]);
      if (s.getsockname(fd, name, new Uint8Array(nameLen.buffer)) !== 0) {
        throw new ErrnoError("getsockname", readErrno(libc));
      }
      const local = decodeSockaddr(name, libc.layout);
      const on = new Uint8Array(new Int32Array([1]).buffer);
      const gro = options.gro === true &&
        s.setsockopt(fd, LINUX.SOL_UDP, LINUX.UDP_GRO, on, 4) === 0;
      return new NativeUdpListener(
        libc,
        fd,
        { transport: "udp", ...local },
        options.maxDatagram,
        gro,
      );
    } catch (err) {
      s.close(fd);
      throw err;
    }
  }

  #wait(events: number): Promise<void> {
    return this.#sock.wait(events === LINUX.POLLIN ? this.#pollIn : this.#pollOut, events);
  }

  /** The next datagram and its source; throws `BadResource` once closed, as Deno's does. */
  async receive(): Promise<[Uint8Array, Deno.Addr]> {
    if (this.#next >= this.#count) {
      const pause = this.#sock.yield(this.#pollIn);
      if (pause) await pause;
    }
    while (this.#next >= this.#count) {
      if (this.#sock.closed) throw new Deno.errors.BadResource("the socket is closed");
      const { mmsghdr, msghdr } = this.#libc.layout;
      const capacity = this.#batch.capacity;
      for (let i = 0; i < capacity; i++) {
        this.#mmsgView.setUint32(i * mmsghdr.size + mmsghdr.hdr + msghdr.namelen, 28, true);
        if (this.#control) {
          const at = i * mmsghdr.size + mmsghdr.hdr + msghdr.controllen;
          this.#mmsgView.setBigUint64(at, CONTROL_STRIDE_LENGTH, true);
        }
      }
      const n = this.#libc.symbols.recvmmsg(
        this.#sock.fd,
        this.#mmsg,
        capacity,
        LINUX.MSG_DONTWAIT,
        null,
      );
      if (n > 0) {
        for (let i = 0; i < n; i++) {
          this.#batch.lengths[i] = this.#mmsgView.getUint32(i * mmsghdr.size + mmsghdr.len, true);
          const segment = this.#control ? this.#segmentSize(i) : 0;
          this.#segments[i] = segment;
          if (segment > 0 && this.#batch.lengths[i]! > segment) this.groRuns++;
        }
        this.#count = n;
        this.#next = 0;
        this.#offset = 0;
        break;
      }
      const errno = readErrno(this.#libc);
      if (errno === LINUX.EAGAIN) await this.#wait(LINUX.POLLIN);
      else if (errno !== LINUX.EINTR && errno !== LINUX.ECONNREFUSED) {
        throw new ErrnoError("recvmmsg", errno);
      }
    }
    return this.#take();
  }

  /** The next datagram already received, without waiting; undefined when none is. */
  receiveReady(): [Uint8Array, Deno.Addr] | undefined {
    return this.#next < this.#count ? this.#take() : undefined;
  }

  /** Hand out the next datagram of the batch (a GRO run's, one at a time). */
  #take(): [Uint8Array, Deno.Addr] {
    const i = this.#next;
    const length = this.#batch.lengths[i]!;
    const segment = this.#segments[i]!;
    const start = i * this.#batch.slotSize + this.#offset;
    // A GRO run: its datagrams, all `segment` bytes but maybe the last, one per call.
    if (segment > 0 && length - this.#offset > segment) {
      this.#offset += segment;
      return [this.#batch.data.subarray(start, start + segment), this.#source(i)];
    }
    this.#next++;
    this.#offset = 0;
    return [this.#batch.data.subarray(start, i * this.#batch.slotSize + length), this.#source(i)];
  }

  /** The GRO segment size in message `i`'s ancillary data (`SOL_UDP`/`UDP_GRO`), or 0. */
  #segmentSize(i: number): number {
    const { mmsghdr, msghdr } = this.#libc.layout;
    // size_t fields read by their low half (little-endian; both are far below 4 GiB).
    const used = this.#mmsgView.getUint32(i * mmsghdr.size + mmsghdr.hdr + msghdr.controllen, true);
    const view = this.#controlView!;
    const base = i * CONTROL_STRIDE;
    // struct cmsghdr on LP64: size_t cmsg_len, int cmsg_level, int cmsg_type, then the data.
    for (let at = base; at + 20 <= base + Math.min(used, CONTROL_STRIDE);) {
      const len = view.getUint32(at, true);
      if (len < 16) break;
      if (
        view.getInt32(at + 8, true) === LINUX.SOL_UDP &&
        view.getInt32(at + 12, true) === LINUX.UDP_GRO
      ) {
        return view.getInt32(at + 16, true);
      }
      at += (len + 7) & ~7;
    }
    return 0;
  }

  /** The source of datagram `i`, decoded only when it differs from the last one's. */
  #source(i: number): Deno.NetAddr {
    const at = i * NAME_STRIDE;
    const raw = this.#names;
    let same = this.#from !== undefined;
    for (let b = 0; same && b < 28; b++) same = raw[at + b] === this.#fromRaw[b];
    if (!same) {
      this.#fromRaw.set(raw.subarray(at, at + 28));
      this.#from = {
        transport: "udp",
        ...decodeSockaddr(raw.subarray(at, at + 28), this.#libc.layout),
      };
    }
    return this.#from!;
  }

  /** Send one datagram to `addr`; waits while the send buffer is full. */
  async send(p: Uint8Array, addr: Deno.Addr): Promise<number> {
    if (addr.transport !== "udp") throw new TypeError("a UDP address is needed");
    // An unpaced sender (a reverse test at -b 0) would otherwise starve the event loop.
    const pause = this.#sock.yield(this.#pollOut);
    if (pause) await pause;
    if (addr !== this.#to) {
      this.#toRaw = encodeSockaddr(addr.hostname, addr.port, this.#libc.layout);
      this.#to = addr;
    }
    if (p.length !== this.#sendLength) {
      this.#sendLength = p.length;
      this.#sendLengthBig = BigInt(p.length);
    }
    // Kept here: a send to another peer may change the cached ones while this one waits.
    const to = this.#toRaw;
    const length = this.#sendLengthBig;
    for (;;) {
      if (this.#sock.closed) throw new Deno.errors.BadResource("the socket is closed");
      const n = this.#libc.symbols.sendto(
        this.#sock.fd,
        p,
        length,
        LINUX.MSG_DONTWAIT,
        to,
        to.length,
      );
      if (n >= 0) return n;
      const errno = readErrno(this.#libc);
      if (errno === LINUX.EAGAIN || errno === LINUX.ENOBUFS) await this.#wait(LINUX.POLLOUT);
      else if (errno !== LINUX.EINTR) throw new ErrnoError("sendto", errno);
    }
  }

  close(): void {
    this.#sock.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
