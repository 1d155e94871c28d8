/**
 * The one small interface every probe transport fills (as iperf3's protocols
 * do): send one probe, hand back each echoed probe, close. TCP frames probes
 * by their fixed size and resynchronises on their magic and run id, so a
 * byte stream that coalesces, splits, gains or loses bytes is handled; UDP
 * carries one probe per datagram, through an engine's connected socket
 * (`lib/engine/`: Deno's sockets, or libc's recvmmsg on Linux), which hands
 * back every echo that is waiting in one receive.
 *
 * A ping-pong on the native engine runs in a Worker instead (./pingpong.ts),
 * on `fd`: the UDP socket's, or, asked with `pingPong`, the descriptor of
 * Deno's TCP connection (found once by `findSocketFd`). Once handed over,
 * `send` and `receive` are never called: the Worker owns the socket's I/O
 * until it is done, and `close` comes after that.
 *
 * @example
 * ```ts
 * import { openProbeTransport } from "./transport.ts";
 *
 * const transport = await openProbeTransport(
 *   { transport: "udp", hostname: "127.0.0.1", port: 5050 },
 *   { size: 64, timeoutMs: 5000 },
 * );
 * const done = transport.receive((probe) => console.log(probe.length), () => {});
 * await transport.send(new Uint8Array(64));
 * transport.close();
 * await done;
 * ```
 *
 * @module
 */

import type { IpEndpoint } from "../address.ts";
import {
  dialStream,
  ensureUdpListener,
  isPortUnreachable,
  nothingListensOnUdp,
  openEngineDatagram,
  resolve,
} from "../client/dial.ts";
import { denoEngine } from "../engine/deno.ts";
import type { EngineSelection } from "../engine/select.ts";
import {
  DatagramBatch,
  type DatagramTransport,
  type EngineUse,
  TCP_ENGINE_USE,
} from "../engine/types.ts";
import { formatEndpoint } from "../address.ts";
import { isClosedError, writeAll } from "../io.ts";
import { ProbeStreamFramer } from "./codec.ts";
import type { Libc } from "../engine/native/libc.ts";
import { sharedLibc } from "../engine/native/engine.ts";
import { findSocketFd } from "../engine/native/socket_fd.ts";
import { muteInReactor } from "../engine/native/epoll_mute.ts";

/** Sends probes and delivers their echoes. */
export interface ProbeTransport {
  /** Send bytes holding one or more whole probes (UDP: exactly one). */
  send(probes: Uint8Array): Promise<void>;
  /** Whether `send` accepts several probes at once (a byte stream does). */
  readonly batches: boolean;
  /** The engine that moves the probes, and why it was chosen. */
  readonly engine: EngineUse;
  /**
   * Call `onEcho` with every echoed probe (a view valid only during the call)
   * until the transport is closed or the peer ends; resolves then.
   * `onMalformed` gets echoes of the wrong size (UDP), and bytes skipped to
   * find the next probe (TCP: once per probe's worth begun, so one stray byte
   * counts once and a garbage block the size of a probe counts once).
   */
  receive(onEcho: (probe: Uint8Array) => void, onMalformed: () => void): Promise<void>;
  /** Close the socket; `receive` then resolves. */
  close(): void;
  /**
   * The descriptor the ping-pong Worker blocks on: the native engine's UDP
   * socket, or (asked with `pingPong`) Deno's TCP connection; else undefined.
   */
  readonly fd?: number;
  /**
   * Hand the socket to the ping-pong Worker for good; returns the descriptor
   * the Worker uses from then on. TCP: Deno's event loop stops watching the
   * connection (`muteInReactor`), or every echo would wake it: a context switch
   * per round trip. Afterwards only `close` may be called, once the Worker is
   * done.
   */
  handOver?(): number;
  /** What the report says of the engine when the ping-pong Worker ran on `fd`. */
  readonly workerEngine?: EngineUse;
  /** Why the ping-pong Worker cannot take this socket (`fd` undefined), for `-v`. */
  readonly noWorker?: string;
}

/** Options of {@linkcode openProbeTransport}. */
export interface ProbeTransportOptions {
  /**
   * Bytes per probe; TCP frames the stream by it.
   * @default {64}
   */
  size?: number;
  /**
   * Connect timeout for TCP.
   * @default {5000}
   */
  timeoutMs?: number;
  /**
   * The run id every probe carries; TCP resynchronises on it.
   * @default {0}
   */
  runId?: number;
  /**
   * The engine for UDP (`--engine`, chosen by `selectEngine`); for a TCP
   * ping-pong, the native one lets the Worker take the connection.
   * @default {the deno engine}
   */
  engine?: EngineSelection;
  /**
   * A ping-pong the Worker may run: TCP finds its connection's descriptor
   * (once, `findSocketFd`) when the engine is native.
   * @default {false}
   */
  pingPong?: boolean;
}

