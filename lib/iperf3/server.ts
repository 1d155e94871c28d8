/**
 * The server role for iperf3 clients (`iperf3 -c` against `netkit server`).
 * The server's connection handler sniffs a 37-byte iperf3 cookie on a TCP
 * connection's first bytes and hands the connection here: a new cookie opens
 * a control connection, a known one is a TCP data stream of that test. Any
 * number of tests run at once (iperf3's own server takes one).
 *
 * UDP data comes to the same port number, as iperf3 expects. While at least
 * one iperf3 UDP test runs, the server listens for UDP on its TCP port's
 * address and port (or shares the UDP socket that `--proto both` already has
 * there, taking only the datagrams of its tests and leaving the rest to the
 * echo or discard behaviour), and closes it with the last test.
 *
 * Defences, as for netkit's own protocol:
 * - every datagram passes the server's access list and rate limit first;
 * - a UDP stream is bound only to the source of a connect message whose IP is
 *   the control connection's, while that test waits for its streams; one test
 *   per client IP binds at a time, so two tests from one host never mix. The
 *   reply to a connect message is 4 bytes, the size of the message: nothing
 *   larger goes to an address before it has bound a stream, and the server
 *   streams (`-R`) only to bound addresses;
 * - parameters are checked (streams, sizes, duration) and test buffers are
 *   reserved from a budget before the streams are made;
 * - setup steps time out, a running test whose bytes stop moving ends, and
 *   every test ends at the latest its duration plus a grace period.
 *
 * @example
 * ```ts
 * import { Iperf3Server } from "./server.ts";
 *
 * const iperf3 = new Iperf3Server();
 * // In a server's connection handler, after reading the first bytes:
 * // if (Iperf3Server.sniff(first)) await iperf3.handle(conn, first);
 * ```
 *
 * @module
 */

import { delay } from "@std/async/delay";
import { formatAddr } from "../address.ts";
import type { Engine } from "../engine/types.ts";
import { formatLowWater } from "../engine/report.ts";
import { type TestMemory, watchStall } from "../throughput/hub.ts";
import { closeQuietly, writeAll } from "../io.ts";
import { Iperf3Stream, receiveTcp, sendTcp, sendUdp, wallMs } from "./streams.ts";
import {
  buildResults,
  connectMessageOrder,
  ControlReader,
  COOKIE_SIZE,
  cookieText,
  encodeJson,
  type Iperf3Params,
  IperfErrno,
  isCookie,
  MAX_PARAMS_BYTES,
  MAX_RESULTS_BYTES,
  parseParams,
  parseResults,
  serverError,
  State,
  stateByte,
  UDP_CONNECT_REPLY,
  udpWord,
  WireError,
} from "./wire.ts";

/** How long a client may take for each setup step (parameters, streams). */
export const SETUP_TIMEOUT_MS = 10_000;
/** How long past its duration and warm-up a test may run before the server ends it. */
export const TEST_GRACE_MS = 10_000;
/** How long a UDP receiver keeps reading queued datagrams after TEST_END. */
const UDP_DRAIN_MS = 200;
/** Receive buffer of a TCP data stream. */
const TCP_RECEIVE_BUFFER = 256 * 1024;
/** Memory of a UDP receiver: its sequence bitmap (4,194,304 bits). */
const UDP_RECEIVER_BYTES = 512 * 1024;

/** Options of {@linkcode Iperf3Server}. */
export interface Iperf3ServerOptions {
  /** Counters to add every test's bytes and datagrams to (the server's summary). @default {undefined} */
  counters?: { bytesIn: number; bytesOut: number; datagramsIn: number; datagramsOut: number };
  /** Where to log test starts, ends and refusals. @default {() => {}} */
  log?: (line: string) => void;
  /**
   * The server's gate for a datagram on a UDP port this module opened
   * (`--allow`/`--deny`, `--rate-limit`); false drops it unread.
   * @default {() => true}
   */
  admitDatagram?: (from: Deno.Addr) => boolean;
  /**
   * The server's test buffer budget (`--max-test-memory`), shared with netkit's own tests.
   * @default {undefined} (no budget)
   */
  memory?: TestMemory;
  /**
   * The server's engine: where it can (native), a fast TCP stream's receive
   * low-water mark is raised, as for netkit's own tests.
   * @default {undefined} (Deno's sockets alone)
   */
  engine?: Engine;
}

