/**
 * Server-side TLS over a TCP connection the server accepted itself, on
 * `node:tls`. Deno's own TLS listener hands out connections whose handshake
 * runs in a task that holds the socket until the peer finishes or closes it:
 * closing such a connection mid-handshake keeps its descriptor open, so a
 * client that sends part of a ClientHello and stops pins a file descriptor
 * for ever. Here the server owns the TCP socket: {@linkcode ServerTlsConn.close}
 * closes it at once, whatever the handshake is doing.
 *
 * The TLS session starts on the first read or write, so access control and
 * `--max-conns` still decide before a byte of the handshake is read.
 *
 * @example
 * ```ts
 * import { ServerTlsConn, tlsContext } from "./tls_conn.ts";
 *
 * const context = tlsContext(Deno.readTextFileSync("cert.pem"), Deno.readTextFileSync("key.pem"));
 * using listener = Deno.listen({ port: 0 });
 * using conn = new ServerTlsConn(await listener.accept() as Deno.TcpConn, context);
 * const buf = new Uint8Array(4096);
 * const n = await conn.read(buf); // handshakes first
 * ```
 *
 * @module
 */

import { Duplex } from "node:stream";
import tls from "node:tls";
import { closeQuietly, isClosedError, writeAll } from "../io.ts";
import { NodeSocketIo } from "../node_socket.ts";

/** What the TLS sessions of one listener share: certificate and key. */
export type TlsContext = tls.SecureContext;

/** The shared context for a PEM certificate (chain) and key. */
export function tlsContext(cert: string, key: string): TlsContext {
  return tls.createSecureContext({ cert, key });
}

/**
 * Ciphertext read per call from the TCP socket: one full TLS record (16 KiB and its overhead)
 * while a connection is quiet, growing to {@linkcode READ_BYTES_MAX} while reads fill it.
 */
const READ_BYTES = 16 * 1024 + 512;
const READ_BYTES_MAX = 256 * 1024;
/** How long closing waits for close_notify to be written before it closes the socket anyway. */
const CLOSE_GRACE_MS = 1000;
/**
 * The fatal alert sent to a client whose handshake failed (TLS 1.2 record, `decode_error`),
 * so that one that spoke plaintext learns it reached a TLS server.
 */
const HANDSHAKE_ALERT = new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]);

/** A TLS server connection with the shape of a `Deno.Conn` that the server's behaviours use. */
export class ServerTlsConn implements Disposable {
  readonly remoteAddr: Deno.NetAddr;
  readonly localAddr: Deno.NetAddr;
  /** True until the handshake completes (the TLS handshake timeout applies meanwhile). */
  handshaking = true;
  readonly #raw: Deno.TcpConn;
  readonly #context: TlsContext;
  #socket: tls.TLSSocket | undefined;
  /** Decrypted reads and writes, once the session started. */
  #io: NodeSocketIo | undefined;
  #closed = false;

  constructor(raw: Deno.TcpConn, context: TlsContext) {
    this.#raw = raw;
    this.#context = context;
    this.remoteAddr = raw.remoteAddr;
    this.localAddr = raw.localAddr;
  }

  /** Turn Nagle off on the TCP socket underneath. */
  setNoDelay(noDelay = true): void {
    this.#raw.setNoDelay(noDelay);
  }

  /** Read decrypted bytes (the handshake first); null when the peer ended its side. */
  read(p: Uint8Array): Promise<number | null> {
    return this.#start().read(p);
  }

  /** Encrypt and send all of `p`; resolves once it is handed to the TCP socket. */
  write(p: Uint8Array): Promise<number> {
    const io = this.#start();
    if (io.error) return Promise.reject(io.error);
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("connection closed"));
    return io.write(p);
  }

  /** Send close_notify and half-close the TCP socket. */
  closeWrite(): Promise<void> {
    return this.#start().closeWrite();
  }

  /**
   * Close: mid-handshake (or after an error) the TCP socket closes now; an established
   * session first sends close_notify, for at most a second. Pending reads end.
   */
  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("connection already closed");
    this.#closed = true;
    this.#io?.end();
    const socket = this.#socket;
    const closeNow = () => {
      socket?.destroy();
      closeQuietly(this.#raw);
    };
    if (!socket || this.handshaking || this.#io?.error) return closeNow();
    const timer = setTimeout(closeNow, CLOSE_GRACE_MS);
    socket.end(() => {
      clearTimeout(timer);
      closeNow();
    });
  }

  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }

  #start(): NodeSocketIo {
    if (this.#io) return this.#io;
    const socket = new tls.TLSSocket(rawDuplex(this.#raw), {
      isServer: true,
      secureContext: this.#context,
    });
    this.#socket = socket;
    socket.on("secure", () => (this.handshaking = false));
    const io: NodeSocketIo = new NodeSocketIo(socket, {
      mapError: (err) => this.#fail(err),
      onError: () => {
        if (this.handshaking && !this.#closed && io.error instanceof Deno.errors.InvalidData) {
          // Reads throw the handshake's error once the alert is written.
          io.beforeThrow = writeAll(this.#raw, HANDSHAKE_ALERT).catch(() => {});
        }
      },
    });
    // Read after close: nothing more to read (the session started on a closed socket).
    if (this.#closed) io.ended = true;
    this.#io = io;
    return io;
  }

  /** Node's errors as the `Deno.errors` the server tells apart. */
  #fail(err: Error): Error {
    if (err instanceof Deno.errors.BadResource || isClosedError(err)) return err;
    const code = (err as { code?: string }).code;
    if (code === "ECONNRESET") return new Deno.errors.ConnectionReset(err.message);
    if (code === "EPIPE") return new Deno.errors.BrokenPipe(err.message);
    if (this.#closed) return new Deno.errors.BadResource(err.message);
    // Without OpenSSL's trailing "(SSL routines:…)" detail: the log line ends in one reason.
    if (this.handshaking) return new Deno.errors.InvalidData(err.message.replace(/ \(.*\)$/, ""));
    return err;
  }
}

/** A node stream over a Deno TCP connection (ciphertext); ServerTlsConn closes the socket. */
function rawDuplex(conn: Deno.TcpConn): Duplex {
  let buf = new Uint8Array(READ_BYTES);
  const duplex: Duplex = new Duplex({
    read() {
      const into = buf;
      conn.read(into).then(
        (n) => {
          if (n === null) return duplex.push(null);
          const data = into.slice(0, n);
          if (n === into.length && into.length < READ_BYTES_MAX) {
            buf = new Uint8Array(Math.min(into.length * 4, READ_BYTES_MAX));
          }
          return duplex.push(data);
        },
        (err) => duplex.destroy(err),
      );
    },
    write(chunk: Uint8Array, _encoding, callback) {
      writeAll(conn, chunk).then(() => callback(), callback);
    },
    final(callback) {
      conn.closeWrite().then(() => callback(), (err) => callback(isClosedError(err) ? null : err));
    },
    // The TCP socket is closed by ServerTlsConn.close (after a failed handshake's alert).
    destroy(err, callback) {
      callback(err);
    },
  });
  return duplex;
}
