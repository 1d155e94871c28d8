/**
 * The server role of throughput tests. Any number of tests run at once, each
 * with its own id, data streams and UDP socket, so figures never mix. A test
 * ends, and frees everything it holds, when its control connection closes or
 * breaks, or at the latest its duration plus {@linkcode TEST_GRACE_MS}.
 *
 * Defences: a test reserves its buffers from the server's memory budget
 * before it starts; its UDP port is bound to the address the control
 * connection arrived on and admits datagrams through the server's gate
 * (`--allow`/`--deny`, `--rate-limit`); a UDP stream is bound to an address
 * only after a hello carrying the test's secret, from the control
 * connection's IP (unless `--allow-udp-from-any-ip`), and a proof that the
 * address received the server's challenge. Until then an address is sent at
 * most 3x what it sent, in at most {@linkcode MAX_UNPROVEN_DATAGRAMS}
 * datagrams. A sending server's stall watchdog counts what the client
 * reports having received, not what the server sent.
 *
 * @example
 * ```ts
 * import { ThroughputHub } from "./hub.ts";
 *
 * const hub = new ThroughputHub();
 * // In a server's connection handler, after sniffing the first bytes:
 * // await hub.control(conn, firstChunk);  or  await hub.data(conn, firstChunk);
 * ```
 *
 * @module
 */

import { parseIp } from "../acl.ts";
import { denoEngine } from "../engine/deno.ts";
import { type DatagramListener, type Engine, GRO_BATCH_BYTES } from "../engine/types.ts";
import { formatLowWater } from "../engine/report.ts";
import { dropsDuring, receiveDrops } from "../udp_counters.ts";
import { formatSize } from "../units.ts";
import { closeQuietly, writeAll } from "../io.ts";
import { LineReader } from "./line_reader.ts";
import {
  checkStart,
  CONTROL_MAGIC,
  type ControlMessage,
  DATA_MAGIC,
  decodeControl,
  encodeControl,
  OLD_CONTROL_MAGIC,
  readUdpHeader,
  type ReceivedFigures,
  type SentFigures,
  type StartRequest,
  UDP_CHALLENGE_BYTES,
  UDP_HEADER_BYTES,
  UDP_HELLO_BYTES,
  UDP_PROOF_BYTES,
  UDP_SECRET_BYTES,
  type UdpHeader,
  UdpKind,
  writeUdpHeader,
} from "./protocol.ts";
import {
  drainUdp,
  sendTcp,
  sendUdp,
  TCP_RECEIVE_BYTES,
  TcpReceiver,
  UDP_RECEIVER_BYTES,
  UdpReceiver,
} from "./streams.ts";

/** How long past its duration a test may take before the server ends it. */
export const TEST_GRACE_MS = 10_000;
/** How long the streams of a test may take to open. */
const SETUP_TIMEOUT_MS = 10_000;
/** A running test whose bytes stop moving this long is ended (its client is gone). */
const STALL_MS = 3000;

/**
 * End a test (abort `stop`) whose `moved()` byte count has not changed for 3 s, or three
 * datagram gaps (`gapMs`) if longer: its client is gone. Returns the interval to clear.
 */
export function watchStall(
  moved: () => number,
  gapMs: number,
  stop: AbortController,
): ReturnType<typeof setInterval> {
  const stallMs = Math.max(STALL_MS, 3 * gapMs);
  let lastBytes = -1;
  let lastMove = performance.now();
  return setInterval(() => {
    const bytes = moved();
    const now = performance.now();
    if (bytes !== lastBytes) {
      lastBytes = bytes;
      lastMove = now;
    } else if (now - lastMove > stallMs) {
      stop.abort(`no data moved for ${Math.round(stallMs / 1000)} s: client gone`);
    }
  }, 250);
}
/** How long the server waits for the client's report once its own senders are done. */
const REPORT_TIMEOUT_MS = 5000;
/** How long UDP receivers wait for `end` datagrams after the duration. */
const UDP_DRAIN_MS = 1000;
/** Datagrams at most sent to an address that has not proven it receives them (challenges). */
export const MAX_UNPROVEN_DATAGRAMS = 4;
/** Bytes at most sent to an unproven address, per byte received from it (QUIC's rule). */
export const UNPROVEN_AMPLIFICATION = 3;
/** Kernel receive buffer asked for on a test's UDP port (the native engine; Deno's cannot be sized). */
const UDP_KERNEL_BUFFER_BYTES = 4 * 1024 * 1024;
/** Bytes of a test's UDP receive buffer. */
const UDP_SOCKET_BUFFER_BYTES = 65536;

