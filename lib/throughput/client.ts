/**
 * The client role of a throughput test: agree the test over a control
 * connection, open the data streams (TCP connections, or UDP flows the client
 * opens so that `--reverse` works from behind NAT, each proving to the server
 * that it receives at its address before anything is sent there), send and/or
 * receive for the duration (a receiving client reports its progress, which a
 * sending server needs to keep going), then exchange figures so both the
 * sender's and the receiver's view are reported.
 *
 * @example
 * ```ts
 * import { runThroughput } from "./client.ts";
 *
 * const result = await runThroughput({
 *   endpoint: { transport: "tcp", hostname: "127.0.0.1", port: 5050 },
 *   proto: "tcp", direction: "up", parallel: 1, durationMs: 2000, size: 131072,
 *   bitrate: 0, intervalMs: 1000, timeoutMs: 5000,
 * });
 * console.log(result.up?.received.bytes);
 * ```
 *
 * @module
 */

import type { ThroughputPlan } from "../config.ts";
import { dialStream, resolve } from "../client/dial.ts";
import { formatEndpoint, isLoopback } from "../address.ts";
import { deadline } from "../deadline.ts";
import { denoEngine } from "../engine/deno.ts";
import type { EngineSelection } from "../engine/select.ts";
import {
  DatagramBatch,
  type DatagramTransport,
  type EngineFeatures,
  type EngineUse,
  tcpEngineUse,
} from "../engine/types.ts";
import { closedWithoutReply, fromSystemError, NetkitError, PartialRunError } from "../errors.ts";
import { closeQuietly, isClosedError, writeAll } from "../io.ts";
import { LineReader } from "./line_reader.ts";
import {
  type DropCounters,
  dropsDuring,
  readUdpSocketDrops,
  receiveDrops,
} from "../udp_counters.ts";
import {
  CONTROL_MAGIC,
  type ControlMessage,
  DATA_MAGIC,
  encodeControl,
  parseControl,
  readUdpHeaderAt,
  type SentFigures,
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
  sendUdpBatches,
  TcpReceiver,
  UDP_GSO_MESSAGES,
  UDP_SEND_BATCH,
  udpGsoSegments,
  UdpReceiver,
} from "./streams.ts";
import { combineDirection, type DirectionResult } from "./result.ts";

export type { DirectionResult } from "./result.ts";

/** What a throughput test measured. */
export interface ThroughputResult {
  plan: ThroughputPlan;
  up: DirectionResult | undefined;
  down: DirectionResult | undefined;
  elapsedS: number;
  /** Whether the test was stopped (Ctrl-C, SIGTERM) before its duration. */
  interrupted?: boolean;
  /**
   * The client's own counts, when the server's figures never arrived (the
   * server went away, or a second Ctrl-C skipped the wait): `up` and `down`
   * are then undefined.
   */
  clientOnly?: { sentBytes: number; receivedBytes: number; seconds: number };
  /** The engine that moved the client's UDP datagrams (TCP: Deno's sockets). */
  engine?: EngineUse;
}

/** Receivers' per-stream interval bins (the hub's too), for the end-of-test view and reports. */
const RECEIVER_BIN_MS = 1000;

/** How often a receiving client tells the server how much it has received. */
const PROGRESS_MS = 500;

/** One live interval of the client's own view. */
export interface ThroughputInterval {
  startS: number;
  endS: number;
  sentBytes: number;
  receivedBytes: number;
}

/** The client's live counts of a test under way, for a progress display. */
export interface ThroughputLive {
  sentBytes: number;
  receivedBytes: number;
  /** Seconds since the server said go. */
  elapsedS: number;
}

/** Options of {@linkcode runThroughput}. */
export interface RunThroughputOptions {
  /**
   * Called once as data starts to flow, with a function that reads the live counts.
   * @default {undefined}
   */
  onStart?: (live: () => ThroughputLive) => void;
  /** Called every `plan.intervalMs` with the client's own counts. @default {undefined} */
  onInterval?: (interval: ThroughputInterval) => void;
  /** Aborting stops the test early; the figures of what ran are still exchanged. @default {undefined} */
  signal?: AbortSignal;
  /** Aborting stops waiting for the server's figures too (a second Ctrl-C). @default {undefined} */
  now?: AbortSignal;
  /**
   * The engine for the client's UDP flows (`--engine`, chosen by `selectEngine`).
   * @default {the deno engine}
   */
  engine?: EngineSelection;
}

