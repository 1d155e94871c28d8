/**
 * The client role against an iperf3 server (`netkit client --throughput
 * --iperf3`): iperf3's control protocol (cookie, state bytes, length-prefixed
 * JSON parameters and results), its TCP and UDP data streams, and the mapping
 * of both ends' figures onto netkit's throughput result, with the server's
 * own results kept as it sent them.
 *
 * Every message from the server is checked: an unexpected state, a bad length
 * or a malformed results document ends the run with a protocol error
 * ({@linkcode NetkitError} of kind `failure`) naming it, never a crash.
 *
 * @example
 * ```ts
 * import { runIperf3Client } from "./client.ts";
 *
 * const run = await runIperf3Client({
 *   endpoint: { transport: "tcp", hostname: "127.0.0.1", port: 5201 },
 *   proto: "tcp", direction: "up", parallel: 1, durationMs: 2000, size: 131072,
 *   bitrate: 0, intervalMs: 1000, timeoutMs: 5000,
 * });
 * console.log(run.result.up?.received.bytes, run.server.streams.length);
 * ```
 *
 * @module
 */

import { delay } from "@std/async/delay";
import type { ThroughputPlan } from "../config.ts";
import { dialStream, openDatagram } from "../client/dial.ts";
import { formatEndpoint } from "../address.ts";
import { deadline } from "../deadline.ts";
import { type Engine, tcpEngineUse } from "../engine/types.ts";
import { NetkitError, PartialRunError } from "../errors.ts";
import { closeQuietly, writeAll } from "../io.ts";
import type { ThroughputInterval, ThroughputLive, ThroughputResult } from "../throughput/client.ts";
import type { ReceivedFigures, SentFigures } from "../throughput/protocol.ts";
import { combineDirection } from "../throughput/result.ts";
import { Iperf3Stream, receiveTcp, sendTcp, sendUdp, wallMs } from "./streams.ts";
import {
  buildParams,
  buildResults,
  ControlReader,
  cookieText,
  describeErrno,
  encodeJson,
  type Iperf3Params,
  type Iperf3Results,
  isConnectReply,
  makeCookie,
  MAX_RESULTS_BYTES,
  parseResults,
  State,
  stateByte,
  UDP_CONNECT_MSG,
  udpWord,
  WireError,
} from "./wire.ts";

/** How long after its last datagram a UDP sender waits before TEST_END, and a receiver reads on. */
const UDP_DRAIN_MS = 250;

/** A plan for an iperf3 server: netkit's throughput plan and the warm-up to omit. */
export interface Iperf3Plan extends ThroughputPlan {
  /** Seconds of warm-up left out of the figures (iperf3 `-O`). @default {0} */
  omitMs?: number;
  /** Use 64-bit UDP packet numbers. @default {true} */
  udp64?: boolean;
}

/** One interval of the iperf3 run, per stream, for the iperf3-shaped JSON. */
export interface Iperf3IntervalStreams {
  startS: number;
  endS: number;
  omitted: boolean;
  /** Bytes per stream in this interval, in stream order. */
  bytes: number[];
}

/** What a run against an iperf3 server measured. */
export interface Iperf3Run {
  result: ThroughputResult;
  /** The server's results document, checked. */
  server: Iperf3Results;
  /** The cookie, the parameters sent and the streams (for iperf3's `-J` shape). */
  cookie: string;
  params: Iperf3Params;
  streams: Iperf3Stream[];
  connections: { localHost: string; localPort: number; remoteHost: string; remotePort: number }[];
  intervals: Iperf3IntervalStreams[];
  startedAt: Date;
}

/** Callbacks of {@linkcode runIperf3Client}, as for netkit's own protocol. */
export interface RunIperf3Options {
  /** Called once as data starts to flow. @default {undefined} */
  onStart?: (live: () => ThroughputLive) => void;
  /** Called every `plan.intervalMs` with the client's own counts. @default {undefined} */
  onInterval?: (interval: ThroughputInterval) => void;
  /**
   * Ends the test early (Ctrl-C): during the test, as at its planned end (TEST_END, then
   * both sides' results); before it, at once.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /** Gives up at once, results or not (a second Ctrl-C). @default {undefined} */
  now?: AbortSignal;
  /**
   * The engine whose `receiveLowWater` raises the receive low-water mark of
   * the TCP streams this client receives (`-R`, `--bidir`) while they run
   * fast; the result's engine then says so.
   * @default {undefined} (never raised)
   */
  engine?: Engine;
}