/** A reservation of test buffer memory; see {@linkcode ThroughputHubOptions.memory}. */
export interface TestMemory {
  /** Reserve `bytes` (described as `what`); the grant, or why it was refused. */
  reserve(bytes: number, what: string): { release(): void } | string;
}

/**
 * The buffer bytes a test may hold, counted as if no buffer were shared:
 * per stream, a block or datagram buffer when sending, a receive buffer (TCP)
 * or sequence bitmap (UDP) when receiving; plus the UDP socket's buffer.
 */
export function testBufferBytes(r: StartRequest): number {
  let perStream = 0;
  if (r.direction !== "up") perStream += r.size;
  if (r.direction !== "down") {
    perStream += r.proto === "tcp" ? TCP_RECEIVE_BYTES : UDP_RECEIVER_BYTES;
  }
  const socket = r.proto !== "udp"
    ? 0
    : r.gso && receivesUdp(r)
    ? GRO_BATCH_BYTES
    : UDP_SOCKET_BUFFER_BYTES;
  return r.parallel * perStream + socket;
}

/** Whether the server receives a UDP test's data (GRO only helps there). */
function receivesUdp(r: StartRequest): boolean {
  return r.proto === "udp" && r.direction !== "down";
}

/** Options of {@linkcode ThroughputHub}. */
export interface ThroughputHubOptions {
  /**
   * Counters to add every test's bytes and datagrams to (the server's summary).
   * @default {undefined}
   */
  counters?: { bytesIn: number; bytesOut: number; datagramsIn: number; datagramsOut: number };
  /** Where to log test starts and ends. @default {() => {}} */
  log?: (line: string) => void;
  /**
   * The server's gate for datagrams on a test's UDP port (`--allow`/`--deny`, `--rate-limit`).
   * @default {undefined} (everyone)
   */
  admitDatagram?: (from: Deno.Addr) => boolean;
  /**
   * Where tests reserve their buffers; a test it refuses is refused with its reason.
   * @default {undefined} (no budget)
   */
  memory?: TestMemory;
  /**
   * Accept a UDP flow from any IP, not only from the control connection's
   * (clients behind NAT with several egress addresses). Return routability is still proven.
   * @default {false}
   */
  allowUdpFromAnyIp?: boolean;
  /**
   * The engine of each test's UDP port (`netkit server --engine`): the native one
   * receives a batch per `recvmmsg` into a larger kernel buffer.
   * @default {the deno engine}
   */
  engine?: Engine;
}

/** An address that sent a valid hello, and the challenge it must echo to prove it receives. */
interface Challenged {
  challenge: Uint8Array;
  /** Bytes of valid hellos received from it. */
  received: number;
  /** Bytes and datagrams sent to it. */
  sent: number;
  datagrams: number;
}

class ServerTest {
  readonly id = randomHex(8);
  readonly key = crypto.getRandomValues(new Uint32Array(1))[0]!;
  /** What a hello must carry: handed out on the control connection only. */
  readonly secret = crypto.getRandomValues(new Uint8Array(UDP_SECRET_BYTES));
  readonly stop = new AbortController();
  readonly tcpStreams = new Map<number, { conn: Deno.Conn; initial: Uint8Array }>();
  /** Each UDP stream's bound address: set once, after a proof of return routability. */
  readonly udpPeers = new Map<number, Deno.NetAddr>();
  /** Addresses challenged, by `host|port` (bounded): each one's challenge and what it was sent. */
  readonly challenged = new Map<string, Challenged>();
  /** Hellos and proofs ignored: wrong key or secret, another IP, an unknown challenge, a takeover. */
  ignored = 0;
  /** Bytes the client reports having received (its progress lines). */
  acked = 0;
  udp: DatagramListener | undefined;
  attached: (() => void) | undefined;
  readonly udpReceivers = new Map<number, UdpReceiver>();
  readonly tcpReceivers: TcpReceiver[] = [];
  /** Bytes the server has sent in this test so far (its senders add to it). */
  readonly sent = { bytes: 0 };
  constructor(
    readonly request: StartRequest,
    /** The control connection's peer IP, as bytes; UDP flows must come from it. */
    readonly peerIp: Uint8Array | undefined,
  ) {}