/** The receive-buffer drops of a flow's socket (by its local port), and the host's. */
function flowDrops(flow: DatagramTransport): ReturnType<typeof receiveDrops> {
  return receiveDrops({ addr: { transport: "udp", ...flow.local } });
}

/** Datagrams per receive call on a flow (the prototype's best with recvmmsg on loopback). */
const UDP_RECEIVE_BATCH = 64;

/** The report's engine: the batch sizes this client uses (at most the engine's). */
function engineUse(features: EngineFeatures, reason: string, size: number): EngineUse {
  return {
    ...features,
    sendBatch: features.gso
      ? UDP_GSO_MESSAGES * udpGsoSegments(size)
      : Math.min(features.sendBatch, UDP_SEND_BATCH),
    receiveBatch: Math.min(features.receiveBatch, UDP_RECEIVE_BATCH),
    reason,
  };
}

/**
 * Bytes of kernel socket buffer asked for per UDP flow and direction: 4 MiB
 * (iperf3 -w 4M's loss-free figure on loopback) shared out over many flows,
 * never below 256 KiB. Root's SO_RCVBUFFORCE may exceed net.core.rmem_max;
 * anyone else gets at most that maximum.
 */
function udpSocketBuffer(parallel: number): number {
  return Math.max(256 * 1024, Math.min(4 * 1024 * 1024, Math.floor((16 * 1024 * 1024) / parallel)));
}

/**
 * Run one throughput test against a netkit server.
 *
 * @throws {PartialRunError} carrying the client's own counts, when the server
 * went away during the test.
 */