const STATE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(State).map(([name, value]) => [value, name]),
);

function stateName(state: number): string {
  return STATE_NAMES[state] ?? `unknown state ${state}`;
}

/** Run one test against an iperf3 server. */
export async function runIperf3Client(
  plan: Iperf3Plan,
  options: RunIperf3Options = {},
): Promise<Iperf3Run> {
  const where = formatEndpoint(plan.endpoint);
  const omitMs = plan.omitMs ?? 0;
  const params: Iperf3Params = {
    proto: plan.proto,
    omitS: Math.round(omitMs / 1000),
    timeS: Math.round(plan.durationMs / 1000),
    parallel: plan.parallel,
    reverse: plan.direction === "down",
    bidirectional: plan.direction === "bidir",
    len: plan.size,
    bandwidth: plan.bitrate,
    udp64: plan.proto === "udp" && plan.udp64 !== false,
    clientVersion: "3.12",
  };
  const startedAt = new Date();
  const control = await dialStream(plan.endpoint, plan.timeoutMs);
  const resources: { close(): void }[] = [control];
  const stop = new AbortController();
  const loops: Promise<void>[] = [];
  let reporter: ReturnType<typeof setInterval> | undefined;
  let running = false;
  /** Once data flows: the client's own counts, for a report when the server's never come. */
  let partial: (() => ThroughputResult) | undefined;
  const interrupted = () => new NetkitError("failure", `the test with ${where} was interrupted`);
  const onSignal = () => {
    if (running) stop.abort();
    else closeQuietly(control);
  };
  const onNow = () => {
    for (const r of resources) closeQuietly(r);
  };
  options.signal?.addEventListener("abort", onSignal, { once: true });
  options.now?.addEventListener("abort", onNow, { once: true });
  try {
    if (options.signal?.aborted) throw interrupted();
    if ("setNoDelay" in control) (control as Deno.TcpConn).setNoDelay(true);
    const reader = new ControlReader(control);
    const cookie = makeCookie();
    await writeAll(control, cookie);
    const protocolError = (what: string) =>
      new NetkitError(
        "failure",
        `${where} broke iperf3's protocol: ${what}; is it an iperf3 server (3.x)?`,
      );
    /** Read the next state; server errors and the unexpected end the run. */
    const next = async (expected: number, ms: number): Promise<void> => {
      const state = await deadline(
        reader.state(),
        ms,
        () =>
          new NetkitError(
            "timeout",
            `${where} did not answer the iperf3 test (waiting for ${stateName(expected)})`,
          ),
      );
      if (state === expected) return;
      if (state === null) {
        throw new NetkitError(
          "failure",
          `${where} closed the control connection (waiting for ${
            stateName(expected)
          }); is it an iperf3 server?`,
        );
      }
      if (state === State.ACCESS_DENIED) {
        throw new NetkitError(
          "failure",
          `${where} refused the test: the iperf3 server is busy running another test; try again later`,
        );
      }
      if (state === State.SERVER_ERROR) {
        const code = await deadline(reader.int32(), plan.timeoutMs, () => protocolError("cut"));
        const errno = await deadline(reader.int32(), plan.timeoutMs, () => protocolError("cut"));
        if (code === null) throw protocolError("a SERVER_ERROR without its error number");
        const os = errno !== null && errno !== 0 ? ` (system error ${errno})` : "";
        throw new NetkitError(
          "failure",
          `${where} refused the test: ${describeErrno(code)}${os}`,
        );
      }
      if (state === State.SERVER_TERMINATE) {
        throw new NetkitError("failure", `${where} ended the test early (the server terminated)`);
      }
      throw protocolError(`it sent ${stateName(state)} where ${stateName(expected)} was due`);
    };

    await next(State.PARAM_EXCHANGE, plan.timeoutMs);
    await writeAll(control, encodeJson(buildParams(params)));
    await next(State.CREATE_STREAMS, plan.timeoutMs);

    // Streams in iperf3's order: with --bidir the client's senders first, then its receivers.
    const roles: boolean[] = plan.direction === "bidir"
      ? [...Array(plan.parallel).fill(true), ...Array(plan.parallel).fill(false)]
      : Array(plan.parallel).fill(plan.direction === "up");
    const streams = roles.map((sender, i) =>
      new Iperf3Stream(i, sender, plan.proto, plan.size, params.udp64)
    );
    const connections: Iperf3Run["connections"] = [];
    const tcpConns: Deno.Conn[] = [];
    const udpFlows: { socket: Deno.DatagramConn; peer: Deno.NetAddr }[] = [];
    for (const _ of streams) {
      if (plan.proto === "tcp") {
        const conn = await dialStream(plan.endpoint, plan.timeoutMs);
        resources.push(conn);
        await writeAll(conn, cookie);
        tcpConns.push(conn);
        connections.push(describe(conn.localAddr, conn.remoteAddr));
      } else {
        const flow = await openDatagram({ ...plan.endpoint, transport: "udp" });
        resources.push(flow.socket);
        await connectUdp(flow.socket, flow.peer, plan.timeoutMs, where);
        udpFlows.push(flow);
        connections.push(describe(flow.socket.addr, flow.peer));
      }
    }
    await next(State.TEST_START, plan.timeoutMs);
    const start = performance.now();
    for (const s of streams) s.begin(start);
    await next(State.TEST_RUNNING, plan.timeoutMs);
    running = true;
    if (options.signal?.aborted) stop.abort();

    // The server says nothing more until the client's TEST_END, unless it gives up.
    const serverSaid = reader.state();
    let serverEarly: number | null | undefined;
    serverSaid.then((s) => {
      serverEarly = s;
      stop.abort();
    }, () => stop.abort());

    const sent = () => streams.reduce((a, s) => a + (s.sender ? s.bytes : 0), 0);
    const received = () => streams.reduce((a, s) => a + (s.sender ? 0 : s.bytes), 0);
    partial = () => {
      const seconds = (performance.now() - start) / 1000;
      return {
        plan,
        up: undefined,
        down: undefined,
        elapsedS: seconds,
        interrupted: options.signal?.aborted === true,
        clientOnly: { sentBytes: sent(), receivedBytes: received(), seconds },
      };
    };
    options.onStart?.(() => ({
      sentBytes: sent(),
      receivedBytes: received(),
      elapsedS: (performance.now() - start) / 1000,
    }));
    const intervals: Iperf3IntervalStreams[] = [];
    let last = { at: start, bytes: streams.map(() => 0), sent: 0, received: 0 };
    const tick = () => {
      const now = performance.now();
      const bytes = streams.map((s) => s.bytes);
      const omitted = now - start <= omitMs + 1;
      intervals.push({
        startS: (last.at - start) / 1000,
        endS: (now - start) / 1000,
        omitted,
        bytes: bytes.map((b, i) => b - last.bytes[i]!),
      });
      options.onInterval?.({
        startS: (last.at - start) / 1000,
        endS: (now - start) / 1000,
        sentBytes: sent() - last.sent,
        receivedBytes: received() - last.received,
      });
      last = { at: now, bytes, sent: sent(), received: received() };
    };
    if (plan.intervalMs > 0) reporter = setInterval(tick, plan.intervalMs);
    const omitTimer = omitMs > 0
      ? setTimeout(() => {
        const now = performance.now();
        for (const s of streams) s.endOmit(now);
      }, omitMs)
      : undefined;
    const until = start + omitMs + params.timeS * 1000;
    /** The highest receive low-water mark a receiving TCP stream raised (0: none). */
    let lowWater = 0;
    const endTimer = setTimeout(() => stop.abort(), omitMs + params.timeS * 1000);
    try {
      for (const [i, s] of streams.entries()) {
        if (plan.proto === "tcp") {
          loops.push(
            s.sender
              ? sendTcp(tcpConns[i]!, s, plan.bitrate, stop.signal, until)
              : receiveTcp(tcpConns[i]!, s, { engine: options.engine }).then((mark) => {
                lowWater = Math.max(lowWater, mark);
              }),
          );
        } else {
          const { socket, peer } = udpFlows[i]!;
          loops.push(
            s.sender
              ? sendUdp(socket, peer, s, plan.bitrate, stop.signal, until)
              : receiveUdp(socket, s, stop.signal),
          );
        }
      }
      await new Promise<void>((resolve) => {
        if (stop.signal.aborted) resolve();
        else stop.signal.addEventListener("abort", () => resolve(), { once: true });
      });
    } finally {
      clearTimeout(endTimer);
      clearTimeout(omitTimer);
      if (reporter !== undefined) clearInterval(reporter);
      reporter = undefined;
    }
    if (serverEarly !== undefined) {
      if (serverEarly === State.SERVER_TERMINATE) {
        throw new NetkitError("failure", `${where} ended the test early (the server terminated)`);
      }
      if (serverEarly === null) {
        throw new NetkitError("failure", `${where} closed the control connection during the test`);
      }
      throw protocolError(`it sent ${stateName(serverEarly)} during the test`);
    }
    const end = performance.now();
    for (const s of streams) if (s.sender) s.end(end);
    if (plan.intervalMs > 0 && end - last.at > plan.intervalMs / 10) tick();
    if (plan.proto === "udp" && plan.direction !== "down") {
      // An iperf3 server stops counting at TEST_END, even datagrams still queued in its socket:
      // give it a moment to read what is already on its way (its end time moves by as much).
      await delay(UDP_DRAIN_MS);
    }
    await writeAll(control, stateByte(State.TEST_END));
    // Senders stop at once; receivers drain until the server closes its streams.
    const expectResults = (async () => {
      const state = await serverSaid;
      if (state !== State.EXCHANGE_RESULTS) {
        if (state === State.SERVER_ERROR || state === State.SERVER_TERMINATE || state === null) {
          throw new NetkitError("failure", `${where} ended the test without results`);
        }
        throw protocolError(`it sent ${stateName(state)} where EXCHANGE_RESULTS was due`);
      }
    })();
    await deadline(
      expectResults,
      plan.timeoutMs + 2000,
      () => new NetkitError("timeout", `${where} sent no results after the test's end`),
    );
    for (const s of streams) s.end(end);
    if (plan.proto === "udp") {
      // The server has stopped sending: read what is still queued before closing.
      if (plan.direction !== "up") await delay(UDP_DRAIN_MS);
      for (const { socket } of udpFlows) closeQuietly(socket);
    }
    await writeAll(
      control,
      encodeResultsDoc(streams, end),
    );
    let server: Iperf3Results;
    try {
      server = parseResults(
        await deadline(
          reader.json(MAX_RESULTS_BYTES, "server's results"),
          plan.timeoutMs + 2000,
          () => new NetkitError("timeout", `${where} sent no results after the test's end`),
        ),
        streams.length,
      );
    } catch (err) {
      if (err instanceof WireError) throw protocolError(err.message);
      throw err;
    }
    for (const r of server.streams) {
      if (!streams.some((s) => s.id === r.id)) {
        throw protocolError(`its results name stream ${r.id}, which this test does not have`);
      }
    }
    await next(State.DISPLAY_RESULTS, plan.timeoutMs);
    await writeAll(control, stateByte(State.IPERF_DONE)).catch(() => {});
    stop.abort();
    for (const r of resources) closeQuietly(r);
    await Promise.allSettled(loops);
    const result = mapResult(plan, streams, server, (end - start - omitMs) / 1000);
    if (options.signal?.aborted) result.interrupted = true;
    if (lowWater > 0) result.engine = tcpEngineUse(lowWater);
    return {
      result,
      server,
      cookie: cookieText(cookie),
      params,
      streams,
      connections,
      intervals,
      startedAt,
    };
  } catch (err) {
    const error = options.now?.aborted || (options.signal?.aborted && !running)
      ? interrupted()
      : err;
    // The server went away mid-test, or a second Ctrl-C: what this client counted is kept.
    if (partial && error instanceof NetkitError) throw new PartialRunError(error, partial());
    throw error;
  } finally {
    options.signal?.removeEventListener("abort", onSignal);
    options.now?.removeEventListener("abort", onNow);
    if (reporter !== undefined) clearInterval(reporter);
    stop.abort();
    for (const r of resources) closeQuietly(r);
    await Promise.allSettled(loops);
  }
}

