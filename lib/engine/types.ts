/**
 * The one transport interface of netkit's engines (like iperf3's
 * `struct protocol`): open a connected datagram socket, send a batch, receive
 * a batch, close, and say which features it used. Two engines implement it:
 * `deno.ts` (Deno's socket APIs, every OS) and `native/` (Linux, FFI to libc:
 * `sendmmsg`/`recvmmsg`). A {@linkcode DatagramBatch} is allocated once and
 * reused: one buffer of fixed-size slots and a length per slot, so the hot
 * path allocates nothing per datagram.
 *
 * @example
 * ```ts
 * import { DatagramBatch } from "./types.ts";
 * import { selectEngine } from "./select.ts";
 *
 * const { engine } = selectEngine("auto");
 * using socket = await engine.open({ remote: { hostname: "127.0.0.1", port: 5050 } });
 * const batch = new DatagramBatch(32, 1400);
 * batch.fill(32, 1400); // 32 datagrams of 1,400 bytes (zeros)
 * await socket.sendBatch(batch);
 * ```
 *
 * @module
 */

/** Which engine moved the datagrams, and with which kernel features. */
export interface EngineFeatures {
  engine: "deno" | "native";
  /** Datagrams per send call at most (1: one op per datagram). */
  sendBatch: number;
  /** Datagrams per receive call at most. */
  receiveBatch: number;
  /** UDP generic segmentation offload used for sends. */
  gso: boolean;
  /** UDP generic receive offload used for receives. */
  gro: boolean;
  /** The socket's receive buffer as the kernel reports it (bytes), where known. */
  receiveBuffer?: number;
  /** Blocking `send`/`recv` in a Worker (the native engine's ping-pong), not the event loop. */
  blockingWorker?: boolean;
  /** The socket's send buffer as the kernel reports it (bytes), where known. */
  sendBuffer?: number;
  /** TCP: the receive low-water mark (`SO_RCVLOWAT`, bytes) raised while the stream ran fast. */
  receiveLowWater?: number;
}

/**
 * What a report says about the engine a run used: its features, and one
 * sentence saying why it was chosen (`auto: sendmmsg/recvmmsg through …`, or
 * why it fell back).
 */
export interface EngineUse extends EngineFeatures {
  reason: string;
}

/** A TCP run's engine: TCP always runs on Deno's sockets (the engines move UDP). */
export const TCP_ENGINE_USE: Readonly<EngineUse> = {
  engine: "deno",
  sendBatch: 1,
  receiveBatch: 1,
  gso: false,
  gro: false,
  reason: "TCP runs on Deno's sockets (the native engine moves UDP)",
};

/**
 * A TCP run's engine given the highest receive low-water mark its receivers
 * raised (bytes; 0: none): {@linkcode TCP_ENGINE_USE}, or that with the mark.
 */
export function tcpEngineUse(lowWater: number): EngineUse {
  if (lowWater <= 0) return TCP_ENGINE_USE;
  return {
    ...TCP_ENGINE_USE,
    receiveLowWater: lowWater,
    reason:
      "TCP runs on Deno's sockets; the native engine raised their receive low-water mark (SO_RCVLOWAT) while the stream ran fast",
  };
}

/** An IP address and port. */
export interface HostPort {
  hostname: string;
  port: number;
}

/** How to open a socket. */
export interface OpenOptions {
  /** The peer: the socket sends only there and receives only from there. */
  remote: HostPort;
  /** The local address to bind; default: the wildcard of the remote's family, port 0. */
  local?: HostPort;
  /** Ask the kernel for this receive buffer (bytes); it may grant less. */
  receiveBuffer?: number;
  /** Ask the kernel for this send buffer (bytes). */
  sendBuffer?: number;
  /**
   * UDP GSO: the kernel cuts each datagram sent into segments of this many
   * bytes (`UDP_SEGMENT`); where it cannot, `features.gso` stays false.
   */
  gsoSegment?: number;
  /**
   * Native engine: where a receive that must wait waits. `"event-loop"`: in
   * Deno's, woken by the kernel on the main thread, for paced traffic whose
   * timing is measured (probes, messages, paced tests); opening costs a
   * search for the socket's descriptor (about 100 us with 100 sockets open).
   * `"pool"`: in a `poll` on a thread of Deno's pool, a hand-over between
   * threads per wait that lets a flood's next batch gather (a flood received
   * that way delivered 5–8% more).
   * @default {"pool"}
   */
  receiveWait?: "event-loop" | "pool";
}

/**
 * Up to `capacity` datagrams of at most `slotSize` bytes each, in one buffer:
 * datagram `i` is `data.subarray(i * slotSize, i * slotSize + lengths[i])`.
 * A received datagram longer than `slotSize` is cut to it (as by `recv`), so
 * receive batches take slots as large as the largest datagram expected.
 */
