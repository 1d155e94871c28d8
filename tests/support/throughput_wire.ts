/**
 * The throughput protocol spoken by hand, for tests that must send what a
 * netkit client never would (forged, replayed, unproven, unacknowledged): a
 * raw control connection, UDP sockets whose datagrams queue up until asked
 * for, and builders of hellos, proofs and data datagrams. Datagrams are built
 * here byte by byte, not with netkit's own encoder, so a wire change shows.
 *
 * @example
 * ```ts
 * import { Inbox, RawControl, hello } from "./throughput_wire.ts";
 *
 * await using control = await RawControl.open(5050, { proto: "udp", direction: "down" });
 * const ready = await control.next();
 * await using flow = new Inbox("127.0.0.1");
 * await flow.send(hello(ready), ready.udp_port as number);
 * ```
 *
 * @module
 */

import { assert } from "@std/assert";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Kinds of UDP test datagrams. */
export const KIND = { data: 0, hello: 1, helloAck: 2, end: 3, challenge: 4, proof: 5 } as const;
/** Bytes of the UDP test header. */
export const HEADER_BYTES = 28;
/** Bytes of a hello (header and the 16-byte secret) and of a challenge or proof. */
export const HELLO_BYTES = 44;

/** Resolve with `promise`, or reject after `ms` (the timer is always cleared). */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A throughput test datagram: `NKT1`, key, stream, kind, seq, send time, then `tail`. */
export function datagram(
  fields: { key: number; stream?: number; kind: number; seq?: number },
  tail: Uint8Array | number = 0,
): Uint8Array {
  const extra = typeof tail === "number" ? tail : tail.length;
  const out = new Uint8Array(HEADER_BYTES + extra);
  const view = new DataView(out.buffer);
  out.set([0x4e, 0x4b, 0x54, 0x31]);
  view.setUint32(4, fields.key >>> 0);
  view.setUint16(8, fields.stream ?? 0);
  view.setUint16(10, fields.kind);
  view.setUint32(16, fields.seq ?? 0);
  view.setFloat64(20, performance.now());
  if (typeof tail !== "number") out.set(tail, HEADER_BYTES);
  return out;
}

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(
    { length: hex.length / 2 },
    (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16),
  );
}

/** A hello for `stream` with the test's key and secret (from its `ready` line). */
export function hello(ready: Record<string, unknown>, stream = 0, secret?: Uint8Array) {
  return datagram(
    { key: ready.udp_key as number, stream, kind: KIND.hello },
    secret ?? fromHex(ready.udp_secret as string),
  );
}

/** The proof that echoes a challenge datagram back. */
export function proof(challenge: Uint8Array): Uint8Array {
  const out = challenge.slice(0, HELLO_BYTES);
  new DataView(out.buffer).setUint16(10, KIND.proof);
  return out;
}

/** A datagram's kind (header bytes 10–11). */
export function kindOf(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint16(10);
}

/** A raw control connection: one JSON object per line. */
export class RawControl implements AsyncDisposable {
  #pending = "";
  readonly #buf = new Uint8Array(4096);

  private constructor(readonly conn: Deno.Conn) {}

  /** Connect and send `NKCTL/2 ` and a start request (`fields` override a 1 s TCP up test). */
  static async open(
    port: number,
    fields: Record<string, unknown>,
    hostname = "127.0.0.1",
  ): Promise<RawControl> {
    const conn = await Deno.connect({ hostname, port });
    const control = new RawControl(conn);
    const start = {
      type: "start",
      proto: "tcp",
      direction: "up",
      parallel: 1,
      duration_ms: 1000,
      size: 1400,
      bitrate: 0,
      ...fields,
    };
    await control.write(`NKCTL/2 ${JSON.stringify(start)}\n`);
    return control;
  }

  /** Open on a connection already made (e.g. a Unix socket) and send `text` as is. */
  static async raw(conn: Deno.Conn, text: string): Promise<RawControl> {
    const control = new RawControl(conn);
    await control.write(text);
    return control;
  }

  async write(text: string): Promise<void> {
    const bytes = encoder.encode(text);
    for (let off = 0; off < bytes.length;) off += await this.conn.write(bytes.subarray(off));
  }

  /** Send one message. */
  async send(message: Record<string, unknown>): Promise<void> {
    await this.write(`${JSON.stringify(message)}\n`);
  }

