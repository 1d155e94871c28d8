/**
 * The portable engine: Deno's UDP sockets (`Deno.listenDatagram`), every OS.
 * One op per datagram (Deno has no batch call), so batches are sent in a
 * loop and a receive returns one datagram. "Connected" is emulated: sends go
 * to the remote, and datagrams from anyone else are dropped.
 *
 * @example
 * ```ts
 * import { denoEngine } from "./deno.ts";
 *
 * using socket = await denoEngine.open({ remote: { hostname: "127.0.0.1", port: 5050 } });
 * console.log(socket.local.port);
 * ```
 *
 * @module
 */

import type {
  DatagramBatch,
  DatagramListener,
  DatagramTransport,
  Engine,
  HostPort,
  ListenOptions,
  OpenOptions,
} from "./types.ts";

function sameHost(a: string, b: string): boolean {
  return a.replace(/^\[|\]$/g, "").toLowerCase() === b.replace(/^\[|\]$/g, "").toLowerCase();
}

class DenoUdpSocket implements DatagramTransport {
  readonly features = {
    engine: "deno" as const,
    sendBatch: 1,
    receiveBatch: 1,
    gso: false,
    gro: false,
  };
  readonly local: HostPort;
  #conn: Deno.DatagramConn;
  #remote: Deno.NetAddr;
  #closed = false;
  /** Per batch, one view per slot, made once. */
  #slots = new WeakMap<DatagramBatch, Uint8Array[]>();

  constructor(conn: Deno.DatagramConn, remote: HostPort) {
    this.#conn = conn;
    this.#remote = { transport: "udp", hostname: remote.hostname, port: remote.port };
    const addr = conn.addr as Deno.NetAddr;
    this.local = { hostname: addr.hostname, port: addr.port };
  }

  #slotsFor(batch: DatagramBatch): Uint8Array[] {
    let slots = this.#slots.get(batch);
    if (!slots) {
      slots = Array.from(
        { length: batch.capacity },
        (_, i) => batch.data.subarray(i * batch.slotSize, (i + 1) * batch.slotSize),
      );
      this.#slots.set(batch, slots);
    }
    return slots;
  }

  async sendBatch(batch: DatagramBatch): Promise<number> {
    const slots = this.#slotsFor(batch);
    for (let i = 0; i < batch.count; i++) {
      if (this.#closed) return i;
      const length = batch.lengths[i]!;
      const slot = slots[i]!;
      await this.#conn.send(length === slot.length ? slot : slot.subarray(0, length), this.#remote);
    }
    return batch.count;
  }

  async receiveBatch(batch: DatagramBatch): Promise<number> {
    const slot = this.#slotsFor(batch)[0]!;
    for (;;) {
      let data: Uint8Array, from: Deno.Addr;
      try {
        [data, from] = await this.#conn.receive(slot);
      } catch (err) {
        if (this.#closed) {
          batch.count = 0;
          return 0;
        }
        throw err;
      }
      const addr = from as Deno.NetAddr;
      // The peer's own spelling compares without allocating; sameHost only for another one.
      if (
        addr.port !== this.#remote.port ||
        (addr.hostname !== this.#remote.hostname &&
          !sameHost(addr.hostname, this.#remote.hostname))
      ) {
        continue; // not our peer: a connected socket never sees it
      }
      batch.lengths[0] = data.length;
      batch.count = 1;
      return 1;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** The portable engine. */
export const denoEngine: Engine = {
  name: "deno",
  open(options: OpenOptions): Promise<DatagramTransport> {
    return new Promise((resolve) => {
      const v6 = options.remote.hostname.includes(":");
      const local = options.local ?? { hostname: v6 ? "::" : "0.0.0.0", port: 0 };
      const conn = Deno.listenDatagram({
        transport: "udp",
        hostname: local.hostname,
        port: local.port,
      });
      resolve(new DenoUdpSocket(conn, options.remote));
    });
  },
  listen(options: ListenOptions): Promise<DatagramListener> {
    // Deno's socket is the listener itself (its receive buffer cannot be sized).
    return new Promise((resolve) =>
      resolve(Deno.listenDatagram({ transport: "udp", ...options.local }))
    );
  },
};
