/**
 * The client role of a throughput test: agree the test over a control
 * connection, open the data streams (TCP connections, or UDP flows the client
 * opens so that `--reverse` works from behind NAT), send and/or receive for the
 * duration, then exchange figures so both the sender's and the receiver's view
 * are reported.
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
import { dialStream, openDatagram } from "../client/dial.ts";
import { formatEndpoint } from "../address.ts";
import { deadline } from "../deadline.ts";
import { NetkitError } from "../errors.ts";
import { closeQuietly, writeAll } from "../io.ts";
import { LineReader } from "./line_reader.ts";
import {
  CONTROL_MAGIC,
  type ControlMessage,
  DATA_MAGIC,
  decodeControl,
  encodeControl,
  readUdpHeader,
  type ReceivedFigures,
  type SentFigures,
  UDP_HEADER_BYTES,
  type UdpHeader,
  UdpKind,
  writeUdpHeader,
} from "./protocol.ts";
import { drainUdp, sendTcp, sendUdp, TcpReceiver, UdpReceiver } from "./streams.ts";

/** Totals of one direction, from both ends. */
export interface DirectionResult {
  sent: { bytes: number; datagrams: number; seconds: number; streams: SentFigures[] };
  received: {
    bytes: number;
    datagrams: number;
    lost: number;
    outOfOrder: number;
    duplicates: number;
    jitterMs: number | null;
    seconds: number;
    streams: ReceivedFigures[];
  };
  /** Receiver's kernel UDP receive-buffer drops during the test, where it could tell. */
  rcvbufErrors: number | null;
}

/** What a throughput test measured. */
export interface ThroughputResult {
  plan: ThroughputPlan;
  up: DirectionResult | undefined;
  down: DirectionResult | undefined;
  elapsedS: number;
}

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
}

/** Run one throughput test against a netkit server. */
export async function runThroughput(
  plan: ThroughputPlan,
  options: RunThroughputOptions = {},
): Promise<ThroughputResult> {
  const where = formatEndpoint(plan.endpoint);
  const control = await dialStream(plan.endpoint, plan.timeoutMs);
  const resources: { close(): void }[] = [control];
  const lines = new LineReader(control);
  const send = (m: ControlMessage) => writeAll(control, encodeControl(m));
  const expect = async <T extends ControlMessage["type"]>(type: T, ms: number) => {
    const line = await deadline(
      lines.next(),
      ms,
      () =>
        new NetkitError(
          "timeout",
          `${where} did not answer the throughput test (waiting for '${type}')`,
        ),
    );
    const message = line === null ? undefined : decodeControl(line);
    if (message?.type === "error") {
      throw new NetkitError("failure", `${where} refused the test: ${message.message}`);
    }
    if (message?.type !== type) {
      throw new NetkitError(
        "failure",
        line === null
          ? `${where} closed the control connection; is it a netkit server in echo or discard mode?`
          : `${where} does not speak netkit's throughput protocol`,
      );
    }
    return message as Extract<ControlMessage, { type: T }>;
  };
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
    });
    const ready = await expect("ready", plan.timeoutMs);
    const receiving = plan.direction !== "up";
    const sending = plan.direction !== "down";

    // Open the data streams.
    const tcpConns: Deno.Conn[] = [];
    const udpFlows: { socket: Deno.DatagramConn; peer: Deno.NetAddr }[] = [];
    const key = { value: 0 };
    for (let s = 0; s < plan.parallel; s++) {
      if (plan.proto === "tcp") {
        const conn = await dialStream(plan.endpoint, plan.timeoutMs);
        resources.push(conn);
        await writeAll(conn, new TextEncoder().encode(`${DATA_MAGIC}${ready.test_id} ${s}\n`));
        tcpConns.push(conn);
      } else {
        if (ready.udp_port === null) {
          throw new NetkitError("failure", `${where} gave no UDP port for the test`);
        }
        const flow = await openDatagram({
          ...plan.endpoint,
          transport: "udp",
          port: ready.udp_port,
        });
        resources.push(flow.socket);
        udpFlows.push(flow);
      }
    }
    const udpReceivers = udpFlows.map((_, s) => new UdpReceiver(s, 0));
    const udpLoops: Promise<void>[] = [];
    if (plan.proto === "udp") {
      // The key is not known to the client until the first ack; hellos carry 0 and the
      // server answers with the test's key (acks are never larger than the hello).
      await Promise.all(
        udpFlows.map((flow, s) => hello(flow.socket, flow.peer, s, plan.timeoutMs, key, where)),
      );
      udpFlows.forEach((flow, s) =>
        udpLoops.push(receiveUdp(flow.socket, key.value, udpReceivers[s]!))
      );
    }
    await expect("go", plan.timeoutMs + plan.durationMs);
    const start = performance.now();
    for (const r of udpReceivers) r.begin(start);

    const progress = { sent: { bytes: 0 }, received: { bytes: 0 } };
    const tcpReceivers = tcpConns.map((_, s) => new TcpReceiver(s, 0));
    options.onStart?.(() => ({
      sentBytes: progress.sent.bytes,
      receivedBytes: receivedBytes(tcpReceivers, udpReceivers),
      elapsedS: (performance.now() - start) / 1000,
    }));
    let last = { at: start, sent: 0, received: 0 };
    const reporter = plan.intervalMs > 0 && options.onInterval
      ? setInterval(() => {
        const now = performance.now();
        const received = receivedBytes(tcpReceivers, udpReceivers);
        options.onInterval?.({
          startS: (last.at - start) / 1000,
          endS: (now - start) / 1000,
          sentBytes: progress.sent.bytes - last.sent,
          receivedBytes: received - last.received,
        });
        last = { at: now, sent: progress.sent.bytes, received };
      }, plan.intervalMs)
      : undefined;
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
        };
        if (plan.proto === "tcp") {
          if (sending) senders.push(sendTcp(tcpConns[s]!, opts));
          if (receiving) receivers.push(tcpReceivers[s]!.run(tcpConns[s]!));
        } else if (sending) {
          senders.push(
            sendUdp(udpFlows[s]!.socket, udpFlows[s]!.peer, { ...opts, key: key.value }),
          );
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
      await send({ type: "report", sent, received: [] });
      const server = await expect("report", plan.timeoutMs + 2000);
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
        up: sending ? combine(sent, server.received, server.rcvbuf_errors ?? null) : undefined,
        down: receiving ? combine(server.sent, clientReceived, null) : undefined,
      };
    } finally {
      if (reporter !== undefined) clearInterval(reporter);
      for (const r of resources) closeQuietly(r);
      await Promise.allSettled(udpLoops); // they end once their sockets are closed
    }
  } finally {
    // Setup may have failed before the inner block: close whatever was opened.
    for (const r of resources) closeQuietly(r);
  }
}