export async function runThroughput(
  plan: ThroughputPlan,
  options: RunThroughputOptions = {},
): Promise<ThroughputResult> {
  const where = formatEndpoint(plan.endpoint);
  // Closed or reset before any answer: turned away by a limit, or not a netkit server.
  const turnedAway = () => {
    const closed = closedWithoutReply(where);
    return new NetkitError(
      closed.kind,
      `${closed.message}; throughput tests need a netkit server in echo or discard mode`,
    );
  };
  const control = await dialStream(plan.endpoint, plan.timeoutMs);
  const resources: { close(): void }[] = [control];
  const lines = new LineReader(control);
  // Control lines go out one after another (progress lines and the report never interleave).
  let writing: Promise<void> = Promise.resolve();
  const send = (m: ControlMessage) => {
    const line = encodeControl(m);
    writing = writing.catch(() => {}).then(() => writeAll(control, line));
    return writing;
  };
  let started = false;
  const wentAway = (how: string) =>
    new NetkitError("network", `${where} went away: it ${how} during the throughput test`);
  const expect = async <T extends ControlMessage["type"]>(type: T, ms: number) => {
    let line: string | null;
    try {
      line = await deadline(
        lines.next(),
        ms,
        () =>
          new NetkitError(
            "timeout",
            `${where} did not answer the throughput test (waiting for '${type}')`,
          ),
      );
    } catch (err) {
      if (started && isClosedError(err)) throw wentAway("reset the control connection");
      throw err;
    }
    if (line === null && started) throw wentAway("closed the control connection");
    const message = line === null ? undefined : parseControl(line);
    if (message?.type === "invalid" && message.problem !== "not JSON") {
      throw new NetkitError(
        "failure",
        `${where} broke the throughput protocol (waiting for '${type}'): ${message.problem}`,
      );
    }
    if (message?.type === "error") {
      throw new NetkitError("failure", `${where} refused the test: ${message.message}`);
    }
    if (line === null && type === "ready") throw turnedAway();
    if (message?.type !== type) {
      throw new NetkitError(
        "failure",
        line === null
          ? `${where} closed the control connection; is it a netkit server in echo or discard mode?`
          : line.startsWith(CONTROL_MAGIC.trim())
          ? `${where} echoed the test request back: an echo server that does not speak netkit's throughput protocol ${CONTROL_MAGIC.trim()} (an older netkit? run the same version on both ends)`
          : `${where} does not speak netkit's throughput protocol`,
      );
    }
    return message as Extract<ControlMessage, { type: T }>;
  };
  try {
    let ready: Extract<ControlMessage, { type: "ready" }>;
    try {
      await writeAll(control, new TextEncoder().encode(CONTROL_MAGIC));
      await send({
        type: "start",
        proto: plan.proto,
        direction: plan.direction,
        parallel: plan.parallel,
        duration_ms: Math.round(plan.durationMs),
        size: plan.size,
        bitrate: plan.bitrate,
        ...(plan.gso && plan.proto === "udp" && { gso: true }),
      });
      ready = await expect("ready", plan.timeoutMs);
    } catch (err) {
      // Closed or reset before the server said a word: turned away (a limit).
      if (!(err instanceof NetkitError) && isClosedError(err)) {
        throw turnedAway();
      }
      throw err;
    }
    const secret = plan.proto === "udp" ? fromHex(ready.udp_secret, UDP_SECRET_BYTES) : undefined;
    if (
      plan.proto === "udp" &&
      (!secret || !Number.isInteger(ready.udp_key) || ready.udp_key! < 0 ||
        ready.udp_key! > 0xffffffff || !Number.isInteger(ready.udp_port) ||
        ready.udp_port! < 1 || ready.udp_port! > 65535)
    ) {
      throw new NetkitError(
        "failure",
        `${where} gave no valid UDP port, key and secret for the test (an older netkit? run the same version on both ends)`,
      );
    }
    const key = ready.udp_key ?? 0;
    const receiving = plan.direction !== "up";
    const sending = plan.direction !== "down";

    // Open the data streams.
    const tcpConns: Deno.Conn[] = [];
    const udpFlows: DatagramTransport[] = [];
    const selection = options.engine ?? { engine: denoEngine, reason: "the library default" };
    if (plan.gso && selection.engine.name !== "native") {
      throw new NetkitError(
        "usage",
        `--gso needs the native engine (this run has the ${selection.engine.name} engine: ${selection.reason}); drop --gso or use '--engine native' on Linux with glibc`,
      );
    }
    const udpAddress = plan.proto === "udp" ? await resolve(plan.endpoint, where) : "";
    for (let s = 0; s < plan.parallel; s++) {
      if (plan.proto === "tcp") {
        const conn = await dialStream(plan.endpoint, plan.timeoutMs);
        resources.push(conn);
        await writeAll(conn, new TextEncoder().encode(`${DATA_MAGIC}${ready.test_id} ${s}\n`));
        tcpConns.push(conn);
      } else {
        const source = plan.endpoint.source;
        const buffer = udpSocketBuffer(plan.parallel);
        // The flow's one socket proves its address and then carries the data: same source port.
        const flow = await selection.engine.open({
          remote: { hostname: udpAddress, port: ready.udp_port! },
          ...(source && {
            local: {
              hostname: source.hostname ?? (udpAddress.includes(":") ? "::" : "0.0.0.0"),
              port: source.port ?? 0,
            },
          }),
          ...(receiving && { receiveBuffer: buffer }),
          ...(sending && { sendBuffer: buffer }),
          ...(sending && plan.gso && { gsoSegment: plan.size }),
          // A paced stream is timed on arrival (jitter); an unlimited one gains from batches.
          receiveWait: plan.bitrate > 0 ? "event-loop" : "pool",
        }).catch((err) => {
          throw fromSystemError(err, "open a UDP socket for", where);
        });
        resources.push(flow);
        udpFlows.push(flow);
      }
    }
    const udpReceivers = udpFlows.map((_, s) => new UdpReceiver(s, RECEIVER_BIN_MS));
    const udpLoops: Promise<void>[] = [];
    if (plan.proto === "udp") {
      // Each flow proves it receives at its address before the server sends it anything more.
      await Promise.all(
        udpFlows.map((flow, s) =>
          bindFlow(flow, s, {
            key,
            secret: secret!,
            timeoutMs: plan.timeoutMs,
            where,
            port: ready.udp_port!,
          })
        ),
      );
      udpFlows.forEach((flow, s) =>
        udpLoops.push(receiveUdp(flow, key, udpReceivers[s]!, plan.size))
      );
    }
    const dropsBefore = receiving ? await Promise.all(udpFlows.map(flowDrops)) : [];
    // On loopback the server's test socket is this host's too: its drops are readable here.
    const serverPort = plan.proto === "udp" && sending && isLoopback(plan.endpoint.hostname)
      ? ready.udp_port
      : null;
    const serverDropsBefore = serverPort === null
      ? undefined
      : await readUdpSocketDrops(serverPort);
    await expect("go", plan.timeoutMs + plan.durationMs);
    started = true;
    const start = performance.now();
    for (const r of udpReceivers) r.begin(start);

    const progress = { sent: { bytes: 0 }, received: { bytes: 0 } };
    const tcpReceivers = tcpConns.map((_, s) =>
      new TcpReceiver(s, RECEIVER_BIN_MS, { engine: selection.engine })
    );
    options.onStart?.(() => ({
      sentBytes: progress.sent.bytes,
      receivedBytes: receivedBytes(tcpReceivers, udpReceivers),
      elapsedS: (performance.now() - start) / 1000,
    }));
    let last = { at: start, sent: 0, received: 0 };
    const report = (now: number) => {
      const received = receivedBytes(tcpReceivers, udpReceivers);
      options.onInterval?.({
        startS: (last.at - start) / 1000,
        endS: (now - start) / 1000,
        sentBytes: progress.sent.bytes - last.sent,
        receivedBytes: received - last.received,
      });
      last = { at: now, sent: progress.sent.bytes, received };
    };
    let reporter = plan.intervalMs > 0 && options.onInterval
      ? setInterval(() => report(performance.now()), plan.intervalMs)
      : undefined;
    // A sending server keeps going only while the client says it is receiving.
    const progressTimer = receiving
      ? setInterval(() => {
        const received = receivedBytes(tcpReceivers, udpReceivers);
        send({ type: "progress", received_bytes: received }).catch(() => {});
      }, PROGRESS_MS)
      : undefined;
    /** Stop the interval lines, with a last one for the partial interval: they add up to the totals. */
    const flush = () => {
      if (reporter === undefined) return;
      clearInterval(reporter);
      reporter = undefined;
      // Only after a first interval: a test shorter than one interval prints none.
      const received = receivedBytes(tcpReceivers, udpReceivers);
      if (last.at > start && (progress.sent.bytes !== last.sent || received !== last.received)) {
        report(performance.now());
      }
    };
    const signal = options.signal;
    // Stopped early: no more data is wanted, so close what the server sends on
    // (its senders end on the closed stream); what it received still counts.
    const stopReceiving = () => {
      if (!receiving) return;
      for (const conn of tcpConns) closeQuietly(conn);
      for (const r of udpReceivers) r.end();
    };
    signal?.addEventListener("abort", stopReceiving);
    const clientOnly = () => ({
      sentBytes: progress.sent.bytes,
      receivedBytes: receivedBytes(tcpReceivers, udpReceivers),
      seconds: (performance.now() - start) / 1000,
    });
    // What an early end still reports: the client's own counts, no exchanged figures.
    const partialResult = (): ThroughputResult => ({
      plan,
      up: undefined,
      down: undefined,
      elapsedS: (performance.now() - start) / 1000,
      interrupted: signal?.aborted === true,
      clientOnly: clientOnly(),
    });
    try {
      const senders: Promise<SentFigures>[] = [];
      const receivers: Promise<void>[] = [];
      for (let s = 0; s < plan.parallel; s++) {
        const opts = {
          stream: s,
          size: plan.size,
          bitrate: plan.bitrate,
          durationMs: plan.durationMs,
          progress: progress.sent,
          ...(signal && { signal }),
        };
        if (plan.proto === "tcp") {
          if (sending) senders.push(sendTcp(tcpConns[s]!, opts));
          if (receiving) {
            const running = tcpReceivers[s]!.run(tcpConns[s]!);
            running.catch(() => {}); // awaited below, after the senders: never unhandled
            receivers.push(running);
          }
        } else if (sending) {
          senders.push(sendUdpBatches(udpFlows[s]!, { ...opts, key }));
        }
      }
      const sent = await Promise.all(senders);
      // TCP receivers end when the server half-closes; UDP ones at `end` or after a drain period.
      await deadline(
        Promise.all(receivers),
        plan.timeoutMs + 1000,
        () => new NetkitError("timeout", `${where} kept sending past the test's end`),
      );
      if (plan.proto === "udp" && receiving) {
        await drainUdp(udpReceivers, start + plan.durationMs + 1000);
      }
      clearInterval(progressTimer);
      // Read while the server's test socket is still open: it closes once the report is in.
      const serverDropsAfter = serverPort === null
        ? undefined
        : await readUdpSocketDrops(serverPort);
      const dropsAfter = await Promise.all(
        dropsBefore.map((_, s) => flowDrops(udpFlows[s]!)),
      );
      flush();
      let server: Extract<ControlMessage, { type: "report" }>;
      try {
        await send({ type: "report", sent, received: [] }).catch((err) => {
          throw isClosedError(err) ? wentAway("closed the control connection") : err;
        });
        const now = options.now;
        server = await abortable(expect("report", plan.timeoutMs + 2000), now);
      } catch (err) {
        const partial = partialResult();
        // Told to stop waiting (a second Ctrl-C): what the client counted is the report.
        if (err === STOPPED_WAITING) return partial;
        if (err instanceof NetkitError && (err.kind === "network" || signal?.aborted)) {
          throw new PartialRunError(err, partial);
        }
        throw err;
      }
      const elapsedS = (performance.now() - start) / 1000;
      const serverSent = new Map(server.sent.map((f) => [f.stream, f.datagrams]));
      const clientReceived = receiving
        ? plan.proto === "tcp"
          ? tcpReceivers.map((t) => t.figures())
          : udpReceivers.map((u) => u.figures(serverSent.get(u.stream)))
        : [];
      return {
        plan,
        elapsedS,
        interrupted: signal?.aborted === true,
        engine: udpFlows[0]
          ? engineUse(
            // The server's GRO receives count too: on loopback they skip per-datagram work.
            { ...udpFlows[0].features, gro: udpFlows[0].features.gro || ready.udp_gro === true },
            selection.reason,
            plan.size,
          )
          : tcpEngineUse(Math.max(0, ...tcpReceivers.map((r) => r.lowWater))),
        up: sending
          ? combineDirection(
            sent,
            server.received,
            server.rcvbuf_errors ??
              (serverDropsBefore !== undefined && serverDropsAfter !== undefined
                ? serverDropsAfter - serverDropsBefore
                : null),
          )
          : undefined,
        down: receiving
          ? combineDirection(server.sent, clientReceived, sumDrops(dropsBefore, dropsAfter))
          : undefined,
      };
    } catch (err) {
      // The server went away mid-test: report what the client counted, then the error.
      if (err instanceof PartialRunError) throw err;
      const error = isClosedError(err)
        ? wentAway("reset a data connection")
        : err instanceof NetkitError && err.kind === "network"
        ? err
        : undefined;
      if (error === undefined) throw err;
      throw new PartialRunError(error, partialResult());
    } finally {
      clearInterval(progressTimer);
      flush();
      signal?.removeEventListener("abort", stopReceiving);
      for (const r of resources) closeQuietly(r);
      await Promise.allSettled(udpLoops); // they end once their sockets are closed
    }
  } finally {
    // Setup may have failed before the inner block: close whatever was opened.
    for (const r of resources) closeQuietly(r);
  }
}

