/**
 * A TLS client connection that skips certificate verification (`--insecure`,
 * like `ncat --ssl` without `--ssl-verify`). Deno's own TLS always verifies
 * the chain, so this one rides on `node:tls`, wrapped to the same small
 * read/write/closeWrite/close shape as a `Deno.Conn` by {@linkcode NodeSocketIo}
 * (back-pressured: the socket is paused while 1 MiB waits unread).
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
import { NodeSocketIo } from "../node_socket.ts";
import type { StreamConn } from "./dial.ts";

class NodeTlsConn implements StreamConn {
  readonly #socket: tls.TLSSocket;
  readonly #io: NodeSocketIo;

  constructor(socket: tls.TLSSocket) {
    this.#socket = socket;
    // Not half-open: node ends our side too when the server ends, so no pending write
    // completes (and under Deno its callback is never called, nor 'close' emitted).
    this.#io = new NodeSocketIo(socket, { unconfirmedWritesError: closedError });
    // The server may have closed (or reset) right after the handshake, before these
    // listeners were attached: those events are gone, so read the socket's state.
    if (socket.destroyed || socket.readableEnded) this.#io.ended = true;
  }

  read(p: Uint8Array): Promise<number | null> {
    return this.#io.read(p);
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#io.error) return Promise.reject(this.#io.error);
    if (this.#io.ended || this.#socket.destroyed) return Promise.reject(closedError());
    return this.#io.write(p);
  }

  closeWrite(): Promise<void> {
    return this.#io.closeWrite();
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
