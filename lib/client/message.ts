/**
 * Request/reply exchanges: send `--message` `--count` times on each of
 * `--connections` concurrent connections (or UDP sockets) and wait for each
 * echo within `--timeout`. The classic "multi-connection client" of socket
 * tutorials, with an honest summary.
 *
 * @example
 * ```ts
 * import { exchangeMessages } from "./message.ts";
 *
 * const result = await exchangeMessages({
 *   command: "client",
 *   action: "message",
 *   endpoint: { transport: "tcp", hostname: "127.0.0.1", port: 5050 },
 *   tls: undefined,
 *   message: new TextEncoder().encode("hi"),
 *   count: 1,
 *   intervalMs: 0,
 *   connections: 10,
 *   timeoutMs: 5000,
 *   verbose: false,
 * });
 * console.log(result.ok, result.failed);
 * ```
 *
 * @module
 */

import { delay } from "@std/async/delay";
import { formatEndpoint } from "../address.ts";
import type { MessageConfig } from "../config.ts";
import { deadline } from "../deadline.ts";
import { formatDuration } from "../duration.ts";
import { closedWithoutReply, NetkitError } from "../errors.ts";
import { isClosedError, writeAll } from "../io.ts";
import type { EngineSelection } from "../engine/select.ts";
import { DatagramBatch, type DatagramTransport, type HostPort } from "../engine/types.ts";
import { formatCountOf } from "../units.ts";
import {
  dialStream,
  dialTls,
  ensureUdpListener,
  isFrom,
  isPortUnreachable,
  nothingListensOnUdp,
  openDatagram,
  openEngineDatagram,
  resolve,
  type StreamConn,
} from "./dial.ts";

/** What the exchange did, counted as it happened. */
export interface MessageResult {
  /** Connections that got every reply. */
  ok: number;
  /** Connections that failed (connect error, missing reply, reset). */
  failed: number;
  sent: number;
  replies: number;
  bytesOut: number;
  bytesIn: number;
  elapsedMs: number;
  /** Each distinct failure, with how many connections it hit. */
  errors: Map<string, { error: NetkitError; count: number }>;
}

/** Options of {@linkcode exchangeMessages}. */
export interface ExchangeOptions {
  /**
   * Called with each reply (connection index, message index, bytes).
   * @default {undefined}
   */
  onReply?: (connection: number, index: number, reply: Uint8Array) => void;
  /**
   * Called once a connection is open (or a UDP socket bound), with its index.
   * @default {undefined}
   */
  onOpen?: (connection: number) => void;
  /**
   * Aborting sends no more messages (replies in flight are still read).
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * The engine for UDP (`--engine`, chosen by `selectEngine`): the native one's
   * connected socket hears ICMP port unreachable from any host; without it (or
   * with the deno engine) Deno's own socket is used.
   * @default {undefined}
   */
  engine?: EngineSelection;
}

/** Run the exchange on every connection concurrently. */
export async function exchangeMessages(
  config: MessageConfig,
  options: ExchangeOptions = {},
): Promise<MessageResult> {
  const result: MessageResult = {
    ok: 0,
    failed: 0,
    sent: 0,
    replies: 0,
    bytesOut: 0,
    bytesIn: 0,
    elapsedMs: 0,
    errors: new Map(),
  };
  const started = performance.now();
  const one = async (connection: number) => {
    try {
      await exchangeOne(config, connection, result, options);
      result.ok++;
    } catch (err) {
      result.failed++;
      const error = err instanceof NetkitError ? err : new NetkitError(
        "network",
        `${formatEndpoint(config.endpoint)}: ${(err as Error).message}`,
      );
      const seen = result.errors.get(error.message);
      if (seen) seen.count++;
      else result.errors.set(error.message, { error, count: 1 });
    }
  };
  await Promise.all(Array.from({ length: config.connections }, (_, i) => one(i)));
  result.elapsedMs = performance.now() - started;
  return result;
}

