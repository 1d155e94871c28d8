/**
 * The server role of throughput tests. Any number of tests run at once, each
 * with its own id, data streams and UDP socket, so figures never mix. A test
 * ends, and frees everything it holds, when its control connection closes or
 * breaks, or at the latest its duration plus {@linkcode TEST_GRACE_MS}.
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

import { readUdpCounters } from "../udp_counters.ts";
import { closeQuietly, writeAll } from "../io.ts";
import { LineReader } from "./line_reader.ts";
import {
  checkStart,
  CONTROL_MAGIC,
  DATA_MAGIC,
  decodeControl,
  encodeControl,
  readUdpHeader,
  type ReceivedFigures,
  type SentFigures,
  type StartRequest,
  UDP_HEADER_BYTES,
  type UdpHeader,
  UdpKind,
  writeUdpHeader,
} from "./protocol.ts";
import { drainUdp, sendTcp, sendUdp, TcpReceiver, UdpReceiver } from "./streams.ts";

/** How long past its duration a test may take before the server ends it. */
export const TEST_GRACE_MS = 10_000;
/** How long the streams of a test may take to open. */
const SETUP_TIMEOUT_MS = 10_000;
/** A running test whose bytes stop moving this long is ended (its client is gone). */
const STALL_MS = 3000;
/** How long the server waits for the client's report once its own senders are done. */
const REPORT_TIMEOUT_MS = 5000;
/** How long UDP receivers wait for `end` datagrams after the duration. */
const UDP_DRAIN_MS = 1000;

/** Options of {@linkcode ThroughputHub}. */
export interface ThroughputHubOptions {
  /**
   * Counters to add every test's bytes and datagrams to (the server's summary).
   * @default {undefined}
   */
  counters?: { bytesIn: number; bytesOut: number; datagramsIn: number; datagramsOut: number };
  /** Where to log test starts and ends. @default {() => {}} */
  log?: (line: string) => void;
}

class ServerTest {
  readonly id = randomHex(8);
  readonly key = crypto.getRandomValues(new Uint32Array(1))[0]!;
  readonly stop = new AbortController();
  readonly tcpStreams = new Map<number, { conn: Deno.Conn; initial: Uint8Array }>();
  readonly udpPeers = new Map<number, Deno.NetAddr>();
  udp: Deno.DatagramConn | undefined;
  attached: (() => void) | undefined;
  readonly udpReceivers = new Map<number, UdpReceiver>();
  readonly tcpReceivers: TcpReceiver[] = [];
  /** Bytes the server has sent in this test so far (its senders add to it). */
  readonly sent = { bytes: 0 };
  constructor(readonly request: StartRequest) {}

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

  constructor(options: ThroughputHubOptions = {}) {
    this.#log = options.log ?? (() => {});
    this.#counters = options.counters;
  }

  /** Tests running now. */
  get active(): number {
    return this.#tests.size;
  }

  /** Whether a connection's first bytes open a control or data connection. */
  static sniff(first: Uint8Array): "control" | "data" | undefined {
    if (startsWith(first, CONTROL_BYTES)) return "control";
    if (startsWith(first, DATA_BYTES)) return "data";
    return undefined;
  }