  /** Until it ends, the test's connections are in use (never idle). */
  get running(): boolean {
    return !this.stop.signal.aborted;
  }

  /** Bytes the server has received in this test so far, on every stream. */
  get receivedBytes(): number {
    let bytes = 0;
    for (const t of this.tcpReceivers) bytes += t.bytes;
    for (const u of this.udpReceivers.values()) bytes += u.bytes;
    return bytes;
  }

  get ready(): boolean {
    const have = this.request.proto === "tcp" ? this.tcpStreams.size : this.udpPeers.size;
    return have >= this.request.parallel;
  }
}

/** Runs the server side of throughput tests. */
export class ThroughputHub {
  readonly #tests = new Map<string, ServerTest>();
  readonly #log: (line: string) => void;
  readonly #counters: ThroughputHubOptions["counters"];
  readonly #admit: ((from: Deno.Addr) => boolean) | undefined;
  readonly #memory: TestMemory | undefined;
  readonly #anyIp: boolean;
  readonly #engine: Engine;

  constructor(options: ThroughputHubOptions = {}) {
    this.#engine = options.engine ?? denoEngine;
    this.#log = options.log ?? (() => {});
    this.#counters = options.counters;
    this.#admit = options.admitDatagram;
    this.#memory = options.memory;
    this.#anyIp = options.allowUdpFromAnyIp ?? false;
  }

  /** Tests running now. */
  get active(): number {
    return this.#tests.size;
  }

  /** Whether a connection's first bytes open a control or data connection. */
  static sniff(first: Uint8Array): "control" | "data" | undefined {
    if (startsWith(first, CONTROL_BYTES) || startsWith(first, OLD_CONTROL_BYTES)) return "control";
    if (startsWith(first, DATA_BYTES)) return "data";
    return undefined;
  }