/** The client's own receive-buffer drops over its UDP flows; null where unreadable. */
function sumDrops(before: DropCounters[], after: DropCounters[]): number | null {
  if (before.length === 0) return null;
  // Host-wide counters would count every flow's drops once per flow: take them once.
  const each = before.map((b, s) => dropsDuring(b, after[s]!));
  if (each.some((d) => d === null)) return null;
  const perSocket = before.every((b, s) =>
    b.socket !== undefined && after[s]!.socket !== undefined
  );
  return perSocket ? each.reduce((a, d) => a! + d!, 0) : each[0]!;
}

const STOPPED_WAITING = new Error("stopped waiting");

/** `promise`, or a rejection with {@linkcode STOPPED_WAITING} as soon as `signal` aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    promise.catch(() => {}); // abandoned: its failure once the sockets close is moot
    return Promise.reject(STOPPED_WAITING);
  }
  const { promise: stopped, reject } = Promise.withResolvers<never>();
  const onAbort = () => reject(STOPPED_WAITING);
  signal.addEventListener("abort", onAbort, { once: true });
  return Promise.race([promise, stopped]).finally(() =>
    signal.removeEventListener("abort", onAbort)
  );
}

function receivedBytes(tcp: TcpReceiver[], udp: UdpReceiver[]): number {
  let total = 0;
  for (const r of tcp) total += r.bytes;
  for (const r of udp) total += r.bytes;
  return total;
}

/** What a UDP flow needs to bind itself to its stream. */
interface BindOptions {
  key: number;
  secret: Uint8Array;
  timeoutMs: number;
  where: string;
  /** The server's UDP port, for the message when it does not answer. */
  port: number;
}