type Phase = "params" | "streams" | "running" | "ending";

class Test {
  readonly stop = new AbortController();
  phase: Phase = "params";
  params: Iperf3Params | undefined;
  streams: Iperf3Stream[] = [];
  readonly tcp: { conn: Deno.Conn; initial: Uint8Array }[] = [];
  readonly udpPeers: Deno.NetAddr[] = [];
  udp: UdpPort | undefined;
  attached: (() => void) | undefined;
  grant: { release(): void } | undefined;
  /** The largest receive low-water mark a stream raised (0: none). */
  lowWater = 0;

  constructor(readonly cookie: string, readonly peerIp: string, readonly label: string) {}

  /** The test still runs (its connections are active for the server's idle timeout). */
  get running(): boolean {
    return !this.stop.signal.aborted;
  }

  get wanted(): number {
    const p = this.params!;
    return p.bidirectional ? 2 * p.parallel : p.parallel;
  }

  get bytes(): number {
    return this.streams.reduce((a, s) => a + s.bytes, 0);
  }
}

/** A UDP socket on the server's port, shared by the tests that use it. */
interface UdpPort {
  socket: Deno.DatagramConn;
  /** Opened here (closed with the last test), or the server's own `--proto both` socket. */
  owned: boolean;
  users: number;
  loop?: Promise<void>;
}

/** Serves iperf3 clients. */
export class Iperf3Server {
  readonly #tests = new Map<string, Test>();
  /** UDP flows bound to a stream, by `host:port` of their source. */
  /** (Keyed by port, then host as the socket reports it: no string is built per datagram.) */
  readonly #flows = new Map<number, Map<string, { test: Test; stream: number }>>();
  #flowCount = 0;
  /** The test of each client IP that is binding its UDP streams now. */
  readonly #binding = new Map<string, Test>();
  /** Tests waiting for their client IP's turn to bind UDP streams. */
  readonly #bindQueue = new Map<string, (() => void)[]>();
  /** UDP sockets by `host|port` (opened here) or `*|port` (the server's own, shared). */
  readonly #ports = new Map<string, UdpPort>();
  readonly #log: (line: string) => void;
  readonly #counters: Iperf3ServerOptions["counters"];
  readonly #admit: (from: Deno.Addr) => boolean;
  readonly #memory: TestMemory | undefined;
  readonly #engine: Engine | undefined;

  constructor(options: Iperf3ServerOptions = {}) {
    this.#log = options.log ?? (() => {});
    this.#counters = options.counters;
    this.#admit = options.admitDatagram ?? (() => true);
    this.#memory = options.memory;
    this.#engine = options.engine;
  }

  /** Whether a connection's first bytes are an iperf3 cookie. */
  static sniff(first: Uint8Array): boolean {
    return isCookie(first);
  }

  /** Tests running now. */
  get active(): number {
    return this.#tests.size;
  }

  /**
   * Share the server's own UDP socket on `port` (`--proto both`): the server's
   * datagram loop offers each datagram to {@linkcode divert} first.
   */
  shareUdp(port: number, socket: Deno.DatagramConn): void {
    this.#ports.set(`*|${port}`, { socket, owned: false, users: 0 });
  }

