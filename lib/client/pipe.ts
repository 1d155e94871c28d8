/**
 * Netcat mode: stdin goes to the socket, what arrives goes to stdout, byte for
 * byte. One loop per direction; the run ends when the peer closes, or, once
 * stdin has ended, when nothing arrives for the timeout (like `nc -w`).
 *
 * TCP and Unix: stdin EOF half-closes the connection (shutdown of the write
 * side), so an echo server can finish and close. UDP: each read from stdin is
 * one datagram (at most 65,507 bytes); datagrams from anyone but the server
 * are ignored.
 *
 * @example
 * ```ts
 * import { pipe } from "./pipe.ts";
 *
 * await pipe({
 *   command: "client",
 *   action: "pipe",
 *   endpoint: { transport: "tcp", hostname: "127.0.0.1", port: 5050 },
 *   tls: undefined,
 *   timeoutMs: 5000,
 *   verbose: false,
 * });
 * ```
 *
 * @module
 */

import { formatAddr, formatEndpoint } from "../address.ts";
import type { PipeConfig } from "../config.ts";
import { closedWithoutReply } from "../errors.ts";
import { isClosedError, logEvent, writeAll } from "../io.ts";
import { MAX_DATAGRAM_BYTES } from "../server/datagrams.ts";
import { dialStream, dialTls, isFrom, openDatagram, type StreamConn } from "./dial.ts";

/** Byte source and sink of a pipe; stdin and stdout unless a test swaps them. */
export interface PipeStdio {
  /** Reads like `Deno.stdin.read`. @default {Deno.stdin} */
  input?: { read(p: Uint8Array): Promise<number | null> };
  /** Writes like `Deno.stdout.write`. @default {Deno.stdout} */
  output?: { write(p: Uint8Array): Promise<number> };
}

const STREAM_BUFFER_BYTES = 256 * 1024;

/** Run a pipe until both directions are done. */
export async function pipe(config: PipeConfig, stdio: PipeStdio = {}): Promise<void> {
  const input = stdio.input ?? Deno.stdin;
  const output = stdio.output ?? Deno.stdout;
  const endpoint = config.endpoint;
  const state = { inputDone: false, lastData: performance.now(), received: 0 };
  let closed = false;
  let closeNet: () => void;
  let upload: Promise<void>;
  let download: Promise<void>;

  switch (endpoint.transport) {
    case "tcp":
    case "unix": {
      const conn: StreamConn = endpoint.transport === "tcp" && config.tls
        ? await dialTls(endpoint, config.tls, config.timeoutMs)
        : await dialStream(endpoint, config.timeoutMs);
      const where = formatEndpoint(endpoint);
      if (config.verbose) logEvent(`connected to ${where}`);
      closeNet = () => conn.close();
      // The server closing or resetting before one byte came back, while we were still
      // sending, turned us away (a limit); it is not a finished exchange.
      const net = <T>(op: Promise<T>): Promise<T> =>
        op.catch((err) => {
          throw state.received === 0 && !closed && isClosedError(err)
            ? closedWithoutReply(where)
            : err;
        });
      // A send that breaks is judged once the receiver has read what came back before the end.
      const send = <T>(op: Promise<T>): Promise<T> =>
        op.catch(async (err) => {
          if (isClosedError(err)) await download.catch(() => {});
          return net(Promise.reject(err));
        });
      upload = (async () => {
        const buf = new Uint8Array(STREAM_BUFFER_BYTES);
        for (let n; (n = await input.read(buf)) !== null;) {
          await send(writeAll(conn, buf.subarray(0, n)));
        }
        await send(conn.closeWrite());
      })();
      download = (async () => {
        const buf = new Uint8Array(STREAM_BUFFER_BYTES);
        for (let n; (n = await net(conn.read(buf))) !== null;) {
          state.received += n;
          state.lastData = performance.now();
          await writeAll(output, buf.subarray(0, n));
        }
        if (state.received === 0 && !state.inputDone && !closed) throw closedWithoutReply(where);
      })();
      break;
    }
    case "udp": {
      const { socket, peer } = await openDatagram(endpoint);
      if (config.verbose) {
        logEvent(`sending to ${formatEndpoint(endpoint)} from ${formatAddr(socket.addr)}`);
      }
      closeNet = () => socket.close();
      upload = (async () => {
        const buf = new Uint8Array(MAX_DATAGRAM_BYTES);
        for (let n; (n = await input.read(buf)) !== null;) {
          if (n > 0) await socket.send(buf.subarray(0, n), peer);
        }
      })();
      download = (async () => {
        const buf = new Uint8Array(65536);
        while (true) {
          const [data, from] = await socket.receive(buf);
          if (!isFrom(from, peer)) continue;
          if (config.verbose) logEvent(`received ${data.length} B from ${formatAddr(from)}`);
          state.lastData = performance.now();
          await writeAll(output, data);
        }
      })();
      break;
    }
    default: {
      const never: never = endpoint;
      throw new Error(`unknown transport ${JSON.stringify(never)}`);
    }
  }

  const close = () => {
    if (closed) return;
    closed = true;
    try {
      closeNet();
    } catch { /* already closed */ }
  };
  // After stdin ends, give up once the peer has been silent for the timeout.
  const watchdog = setInterval(() => {
    if (state.inputDone && performance.now() - state.lastData >= config.timeoutMs) close();
  }, Math.max(5, Math.min(config.timeoutMs / 4, 250)));
  const uploadDone = upload.then(() => {
    state.inputDone = true;
    state.lastData = Math.max(state.lastData, performance.now());
  });
  uploadDone.catch(() => {}); // reported through the race below, or moot once the peer closed
  try {
    // The download ends when the peer closes (or the watchdog closes the socket).
    await Promise.race([download, uploadDone.then(() => download)]);
  } catch (err) {
    if (!(closed && isClosedError(err)) && !(err instanceof Deno.errors.BrokenPipe)) throw err;
  } finally {
    clearInterval(watchdog);
    // An upload still blocked on stdin is abandoned: the process exits after this.
    close();
  }
}