/**
 * Bind one UDP flow: send hellos carrying the test's secret (every 200 ms) until the
 * server's challenge arrives, then echo the challenge in proofs (every 200 ms) until the
 * server acks: the server sends nothing else to an address that has not proven it receives.
 */
async function bindFlow(
  socket: DatagramTransport,
  stream: number,
  options: BindOptions,
): Promise<void> {
  const out = new DatagramBatch(1, Math.max(UDP_HELLO_BYTES, UDP_PROOF_BYTES));
  const view = new DataView(out.data.buffer);
  const header: UdpHeader = { key: 0, stream: 0, kind: 0, seq: 0, sendTimeMs: 0 };
  // The connected socket hears only the server's test port: challenges and acks (≤ 44 B).
  const replies = new DatagramBatch(4, 2048);
  let challenge: Uint8Array | undefined;
  const sendNext = () => {
    const kind = challenge ? UdpKind.proof : UdpKind.hello;
    writeUdpHeader(view, options.key, stream, kind, 0, performance.now());
    out.data.set(challenge ?? options.secret, UDP_HEADER_BYTES);
    out.fill(1, challenge ? UDP_PROOF_BYTES : UDP_HELLO_BYTES);
    socket.sendBatch(out).catch(() => {});
  };
  sendNext();
  const resend = setInterval(sendNext, 200);
  try {
    await deadline(
      (async () => {
        while (true) {
          const n = await socket.receiveBatch(replies);
          if (n === 0) return; // closed: the deadline or the caller has already given up
          for (let i = 0; i < n; i++) {
            const at = i * replies.slotSize;
            const length = replies.lengths[i]!;
            if (
              !readUdpHeaderAt(replies.data, at, length, header) || header.key !== options.key ||
              header.stream !== stream
            ) continue;
            if (header.kind === UdpKind.helloAck) return;
            if (header.kind === UdpKind.challenge && length >= UDP_PROOF_BYTES && !challenge) {
              challenge = replies.data.slice(
                at + UDP_HEADER_BYTES,
                at + UDP_HEADER_BYTES + UDP_CHALLENGE_BYTES,
              );
              sendNext();
            }
          }
        }
      })(),
      options.timeoutMs,
      () =>
        new NetkitError(
          "timeout",
          `No UDP answer from ${options.where} port ${options.port}: is UDP blocked on the path, or does the server refuse UDP from this address (--allow/--deny, or an IP other than this client's TCP one without --allow-udp-from-any-ip)?`,
        ),
    );
  } finally {
    clearInterval(resend);
  }
}