function encodeResultsDoc(streams: Iperf3Stream[], end: number): Uint8Array {
  const doc = buildResults(
    streams.map((s) => s.result(((s.endedAt || end) - s.startedAt) / 1000)),
    -1,
  );
  return encodeJson(doc);
}

function describe(local: Deno.Addr, remote: Deno.Addr): Iperf3Run["connections"][number] {
  const l = local as Deno.NetAddr;
  const r = remote as Deno.NetAddr;
  return { localHost: l.hostname, localPort: l.port, remoteHost: r.hostname, remotePort: r.port };
}

/** Send connect messages (every 500 ms) until the server's reply arrives. */
async function connectUdp(
  socket: Deno.DatagramConn,
  peer: Deno.NetAddr,
  timeoutMs: number,
  where: string,
): Promise<void> {
  const message = udpWord(UDP_CONNECT_MSG);
  const send = () => socket.send(message, peer).catch(() => {});
  await send();
  const again = setInterval(send, 500);
  const buf = new Uint8Array(65536);
  try {
    await deadline(
      (async () => {
        while (true) {
          const [data, from] = await socket.receive(buf);
          const f = from as Deno.NetAddr;
          if (f.port === peer.port && isConnectReply(data)) return;
        }
      })(),
      timeoutMs,
      () =>
        new NetkitError(
          "timeout",
          `No UDP connect reply from ${where}: is UDP to port ${peer.port} blocked on the path?`,
        ),
    );
  } finally {
    clearInterval(again);
  }
}

