/**
 * The one small interface every probe transport fills (as iperf3's protocols
 * do): send one probe, hand back each echoed probe, close. TCP frames probes
 * by their fixed size and resynchronises on their magic and run id, so a
 * byte stream that coalesces, splits, gains or loses bytes is handled; UDP
 * carries one probe per datagram.
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
import { dialStream, ensureUdpListener, isFrom, openDatagram } from "../client/dial.ts";
import { isClosedError, writeAll } from "../io.ts";
import { ProbeStreamFramer } from "./codec.ts";

/** Sends probes and delivers their echoes. */
export interface ProbeTransport {
  /** Send bytes holding one or more whole probes (UDP: exactly one). */
  send(probes: Uint8Array): Promise<void>;
  /** Whether `send` accepts several probes at once (a byte stream does). */
  readonly batches: boolean;
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
}

/** Open a probe transport to an echo server. */
export async function openProbeTransport(
  endpoint: IpEndpoint,
  options: ProbeTransportOptions = {},
): Promise<ProbeTransport> {
  const size = options.size ?? 64;
  switch (endpoint.transport) {
    case "tcp":
      return new TcpProbeTransport(
        await dialStream(endpoint, options.timeoutMs ?? 5000),
        size,
        options.runId ?? 0,
      );
    case "udp": {
      const { socket, peer } = await openDatagram(endpoint);
      try {
        ensureUdpListener(peer);
      } catch (err) {
        socket.close();
        throw err;
      }
      return new UdpProbeTransport(socket, peer, size);
    }
    default: {
      const never: never = endpoint;
      throw new Error(`unknown transport ${JSON.stringify(never)}`);
    }
  }
}

class TcpProbeTransport implements ProbeTransport {
  readonly batches = true;
  #closed = false;
  constructor(readonly conn: Deno.Conn, readonly size: number, readonly runId: number) {}

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
      if (!(this.#closed && isClosedError(err))) throw err;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.conn.close();
  }
}

class UdpProbeTransport implements ProbeTransport {
  readonly batches = false;
  #closed = false;
  constructor(
    readonly socket: Deno.DatagramConn,
    readonly peer: Deno.NetAddr,
    readonly size: number,
  ) {}

  async send(probe: Uint8Array): Promise<void> {
    try {
      await this.socket.send(probe, this.peer);
    } catch (err) {
      // A full send buffer or an ICMP error from an earlier datagram: the probe
      // is lost, which the report counts; only a closed socket ends the run.
      if (this.#closed || err instanceof Deno.errors.BadResource) throw err;
    }
  }

  async receive(onEcho: (probe: Uint8Array) => void, onMalformed: () => void): Promise<void> {
    const buf = new Uint8Array(65536);
    while (true) {
      let data: Uint8Array;
      let from: Deno.Addr;
      try {
        [data, from] = await this.socket.receive(buf);
      } catch (err) {
        if (this.#closed || isClosedError(err)) return;
        continue; // ICMP port unreachable and the like: keep listening
      }
      if (!isFrom(from, this.peer)) continue;
      if (data.length === this.size) onEcho(data);
      else onMalformed();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.close();
  }
}
