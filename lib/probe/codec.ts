/**
 * Wire format of a netkit delivery probe.
 *
 * A probe must survive being echoed verbatim by any RFC 862 echo server, so
 * everything needed to match a reply lives in the payload. Layout (big-endian,
 * fixed `size` bytes, {@linkcode PROBE_HEADER_BYTES} ≤ size ≤ {@linkcode PROBE_MAX_BYTES}):
 *
 * | bytes      | field                                                      |
 * | ---------- | ---------------------------------------------------------- |
 * | 0–3        | magic, ASCII `"NKP1"`                                      |
 * | 4–7        | run id, u32 (random per run: echoes of older runs ignored) |
 * | 8–15       | sequence number, u64 (≤ 2^53)                              |
 * | 16–23      | send timestamp, float64 ms (sender's `performance.now()`)  |
 * | 24–size-1  | padding: byte at offset `i` is `(seq + i) & 0xff`          |
 *
 * The padding pattern lets the receiver detect corruption and truncation of
 * the echoed payload. Neither {@linkcode ProbeEncoder.encode} nor
 * {@linkcode decodeProbe} allocates.
 *
 * @example
 * ```ts
 * import { decodeProbe, type DecodedProbe, ProbeEncoder } from "./codec.ts";
 *
 * const runId = crypto.getRandomValues(new Uint32Array(1))[0]!;
 * const encoder = new ProbeEncoder(64, runId);
 * const wire = encoder.encode(7, performance.now()); // reused buffer: send it before the next encode
 * const out: DecodedProbe = { seq: 0, sendTimeMs: 0 };
 * if (decodeProbe(wire, runId, out)) console.log(out.seq, performance.now() - out.sendTimeMs);
 * ```
 *
 * @module
 */

/** Size of the fixed header and so the smallest probe, in bytes. */
export const PROBE_HEADER_BYTES = 24;

/** Largest probe in bytes: the largest UDP payload over IPv4 (65535 - 20 - 8). */
export const PROBE_MAX_BYTES = 65507;

/** Caller-owned result of {@linkcode decodeProbe}. */
export interface DecodedProbe {
  /** Sequence number, an integer in [0, 2^53]. */
  seq: number;
  /** The sender's send timestamp in milliseconds. */
  sendTimeMs: number;
}

const MAGIC_0 = 0x4e; // N
const MAGIC_1 = 0x4b; // K
const MAGIC_2 = 0x50; // P
const MAGIC_3 = 0x31; // 1
const TWO_POW_32 = 2 ** 32;
const MAX_SEQ = 2 ** 53;
/** High u32 half of 2^53. */
const MAX_SEQ_HIGH = MAX_SEQ / TWO_POW_32;

/** Scratch space for reading the float64 timestamp without allocating a DataView per call. */
const scratchView = new DataView(new ArrayBuffer(8));
const scratchBytes = new Uint8Array(scratchView.buffer);

/**
 * Encodes probes of one size and run id into a single preallocated buffer.
 */
export class ProbeEncoder {
  readonly #buffer: Uint8Array;
  readonly #view: DataView;
  readonly #runId: number;
  /** `#paddings[b]` is the padding for a sequence number `≡ b (mod 256)`. */
  readonly #paddings: Uint8Array[];

  /**
   * Preallocates the probe buffer and writes the constant header fields once.
   *
   * @param size Total probe size in bytes, in [{@linkcode PROBE_HEADER_BYTES}, {@linkcode PROBE_MAX_BYTES}].
   * @param runId Run identifier, an integer in [0, 2^32).
   * @throws {RangeError} on an invalid size or run id.
   */
  constructor(size: number, runId: number) {
    if (!Number.isInteger(size) || size < PROBE_HEADER_BYTES || size > PROBE_MAX_BYTES) {
      throw new RangeError(
        `probe size must be an integer in [${PROBE_HEADER_BYTES}, ${PROBE_MAX_BYTES}], got ${size}`,
      );
    }
    if (!Number.isInteger(runId) || runId < 0 || runId >= TWO_POW_32) {
      throw new RangeError(`run id must be an integer in [0, 2^32), got ${runId}`);
    }
    this.#runId = runId;
    this.#buffer = new Uint8Array(size);
    this.#view = new DataView(this.#buffer.buffer);
    this.#buffer[0] = MAGIC_0;
    this.#buffer[1] = MAGIC_1;
    this.#buffer[2] = MAGIC_2;
    this.#buffer[3] = MAGIC_3;
    this.#view.setUint32(4, runId);
    // One pattern of padLen + 255 bytes, and 256 views into it, so that
    // encode() copies the right padding with a single memcpy-like set().
    const padLen = size - PROBE_HEADER_BYTES;
    this.#paddings = [];
    if (padLen > 0) {
      const pattern = new Uint8Array(padLen + 255);
      for (let j = 0; j < pattern.length; j++) pattern[j] = (PROBE_HEADER_BYTES + j) & 0xff;
      for (let b = 0; b < 256; b++) this.#paddings.push(pattern.subarray(b, b + padLen));
    }
  }

