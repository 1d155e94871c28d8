/**
 * The throughput test protocol, spoken over the server's ordinary TCP port.
 *
 * A control connection starts with `NKCTL/2 ` (the protocol's version; a
 * server answers the older `NKCTL/1 ` with an error line) and then carries one
 * JSON object per line. A TCP data connection starts with the line
 * `NKDATA/1 <test-id> <stream>` and then carries test bytes. An echo server
 * sniffs these prefixes on a connection's first bytes; anything else is
 * echoed as usual.
 *
 * ```
 * client                                   server
 *   NKCTL/2 {"type":"start", …}        →
 *                                      ←   {"type":"ready","test_id":…,"udp_port":…,
 *                                             "udp_key":…,"udp_secret":…}
 *   data streams open (TCP: NKDATA line; UDP: see below)
 *                                      ←   {"type":"go"}
 *   both senders send for duration_ms, then end their streams; a receiving
 *   client reports what it has received so far, twice a second:
 *   {"type":"progress","received_bytes":…} →
 *   {"type":"report", sent, received}  →
 *                                      ←   {"type":"report", sent, received}
 * ```
 *
 * UDP test datagrams carry a 28-byte header (big-endian): magic `NKT1`, test
 * key u32, stream u16, kind u16 (0 data, 1 hello, 2 hello-ack, 3 end),
 * sequence u64, send time float64 ms on the sender's clock (one-way jitter
 * needs no synchronised clocks: the offset cancels).
 *
 * A UDP flow is bound only once its address has proven it receives what the
 * server sends there (return routability): the client sends a hello (kind 1)
 * carrying the test's 16-byte secret after the header; the server answers with
 * a challenge (kind 4): 16 random bytes after the header, sent to the hello's
 * source, no larger than the hello; the client echoes them in a proof (kind 5)
 * from the same UDP source, and the server binds the stream to that address and
 * acks (kind 2). Data (kind 0) and end (kind 3) datagrams follow, both ways, only
 * between the client's flow and the bound address.
 *
 * @example
 * ```ts
 * import { CONTROL_MAGIC, encodeControl } from "./protocol.ts";
 *
 * const line = encodeControl({ type: "go" });
 * console.log(CONTROL_MAGIC, new TextDecoder().decode(line));
 * ```
 *
 * @module
 */

/** First bytes of a control connection. */
export const CONTROL_MAGIC = "NKCTL/2 ";
/** First bytes of a control connection of the previous protocol version, answered with an error. */
export const OLD_CONTROL_MAGIC = "NKCTL/1 ";
/** First bytes of a TCP data connection. */
export const DATA_MAGIC = "NKDATA/1 ";
/** Longest control line accepted, in bytes. */
export const MAX_CONTROL_LINE = 64 * 1024;

import type { Direction } from "../config.ts";

/** What the client asks for. */
export interface StartRequest {
  type: "start";
  proto: "tcp" | "udp";
  direction: Direction;
  parallel: number;
  duration_ms: number;
  /** TCP: bytes per write; UDP: datagram size. */
  size: number;
  /** Bits per second per stream; 0 = unlimited. */
  bitrate: number;
  /**
   * UDP: the client sends with GSO (`--gso`), so the server's test port may receive
   * with GRO (whole runs of datagrams per receive). Absent: false.
   */
  gso?: boolean;
}

/** One stream's figures from the side that sent it. */
export interface SentFigures {
  stream: number;
  bytes: number;
  datagrams: number;
  seconds: number;
}

/** One stream's figures from the side that received it. */
export interface ReceivedFigures {
  stream: number;
  bytes: number;
  datagrams: number;
  lost: number;
  out_of_order: number;
  duplicates: number;
  jitter_ms: number | null;
  seconds: number;
  /** Bytes received per interval (interval length as agreed), for the end-of-test view. */
  intervals: number[];
  /** UDP: datagrams lost per interval, from sequence gaps (absent from older peers). */
  interval_lost?: number[];
  /** UDP: the jitter estimate at the end of each interval, ms (absent from older peers). */
  interval_jitter_ms?: (number | null)[];
}

/** Control messages. */
export type ControlMessage =
  | StartRequest
  | {
    type: "ready";
    test_id: string;
    udp_port: number | null;
    /** UDP tests: the key every datagram of the test carries (u32). */
    udp_key?: number;
    /** UDP tests: the secret a hello must carry, {@linkcode UDP_SECRET_BYTES} bytes as hex. */
    udp_secret?: string;
    /** UDP tests: the server's test port receives with UDP GRO (asked for by `gso`). */
    udp_gro?: boolean;
  }
  | { type: "go" }
  /** What the receiving client has received so far (the server's stall watchdog reads it). */
  | { type: "progress"; received_bytes: number }
  | {
    type: "report";
    sent: SentFigures[];
    received: ReceivedFigures[];
    /** UDP datagrams the receiver's kernel dropped for a full buffer during the test, if known. */
    rcvbuf_errors?: number;
  }
  | { type: "error"; message: string };