  /** The next line as JSON, or `null` when the server closed; fails after `ms`. */
  async next(ms = 5000): Promise<Record<string, unknown> | null> {
    return await within(
      (async () => {
        while (!this.#pending.includes("\n")) {
          const n = await this.conn.read(this.#buf);
          if (n === null) return null;
          this.#pending += decoder.decode(this.#buf.subarray(0, n));
        }
        const nl = this.#pending.indexOf("\n");
        const line = this.#pending.slice(0, nl);
        this.#pending = this.#pending.slice(nl + 1);
        return JSON.parse(line) as Record<string, unknown>;
      })(),
      ms,
      "control line",
    );
  }

  /** The next line, which must be JSON of `type`. */
  async expect(type: string, ms = 5000): Promise<Record<string, unknown>> {
    const message = await this.next(ms);
    assert(message?.type === type, `expected '${type}', got ${JSON.stringify(message)}`);
    return message;
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** A UDP socket whose received datagrams queue up (with counts) until asked for. */
export class Inbox implements AsyncDisposable {
  readonly socket: Deno.DatagramConn;
  readonly #queue: { data: Uint8Array; from: Deno.NetAddr }[] = [];
  /** Datagrams and bytes received in all. */
  datagrams = 0;
  bytes = 0;
  /** Bytes sent in all. */
  sent = 0;
  #wake: (() => void) | undefined;
  readonly #loop: Promise<void>;

  constructor(hostname: string) {
    const socket = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
    this.socket = socket;
    this.#loop = (async () => {
      const buf = new Uint8Array(65536);
      try {
        while (true) {
          const [data, from] = await socket.receive(buf);
          this.datagrams++;
          this.bytes += data.length;
          if (this.#queue.length < 10_000) {
            this.#queue.push({ data: data.slice(), from: from as Deno.NetAddr });
          }
          this.#wake?.();
        }
      } catch {
        // closed
      }
    })();
  }

  get port(): number {
    return (this.socket.addr as Deno.NetAddr).port;
  }

  async send(data: Uint8Array, port: number, hostname = "127.0.0.1"): Promise<void> {
    this.sent += data.length;
    await this.socket.send(data, { transport: "udp", hostname, port });
  }

  /** Forget the datagrams queued so far (they stay counted). */
  clear(): void {
    this.#queue.length = 0;
  }

  /** The next datagram, or `undefined` when none arrives within `ms`. */
  async next(ms: number): Promise<{ data: Uint8Array; from: Deno.NetAddr } | undefined> {
    if (this.#queue.length === 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#wake = undefined;
          resolve();
        }, ms);
        this.#wake = () => {
          clearTimeout(timer);
          this.#wake = undefined;
          resolve();
        };
      });
    }
    return this.#queue.shift();
  }

  /** The next datagram, whatever its kind; fails when none arrives within `ms`. */
  async expectAny(ms: number, what: string): Promise<{ data: Uint8Array; from: Deno.NetAddr }> {
    const got = await this.next(ms);
    assert(got, `${what}: no datagram within ${ms} ms`);
    return got;
  }

  /** The next datagram of `kind` (others are skipped); fails when none arrives within `ms`. */
  async expect(kind: number, ms: number, what: string): Promise<Uint8Array> {
    const until = performance.now() + ms;
    while (true) {
      const left = until - performance.now();
      const got = left > 0 ? await this.next(left) : undefined;
      assert(got, `${what}: no datagram of kind ${kind} within ${ms} ms`);
      if (kindOf(got.data) === kind) return got.data;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.socket.close();
    await this.#loop;
  }
}

/** The local address (`a.b.c.d`) of the UDP socket bound to `port` in this namespace. */
export async function udpBoundAddress(port: number): Promise<string | undefined> {
  const table = await Deno.readTextFile("/proc/net/udp");
  for (const line of table.split("\n").slice(1)) {
    const local = line.trim().split(/\s+/)[1];
    if (!local) continue;
    const [hex = "", portHex = ""] = local.split(":");
    if (parseInt(portHex, 16) !== port) continue;
    const n = parseInt(hex, 16); // little-endian on x86 and arm
    return [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff].join(".");
  }
  return undefined;
}

/** A process's memory figures from /proc/PID/status, in MiB. */
export async function memoryOf(pid: number): Promise<{ rssMiB: number; hwmMiB: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { rssMiB: kib("VmRSS") / 1024, hwmMiB: kib("VmHWM") / 1024 };
}