export class DatagramBatch {
  /** The slots, back to back. */
  readonly data: Uint8Array<ArrayBuffer>;
  /** The length of each datagram in the batch. */
  readonly lengths: Uint32Array;
  /** Datagrams in the batch (to send, or received). */
  count = 0;

  constructor(readonly capacity: number, readonly slotSize: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError("capacity must be >= 1");
    if (!Number.isInteger(slotSize) || slotSize < 1 || slotSize > 65_535) {
      throw new RangeError("slotSize must be 1 to 65535");
    }
    this.data = new Uint8Array(capacity * slotSize);
    this.lengths = new Uint32Array(capacity);
  }

  /** The bytes of datagram `i` (a view, not a copy). */
  slot(i: number): Uint8Array {
    const start = i * this.slotSize;
    return this.data.subarray(start, start + (this.lengths[i] ?? 0));
  }

  /** Mark the first `count` slots as datagrams of `length` bytes each (contents unchanged). */
  fill(count: number, length: number): void {
    if (count > this.capacity || length > this.slotSize) throw new RangeError("batch overflow");
    this.lengths.fill(length, 0, count);
    this.count = count;
  }
}

/** A connected datagram socket of one engine. Close it (or `using`) exactly once. */
export interface DatagramTransport extends Disposable {
  readonly features: EngineFeatures;
  /** The bound local address. */
  readonly local: HostPort;
  /** The socket's descriptor (native engine only), for a Worker that blocks on it. */
  readonly fd?: number;
  /**
   * Send `batch.count` datagrams; resolves with how many the kernel took (all
   * of them unless the socket failed: it waits while the send buffer is full).
   */
  sendBatch(batch: DatagramBatch): Promise<number>;
  /**
   * Wait for at least one datagram and receive up to `batch.capacity`; sets
   * `batch.count` and `batch.lengths`, and resolves with the count (0 once closed).
   */
  receiveBatch(batch: DatagramBatch): Promise<number>;
  close(): void;
}

/**
 * An unconnected datagram socket that serves many peers: the part of
 * `Deno.DatagramConn` a server uses, so Deno's own socket is the deno
 * engine's listener. The native one fills a batch per `recvmmsg` and hands
 * the datagrams out one `receive` at a time; `data` is a view valid until the
 * next `receive`.
 */
export interface DatagramListener {
  readonly addr: Deno.Addr;
  /** Whether the kernel hands over GRO runs (cut back into datagrams by `receive`). */
  readonly gro?: boolean;
  /** GRO runs received so far (each held more than one datagram). */
  readonly groRuns?: number;
  receive(p?: Uint8Array): Promise<[Uint8Array, Deno.Addr]>;
  /**
   * The next datagram already received (the rest of a batch), without waiting;
   * undefined when none is. Only where a listener receives in batches (native).
   */
  receiveReady?(): [Uint8Array, Deno.Addr] | undefined;
  send(p: Uint8Array, addr: Deno.Addr): Promise<number>;
  close(): void;
}

/** How to open a listener. */
export interface ListenOptions {
  local: HostPort;
  /** Largest datagram expected (a longer one is cut to it). */
  maxDatagram: number;
  /** Ask the kernel for this receive buffer (bytes). */
  receiveBuffer?: number;
  /**
   * UDP GRO (`UDP_GRO`): the kernel may hand over a run of datagrams from one
   * sender (a GSO send) in one piece, which the listener cuts back into its
   * datagrams; its receive batch then takes {@linkcode GRO_BATCH_BYTES}.
   * Where it cannot, `gro` of the listener stays false.
   */
  gro?: boolean;
}

/** Bytes of a listener's receive batch with GRO: four slots of a whole GRO run (64 KiB) each. */
export const GRO_BATCH_BYTES = 4 * 65_535;

/**
 * A TCP connection's receive low-water mark (`SO_RCVLOWAT`): the reader is
 * woken once that many bytes wait, or the stream ends.
 */
export interface ReceiveLowWater {
  /** The mark now (1: the kernel's default, every byte wakes the reader). */
  readonly bytes: number;
  /** Set the mark; false if the socket is gone or the kernel refused (nothing changed). */
  set(bytes: number): boolean;
}

/** An engine: opens transports. */
export interface Engine {
  readonly name: "deno" | "native";
  open(options: OpenOptions): Promise<DatagramTransport>;
  /** An unconnected socket bound to `options.local`. */
  listen(options: ListenOptions): Promise<DatagramListener>;
  /**
   * The receive low-water mark of one of Deno's TCP connections, where the
   * engine can set it (the native one: through libc); undefined where it cannot.
   */
  receiveLowWater?(conn: Deno.Conn): ReceiveLowWater | undefined;
}
