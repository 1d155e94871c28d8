/**
 * Read newline-terminated lines from a stream connection, bounded in length,
 * starting from bytes already read (the sniffed first chunk).
 *
 * @example
 * ```ts
 * import { LineReader } from "./line_reader.ts";
 *
 * using conn = await Deno.connect({ port: 5050 });
 * const lines = new LineReader(conn);
 * console.log(await lines.next());
 * ```
 *
 * @module
 */

import { NetkitError } from "../errors.ts";

/** Reads lines; returns null at end of stream. */
export class LineReader {
  #pending: Uint8Array;
  #len: number;
  readonly #buf = new Uint8Array(16 * 1024);
  readonly #decoder = new TextDecoder();

  constructor(
    readonly conn: Deno.Conn,
    initial: Uint8Array = new Uint8Array(0),
    readonly maxBytes = 65536,
  ) {
    this.#pending = new Uint8Array(Math.max(maxBytes, initial.length) + this.#buf.length);
    this.#pending.set(initial);
    this.#len = initial.length;
  }

  /** The next line without its newline, or null when the peer ended the stream. */
  async next(): Promise<string | null> {
    while (true) {
      const nl = this.#pending.subarray(0, this.#len).indexOf(10);
      if (nl > this.maxBytes) {
        throw new NetkitError("network", `Control line longer than ${this.maxBytes} bytes`);
      }
      if (nl >= 0) {
        const line = this.#decoder.decode(this.#pending.subarray(0, nl));
        this.#pending.copyWithin(0, nl + 1, this.#len);
        this.#len -= nl + 1;
        return line;
      }
      if (this.#len >= this.maxBytes) {
        throw new NetkitError("network", `Control line longer than ${this.maxBytes} bytes`);
      }
      const n = await this.conn.read(this.#buf);
      if (n === null) return null;
      this.#pending.set(this.#buf.subarray(0, n), this.#len);
      this.#len += n;
    }
  }

  /** Bytes read past the last line (data that followed a header line). */
  rest(): Uint8Array {
    return this.#pending.slice(0, this.#len);
  }
}
