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
      this.#ended = true;
      wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      wake();
    });
    socket.on("error", (err: Error) => {
      this.#error = err;
      wake();
    });
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
    // The caller reuses its buffer: hand node a copy it may keep until flushed.
    const copy = p.slice();
    return new Promise((resolve, reject) => {
      this.#socket.write(copy, (err?: Error | null) => (err ? reject(err) : resolve(copy.length)));
    });
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
    });
  } catch (err) {
    socket.destroy();
    throw err;
  }
  socket.setNoDelay(true);
  return new NodeTlsConn(socket);
}