  /** Serve one control connection (its first bytes already read) until the test ends. */
  async control(conn: Deno.Conn, first: Uint8Array): Promise<void> {
    const lines = new LineReader(conn, first.subarray(CONTROL_BYTES.length));
    const send = (m: Parameters<typeof encodeControl>[0]) => writeAll(conn, encodeControl(m));
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
    const test = new ServerTest(request);
    this.#tests.set(test.id, test);
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
      let udpPort: number | null = null;
      if (request.proto === "udp") {
        const local = conn.localAddr as Deno.NetAddr;
        test.udp = Deno.listenDatagram({ transport: "udp", hostname: local.hostname, port: 0 });
        udpPort = (test.udp.addr as Deno.NetAddr).port;
      }
      await send({ type: "ready", test_id: test.id, udp_port: udpPort });
      const result = await this.#run(test, lines, send);
      this.#log(`throughput test ${test.id}: done, ${result}`);
    } catch (err) {
      if (!test.stop.signal.aborted) {
        await send({ type: "error", message: (err as Error).message }).catch(() => {});
      }
      const why = test.stop.signal.aborted
        ? String(test.stop.signal.reason)
        : (err as Error).message;
      this.#log(`throughput test ${test.id}: ended early (${why})`);
    } finally {
      this.#tally(test);
      clearTimeout(hardStop);
      test.stop.abort("done");
      this.#tests.delete(test.id);
    }
  }

  /** Attach one TCP data connection (its first bytes already read) to its test. */
  async data(conn: Deno.Conn, first: Uint8Array): Promise<void> {
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
      for (let s = 0; s < r.parallel; s++) udpReceivers.set(s, new UdpReceiver(s, 1000));
      udpLoop = this.#udpLoop(test, udpReceivers);
    }
    // The client says nothing more until its report, so reading the control connection now
    // notices at once when it closes during setup, and later yields the report.
    const nextLine = lines.next();
    nextLine.then(
      (line) => line === null && test.stop.abort("control connection closed"),
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
    const udpBefore = r.proto === "udp" && receiving ? await readUdpCounters() : undefined;

    const senders: Promise<SentFigures>[] = [];
    const tcpReceiving: Promise<void>[] = [];
    // A client that vanishes (killed, cable pulled) stops moving bytes: end its test within
    // seconds rather than at the hard deadline. Slow paced tests get a longer allowance.
    const gapMs = r.bitrate > 0 ? (r.size * 8 * 1000) / r.bitrate : 0;
    const stallMs = Math.max(STALL_MS, 3 * gapMs);
    let lastBytes = -1;
    let lastMove = performance.now();
    const watchdog = setInterval(() => {
      const bytes = test.sent.bytes + test.receivedBytes;
      const now = performance.now();
      if (bytes !== lastBytes) {
        lastBytes = bytes;
        lastMove = now;
      } else if (now - lastMove > stallMs) {
        test.stop.abort(`no data moved for ${Math.round(stallMs / 1000)} s: client gone`);
      }
    }, 250);
    for (let s = 0; s < r.parallel; s++) {
      const options = {
        stream: s,
        size: r.size,
        bitrate: r.bitrate,
        durationMs: r.duration_ms,
        signal: test.stop.signal,
        progress: test.sent,
      };
      if (r.proto === "tcp") {
        const { conn, initial } = test.tcpStreams.get(s)!;
        if (sending) senders.push(sendTcp(conn, options));
        if (receiving) {
          const receiver = new TcpReceiver(s, 1000);
          tcpReceivers.push(receiver);
          tcpReceiving.push(receiver.run(conn, initial));
        }
      } else if (sending) {
        senders.push(sendUdp(test.udp!, test.udpPeers.get(s)!, { ...options, key: test.key }));
      }
    }
    let sent: SentFigures[] = [];
    let line: string | null = null;
    // The client reports once its own side is done; its figures tell ours how much was sent.
    const reportBy = setTimeout(
      () => test.stop.abort("no report from the client in time"),
      r.duration_ms + REPORT_TIMEOUT_MS,
    );
    try {
      sent = await Promise.all(senders);
      line = await nextLine;
    } catch (err) {
      if (!test.stop.signal.aborted) throw err;
    } finally {
      clearInterval(watchdog);
      clearTimeout(reportBy);
    }
    if (test.stop.signal.aborted) throw new Error(String(test.stop.signal.reason));
    const clientReport = line === null ? undefined : decodeControl(line);
    if (clientReport?.type !== "report") {
      throw new Error("control connection closed before the report");
    }
    await Promise.all(tcpReceiving);
    if (r.proto === "udp" && receiving) {
      await drainUdp(udpReceivers.values(), go + r.duration_ms + UDP_DRAIN_MS);
    }
    const udpAfter = udpBefore ? await readUdpCounters() : undefined;
    const clientSent = new Map(clientReport.sent.map((s) => [s.stream, s.datagrams]));
    const received: ReceivedFigures[] = receiving
      ? r.proto === "tcp"
        ? tcpReceivers.map((t) => t.figures())
        : [...udpReceivers.values()].map((u) => u.figures(clientSent.get(u.stream)))
      : [];
    const rcvbufErrors =
      udpBefore?.RcvbufErrors !== undefined && udpAfter?.RcvbufErrors !== undefined
        ? udpAfter.RcvbufErrors - udpBefore.RcvbufErrors
        : null;
    await send({
      type: "report",
      sent,
      received,
      ...(rcvbufErrors !== null && { rcvbuf_errors: rcvbufErrors }),
    });
    test.stop.abort("done");
    await udpLoop;
    const total = received.reduce((a, f) => a + f.bytes, 0) + sent.reduce((a, f) => a + f.bytes, 0);
    return `${total} bytes`;
  }

  /** Receive on a test's UDP socket: hellos register stream addresses; data is counted. */
  async #udpLoop(test: ServerTest, receivers: Map<number, UdpReceiver>): Promise<void> {
    const socket = test.udp!;
    const buf = new Uint8Array(65536);
    const ack = new Uint8Array(UDP_HEADER_BYTES);
    const ackView = new DataView(ack.buffer);
    const header: UdpHeader = { key: 0, stream: 0, kind: 0, seq: 0, sendTimeMs: 0 };
    while (!test.stop.signal.aborted) {
      let data: Uint8Array;
      let from: Deno.Addr;
      try {
        [data, from] = await socket.receive(buf);
      } catch {
        if (test.stop.signal.aborted) return;
        continue;
      }
      const now = performance.now();
      // Hellos come before the client knows the key (the ack tells it); all else must carry it.
      if (
        !readUdpHeader(data, header) || (header.kind !== UdpKind.hello && header.key !== test.key)
      ) continue;
      const receiver = receivers.get(header.stream);
      if (!receiver) continue;
      switch (header.kind) {
        case UdpKind.data:
          receiver.record(header, data.length, now);
          break;
        case UdpKind.hello: {
          if (!test.udpPeers.has(header.stream)) {
            test.udpPeers.set(header.stream, from as Deno.NetAddr);
            test.attached?.();
          }
          // Never amplify: the ack is exactly as long as a header, no longer than the hello.
          writeUdpHeader(ackView, test.key, header.stream, UdpKind.helloAck, 0, now);
          await socket.send(ack.subarray(0, Math.min(UDP_HEADER_BYTES, data.length)), from).catch(
            () => {},
          );
          break;
        }
        case UdpKind.end:
          receiver.end();
          break;
      }
    }
  }
}

const CONTROL_BYTES = new TextEncoder().encode(CONTROL_MAGIC);
const DATA_BYTES = new TextEncoder().encode(DATA_MAGIC);

function startsWith(data: Uint8Array, prefix: Uint8Array): boolean {
  if (data.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[i] !== prefix[i]) return false;
  return true;
}

function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}