/** `hex` as exactly `bytes` bytes, or `undefined` when it is not that. */
function fromHex(hex: unknown, bytes: number): Uint8Array | undefined {
  if (typeof hex !== "string" || !new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(hex)) {
    return undefined;
  }
  return Uint8Array.from({ length: bytes }, (_, i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16));
}

/** Count one flow's test datagrams, a batch per receive, until its socket is closed. */
async function receiveUdp(
  socket: DatagramTransport,
  key: number,
  receiver: UdpReceiver,
  size: number,
): Promise<void> {
  const slot = Math.max(size, UDP_PROOF_BYTES);
  const batch = new DatagramBatch(
    Math.max(1, Math.min(UDP_RECEIVE_BATCH, Math.floor((1 << 20) / slot))),
    slot,
  );
  const header: UdpHeader = { key: 0, stream: 0, kind: 0, seq: 0, sendTimeMs: 0 };
  while (true) {
    let n: number;
    try {
      n = await socket.receiveBatch(batch);
    } catch (err) {
      if (isClosedError(err)) return;
      continue;
    }
    if (n === 0) return; // closed
    const now = performance.now();
    for (let i = 0; i < n; i++) {
      const length = batch.lengths[i]!;
      if (
        !readUdpHeaderAt(batch.data, i * slot, length, header) || header.key !== key ||
        header.stream !== receiver.stream
      ) continue;
      if (header.kind === UdpKind.data) receiver.record(header, length, now);
      else if (header.kind === UdpKind.end) receiver.end();
    }
  }
}