  /**
   * A datagram that arrived on a shared socket (after the gate): true when it
   * belongs to an iperf3 test and was taken; false leaves it to the server.
   */
  divert(data: Uint8Array, from: Deno.Addr, socket: Deno.DatagramConn): boolean {
    if (this.#flowCount === 0 && this.#binding.size === 0) return false;
    return this.#dispatch(data, from as Deno.NetAddr, socket);
  }

  /**
   * Serve one connection that started with a cookie (`first` holds what was
   * read). `onTest` learns the test the connection belongs to: while it runs,
   * the server's idle timeout leaves the connection alone (the test's own
   * setup timeouts, stall watchdog and deadline end it).
   */
  async handle(
    conn: Deno.Conn,
    first: Uint8Array,
    onTest?: (test: { readonly running: boolean }) => void,
  ): Promise<void> {
    const cookie = cookieText(first);
    const test = this.#tests.get(cookie);
    if (test) {
      await this.#attach(test, conn, first.subarray(COOKIE_SIZE), onTest);
      return;
    }
    await this.#control(conn, cookie, first.subarray(COOKIE_SIZE), onTest);
  }

  /** Stop every test (server shutdown). */
  closeAll(): void {
    for (const test of this.#tests.values()) test.stop.abort("server shutting down");
  }

  async #attach(
    test: Test,
    conn: Deno.Conn,
    rest: Uint8Array,
    onTest?: (test: { readonly running: boolean }) => void,
  ): Promise<void> {
    if (
      test.phase !== "streams" || test.params?.proto !== "tcp" || test.tcp.length >= test.wanted
    ) {
      // iperf3's answer to a stream it does not expect.
      await writeAll(conn, stateByte(State.ACCESS_DENIED)).catch(() => {});
      return;
    }
    test.tcp.push({ conn, initial: rest });
    onTest?.(test);
    test.attached?.();
    // The connection now belongs to the test, which closes it; hold the handler until then.
    await new Promise<void>((resolve) => {
      if (test.stop.signal.aborted) resolve();
      else test.stop.signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  async #control(
    conn: Deno.Conn,
    cookie: string,
    rest: Uint8Array,
    onTest?: (test: { readonly running: boolean }) => void,
  ): Promise<void> {
    const peer = conn.remoteAddr as Deno.NetAddr;
    const test = new Test(cookie, bareIp(peer.hostname), formatAddr(peer));
    this.#tests.set(cookie, test);
    const reader = new ControlReader(conn, rest);
    const closeAllOf = () => {
      for (const { conn } of test.tcp) closeQuietly(conn);
      closeQuietly(conn);
    };
    test.stop.signal.addEventListener("abort", closeAllOf, { once: true });
    let outcome = "";
    try {
      onTest?.(test);
      outcome = await this.#run(test, conn, reader);
    } catch (err) {
      const why = test.stop.signal.aborted
        ? String(test.stop.signal.reason)
        : (err as Error).message;
      outcome = `ended early (${why})`;
      if (err instanceof WireError && !test.stop.signal.aborted) {
        const { errno, os } = err as WireError & { errno?: number; os?: number };
        await writeAll(conn, serverError(errno ?? IperfErrno.IERECVPARAMS, os ?? 0)).catch(
          () => {},
        );
      }
    } finally {
      test.stop.abort("done");
      this.#release(test);
      this.#tally(test);
      this.#tests.delete(cookie);
      this.#log(`iperf3 test from ${test.label}: ${outcome}`);
    }
  }

  async #run(
    test: Test,
    conn: Deno.Conn,
    reader: ControlReader,
  ): Promise<string> {
    const signal = test.stop.signal;
    const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${what} did not come in time`)), ms);
        const onAbort = () => reject(new Error(String(signal.reason)));
        signal.addEventListener("abort", onAbort, { once: true });
        p.then(resolve, reject).finally(() => {
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
        });
      });
    await writeAll(conn, stateByte(State.PARAM_EXCHANGE));
    const params = parseParams(
      await within(reader.json(MAX_PARAMS_BYTES, "parameters"), SETUP_TIMEOUT_MS, "the parameters"),
    );
    const size = params.len > 0 ? params.len : params.proto === "udp" ? 1460 : 128 * 1024;
    test.params = { ...params, len: size };
    const streamsWanted = test.wanted;
    // Counted as if nothing were shared: a block per sending stream, a receive buffer (TCP) or
    // sequence bitmap (UDP) per receiving one, and the UDP socket's buffer.
    const sending = params.bidirectional ? params.parallel : params.reverse ? params.parallel : 0;
    const receiving = streamsWanted - sending;
    const need = sending * size +
      receiving * (params.proto === "tcp" ? TCP_RECEIVE_BUFFER : UDP_RECEIVER_BYTES) +
      (params.proto === "udp" ? 65536 : 0);
    const grant = this.#memory?.reserve(need, `${streamsWanted} streams of ${size} B`);
    if (typeof grant === "string") {
      // iperf3 says "unable to create a new stream: Cannot allocate memory" (ENOMEM).
      throw Object.assign(new WireError(grant), { errno: IperfErrno.IECREATESTREAM, os: 12 });
    }
    test.grant = grant;
    this.#log(
      `iperf3 test from ${test.label}: ${params.proto}${
        params.reverse ? " reverse" : params.bidirectional ? " bidir" : ""
      }, ${params.parallel} stream(s) of ${size} B, ${params.timeS} s${
        params.omitS ? ` + ${params.omitS} s omitted` : ""
      }${params.bandwidth ? `, ${params.bandwidth} bit/s per stream` : ""}`,
    );
    // The client says nothing until TEST_END; reading now notices a close at once.
    const said = reader.state();
    said.then(
      (s) => s === null && test.stop.abort("control connection closed"),
      () => test.stop.abort("control connection failed"),
    );
    const hardStop = setTimeout(
      () => test.stop.abort("past its deadline"),
      2 * SETUP_TIMEOUT_MS + (params.timeS + params.omitS) * 1000 + TEST_GRACE_MS,
    );
    try {
      if (params.proto === "udp") {
        test.udp = this.#openUdp(conn.localAddr as Deno.NetAddr);
        await within(this.#turnToBind(test), SETUP_TIMEOUT_MS, "the turn to bind UDP streams");
      }
      test.phase = "streams";
      await writeAll(conn, stateByte(State.CREATE_STREAMS));
      await within(
        new Promise<void>((resolve) => {
          const check = () => {
            const have = params.proto === "tcp" ? test.tcp.length : test.udpPeers.length;
            if (have >= streamsWanted) resolve();
          };
          test.attached = check;
          check();
        }),
        SETUP_TIMEOUT_MS,
        "the data streams",
      );
      test.attached = undefined;
      this.#endBinding(test);
      // Which streams the server sends on: with --bidir the client's senders come first.
      const sends = (i: number) => params.bidirectional ? i >= params.parallel : params.reverse;
      test.streams = Array.from(
        { length: streamsWanted },
        (_, i) => new Iperf3Stream(i, sends(i), params.proto, size, params.udp64),
      );
      await writeAll(conn, stateByte(State.TEST_START));
      const start = performance.now();
      for (const s of test.streams) s.begin(start);
      test.phase = "running";
      await writeAll(conn, stateByte(State.TEST_RUNNING));
      const loops: Promise<void>[] = [];
      const until = start + (params.timeS + params.omitS) * 1000;
      const sendStop = new AbortController();
      signal.addEventListener("abort", () => sendStop.abort(), { once: true });
      for (const [i, s] of test.streams.entries()) {
        if (params.proto === "tcp") {
          const { conn: c, initial } = test.tcp[i]!;
          loops.push(
            s.sender
              ? sendTcp(c, s, params.bandwidth, sendStop.signal, until)
              : receiveTcp(c, s, { initial, engine: this.#engine }).then((mark) => {
                test.lowWater = Math.max(test.lowWater, mark);
              }),
          );
        } else if (s.sender) {
          loops.push(
            sendUdp(
              test.udp!.socket,
              test.udpPeers[i]!,
              s,
              params.bandwidth,
              sendStop.signal,
              until,
            ),
          );
        }
      }
      // Senders stop at the agreed end even before TEST_END arrives: the client counts up to
      // its own clock's end, and nothing is sent past what was agreed.
      const sendEnd = setTimeout(() => sendStop.abort(), (params.timeS + params.omitS) * 1000);
      const omitTimer = params.omitS > 0
        ? setTimeout(() => {
          const now = performance.now();
          for (const s of test.streams) s.endOmit(now);
        }, params.omitS * 1000)
        : undefined;
      // A client that vanishes stops moving bytes: end its test within seconds.
      const gapMs = params.bandwidth > 0 ? (size * 8 * 1000) / params.bandwidth : 0;
      const watchdog = watchStall(() => test.bytes, gapMs, test.stop);
      let state: number | null;
      try {
        state = await said;
      } finally {
        clearInterval(watchdog);
        clearTimeout(omitTimer);
        clearTimeout(sendEnd);
      }
      if (signal.aborted) throw new Error(String(signal.reason));
      const end = performance.now();
      if (params.proto === "udp" && test.streams.some((s) => !s.sender)) {
        // Datagrams the client sent before TEST_END may still wait in the socket: count them.
        await delay(UDP_DRAIN_MS);
      }
      test.phase = "ending";
      sendStop.abort();
      for (const s of test.streams) s.end(end);
      if (state === State.CLIENT_TERMINATE) return "the client terminated the test";
      if (state !== State.TEST_END) {
        throw new WireError(`the client sent state ${state} where TEST_END was due`);
      }
      // iperf3 closes the streams at TEST_END; the client's receivers see their end.
      for (const { conn: c } of test.tcp) closeQuietly(c);
      this.#unbindFlows(test);
      await Promise.allSettled(loops);
      await writeAll(conn, stateByte(State.EXCHANGE_RESULTS));
      const theirs = parseResults(
        await within(reader.json(MAX_RESULTS_BYTES, "results"), SETUP_TIMEOUT_MS, "the results"),
        streamsWanted,
      );
      const byId = new Map(theirs.streams.map((r) => [r.id, r]));
      await writeAll(
        conn,
        encodeJson(buildResults(
          test.streams.map((s) => s.result(s.seconds)),
          params.reverse || params.bidirectional ? 0 : -1,
        )),
      );
      await writeAll(conn, stateByte(State.DISPLAY_RESULTS));
      // IPERF_DONE, or the close, ends the exchange.
      await within(reader.state(), SETUP_TIMEOUT_MS, "IPERF_DONE").catch(() => {});
      const received = test.streams.filter((s) => !s.sender).reduce(
        (a, s) => a + s.measuredBytes,
        0,
      );
      const sent = test.streams.filter((s) => s.sender).reduce((a, s) => a + s.measuredBytes, 0);
      const lost = test.streams.reduce(
        (a, s) => a + (s.sender ? 0 : s.lost(byId.get(s.id)?.packets)),
        0,
      );
      const mark = test.lowWater ? `, ${formatLowWater(test.lowWater)}` : "";
      return `done, ${received} B received, ${sent} B sent${
        params.proto === "udp" ? `, ${lost} datagrams lost` : ""
      }${mark}`;
    } finally {
      clearTimeout(hardStop);
    }
  }

  /** Open (or share) the UDP port of a test: the TCP port's own address and number. */
  #openUdp(local: Deno.NetAddr): UdpPort {
    const key = `${local.hostname}|${local.port}`;
    let port = this.#ports.get(`*|${local.port}`) ?? this.#ports.get(key);
    if (!port) {
      let socket: Deno.DatagramConn;
      try {
        socket = Deno.listenDatagram({
          transport: "udp",
          hostname: local.hostname,
          port: local.port,
        });
      } catch (err) {
        throw Object.assign(
          new WireError(`cannot listen for UDP on port ${local.port}: ${(err as Error).message}`),
          { errno: 102 /* IELISTEN */ },
        );
      }
      port = { socket, owned: true, users: 0 };
      port.loop = this.#receiveLoop(port, key);
      this.#ports.set(key, port);
    }
    port.users++;
    return port;
  }

  async #receiveLoop(port: UdpPort, key: string): Promise<void> {
    const buf = new Uint8Array(65536);
    while (true) {
      let data: Uint8Array;
      let from: Deno.Addr;
      try {
        [data, from] = await port.socket.receive(buf);
      } catch (err) {
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) break;
        if (this.#ports.get(key) !== port) break;
        continue; // an ICMP error queued on the socket
      }
      if (!this.#admit(from)) continue;
      this.#dispatch(data, from as Deno.NetAddr, port.socket);
    }
  }

  /** A datagram for iperf3 tests: data of a bound flow, or a connect message. */
  #dispatch(data: Uint8Array, from: Deno.NetAddr, socket: Deno.DatagramConn): boolean {
    const flow = this.#flows.get(from.port)?.get(from.hostname);
    if (flow) {
      const { test, stream } = flow;
      if (test.phase === "running") {
        const s = test.streams[stream];
        if (s && !s.sender && data.length > 4) s.record(data, wallMs());
      } else if (test.phase === "streams") {
        const order = connectMessageOrder(data);
        // A repeated connect message gets a repeated reply, never larger than it.
        if (order) socket.send(udpWord(UDP_CONNECT_REPLY, order), from).catch(() => {});
      }
      return true;
    }
    const order = connectMessageOrder(data);
    if (!order) return false;
    const test = this.#binding.get(bareIp(from.hostname));
    if (!test || test.phase !== "streams" || test.udpPeers.length >= test.wanted) return false;
    let hosts = this.#flows.get(from.port);
    if (!hosts) this.#flows.set(from.port, hosts = new Map());
    hosts.set(from.hostname, { test, stream: test.udpPeers.length });
    this.#flowCount++;
    test.udpPeers.push({ transport: "udp", hostname: from.hostname, port: from.port });
    socket.send(udpWord(UDP_CONNECT_REPLY, order), from).catch(() => {});
    test.attached?.();
    return true;
  }

  /** Wait until no other test from the same client IP is binding UDP streams. */
  async #turnToBind(test: Test): Promise<void> {
    while (this.#binding.has(test.peerIp)) {
      const queue = this.#bindQueue.get(test.peerIp) ?? [];
      this.#bindQueue.set(test.peerIp, queue);
      await new Promise<void>((resolve) => {
        queue.push(resolve);
        test.stop.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      if (test.stop.signal.aborted) throw new Error(String(test.stop.signal.reason));
    }
    this.#binding.set(test.peerIp, test);
  }

  #endBinding(test: Test): void {
    if (this.#binding.get(test.peerIp) !== test) return;
    this.#binding.delete(test.peerIp);
    const queue = this.#bindQueue.get(test.peerIp);
    const next = queue?.shift();
    if (queue && queue.length === 0) this.#bindQueue.delete(test.peerIp);
    next?.();
  }

  #unbindFlows(test: Test): void {
    for (const peer of test.udpPeers) {
      const hosts = this.#flows.get(peer.port);
      if (hosts?.get(peer.hostname)?.test !== test) continue;
      hosts.delete(peer.hostname);
      this.#flowCount--;
      if (hosts.size === 0) this.#flows.delete(peer.port);
    }
  }

  /** Give back what a test held: binding turn, flows, UDP port, buffers. */
  #release(test: Test): void {
    this.#endBinding(test);
    this.#unbindFlows(test);
    for (const { conn } of test.tcp) closeQuietly(conn);
    if (test.udp) {
      const port = test.udp;
      test.udp = undefined;
      if (--port.users === 0 && port.owned) {
        for (const [key, p] of this.#ports) if (p === port) this.#ports.delete(key);
        closeQuietly(port.socket);
      }
    }
    test.grant?.release();
    test.grant = undefined;
  }

  #tally(test: Test): void {
    const c = this.#counters;
    if (!c) return;
    for (const s of test.streams) {
      if (s.sender) {
        c.bytesOut += s.bytes;
        c.datagramsOut += s.count;
      } else {
        c.bytesIn += s.bytes;
        if (s.tracker) c.datagramsIn += s.tracker.received;
      }
    }
  }
}

/** An IP without the IPv4-mapped prefix, so one host compares equal over both families. */
function bareIp(host: string): string {
  return host.startsWith("::ffff:") ? host.slice(7) : host;
}
