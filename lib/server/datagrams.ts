/**
 * The UDP side of a server: echo (each datagram back to its sender, unchanged)
 * or discard, from one reused receive buffer.
 *
 * @example
 * ```ts
 * import { serveDatagrams } from "./datagrams.ts";
 *
 * const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
 * const controller = new AbortController();
 * const counters = { datagramsIn: 0, datagramsOut: 0, bytesIn: 0, bytesOut: 0 };
 * const done = serveDatagrams(socket, { mode: "echo", signal: controller.signal, counters });
 * controller.abort();
 * socket.close();
 * await done;
 * ```
 *
 * @module
 */

import type { ServerMode } from "../config.ts";
import { formatAddr } from "../address.ts";
import { isClosedError } from "../io.ts";

/** Counters a datagram loop adds to. */
export interface DatagramCounters {
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
}

/** Options of {@linkcode serveDatagrams}. */
export interface ServeDatagramsOptions {
  /**
   * What to do with each datagram; `chat` is rejected before this point.
   * @default {"echo"}
   */
  mode?: ServerMode;
  /**
   * Once aborted (and the socket closed by the caller), the loop returns.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Counters to add to.
   * @default {a fresh object}
   */
  counters?: DatagramCounters;
  /**
   * The server's gate (`--allow`/`--deny`, `--rate-limit`): datagrams it refuses are dropped
   * unread and unanswered (it counts and logs them).
   * @default {undefined} (everyone)
   */
  admit?: (from: Deno.Addr) => boolean;
  /**
   * Where to log (`-v`) the first datagram of each peer.
   * @default {undefined} (no logs)
   */
  log?: (line: string) => void;
  /**
   * Offered each admitted datagram first (iperf3 tests on a shared port); true
   * means it was taken, and it is neither counted nor answered here.
   * @default {undefined}
   */
  divert?: (data: Uint8Array, from: Deno.Addr) => boolean;
  /**
   * A thread that may take the socket over after the first echo (the native echo Worker).
   * @default {undefined} (this loop serves every datagram)
   */
  handOver?: DatagramHandOver;
}

/** Largest UDP payload over IPv4 (65,535 − 8 − 20). */
export const MAX_DATAGRAM_BYTES = 65507;

/** What a loop offers another thread that serves its socket (see {@linkcode DatagramHandOver}). */
export interface DatagramServer {
  /** Serve one datagram as the loop does (gate, iperf3 divert, counters, echo); false: the socket is gone. */
  serveOne(data: Uint8Array, addr: Deno.Addr): Promise<boolean>;
  /** Log (`-v`) the first datagram of a peer, once per peer, shared with the loop's own. */
  meet(addr: Deno.Addr): void;
}

/**
 * A thread that can take the socket over (the server's native echo Worker).
 */
export interface DatagramHandOver {
  /**
   * Told after each datagram this loop echoed (the first one may start the Worker). Once
   * the Worker serves the socket, a promise: true when the loop must serve again (the
   * Worker failed), false when it let go because the server stops. Until then `undefined`.
   */
  echoed(server: DatagramServer): Promise<boolean> | undefined;
}

/** Serve datagrams until the socket is closed. */
export async function serveDatagrams(
  socket: Deno.DatagramConn,
  options: ServeDatagramsOptions = {},
): Promise<DatagramCounters> {
  const counters = options.counters ??
    { datagramsIn: 0, datagramsOut: 0, bytesIn: 0, bytesOut: 0 };
  const echo = (options.mode ?? "echo") === "echo";
  // With -v, each new peer (address and port) once; bounded.
  const peers = new Set<string>();
  const meet = (addr: Deno.Addr) => {
    const peer = formatAddr(addr);
    if (peers.has(peer)) return;
    if (peers.size >= 1024) peers.clear();
    peers.add(peer);
    options.log?.(`first datagram from udp ${peer}`);
  };
  /** Serve one datagram: "gone" once the socket is, "echoed" when a reply went out. */
  const serve = async (
    data: Uint8Array,
    addr: Deno.Addr,
  ): Promise<"gone" | "echoed" | "served"> => {
    if (options.admit && !options.admit(addr)) return "served";
    if (options.divert?.(data, addr)) return "served";
    counters.datagramsIn++;
    counters.bytesIn += data.length;
    if (options.log) meet(addr);
    if (!echo) return "served";
    try {
      // Never amplify: the reply is exactly the datagram received.
      await socket.send(data, addr);
      counters.datagramsOut++;
      counters.bytesOut += data.length;
      return "echoed";
    } catch (err) {
      if (options.signal?.aborted || err instanceof Deno.errors.BadResource) return "gone";
      // The sender vanished or its route failed: drop this reply, keep serving.
      return "served";
    }
  };
  const server: DatagramServer = {
    serveOne: async (data, addr) => (await serve(data, addr)) !== "gone",
    meet,
  };
  const buf = new Uint8Array(65536);
  while (true) {
    let data: Uint8Array;
    let addr: Deno.Addr;
    try {
      [data, addr] = await socket.receive(buf);
    } catch (err) {
      if (options.signal?.aborted || isClosedError(err)) return counters;
      continue; // e.g. an ICMP error queued on the socket: keep serving
    }
    const served = await serve(data, addr);
    if (served === "gone") return counters;
    // After an echo (not a refused or diverted datagram) another thread may take the socket:
    // then read nothing more until it lets go.
    const held = served === "echoed" ? options.handOver?.echoed(server) : undefined;
    if (held && !(await held)) return counters;
  }
}