  /** Probe size in bytes. */
  get size(): number {
    return this.#buffer.length;
  }

  /** Run id written into every probe. */
  get runId(): number {
    return this.#runId;
  }

  /**
   * Encodes probe `seq` sent at `sendTimeMs`.
   *
   * Returns the encoder's single internal buffer: the bytes are overwritten by
   * the next call, so send (or copy) them before encoding again.
   *
   * @throws {RangeError} if `seq` is not an integer in [0, 2^53].
   */
  encode(seq: number, sendTimeMs: number): Uint8Array {
    if (!(seq >= 0 && seq <= MAX_SEQ && Math.floor(seq) === seq)) {
      throw new RangeError(`sequence number must be an integer in [0, 2^53], got ${seq}`);
    }
    const view = this.#view;
    view.setUint32(8, Math.floor(seq / TWO_POW_32));
    view.setUint32(12, seq >>> 0);
    view.setFloat64(16, sendTimeMs);
    if (this.#paddings.length > 0) {
      this.#buffer.set(this.#paddings[seq % 256]!, PROBE_HEADER_BYTES);
    }
    return this.#buffer;
  }

  /**
   * Rewrites the send time of the probe last encoded and returns the same
   * buffer: encode everything first, then read the clock and stamp it, so the
   * round trip starts as close to the send as it can.
   */
  stamp(sendTimeMs: number): Uint8Array {
    this.#view.setFloat64(16, sendTimeMs);
    return this.#buffer;
  }
}

/**
 * Whether `bytes` start with a probe's magic (`"NKP1"`): how a server recognises a netkit
 * probe connection from its first read. Allocates nothing.
 */
export function sniffProbe(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === MAGIC_0 && bytes[1] === MAGIC_1 &&
    bytes[2] === MAGIC_2 && bytes[3] === MAGIC_3;
}

/**
 * Decodes a received (echoed) probe into `out`.
 *
 * Returns `false`, leaving `out` untouched, when the datagram is shorter than
 * {@linkcode PROBE_HEADER_BYTES}, has the wrong magic, belongs to another run,
 * carries a sequence number above 2^53, or has corrupt padding. The probe size
 * is taken from `view.length`; callers that know the size they sent may also
 * compare lengths. Allocates nothing.
 */
export function decodeProbe(view: Uint8Array, runId: number, out: DecodedProbe): boolean {
  const length = view.length;
  if (length < PROBE_HEADER_BYTES) return false;
  if (
    view[0] !== MAGIC_0 || view[1] !== MAGIC_1 || view[2] !== MAGIC_2 || view[3] !== MAGIC_3
  ) {
    return false;
  }
  const gotRunId = readUint32(view, 4);
  if (gotRunId !== runId >>> 0) return false;
  const high = readUint32(view, 8);
  const low = readUint32(view, 12);
  if (high > MAX_SEQ_HIGH || (high === MAX_SEQ_HIGH && low !== 0)) return false;
  const base = low & 0xff; // seq mod 256
  for (let i = PROBE_HEADER_BYTES; i < length; i++) {
    if (view[i] !== ((base + i) & 0xff)) return false;
  }
  for (let i = 0; i < 8; i++) scratchBytes[i] = view[16 + i]!;
  out.seq = high * TWO_POW_32 + low;
  out.sendTimeMs = scratchView.getFloat64(0);
  return true;
}

function readUint32(view: Uint8Array, offset: number): number {
  return (
    ((view[offset]! << 24) | (view[offset + 1]! << 16) | (view[offset + 2]! << 8) |
      view[offset + 3]!) >>> 0
  );
}