  /**
   * Serve one control connection (its first bytes already read) until the test ends.
   * `onTest` learns the test once the request is complete (the server's timeouts watch it).
   */
  async control(
    conn: Deno.Conn,
    first: Uint8Array,
    onTest?: (test: { readonly running: boolean }) => void,
  ): Promise<void> {
    const lines = new LineReader(conn, first.subarray(CONTROL_BYTES.length));
    const send = (m: Parameters<typeof encodeControl>[0]) => writeAll(conn, encodeControl(m));
    if (!startsWith(first, CONTROL_BYTES)) {
      await send({
        type: "error",
        message:
          `this server speaks netkit's throughput protocol ${CONTROL_MAGIC.trim()}, the client ${OLD_CONTROL_MAGIC.trim()}: run the same netkit version on both ends`,
      });
      return;
    }
    const line = await lines.next();
    const request = line === null ? undefined : decodeControl(line);
    if (request?.type !== "start") {
      await send({ type: "error", message: "expected a start request" });
      return;
    }
    const problem = checkStart(request);
    if (problem) {
      await send({ type: "error", message: problem });
      return;
    }
    if (request.proto === "udp" && conn.localAddr.transport !== "tcp") {
      await send({
        type: "error",
        message:
          "this server listens on a Unix socket only and opens no UDP ports: run UDP tests against a server on TCP (--proto tcp or both)",
      });
      return;
    }
    const grant = this.#memory?.reserve(
      testBufferBytes(request),
      `${request.parallel} stream${request.parallel === 1 ? "" : "s"} of ${
        formatSize(request.size)
      } (${request.proto} ${request.direction})`,
    );
    if (typeof grant === "string") {
      this.#log(`throughput test refused: ${grant}`);
      await send({ type: "error", message: grant });
      return;
    }
    const remote = conn.remoteAddr;
    const test = new ServerTest(
      request,
      remote.transport === "tcp" ? parseIp(remote.hostname) : undefined,
    );
    this.#tests.set(test.id, test);
    onTest?.(test);
    const hardStop = setTimeout(
      () => test.stop.abort("past its deadline"),
      request.duration_ms + TEST_GRACE_MS + SETUP_TIMEOUT_MS,
    );
    // The control connection closing ends the test at once.
    const onAbort = () => {
      for (const { conn } of test.tcpStreams.values()) closeQuietly(conn);
      if (test.udp) closeQuietly(test.udp);
      closeQuietly(conn);
    };
    test.stop.signal.addEventListener("abort", onAbort, { once: true });
    this.#log(
      `throughput test ${test.id}: ${request.proto} ${request.direction}, ${request.parallel} stream(s), ${
        request.duration_ms / 1000
      } s`,
    );
    try {
      let udp = {};
      if (request.proto === "udp") {
        // Only on the address the control connection arrived on: never a wider one.
        const local = conn.localAddr as Deno.NetAddr;
        test.udp = await this.#engine.listen({
          local: { hostname: local.hostname, port: 0 },
          maxDatagram: Math.max(request.size, UDP_HELLO_BYTES, UDP_PROOF_BYTES),
          receiveBuffer: UDP_KERNEL_BUFFER_BYTES,
          // A client sending with GSO: its runs of datagrams arrive whole (one per receive).
          ...(request.gso && receivesUdp(request) && { gro: true }),
        });
        if (test.udp.gro) this.#log(`throughput test ${test.id}: receiving with UDP GRO`);
        udp = {
          udp_port: (test.udp.addr as Deno.NetAddr).port,
          udp_key: test.key,
          udp_secret: toHex(test.secret),
          ...(test.udp.gro && { udp_gro: true }),
        };
      }
      await send({ type: "ready", test_id: test.id, udp_port: null, ...udp });
      const result = await this.#run(test, lines, send);
      this.#log(`throughput test ${test.id}: done, ${result}${ignoredNote(test)}`);
    } catch (err) {
      if (!test.stop.signal.aborted) {
        await send({ type: "error", message: (err as Error).message }).catch(() => {});
      }
      const why = test.stop.signal.aborted
        ? String(test.stop.signal.reason)
        : (err as Error).message;
      this.#log(`throughput test ${test.id}: ended early (${why})${ignoredNote(test)}`);
    } finally {
      this.#tally(test);
      clearTimeout(hardStop);
      test.stop.abort("done");
      this.#tests.delete(test.id);
      grant?.release();
    }
  }

  /** Attach one TCP data connection (its first bytes already read) to its test. */
  async data(
    conn: Deno.Conn,
    first: Uint8Array,
    onTest?: (test: { readonly running: boolean }) => void,
  ): Promise<void> {
    const lines = new LineReader(conn, first, 128);
    const header = await lines.next();
    const [, id = "", streamText = ""] = (header ?? "").split(" ");
    const test = this.#tests.get(id);
    const stream = Number(streamText);
    if (
      !test || !Number.isInteger(stream) || stream < 0 || stream >= test.request.parallel ||
      test.tcpStreams.has(stream)
    ) {
      return; // unknown test or stream: close
    }
    test.tcpStreams.set(stream, { conn, initial: lines.rest() });
    onTest?.(test);
    test.attached?.();
    // The connection now belongs to the test, which closes it; hold the handler until then.
    await new Promise<void>((resolve) => {
      if (test.stop.signal.aborted) resolve();
      else test.stop.signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  /** Stop every test (server shutdown). */
  closeAll(): void {
    for (const test of this.#tests.values()) test.stop.abort("server shutting down");
  }

  /** Add what a test moved, finished or not, to the server's totals. */
  #tally(test: ServerTest): void {
    const c = this.#counters;
    if (!c) return;
    c.bytesIn += test.receivedBytes;
    for (const u of test.udpReceivers.values()) c.datagramsIn += u.datagrams;
    c.bytesOut += test.sent.bytes;
    if (test.request.proto === "udp") {
      c.datagramsOut += Math.floor(test.sent.bytes / test.request.size);
    }
  }

  async #run(
    test: ServerTest,
    lines: LineReader,
    send: (m: Parameters<typeof encodeControl>[0]) => Promise<void>,
  ): Promise<string> {
    const r = test.request;
    const { udpReceivers, tcpReceivers } = test;
    const receiving = r.direction !== "down";
    const sending = r.direction !== "up";
    let udpLoop: Promise<void> | undefined;
    if (test.udp) {
      if (receiving) {
        for (let s = 0; s < r.parallel; s++) udpReceivers.set(s, new UdpReceiver(s, 1000));
      }
      udpLoop = this.#udpLoop(test, udpReceivers);
    }
    // The client says nothing but progress lines until its report, so reading the control
    // connection now notices at once when it closes during setup, and later yields the report.
    const nextMessage = (async (): Promise<ControlMessage | null | undefined> => {
      while (true) {
        const line = await lines.next();
        if (line === null) return null;
        const message = decodeControl(line);
        if (message?.type !== "progress") return message;
        const bytes = message.received_bytes;
        if (typeof bytes === "number" && Number.isFinite(bytes) && bytes > test.acked) {
          test.acked = bytes;
        }
      }
    })();
    nextMessage.then(
      (message) => message === null && test.stop.abort("control connection closed"),
      () => test.stop.abort("control connection failed"),
    );
    // Wait for every stream to attach.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("data streams did not open in time")),
        SETUP_TIMEOUT_MS,
      );
      const check = () => {
        if (test.ready) {
          clearTimeout(timer);
          test.attached = undefined;
          resolve();
        }
      };
      test.attached = check;
      test.stop.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(new Error("control connection closed"));
      }, { once: true });
      check();
    });
    const go = performance.now();
    for (const receiver of udpReceivers.values()) receiver.begin(go);
    await send({ type: "go" });
    const udpBefore = r.proto === "udp" && receiving ? await receiveDrops(test.udp!) : undefined;

    const senders: Promise<SentFigures>[] = [];
    const tcpReceiving: Promise<void>[] = [];
    // A client that vanishes (killed, cable pulled) stops moving bytes: end its test within
    // seconds rather than at the hard deadline. Slow paced tests get a longer allowance.
    // What the server sends counts only once the client reports having received it: a flow
    // nobody receives (or a victim's) is stopped however fast the server could send.
    const gapMs = r.bitrate > 0 ? (r.size * 8 * 1000) / r.bitrate : 0;
    const watchdog = watchStall(
      () => (sending ? test.acked : 0) + (receiving ? test.receivedBytes : 0),
      gapMs,
      test.stop,
    );
    // A client stopped early (Ctrl-C) reports before the duration is over: its report
    // ends this side's sending too, so both ends' figures of what ran are exchanged.
    const reported = new AbortController();
    nextMessage.then(
      (message) => message?.type === "report" && reported.abort("the client reported"),
      () => {},
    );
    const sendSignal = AbortSignal.any([test.stop.signal, reported.signal]);
    for (let s = 0; s < r.parallel; s++) {
      const options = {
        stream: s,
        size: r.size,
        bitrate: r.bitrate,
        durationMs: r.duration_ms,
        signal: sendSignal,
        progress: test.sent,
      };
      if (r.proto === "tcp") {
        const { conn, initial } = test.tcpStreams.get(s)!;
        if (sending) senders.push(sendTcp(conn, options));
        if (receiving) {
          const receiver = new TcpReceiver(s, 1000, { engine: this.#engine });
          tcpReceivers.push(receiver);
          const running = receiver.run(conn, initial);
          // A stream that fails (not just ends) ends the test now; never an unhandled rejection.
          running.catch((err) => test.stop.abort(`data stream ${s}: ${(err as Error).message}`));
          tcpReceiving.push(running);
        }
      } else if (sending) {
        senders.push(sendUdp(test.udp!, test.udpPeers.get(s)!, { ...options, key: test.key }));
      }
    }
    let sent: SentFigures[] = [];
    let clientReport: ControlMessage | null | undefined;
    // The client reports once its own side is done; its figures tell ours how much was sent.
    const reportBy = setTimeout(
      () => test.stop.abort("no report from the client in time"),
      r.duration_ms + REPORT_TIMEOUT_MS,
    );
    try {
      sent = await Promise.all(senders);
      clientReport = await nextMessage;
    } catch (err) {
      if (!test.stop.signal.aborted) throw err;
    } finally {
      clearInterval(watchdog);
      clearTimeout(reportBy);
    }
    if (test.stop.signal.aborted) throw new Error(String(test.stop.signal.reason));
    if (clientReport?.type !== "report") {
      throw new Error("control connection closed before the report");
    }
    await Promise.all(tcpReceiving);
    if (r.proto === "udp" && receiving) {
      await drainUdp(udpReceivers.values(), go + r.duration_ms + UDP_DRAIN_MS);
    }
    const udpAfter = udpBefore ? await receiveDrops(test.udp!) : undefined;
    const clientSent = new Map(clientReport.sent.map((s) => [s.stream, s.datagrams]));
    const received: ReceivedFigures[] = receiving
      ? r.proto === "tcp"
        ? tcpReceivers.map((t) => t.figures())
        : [...udpReceivers.values()].map((u) => u.figures(clientSent.get(u.stream)))
      : [];
    const rcvbufErrors = udpBefore && udpAfter ? dropsDuring(udpBefore, udpAfter) : null;
    await send({
      type: "report",
      sent,
      received,
      ...(rcvbufErrors !== null && { rcvbuf_errors: rcvbufErrors }),
    });
    test.stop.abort("done");
    await udpLoop;
    const total = received.reduce((a, f) => a + f.bytes, 0) + sent.reduce((a, f) => a + f.bytes, 0);
    const gro = test.udp?.gro ? `, ${test.udp.groRuns ?? 0} GRO runs received` : "";
    return `${total} bytes${lowWaterNote(tcpReceivers)}${gro}`;
  }

  /**
   * Receive on a test's UDP socket. A stream is bound to an address only after return
   * routability: a hello with the test's secret (from the control connection's IP, unless
   * allowed otherwise) is answered with a challenge no larger than 3x what that address sent,
   * and the address that echoes the challenge back is bound. Data and ends count only from a
   * stream's bound address; a bound stream is never taken over.
   */
  async #udpLoop(test: ServerTest, receivers: Map<number, UdpReceiver>): Promise<void> {
    const socket = test.udp!;
    const parallel = test.request.parallel;
    const admit = this.#admit;
    const buf = new Uint8Array(65536);
    const reply = new Uint8Array(UDP_PROOF_BYTES);
    const replyView = new DataView(reply.buffer);
    const header: UdpHeader = { key: 0, stream: 0, kind: 0, seq: 0, sendTimeMs: 0 };
    const send = async (kind: number, stream: number, to: Deno.Addr, challenge?: Uint8Array) => {
      writeUdpHeader(replyView, test.key, stream, kind, 0, performance.now());
      if (challenge) reply.set(challenge, UDP_HEADER_BYTES);
      const length = challenge ? UDP_PROOF_BYTES : UDP_HEADER_BYTES;
      await socket.send(reply.subarray(0, length), to).catch(() => {});
    };
    // What one datagram does; a promise only when it answers (hello, proof).
    const handle = (data: Uint8Array, addr: Deno.Addr): Promise<void> | undefined => {
      if (admit && !admit(addr)) return;
      const now = performance.now();
      if (!readUdpHeader(data, header) || addr.transport !== "udp") return;
      const from = addr;
      const control = header.kind === UdpKind.hello || header.kind === UdpKind.proof;
      if (header.key !== test.key || header.stream >= parallel) {
        if (control) test.ignored++;
        return;
      }
      const bound = test.udpPeers.get(header.stream);
      switch (header.kind) {
        case UdpKind.data:
          if (bound && sameAddr(bound, from)) {
            receivers.get(header.stream)?.record(header, data.length, now);
          }
          return;
        case UdpKind.end:
          if (bound && sameAddr(bound, from)) receivers.get(header.stream)?.end();
          return;
        case UdpKind.hello: {
          if (
            data.length < UDP_HELLO_BYTES ||
            !bytesAt(data, UDP_HEADER_BYTES, test.secret) || !this.#ipAllowed(test, from)
          ) {
            test.ignored++;
          } else if (bound) {
            // A proven address gets its ack again (smaller than the hello); anyone else nothing.
            if (sameAddr(bound, from)) return send(UdpKind.helloAck, header.stream, from);
            test.ignored++;
          } else {
            const entry = challengeFor(test, from);
            if (!entry) {
              test.ignored++;
              return;
            }
            entry.received += data.length;
            if (
              entry.datagrams < MAX_UNPROVEN_DATAGRAMS &&
              entry.sent + UDP_PROOF_BYTES <= UNPROVEN_AMPLIFICATION * entry.received
            ) {
              entry.sent += UDP_PROOF_BYTES;
              entry.datagrams++;
              return send(UdpKind.challenge, header.stream, from, entry.challenge);
            }
          }
          return;
        }
        case UdpKind.proof: {
          const entry = test.challenged.get(addrKey(from));
          if (
            !entry || data.length < UDP_PROOF_BYTES ||
            !bytesAt(data, UDP_HEADER_BYTES, entry.challenge) || !this.#ipAllowed(test, from)
          ) {
            test.ignored++;
          } else if (bound) {
            // The proven address gets its ack again (smaller than the proof); anyone else nothing.
            if (sameAddr(bound, from)) return send(UdpKind.helloAck, header.stream, from);
            test.ignored++;
          } else {
            test.udpPeers.set(header.stream, from);
            return send(UdpKind.helloAck, header.stream, from).then(() => test.attached?.());
          }
          return;
        }
      }
      return undefined;
    };
    const ready = socket.receiveReady?.bind(socket);
    while (!test.stop.signal.aborted) {
      let got: [Uint8Array, Deno.Addr] | undefined;
      try {
        got = await socket.receive(buf);
      } catch {
        if (test.stop.signal.aborted) return;
        continue;
      }
      // The rest of a batch (or of a GRO run) is handled without a wait per datagram.
      for (; got; got = ready?.()) {
        const answering = handle(got[0], got[1]);
        if (answering) await answering;
      }
    }
  }

  /** Whether a UDP flow may come from `from`: the control connection's IP, unless allowed. */
  #ipAllowed(test: ServerTest, from: Deno.NetAddr): boolean {
    if (this.#anyIp) return true;
    const ip = parseIp(from.hostname);
    const peer = test.peerIp;
    return ip !== undefined && peer !== undefined && ip.length === peer.length &&
      ip.every((b, i) => b === peer[i]);
  }
}

