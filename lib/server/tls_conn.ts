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

/** What the TLS sessions of one listener share: certificate and key. */
export type TlsContext = tls.SecureContext;

/** The shared context for a PEM certificate (chain) and key. */
export function tlsContext(cert: string, key: string): TlsContext {
  return tls.createSecureContext({ cert, key });
}

/** Decrypted bytes waiting unread past this are left in the kernel (the socket is paused). */
const HIGH_WATER = 1 << 20;
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
  readonly #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #closed = false;
  #error: Error | undefined;
  /** The alert of a failed handshake, being written. */
  #alert: Promise<unknown> | undefined;
  #wake: (() => void) | undefined;

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
  async read(p: Uint8Array): Promise<number | null> {
    const socket = this.#start();
    while (this.#chunks.length === 0) {
      if (this.#error) {
        await this.#alert;
        throw this.#error;
      }
      if (this.#ended || this.#closed) return null;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    const chunk = this.#chunks[0]!;
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    this.#queued -= n;
    if (this.#queued <= HIGH_WATER / 4 && socket.isPaused()) socket.resume();
    return n;
  }

  /** Encrypt and send all of `p`; resolves once it is handed to the TCP socket. */
  write(p: Uint8Array): Promise<number> {
    const socket = this.#start();
    if (this.#error) return Promise.reject(this.#error);
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("connection closed"));
    // The caller reuses its buffer: hand node a copy it may keep until flushed.
    const copy = p.slice();
    return new Promise((resolve, reject) => {
      socket.write(
        copy,
        (err?: Error | null) => (err ? reject(this.#fail(err)) : resolve(copy.length)),
      );
    });
  }

  /** Send close_notify and half-close the TCP socket. */
  closeWrite(): Promise<void> {
    const socket = this.#start();
    return new Promise((resolve) => socket.end(() => resolve()));
  }

  /**
   * Close: mid-handshake (or after an error) the TCP socket closes now; an established
   * session first sends close_notify, for at most a second. Pending reads end.
   */
  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("connection already closed");
    this.#closed = true;
    this.#wakeReader();
    const socket = this.#socket;
    const closeNow = () => {
      socket?.destroy();
      closeQuietly(this.#raw);
    };
    if (!socket || this.handshaking || this.#error) return closeNow();
    const timer = setTimeout(closeNow, CLOSE_GRACE_MS);
    socket.end(() => {
      clearTimeout(timer);
      closeNow();
    });
  }

  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }

  #start(): tls.TLSSocket {
    if (this.#socket) return this.#socket;
    const socket = new tls.TLSSocket(rawDuplex(this.#raw), {
      isServer: true,
      secureContext: this.#context,
    });
    this.#socket = socket;
    socket.on("secure", () => (this.handshaking = false));
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#queued += chunk.length;
      if (this.#queued > HIGH_WATER) socket.pause();
      this.#wakeReader();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wakeReader();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#wakeReader();
    });
    socket.on("error", (err: Error) => {
      this.#error ??= this.#fail(err);
      if (this.handshaking && !this.#closed && this.#error instanceof Deno.errors.InvalidData) {
        this.#alert = writeAll(this.#raw, HANDSHAKE_ALERT).catch(() => {});
      }
      this.#wakeReader();
    });
    return socket;
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
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