/**
 * Frames the echo byte stream of a TCP probe run into probes, resynchronising
 * when the stream gained or lost bytes: a probe starts where its magic and run
 * id are, and bytes before that are skipped. Each run of skipped bytes is
 * reported once, when it ends (a probe starts, {@linkcode ProbeStreamFramer.end}, or
 * {@linkcode ProbeStreamFramer.stop}), so one stray byte costs one report, not every
 * probe after it. A reader must call `end` or `stop` when it stops reading, or the
 * last run is never reported.
 *
 * Reads go into {@linkcode ProbeStreamFramer.space}; {@linkcode ProbeStreamFramer.commit}
 * hands out each whole probe as a view valid only during the callback. Allocates
 * nothing after construction.
 *
 * @example
 * ```ts
 * import { ProbeEncoder, ProbeStreamFramer } from "./codec.ts";
 *
 * const framer = new ProbeStreamFramer(64, 7);
 * const wire = new ProbeEncoder(64, 7).encode(0, 0);
 * framer.space().set([0x00, ...wire]); // one stray byte, then a probe
 * const skipped = (bytes: number) => console.log("skipped", bytes); // skipped 1
 * framer.commit(65, (probe) => console.log(probe.length), skipped); // 64
 * framer.end(skipped);
 * ```
 */
export class ProbeStreamFramer {
  readonly #size: number;
  readonly #sync = new Uint8Array(8);
  readonly #buf: Uint8Array;
  #len = 0;
  /** Bytes of the current run of skipped bytes, not reported yet. */
  #skipped = 0;

  /**
   * @param size Bytes per probe.
   * @param runId The run id every probe of this run carries.
   * @param readBytes Room for one read, at least `size`.
   */
  constructor(size: number, runId: number, readBytes = 256 * 1024) {
    this.#size = size;
    this.#sync.set([MAGIC_0, MAGIC_1, MAGIC_2, MAGIC_3]);
    new DataView(this.#sync.buffer).setUint32(4, runId >>> 0);
    // Fewer than `size` bytes are ever kept between reads.
    this.#buf = new Uint8Array(size + Math.max(readBytes, size));
  }

  /** Where the next read goes (the whole buffer, no new view, when nothing is kept). */
  space(): Uint8Array {
    return this.#len === 0 ? this.#buf : this.#buf.subarray(this.#len);
  }

  /**
   * Take `n` bytes just read into {@linkcode space}: call `onProbe` with each
   * whole probe, and `onSkipped` with the length of each run of bytes, now
   * ended, that was not the start of a probe.
   */
  commit(
    n: number,
    onProbe: (probe: Uint8Array) => void,
    onSkipped: (bytes: number) => void,
  ): void {
    const buf = this.#buf;
    const size = this.#size;
    const len = this.#len + n;
    let off = 0;
    while (len - off >= size) {
      if (this.#syncAt(off, len)) {
        if (this.#skipped > 0) {
          onSkipped(this.#skipped);
          this.#skipped = 0;
        }
        onProbe(buf.subarray(off, off + size));
        off += size;
        continue;
      }
      const next = this.#nextSync(off + 1, len);
      this.#skipped += next - off;
      off = next;
    }
    // A tail that cannot start a probe is skipped at once; a possible start is kept.
    if (off < len && !this.#syncAt(off, len)) {
      const next = this.#nextSync(off + 1, len);
      this.#skipped += next - off;
      off = next;
    }
    if (off < len) buf.copyWithin(0, off, len);
    this.#len = len - off;
  }

  /** The stream ended: report what was skipped since the last probe, and an unfinished probe. */
  end(onSkipped: (bytes: number) => void): void {
    const bytes = this.#skipped + this.#len;
    this.#skipped = 0;
    this.#len = 0;
    if (bytes > 0) onSkipped(bytes);
  }

  /**
   * The reader stops before the stream ended (it closed the connection itself, or the
   * connection broke): report the run of bytes skipped since the last probe, which can
   * never become a probe and so were echoes that came back broken. Bytes kept as a
   * possible probe start are dropped unreported: the rest of that echo may have been on
   * its way. Without this, a run of skipped bytes that is the last thing read (say the
   * last echo, with its run id corrupt) would never be reported.
   */
  stop(onSkipped: (bytes: number) => void): void {
    const bytes = this.#skipped;
    this.#skipped = 0;
    this.#len = 0;
    if (bytes > 0) onSkipped(bytes);
  }

  /** Whether a probe may start at `at`: the sync bytes match as far as there are bytes. */
  #syncAt(at: number, len: number): boolean {
    const buf = this.#buf;
    const sync = this.#sync;
    const end = Math.min(sync.length, len - at);
    for (let i = 0; i < end; i++) if (buf[at + i] !== sync[i]) return false;
    return true;
  }

  /** The first position from `from` where a probe may start, or `len`. */
  #nextSync(from: number, len: number): number {
    const buf = this.#buf;
    for (let at = from; at < len; at++) {
      at = buf.indexOf(MAGIC_0, at);
      if (at < 0 || at >= len) return len;
      if (this.#syncAt(at, len)) return at;
    }
    return len;
  }
}