const encoder = new TextEncoder();

/** One control message as a line (without the connection's magic). */
export function encodeControl(message: ControlMessage): Uint8Array {
  return encoder.encode(JSON.stringify(message) + "\n");
}

/** Parse one control line; `undefined` when it is not a well-formed control message. */
export function decodeControl(line: string): ControlMessage | undefined {
  const decoded = parseControl(line);
  return decoded.type === "invalid" ? undefined : decoded;
}

/** A control line that is not a well-formed message, and why. */
export interface InvalidControl {
  type: "invalid";
  problem: string;
}

/**
 * Parse one control line from the network and check every field its type has
 * (a start request's values are checked by {@linkcode checkStart}): a message
 * that passes can be used without further checks.
 */
export function parseControl(line: string): ControlMessage | InvalidControl {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { type: "invalid", problem: "not JSON" };
  }
  if (!isRecord(value)) return { type: "invalid", problem: "not a JSON object" };
  const type = value.type;
  const shape = typeof type === "string" && Object.hasOwn(SHAPES, type)
    ? SHAPES[type as ControlMessage["type"]]
    : undefined;
  if (!shape) return { type: "invalid", problem: `unknown message type ${JSON.stringify(type)}` };
  const problem = checkShape(value, shape);
  return problem ? { type: "invalid", problem } : value as ControlMessage;
}

/** Validate a start request from an untrusted peer; returns an error message or undefined. */
export function checkStart(r: StartRequest): string | undefined {
  const int = (v: unknown, min: number, max: number) =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
  if (r.proto !== "tcp" && r.proto !== "udp") return "proto must be tcp or udp";
  if (r.direction !== "up" && r.direction !== "down" && r.direction !== "bidir") {
    return "bad direction";
  }
  if (!int(r.parallel, 1, 128)) return "parallel must be 1 to 128";
  if (!int(r.duration_ms, 1, 3_600_000)) return "duration must be at most 1 hour";
  const minSize = r.proto === "udp" ? UDP_HEADER_BYTES : 1;
  if (!int(r.size, minSize, r.proto === "udp" ? 65507 : 4 * 1024 * 1024)) return "bad size";
  if (typeof r.bitrate !== "number" || !(r.bitrate >= 0) || !Number.isFinite(r.bitrate)) {
    return "bad bitrate";
  }
  if (r.gso !== undefined && (r.gso !== true || r.proto !== "udp")) return "gso is true, for udp";
  return undefined;
}

/** Bytes of the UDP test datagram header. */
export const UDP_HEADER_BYTES = 28;

/** Kinds of UDP test datagrams. */
export const UdpKind = { data: 0, hello: 1, helloAck: 2, end: 3, challenge: 4, proof: 5 } as const;

/** Bytes of a UDP test's secret, carried by hellos after the header. */
export const UDP_SECRET_BYTES = 16;
/** Bytes of a return-routability challenge, carried by challenges and proofs after the header. */
export const UDP_CHALLENGE_BYTES = 16;
/** Bytes of a hello: the header, then the test's secret. */
export const UDP_HELLO_BYTES = UDP_HEADER_BYTES + UDP_SECRET_BYTES;
/** Bytes of a challenge or a proof: the header, then the challenge. */
export const UDP_PROOF_BYTES = UDP_HEADER_BYTES + UDP_CHALLENGE_BYTES;

/** A decoded UDP test datagram header (caller-owned, reused). */
export interface UdpHeader {
  key: number;
  stream: number;
  kind: number;
  seq: number;
  sendTimeMs: number;
}

const MAGIC = [0x4e, 0x4b, 0x54, 0x31]; // NKT1

/** Write a UDP header into `buf` (at least {@linkcode UDP_HEADER_BYTES} long). */
export function writeUdpHeader(
  view: DataView,
  key: number,
  stream: number,
  kind: number,
  seq: number,
  sendTimeMs: number,
): void {
  view.setUint8(0, MAGIC[0]!);
  view.setUint8(1, MAGIC[1]!);
  view.setUint8(2, MAGIC[2]!);
  view.setUint8(3, MAGIC[3]!);
  view.setUint32(4, key);
  view.setUint16(8, stream);
  view.setUint16(10, kind);
  view.setUint32(12, Math.floor(seq / 2 ** 32));
  view.setUint32(16, seq >>> 0);
  view.setFloat64(20, sendTimeMs);
}

const scratch = new DataView(new ArrayBuffer(8));
/** High u32 half of 2^53, the largest sequence number a tracker accepts. */
const MAX_SEQ_HIGH = 2 ** 21;

function u32(d: Uint8Array, o: number): number {
  return ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
}

/** Read a UDP header without allocating; false when `data` is not a netkit test datagram. */
export function readUdpHeader(data: Uint8Array, out: UdpHeader): boolean {
  return readUdpHeaderAt(data, 0, data.length, out);
}