/** Open a probe transport to an echo server. */
export async function openProbeTransport(
  endpoint: IpEndpoint,
  options: ProbeTransportOptions = {},
): Promise<ProbeTransport> {
  const size = options.size ?? 64;
  switch (endpoint.transport) {
    case "tcp": {
      const conn = await dialStream(endpoint, options.timeoutMs ?? 5000);
      let path: TcpPath;
      try {
        path = tcpPath(conn, endpoint, options);
      } catch (err) {
        conn.close();
        throw err;
      }
      return new TcpProbeTransport(conn, size, options.runId ?? 0, path);
    }
    case "udp": {
      const where = formatEndpoint(endpoint);
      const address = await resolve(endpoint, where);
      const { engine, reason } = options.engine ??
        { engine: denoEngine, reason: "the library default" };
      // The native engine's connected socket reports ICMP port unreachable itself (any host).
      const remote = { hostname: address, port: endpoint.port };
      if (engine.name === "deno") ensureUdpListener({ transport: "udp", ...remote });
      const socket = await openEngineDatagram(engine, endpoint, remote, where);
      return new UdpProbeTransport(socket, size, reason, remote);
    }
    default: {
      const never: never = endpoint;
      throw new Error(`unknown transport ${JSON.stringify(never)}`);
    }
  }
}

/** How a TCP probe's bytes move: Deno's sockets, and whether the Worker can take the connection. */
interface TcpPath {
  engine: EngineUse;
  fd?: number;
  libc?: Libc;
  workerEngine?: EngineUse;
  noWorker?: string;
}

/**
 * A TCP probe always connects (and, off the Worker, runs) on Deno's sockets;
 * a ping-pong on the native engine hands its connection's descriptor to the
 * Worker, which then owns all I/O on it until it is done.
 */
function tcpPath(conn: Deno.Conn, endpoint: IpEndpoint, options: ProbeTransportOptions): TcpPath {
  const selection = options.engine;
  if (!options.pingPong) return { engine: TCP_ENGINE_USE };
  const onDeno = (why: string): TcpPath => ({
    engine: { ...TCP_ENGINE_USE, reason: `TCP runs on Deno's sockets: ${why}` },
    noWorker: why,
  });
  if (endpoint.source !== undefined) {
    return onDeno("--source connects through node:net, which reads the socket itself");
  }
  if (selection === undefined) return { engine: TCP_ENGINE_USE, noWorker: "no engine chosen" };
  if (selection.engine.name !== "native") return onDeno(selection.reason);
  const libc = sharedLibc();
  if ("reason" in libc) return onDeno(`native engine unavailable (${libc.reason})`);
  const fd = findSocketFd(libc, {
    type: "tcp",
    local: conn.localAddr as Deno.NetAddr,
    remote: conn.remoteAddr as Deno.NetAddr,
  });
  if (fd === undefined) return onDeno("the connection's descriptor was not found");
  const how = selection.reason.startsWith("auto") ? "auto" : "asked for";
  return {
    engine: TCP_ENGINE_USE,
    fd,
    libc,
    workerEngine: {
      ...TCP_ENGINE_USE,
      engine: "native",
      blockingWorker: true,
      reason: `${how}: connected by Deno, then blocking send/recv through ${libc.path} in a Worker`,
    },
  };
}

class TcpProbeTransport implements ProbeTransport {
  readonly batches = true;
  readonly engine: EngineUse;
  readonly workerEngine?: EngineUse;
  readonly noWorker?: string;
  readonly #fd?: number;
  readonly #libc?: Libc;
  #closed = false;
  constructor(
    readonly conn: Deno.Conn,
    readonly size: number,
    readonly runId: number,
    path: TcpPath,
  ) {
    this.engine = path.engine;
    if (path.fd !== undefined) this.#fd = path.fd;
    if (path.libc) this.#libc = path.libc;
    if (path.workerEngine) this.workerEngine = path.workerEngine;
    if (path.noWorker !== undefined) this.noWorker = path.noWorker;
  }

  /**
   * The connection's descriptor for the ping-pong Worker: once it is handed
   * over, this side never reads or writes the connection again, only closes
   * it after the Worker is done.
   */
  get fd(): number | undefined {
    return this.#closed ? undefined : this.#fd;
  }