function receivedBytes(tcp: TcpReceiver[], udp: UdpReceiver[]): number {
  let total = 0;
  for (const r of tcp) total += r.bytes;
  for (const r of udp) total += r.bytes;
  return total;
}

function combine(
  sent: SentFigures[],
  received: ReceivedFigures[],
  rcvbufErrors: number | null,
): DirectionResult {
  const sum = <T>(items: T[], f: (t: T) => number) => items.reduce((a, t) => a + f(t), 0);
  const jitters = received.map((r) => r.jitter_ms).filter((j): j is number => j !== null);
  return {
    sent: {
      bytes: sum(sent, (s) => s.bytes),
      datagrams: sum(sent, (s) => s.datagrams),
      seconds: Math.max(0, ...sent.map((s) => s.seconds)),
      streams: sent,
    },
    received: {
      bytes: sum(received, (r) => r.bytes),
      datagrams: sum(received, (r) => r.datagrams),
      lost: sum(received, (r) => r.lost),
      outOfOrder: sum(received, (r) => r.out_of_order),
      duplicates: sum(received, (r) => r.duplicates),
      jitterMs: jitters.length > 0 ? jitters.reduce((a, j) => a + j, 0) / jitters.length : null,
      seconds: Math.max(0, ...received.map((r) => r.seconds)),
      streams: received,
    },
    rcvbufErrors,
  };
}

/** Send hellos (every 200 ms) until the server acks, learning the test key from the ack. */
async function hello(
  socket: Deno.DatagramConn,
  peer: Deno.NetAddr,
  stream: number,
  timeoutMs: number,
  key: { value: number },
  where: string,
): Promise<void> {
  const buf = new Uint8Array(UDP_HEADER_BYTES);
  const view = new DataView(buf.buffer);
  const header: UdpHeader = { key: 0, stream: 0, kind: 0, seq: 0, sendTimeMs: 0 };
  const reply = new Uint8Array(65536);
  const sendHello = () => {
    writeUdpHeader(view, 0, stream, UdpKind.hello, 0, performance.now());
    socket.send(buf, peer).catch(() => {});
  };
  sendHello();
  const resend = setInterval(sendHello, 200);
  try {
    key.value = await deadline(
      (async () => {
        while (true) {
          const [data] = await socket.receive(reply);
          if (
            readUdpHeader(data, header) && header.kind === UdpKind.helloAck &&
            header.stream === stream
          ) {
            return header.key;
          }
        }
      })(),
      timeoutMs,
      () =>
        new NetkitError(
          "timeout",
          `No UDP answer from ${where} port ${peer.port}: is UDP blocked on the path?`,
        ),
    );
  } finally {
    clearInterval(resend);
  }
}

async function receiveUdp(
  socket: Deno.DatagramConn,
  key: number,
  receiver: UdpReceiver,
): Promise<void> {
  const buf = new Uint8Array(65536);
  const header: UdpHeader = { key: 0, stream: 0, kind: 0, seq: 0, sendTimeMs: 0 };
  while (true) {
    let data: Uint8Array;
    try {
      [data] = await socket.receive(buf);
    } catch (err) {
      if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) return;
      continue;
    }
    const now = performance.now();
    if (!readUdpHeader(data, header) || header.key !== key || header.stream !== receiver.stream) {
      continue;
    }
    if (header.kind === UdpKind.data) receiver.record(header, data.length, now);
    else if (header.kind === UdpKind.end) receiver.end();
  }
}