async function exchangeOne(
  config: MessageConfig,
  connection: number,
  result: MessageResult,
  options: ExchangeOptions,
): Promise<void> {
  const { endpoint, message, timeoutMs } = config;
  const where = formatEndpoint(endpoint);
  const noReply = (i: number) => () =>
    new NetkitError(
      "timeout",
      `No reply from ${where} within ${formatDuration(timeoutMs)} (message ${
        i + 1
      } of ${config.count})`,
    );
  const pause = (i: number) =>
    i + 1 < config.count && config.intervalMs > 0 ? delay(config.intervalMs) : undefined;

  switch (endpoint.transport) {
    case "tcp":
    case "unix": {
      using conn: StreamConn = endpoint.transport === "tcp" && config.tls
        ? await dialTls(endpoint, config.tls, timeoutMs)
        : await dialStream(endpoint, timeoutMs);
      options.onOpen?.(connection);
      const reply = new Uint8Array(message.length);
      let replies = 0;
      try {
        for (let i = 0; i < config.count && !options.signal?.aborted; i++) {
          await writeAll(conn, message);
          result.sent++;
          result.bytesOut += message.length;
          await deadline(
            readFull(conn, reply, where, config.tls ? undefined : message, replies === 0),
            timeoutMs,
            noReply(i),
          );
          replies++;
          result.replies++;
          result.bytesIn += reply.length;
          options.onReply?.(connection, i, reply);
          await pause(i);
        }
      } catch (err) {
        // Closed or reset before the first reply: turned away by a limit, most likely.
        if (replies === 0 && !(err instanceof NetkitError) && isClosedError(err)) {
          throw closedWithoutReply(where);
        }
        throw err;
      }
      return;
    }
    case "udp": {
      const engine = options.engine?.engine;
      if (engine !== undefined && engine.name !== "deno") {
        const address = await resolve(endpoint, where);
        const remote = { hostname: address, port: endpoint.port };
        using socket = await openEngineDatagram(engine, endpoint, remote, where);
        options.onOpen?.(connection);
        await engineExchange(socket, remote);
        return;
      }
      // Deno's socket hears no ICMP: bind-test this host's own addresses instead.
      const { socket, peer } = await openDatagram(endpoint);
      options.onOpen?.(connection);
      try {
        ensureUdpListener(peer);
        await udpExchange(socket, peer);
      } finally {
        socket.close();
      }
      return;
    }
    default: {
      const never: never = endpoint;
      throw new Error(`unknown transport ${JSON.stringify(never)}`);
    }
  }

  /** Through an engine's connected socket: ICMP port unreachable ends the exchange (exit 3). */
  async function engineExchange(socket: DatagramTransport, remote: HostPort): Promise<void> {
    const out = new DatagramBatch(1, message.length);
    out.data.set(message);
    out.fill(1, message.length);
    const reply = new DatagramBatch(1, 65_535);
    let replies = 0;
    const unreachable = (err: unknown) =>
      !isPortUnreachable(err) ? err : replies === 0 ? nothingListensOnUdp(remote) : new NetkitError(
        "refused",
        `nothing listens on ${where} any more: it went away after ${
          formatCountOf(replies, "reply", "replies")
        } (ICMP port unreachable)`,
      );
    try {
      for (let i = 0; i < config.count && !options.signal?.aborted; i++) {
        await socket.sendBatch(out);
        result.sent++;
        result.bytesOut += message.length;
        await deadline(socket.receiveBatch(reply), timeoutMs, noReply(i));
        replies++;
        result.replies++;
        result.bytesIn += reply.lengths[0]!;
        options.onReply?.(connection, i, reply.slot(0));
        await pause(i);
      }
    } catch (err) {
      throw unreachable(err);
    }
  }

  async function udpExchange(socket: Deno.DatagramConn, peer: Deno.NetAddr): Promise<void> {
    const buf = new Uint8Array(65536);
    const receiveReply = async () => {
      while (true) {
        const [data, from] = await socket.receive(buf);
        if (isFrom(from, peer)) return data;
      }
    };
    for (let i = 0; i < config.count && !options.signal?.aborted; i++) {
      await socket.send(message, peer);
      result.sent++;
      result.bytesOut += message.length;
      // Deno's socket hears no ICMP: silence to the first message may mean nothing listens.
      const data = await deadline(
        receiveReply(),
        timeoutMs,
        i > 0 ? noReply(i) : () =>
          new NetkitError(
            "timeout",
            `${noReply(i)().message}: is anything listening on ${where}?`,
          ),
      );
      result.replies++;
      result.bytesIn += data.length;
      options.onReply?.(connection, i, data);
      await pause(i);
    }
  }
}

/**
 * Read a whole reply. `sent` (the message, on a plaintext connection) lets a TLS
 * server's alert be told from an echo even when the message is shorter than the alert.
 */
async function readFull(
  conn: StreamConn,
  buf: Uint8Array,
  where: string,
  sent?: Uint8Array,
  first = false,
): Promise<void> {
  // A TLS alert (content type 21, version 3.x) where we sent plaintext that was not one:
  // we spoke to a TLS server. It may end the reply early, or fill a short one.
  const tlsAlert = (got: Uint8Array) =>
    sent !== undefined && got.length > 0 && sent[0] !== 0x15 && got[0] === 0x15 &&
    (got.length < 2 || got[1] === 0x03);
  const alertError = () =>
    new NetkitError(
      "failure",
      `${where} answered with a TLS alert: it is a TLS server, connect with --tls`,
    );
  let off = 0;
  while (off < buf.length) {
    const n = await conn.read(buf.subarray(off));
    if (n === null) {
      if (tlsAlert(buf.subarray(0, off))) throw alertError();
      if (off === 0 && first) throw closedWithoutReply(where);
      throw new NetkitError(
        "failure",
        `${where} closed the connection after ${off} of ${buf.length} reply bytes`,
      );
    }
    off += n;
  }
  if (tlsAlert(buf)) throw alertError();
}