  handOver(): number {
    const fd = this.#fd;
    if (this.#closed || fd === undefined || this.#libc === undefined) {
      throw new Error("no descriptor to hand over");
    }
    // Deno does no more I/O on it (and closes it only once the Worker is done).
    muteInReactor(this.#libc, fd);
    return fd;
  }

  send(probes: Uint8Array): Promise<void> {
    return writeAll(this.conn, probes);
  }

  async receive(onEcho: (probe: Uint8Array) => void, onMalformed: () => void): Promise<void> {
    // Framed on each probe's magic and run id, so a stream that gained or lost
    // bytes costs the probes it touched, not every probe after it.
    const framer = new ProbeStreamFramer(this.size, this.runId);
    // Skipped bytes count as malformed echoes, one per probe's worth begun.
    const onSkipped = (bytes: number) => {
      for (let i = 0; i < bytes; i += this.size) onMalformed();
    };
    try {
      while (true) {
        const n = await this.conn.read(framer.space());
        if (n === null) {
          framer.end(onSkipped);
          return;
        }
        framer.commit(n, onEcho, onSkipped);
      }
    } catch (err) {
      // Closed by this side (after the timeout, or stopped) or broken: bytes skipped since
      // the last probe were still echoes that came back broken (the last one, say).
      framer.stop(onSkipped);
      if (!(this.#closed && isClosedError(err))) throw err;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.conn.close();
  }
}

/** Echoes waiting in the kernel handed back per receive (one recvmmsg on the native engine). */
const UDP_RECEIVE_BATCH = 64;

class UdpProbeTransport implements ProbeTransport {
  readonly batches = false;
  readonly engine: EngineUse;
  readonly workerEngine: EngineUse;
  readonly noWorker?: string;
  #closed = false;
  #out: DatagramBatch;
  /** Slots one byte larger than a probe, so a longer echo shows as malformed, not cut to fit. */
  #in: DatagramBatch;
  /** A view of exactly one probe per receive slot, made once. */
  #echoes: Uint8Array[];

  constructor(
    readonly socket: DatagramTransport,
    readonly size: number,
    reason: string,
    readonly remote: { hostname: string; port: number },
  ) {
    this.#out = new DatagramBatch(1, size);
    const slot = size + 1;
    this.#in = new DatagramBatch(
      Math.max(1, Math.min(UDP_RECEIVE_BATCH, Math.floor((1 << 20) / slot))),
      slot,
    );
    // What this transport uses: one probe per send, as many echoes per receive as are waiting.
    this.engine = {
      ...socket.features,
      sendBatch: 1,
      receiveBatch: Math.min(socket.features.receiveBatch, this.#in.capacity),
      reason,
    };
    this.workerEngine = {
      ...this.engine,
      sendBatch: 1,
      receiveBatch: 1,
      blockingWorker: true,
      reason: `${reason}; ping-pong: blocking recv in a Worker`,
    };
    if (socket.fd === undefined) this.noWorker = `the ${socket.features.engine} engine`;
    this.#echoes = Array.from(
      { length: this.#in.capacity },
      (_, i) => this.#in.data.subarray(i * slot, i * slot + size),
    );
  }

  get fd(): number | undefined {
    return this.#closed ? undefined : this.socket.fd;
  }

  async send(probe: Uint8Array): Promise<void> {
    this.#out.data.set(probe);
    this.#out.fill(1, probe.length);
    try {
      await this.socket.sendBatch(this.#out);
    } catch (err) {
      // ICMP port unreachable (connected socket): nothing listens there, which ends the run.
      if (!this.#closed && isPortUnreachable(err)) throw nothingListensOnUdp(this.remote);
      // A full send buffer or another ICMP error from an earlier datagram: the probe
      // is lost, which the report counts; only a closed socket ends the run.
      if (this.#closed || isClosedError(err)) throw err;
    }
  }

  async receive(onEcho: (probe: Uint8Array) => void, onMalformed: () => void): Promise<void> {
    const batch = this.#in;
    while (true) {
      let n: number;
      try {
        n = await this.socket.receiveBatch(batch);
      } catch (err) {
        if (this.#closed || isClosedError(err)) return;
        if (isPortUnreachable(err)) throw nothingListensOnUdp(this.remote);
        continue; // other ICMP errors (host unreachable) and the like: keep listening
      }
      if (n === 0) return; // closed
      for (let i = 0; i < n; i++) {
        if (batch.lengths[i] === this.size) onEcho(this.#echoes[i]!);
        else onMalformed();
      }
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.close();
  }
}