/**
 * {@linkcode readUdpHeader} of the datagram of `length` bytes at `offset` in
 * `data` (a slot of an engine's batch), without making a view of it.
 */
export function readUdpHeaderAt(
  data: Uint8Array,
  offset: number,
  length: number,
  out: UdpHeader,
): boolean {
  const o = offset;
  if (length < UDP_HEADER_BYTES || o + UDP_HEADER_BYTES > data.length) return false;
  if (
    data[o] !== MAGIC[0] || data[o + 1] !== MAGIC[1] || data[o + 2] !== MAGIC[2] ||
    data[o + 3] !== MAGIC[3]
  ) {
    return false;
  }
  // A sequence number above 2^53 is not exact as a number and never sent by netkit: not ours
  // (and would throw in the sequence tracker).
  const high = u32(data, o + 12);
  const low = u32(data, o + 16);
  if (high > MAX_SEQ_HIGH || (high === MAX_SEQ_HIGH && low !== 0)) return false;
  for (let i = 0; i < 8; i++) scratch.setUint8(i, data[o + 20 + i]!);
  const sendTimeMs = scratch.getFloat64(0);
  if (!Number.isFinite(sendTimeMs)) return false; // netkit always sends a clock reading
  out.key = u32(data, o + 4);
  out.stream = (data[o + 8]! << 8) | data[o + 9]!;
  out.kind = (data[o + 10]! << 8) | data[o + 11]!;
  out.seq = high * 2 ** 32 + low;
  out.sendTimeMs = sendTimeMs;
  return true;
}

/** A field's check, by what it must be. */
type FieldCheck = ((v: unknown) => boolean) & { what?: string };
type Shape = Record<string, FieldCheck | { list: Shape; max: number }>;

/** Most streams a test has (and so entries of a report's lists). */
const MAX_STREAMS = 128;
/** Most interval bins a report's stream carries (an hour at 1 s is 3,600). */
const MAX_INTERVALS = 100_000;

const check = (what: string, f: (v: unknown) => boolean): FieldCheck => Object.assign(f, { what });
const amount = check(
  "a number ≥ 0",
  (v) => typeof v === "number" && Number.isFinite(v) && v >= 0,
);
const index = check(
  `an integer 0 to ${MAX_STREAMS - 1}`,
  (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) < MAX_STREAMS,
);
const SENT_SHAPE: Shape = { stream: index, bytes: amount, datagrams: amount, seconds: amount };
const SHAPES: Record<ControlMessage["type"], Shape> = {
  // Its values are checked by checkStart, which says what is wrong to the client.
  start: {},
  ready: {
    test_id: check(
      "a string of 1 to 64 characters",
      (v) => typeof v === "string" && /^[\w-]{1,64}$/.test(v),
    ),
    udp_port: check(
      "null or a port number",
      (v) => v === null || (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535),
    ),
    udp_key: check(
      "absent or an integer 0 to 2^32 - 1",
      (v) =>
        v === undefined ||
        (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff),
    ),
    udp_secret: check(
      `absent or ${UDP_SECRET_BYTES} bytes in hex`,
      (v) =>
        v === undefined ||
        (typeof v === "string" && /^[0-9a-f]*$/i.test(v) && v.length === 2 * UDP_SECRET_BYTES),
    ),
  },
  go: {},
  progress: { received_bytes: amount },
  report: {
    sent: { list: SENT_SHAPE, max: MAX_STREAMS },
    received: {
      list: {
        ...SENT_SHAPE,
        lost: amount,
        out_of_order: amount,
        duplicates: amount,
        jitter_ms: check("null or a number ≥ 0", (v) => v === null || amount(v)),
        intervals: check(
          `a list of at most ${MAX_INTERVALS} numbers ≥ 0`,
          (v) => Array.isArray(v) && v.length <= MAX_INTERVALS && v.every(amount),
        ),
      },
      max: MAX_STREAMS,
    },
    rcvbuf_errors: check("absent or a number ≥ 0", (v) => v === undefined || amount(v)),
  },
  error: { message: check("a string", (v) => typeof v === "string") },
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The first field of `value` that `shape` rejects, as `path must be …`. */
function checkShape(value: Record<string, unknown>, shape: Shape, path = ""): string | undefined {
  for (const [key, rule] of Object.entries(shape)) {
    const field = value[key];
    const at = path + key;
    if (typeof rule === "function") {
      if (!rule(field)) return `'${at}' must be ${rule.what}, not ${describe(field)}`;
      continue;
    }
    if (!Array.isArray(field)) return `'${at}' must be a list, not ${describe(field)}`;
    if (field.length > rule.max) return `'${at}' has more than ${rule.max} entries`;
    for (const [i, item] of field.entries()) {
      if (!isRecord(item)) return `'${at}[${i}]' must be an object, not ${describe(item)}`;
      const problem = checkShape(item, rule.list, `${at}[${i}].`);
      if (problem) return problem;
    }
  }
  return undefined;
}

function describe(v: unknown): string {
  if (v === undefined) return "missing";
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