function sameAddr(a: Deno.NetAddr, b: Deno.NetAddr): boolean {
  return a.port === b.port && a.hostname === b.hostname;
}

function addrKey(a: Deno.NetAddr): string {
  return `${a.hostname}|${a.port}`;
}

/** The challenge of an address, made on its first valid hello (a bounded number per test). */
function challengeFor(test: ServerTest, from: Deno.NetAddr): Challenged | undefined {
  const key = addrKey(from);
  let entry = test.challenged.get(key);
  if (!entry) {
    if (test.challenged.size >= 2 * test.request.parallel + 8) return undefined;
    entry = {
      challenge: crypto.getRandomValues(new Uint8Array(UDP_CHALLENGE_BYTES)),
      received: 0,
      sent: 0,
      datagrams: 0,
    };
    test.challenged.set(key, entry);
  }
  return entry;
}

/** Whether `data` holds `expected` at `offset` (constant time in the compared length). */
function bytesAt(data: Uint8Array, offset: number, expected: Uint8Array): boolean {
  if (data.length < offset + expected.length) return false;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= data[offset + i]! ^ expected[i]!;
  return diff === 0;
}

/** `, receive low-water mark 128 KiB on 1 of 1 streams` when the engine raised it. */
function lowWaterNote(receivers: readonly TcpReceiver[]): string {
  const raised = receivers.filter((r) => r.lowWater > 0);
  if (raised.length === 0) return "";
  const mark = Math.max(...raised.map((r) => r.lowWater));
  const of = `${raised.length} of ${receivers.length} streams`;
  return `, ${formatLowWater(mark)} on ${of}`;
}

function ignoredNote(test: ServerTest): string {
  return test.ignored > 0
    ? `; ignored ${test.ignored} UDP hello(s)/proof(s) that did not match (secret, IP, challenge or bound flow)`
    : "";
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const CONTROL_BYTES = new TextEncoder().encode(CONTROL_MAGIC);
const OLD_CONTROL_BYTES = new TextEncoder().encode(OLD_CONTROL_MAGIC);
const DATA_BYTES = new TextEncoder().encode(DATA_MAGIC);

function startsWith(data: Uint8Array, prefix: Uint8Array): boolean {
  if (data.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[i] !== prefix[i]) return false;
  return true;
}

function randomHex(bytes: number): string {
  return toHex(crypto.getRandomValues(new Uint8Array(bytes)));
}
