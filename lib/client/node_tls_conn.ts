/**
 * A TLS client connection that skips certificate verification (`--insecure`,
 * like `ncat --ssl` without `--ssl-verify`). Deno's own TLS always verifies
 * the chain, so this one rides on `node:tls`, wrapped to the same small
 * read/write/closeWrite/close shape as a `Deno.Conn`, with back-pressure: the
 * socket is paused while 1 MiB waits unread.
 *
 * @example
 * ```ts
 * import { connectInsecureTls } from "./node_tls_conn.ts";
 *
 * using conn = await connectInsecureTls("127.0.0.1", 5050);
 * await conn.write(new TextEncoder().encode("hello"));
 * ```
 *
 * @module
 */

import { isIPv4, isIPv6 } from "@std/net/unstable-ip";
// node: because Deno.connectTls cannot skip certificate verification (--insecure).
import tls from "node:tls";
import type { StreamConn } from "./dial.ts";

const HIGH_WATER = 1 << 20;

class NodeTlsConn implements StreamConn {
  readonly #socket: tls.TLSSocket;
  readonly #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  /** Rejecters of writes node has not confirmed: a socket that ends first never will. */
  readonly #unconfirmed = new Set<(err: Error) => void>();

  constructor(socket: tls.TLSSocket) {
    this.#socket = socket;
    const wake = () => {
      const w = this.#wake;
      this.#wake = undefined;
      w?.();
    };
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#queued += chunk.length;
      if (this.#queued > HIGH_WATER) socket.pause();
      wake();
    });
    socket.on("end", () => {
      // Not half-open: node ends our side too, so no pending write completes (and under
      // Deno its callback is never called, nor 'close' emitted, so fail them here).
      this.#ended = true;
      this.#failWrites();
      wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#failWrites();
      wake();
    });
    socket.on("error", (err: Error) => {
      this.#error = err;
      wake();
    });
    // The server may have closed (or reset) right after the handshake, before these
    // listeners were attached: those events are gone, so read the socket's state.
    if (socket.destroyed || socket.readableEnded) this.#ended = true;
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    const chunk = this.#chunks[0]!;
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    this.#queued -= n;
    if (this.#queued <= HIGH_WATER / 4 && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended || this.#socket.destroyed) return Promise.reject(closedError());
    // The caller reuses its buffer: hand node a copy it may keep until flushed.
    const copy = p.slice();
    return new Promise((resolve, reject) => {
      this.#unconfirmed.add(reject);
      this.#socket.write(copy, (err?: Error | null) => {
        this.#unconfirmed.delete(reject);
        if (err) reject(err);
        else resolve(copy.length);
      });
    });
  }

  /** Fail every write still waiting for node's callback (which a closed socket never calls). */
  #failWrites(): void {
    for (const reject of this.#unconfirmed) reject(closedError());
    this.#unconfirmed.clear();
  }

  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(() => resolve()));
  }

  close(): void {
    this.#socket.destroy();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function closedError(): Error {
  return new Deno.errors.BrokenPipe("the connection is closed");
}

/** Connect over TLS without verifying the server's certificate. */
export async function connectInsecureTls(hostname: string, port: number): Promise<StreamConn> {
  const socket = tls.connect({
    host: hostname,
    port,
    rejectUnauthorized: false,
    ...(!isIPv4(hostname) && !isIPv6(hostname) && { servername: hostname }),
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", () => resolve());
      socket.once("error", reject);
      // A server that closes before the handshake ends (a limit) fires only 'close'.
      socket.once(
        "close",
        () =>
          reject(new Deno.errors.UnexpectedEof("closed by the server during the TLS handshake")),
      );
    });
  } catch (err) {
    socket.destroy();
    throw err;
  }
  socket.setNoDelay(true);
  return new NodeTlsConn(socket);
}