async function receiveUdp(
  socket: Deno.DatagramConn,
  stream: Iperf3Stream,
  _signal: AbortSignal,
): Promise<void> {
  const buf = new Uint8Array(65536);
  while (true) {
    let data: Uint8Array;
    try {
      [data] = await socket.receive(buf);
    } catch (err) {
      if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) break;
      continue;
    }
    // A late connect reply (4 bytes) is not data.
    if (data.length > 4) stream.record(data, wallMs());
  }
  stream.end();
}

/** netkit's view of the test: this end's counts and the server's, per direction. */
function mapResult(
  plan: Iperf3Plan,
  streams: Iperf3Stream[],
  server: Iperf3Results,
  elapsedS: number,
): ThroughputResult {
  const byId = new Map(server.streams.map((r) => [r.id, r]));
  const up: SentFigures[] = [];
  const upReceived: ReceivedFigures[] = [];
  const downSent: SentFigures[] = [];
  const down: ReceivedFigures[] = [];
  for (const [i, s] of streams.entries()) {
    const r = byId.get(s.id);
    if (s.sender) {
      up.push({
        stream: i,
        bytes: s.measuredBytes,
        datagrams: s.count - s.omitCount,
        seconds: s.seconds,
      });
      if (r) {
        const packets = Math.max(0, r.packets - s.omitCount);
        upReceived.push({
          stream: i,
          bytes: r.bytes,
          datagrams: plan.proto === "udp" ? Math.max(0, packets - r.errors) : 0,
          lost: plan.proto === "udp" ? r.errors : 0,
          out_of_order: 0,
          duplicates: 0,
          jitter_ms: plan.proto === "udp" ? r.jitter * 1000 : null,
          seconds: r.endTime - r.startTime,
          intervals: [],
        });
      }
    } else {
      const serverSent = r ? r.packets : undefined;
      if (r) {
        downSent.push({
          stream: i,
          bytes: r.bytes,
          datagrams: plan.proto === "udp" ? Math.max(0, r.packets - s.omit.highest) : 0,
          seconds: r.endTime - r.startTime,
        });
      }
      down.push({
        stream: i,
        bytes: s.measuredBytes,
        datagrams: s.received,
        lost: plan.proto === "udp" ? s.lost(serverSent) : 0,
        out_of_order: s.outOfOrder,
        duplicates: s.duplicates,
        jitter_ms: plan.proto === "udp" && s.jitter.samples > 1 ? s.jitter.jitterMs : null,
        seconds: s.seconds,
        intervals: [],
      });
    }
  }
  const hasUp = plan.direction !== "down";
  const hasDown = plan.direction !== "up";
  return {
    plan,
    elapsedS,
    up: hasUp ? combineDirection(up, upReceived, null) : undefined,
    down: hasDown ? combineDirection(downSent, down, null) : undefined,
  };
}
