/**
 * A TCP connection whose local side is bound first (`--source ADDR`,
 * `--source-port PORT`, like `nc -s ADDR -p PORT`). `Deno.connect` cannot bind
 * before connecting, so this one rides on `node:net` (`localAddress`,
 * `localPort`), wrapped to the whole `Deno.TcpConn` shape so probe and
 * throughput code take it as they take any connection. Reads and writes are
 * {@linkcode NodeSocketIo}'s (back-pressured: the socket is paused while 1 MiB
 * waits unread).
 *
 * @example
 * ```ts
 * import { connectBound } from "./bound_tcp.ts";
 *
 * using conn = await connectBound("127.0.0.1", 5050, { hostname: "127.0.0.2" });
 * await conn.write(new TextEncoder().encode("hello"));
 * ```
 *
 * @module
 */

// node:net because Deno.connect has no local address or port to bind.
import net from "node:net";
import { NodeSocketIo } from "../node_socket.ts";

class BoundTcpConn implements Deno.TcpConn {
  readonly #socket: net.Socket;
  readonly #io: NodeSocketIo;
  #readable: ReadableStream<Uint8Array<ArrayBuffer>> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;
  readonly localAddr: Deno.NetAddr;
  readonly remoteAddr: Deno.NetAddr;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    this.localAddr = {
      transport: "tcp",
      hostname: socket.localAddress ?? "",
      port: socket.localPort ?? 0,
    };
    this.remoteAddr = {
      transport: "tcp",
      hostname: socket.remoteAddress ?? "",
      port: socket.remotePort ?? 0,
    };
    this.#io = new NodeSocketIo(socket);
  }

  read(p: Uint8Array): Promise<number | null> {
    return this.#io.read(p);
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#io.error) return Promise.reject(this.#io.error);
    if (this.#socket.destroyed) return Promise.reject(new Deno.errors.BadResource("closed"));
    return this.#io.write(p);
  }

  closeWrite(): Promise<void> {
    return this.#io.closeWrite();
  }

  close(): void {
    if (this.#socket.destroyed) throw new Deno.errors.BadResource("already closed");
    this.#socket.destroy();
    this.#io.end();
  }

  ref(): void {
    this.#socket.ref();
  }

  unref(): void {
    this.#socket.unref();
  }

  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }

  setKeepAlive(keepAlive = true): void {
    this.#socket.setKeepAlive(keepAlive);
  }

  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#readable ??= new ReadableStream({
      pull: async (controller) => {
        const buf = new Uint8Array(64 * 1024);
        const n = await this.read(buf);
        if (n === null) controller.close();
        else controller.enqueue(buf.subarray(0, n));
      },
    });
    return this.#readable;
  }

  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream({
      write: async (chunk) => {
        for (let off = 0; off < chunk.length;) off += await this.write(chunk.subarray(off));
      },
      close: () => this.closeWrite(),
    });
    return this.#writable;
  }

  [Symbol.dispose](): void {
    if (!this.#socket.destroyed) this.close();
  }
}

/**
 * Connect to `address:port` (an IP literal) from `source` (an address of this
 * host and/or a port). Rejects with node's error (its `code`, e.g.
 * `EADDRNOTAVAIL` or `ECONNREFUSED`, is what `fromSystemError` reads).
 */
export async function connectBound(
  address: string,
  port: number,
  source: { hostname?: string; port?: number },
): Promise<Deno.TcpConn> {
  const socket = net.connect({
    host: address,
    port,
    ...(source.hostname !== undefined && { localAddress: source.hostname }),
    ...(source.port !== undefined && { localPort: source.port }),
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
  } catch (err) {
    socket.destroy();
    throw err;
  }
  socket.setNoDelay(true);
  return new BoundTcpConn(socket);
}
