/**
 * The read/write core shared by the connections that ride on a `node:net` or
 * `node:tls` socket (bound TCP, insecure TLS client, TLS server): node pushes
 * bytes, `Deno.Conn` pulls them. Received chunks wait here for
 * {@linkcode NodeSocketIo.read}, with back-pressure: the socket is paused while
 * more than 1 MiB waits unread and resumed once a quarter of that is left.
 * Writes copy the caller's buffer (it is reused) and resolve when node has
 * flushed it. Each owner keeps its own checks before a write and its own close.
 *
 * @example
 * ```ts
 * import net from "node:net";
 * import { NodeSocketIo } from "./node_socket.ts";
 *
 * const socket = net.connect({ host: "127.0.0.1", port: 5050 });
 * const io = new NodeSocketIo(socket);
 * await io.write(new TextEncoder().encode("hello"));
 * const n = await io.read(new Uint8Array(4096)); // null once the peer ended
 * ```
 *
 * @module
 */

import type { Duplex } from "node:stream";

/** Decrypted or plain bytes waiting unread past this are left in the kernel (the socket is paused). */
const HIGH_WATER = 1 << 20;

/** What an owner adds to the common handling of a socket's events. */
export interface NodeSocketHooks {
  /** Node's error as the error reads throw (the first one is kept). Default: as is. */
  mapError?(err: Error): Error;
  /** Runs when the error is recorded, before a waiting read wakes. */
  onError?(err: Error): void;
  /**
   * Fail the writes node has not confirmed when the socket ends or closes, with this error:
   * a socket that is not half-open ends our side too, and (under Deno) never calls back.
   */
  unconfirmedWritesError?(): Error;
}

/** Buffered reads and copying writes over one node socket. */
export class NodeSocketIo {
  readonly #socket: Duplex;
  readonly #hooks: NodeSocketHooks;
  readonly #chunks: Uint8Array[] = [];
  #queued = 0;
  #wake: (() => void) | undefined;
  /** Rejecters of writes node has not confirmed (only with `unconfirmedWritesError`). */
  readonly #unconfirmed: Set<(err: Error) => void> | undefined;
  /** True once the peer ended or the socket closed (or its owner closed it). */
  ended = false;
  /** The socket's error (as mapped), if any. */
  error: Error | undefined;
  /** Awaited before a read throws {@linkcode NodeSocketIo.error} (the TLS server's alert). */
  beforeThrow: Promise<unknown> | undefined;

  constructor(socket: Duplex, hooks: NodeSocketHooks = {}) {
    this.#socket = socket;
    this.#hooks = hooks;
    if (hooks.unconfirmedWritesError) this.#unconfirmed = new Set();
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#queued += chunk.length;
      if (this.#queued > HIGH_WATER) socket.pause();
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.#failWrites();
      this.wake();
    };
    socket.on("end", end);
    socket.on("close", end);
    socket.on("error", (err: Error) => {
      this.error ??= hooks.mapError ? hooks.mapError(err) : err;
      hooks.onError?.(err);
      this.wake();
    });
  }

  /** Mark the stream ended (the owner closed it) and wake a waiting read. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /** Wake a read waiting for data. */
  wake(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Bytes received, into `p`; null once ended with nothing left; throws the socket's error. */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.error) {
        if (this.beforeThrow) await this.beforeThrow;
        throw this.error;
      }
      if (this.ended) return null;
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

  /** Send all of `p` (copied); resolves with its length once node flushed it. */
  write(p: Uint8Array): Promise<number> {
    // The caller reuses its buffer: hand node a copy it may keep until flushed.
    const copy = p.slice();
    const unconfirmed = this.#unconfirmed;
    const mapError = this.#hooks.mapError;
    return new Promise((resolve, reject) => {
      unconfirmed?.add(reject);
      this.#socket.write(copy, (err?: Error | null) => {
        unconfirmed?.delete(reject);
        if (err) reject(mapError ? mapError(err) : err);
        else resolve(copy.length);
      });
    });
  }

  /** End our side (for TLS, close_notify first); resolves once node has. */
  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(() => resolve()));
  }

  #failWrites(): void {
    const unconfirmed = this.#unconfirmed;
    if (!unconfirmed) return;
    for (const reject of unconfirmed) reject(this.#hooks.unconfirmedWritesError!());
    unconfirmed.clear();
  }
}
