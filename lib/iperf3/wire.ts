/**
 * iperf3's wire protocol, as iperf3 3.x speaks it (read from esnet/iperf
 * `src/iperf_api.c`, `iperf_client_api.c`, `iperf_server_api.c`,
 * `iperf_tcp.c`, `iperf_udp.c`): facts, not iperf3's code.
 *
 * - A control connection starts with a 37-byte cookie (36 characters of
 *   `a-z2-7` and a NUL); each TCP data connection starts with the same cookie.
 * - The server drives the test with single signed state bytes; the client
 *   answers with `TEST_END`, `IPERF_DONE` or `CLIENT_TERMINATE`.
 * - Parameters and results are JSON, each preceded by its length as a
 *   4-byte big-endian number.
 * - A UDP stream starts with a 4-byte connect message from the client's UDP
 *   socket, answered by a 4-byte reply; each datagram then starts with the
 *   sender's clock (u32 seconds, u32 microseconds) and a packet number from 1
 *   (u32, or u64 with `udp_counters_64bit`), big-endian.
 *
 * Everything read from the network is checked here: a malformed cookie,
 * length, JSON document or field gives a {@linkcode WireError} naming it.
 *
 * @example
 * ```ts
 * import { encodeJson, isCookie, makeCookie, State } from "./wire.ts";
 *
 * const cookie = makeCookie();
 * console.log(isCookie(cookie), State.PARAM_EXCHANGE, encodeJson({ tcp: true }).length);
 * ```
 *
 * @module
 */

/** Bytes of a cookie, its NUL included. */
export const COOKIE_SIZE = 37;
/** The characters iperf3 makes cookies of. */
const COOKIE_CHARS = "abcdefghijklmnopqrstuvwxyz234567";

/** iperf3's test states (one signed byte on the control connection). */
export const State = {
  TEST_START: 1,
  TEST_RUNNING: 2,
  TEST_END: 4,
  PARAM_EXCHANGE: 9,
  CREATE_STREAMS: 10,
  SERVER_TERMINATE: 11,
  CLIENT_TERMINATE: 12,
  EXCHANGE_RESULTS: 13,
  DISPLAY_RESULTS: 14,
  IPERF_DONE: 16,
  ACCESS_DENIED: -1,
  SERVER_ERROR: -2,
} as const;

/** A few of iperf3's error numbers (`i_errno`), sent after `SERVER_ERROR`. */
export const IperfErrno = {
  IEDURATION: 5,
  IENUMSTREAMS: 6,
  IEBLOCKSIZE: 7,
  IEOMIT: 12,
  IEUNIMP: 13,
  IEUDPBLOCKSIZE: 20,
  IERECVPARAMS: 114,
  IERECVRESULTS: 117,
  IEACCESSDENIED: 121,
  IEPROTOCOL: 131,
  IESETCONGESTION: 134,
  IEAUTHTEST: 142,
  IECREATESTREAM: 200,
  IESTREAMID: 208,
} as const;

const ERRNO_TEXT: Record<number, string> = {
  5: "test duration too long",
  6: "number of parallel streams too large",
  7: "block size too large",
  12: "bogus value for --omit",
  13: "not implemented",
  20: "block size invalid",
  27: "total requested bitrate is larger than the server's limit",
  114: "unable to receive parameters from client",
  117: "unable to receive results",
  121: "the server is busy running a test",
  131: "protocol does not exist",
  134: "unable to set TCP_CONGESTION",
  142: "test authorization failed (the server requires iperf3's RSA authentication)",
  144: "no message was received for a while",
  200: "unable to create a new stream",
};

/** What iperf3 calls an error number, for messages. */
export function describeErrno(errno: number): string {
  return ERRNO_TEXT[errno] ?? `iperf3 error ${errno}`;
}

/** UDP connect message (`UDP_CONNECT_MSG`, "6789" as a number) and its reply. */
export const UDP_CONNECT_MSG = 0x36373839;
/** The server's reply to a UDP connect message (`UDP_CONNECT_REPLY`). */
export const UDP_CONNECT_REPLY = 0x39383736;
/** The values of iperf3 before 3.1.x. */
export const LEGACY_UDP_CONNECT_MSG = 123456789;
/** The legacy reply. */
export const LEGACY_UDP_CONNECT_REPLY = 987654321;

/** Longest parameter document accepted, in bytes. */
export const MAX_PARAMS_BYTES = 64 * 1024;
/** Longest results document accepted, in bytes. */
export const MAX_RESULTS_BYTES = 1024 * 1024;
/** iperf3's limits: streams, seconds, TCP block bytes. */
export const MAX_STREAMS = 128;
/** Longest test, in seconds (iperf3's `MAX_TIME`). */
export const MAX_TIME_S = 86400;
/** Largest TCP block (iperf3's `MAX_BLOCKSIZE`, 1 MiB). */
export const MAX_TCP_BLOCK = 1024 * 1024;
/** Largest UDP datagram payload. */
export const MAX_UDP_BLOCK = 65507;

/** A protocol violation by the peer; the message names what was wrong. */
export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

/** A fresh cookie: 36 random characters of iperf3's alphabet and a NUL. */
export function makeCookie(): Uint8Array {
  const out = crypto.getRandomValues(new Uint8Array(COOKIE_SIZE));
  for (let i = 0; i < COOKIE_SIZE - 1; i++) {
    out[i] = COOKIE_CHARS.charCodeAt(out[i]! % COOKIE_CHARS.length);
  }
  out[COOKIE_SIZE - 1] = 0;
  return out;
}

const COOKIE_BYTE = new Uint8Array(256);
for (const c of COOKIE_CHARS) COOKIE_BYTE[c.charCodeAt(0)] = 1;

/** Whether `data` starts with an iperf3 cookie (36 bytes of `a-z2-7`, then NUL). */
export function isCookie(data: Uint8Array): boolean {
  if (data.length < COOKIE_SIZE || data[COOKIE_SIZE - 1] !== 0) return false;
  for (let i = 0; i < COOKIE_SIZE - 1; i++) if (COOKIE_BYTE[data[i]!] !== 1) return false;
  return true;
}

/** The cookie as text (without its NUL), as iperf3's `-J` shows it. */
export function cookieText(cookie: Uint8Array): string {
  return new TextDecoder().decode(cookie.subarray(0, COOKIE_SIZE - 1));
}

const encoder = new TextEncoder();

/** One JSON message: a 4-byte big-endian length, then the JSON text. */
export function encodeJson(value: unknown): Uint8Array {
  const body = encoder.encode(JSON.stringify(value));
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/** Parse a JSON message body into an object, or throw a {@linkcode WireError} naming `what`. */
export function decodeJsonObject(body: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    throw new WireError(`the ${what} are not valid JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new WireError(`the ${what} are not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Reads a control connection: state bytes, 4-byte big-endian numbers and
 * length-prefixed JSON, with the bytes already read (after a sniffed cookie)
 * served first.
 */
export class ControlReader {
  #buf: Uint8Array;
  #start = 0;
  #end = 0;

  constructor(
    readonly conn: { read(p: Uint8Array): Promise<number | null> },
    initial: Uint8Array = new Uint8Array(0),
  ) {
    this.#buf = new Uint8Array(Math.max(4096, initial.length));
    this.#buf.set(initial);
    this.#end = initial.length;
  }

  /** Read exactly `n` bytes; `null` if the connection ends first. */
  async exact(n: number): Promise<Uint8Array | null> {
    if (this.#buf.length < n) {
      const bigger = new Uint8Array(n);
      bigger.set(this.#buf.subarray(this.#start, this.#end));
      this.#end -= this.#start;
      this.#start = 0;
      this.#buf = bigger;
    } else if (this.#buf.length - this.#start < n) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    while (this.#end - this.#start < n) {
      const got = await this.conn.read(this.#buf.subarray(this.#end));
      if (got === null) return null;
      this.#end += got;
    }
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  /** One signed state byte; `null` at the end of the connection. */
  async state(): Promise<number | null> {
    const b = await this.exact(1);
    return b === null ? null : (b[0]! << 24) >> 24;
  }

  /** A 4-byte big-endian signed number (as after `SERVER_ERROR`); `null` at the end. */
  async int32(): Promise<number | null> {
    const b = await this.exact(4);
    return b === null ? null : new DataView(b.buffer).getInt32(0);
  }

  /** One length-prefixed JSON object, at most `max` bytes; `what` names it in errors. */
  async json(max: number, what: string): Promise<Record<string, unknown>> {
    const head = await this.exact(4);
    if (head === null) throw new WireError(`the connection closed before the ${what}`);
    const length = new DataView(head.buffer).getUint32(0);
    if (length === 0 || length > max) {
      throw new WireError(`the ${what} claim ${length} bytes (at most ${max} accepted)`);
    }
    const body = await this.exact(length);
    if (body === null) throw new WireError(`the connection closed in the middle of the ${what}`);
    return decodeJsonObject(body, what);
  }

  /** Bytes read but not yet consumed (they belong to whoever takes the connection next). */
  rest(): Uint8Array {
    return this.#buf.slice(this.#start, this.#end);
  }
}

/** One state byte to send. */
export function stateByte(state: number): Uint8Array {
  return new Uint8Array([state & 0xff]);
}

/** `SERVER_ERROR`, then iperf3's error number and errno, as iperf3's server sends them. */
export function serverError(iErrno: number, errno = 0): Uint8Array {
  const out = new Uint8Array(9);
  const view = new DataView(out.buffer);
  out[0] = State.SERVER_ERROR & 0xff;
  view.setInt32(1, iErrno);
  view.setInt32(5, errno);
  return out;
}

/** The test a client asks for, checked. */
export interface Iperf3Params {
  proto: "tcp" | "udp";
  omitS: number;
  timeS: number;
  parallel: number;
  reverse: boolean;
  bidirectional: boolean;
  /** Bytes per write or datagram; 0 when not given (the server picks iperf3's default). */
  len: number;
  /** Bits per second per stream; 0 unlimited. */
  bandwidth: number;
  udp64: boolean;
  clientVersion: string | null;
}

function num(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/**
 * Check a client's parameters (server role); throws a {@linkcode WireError}
 * with iperf3's error number in `errno` for what netkit refuses.
 */
export function parseParams(j: Record<string, unknown>): Iperf3Params {
  const refuse = (message: string, errno: number): never => {
    throw Object.assign(new WireError(message), { errno });
  };
  if ("sctp" in j) refuse("SCTP is not supported by netkit", IperfErrno.IEPROTOCOL);
  if ("authtoken" in j) {
    refuse("iperf3 authentication is not supported by netkit", IperfErrno.IEAUTHTEST);
  }
  if (typeof j.congestion === "string") {
    refuse(
      `congestion control selection ('-C ${j.congestion.slice(0, 32)}') is not supported by netkit`,
      IperfErrno.IESETCONGESTION,
    );
  }
  if (j.udp !== undefined && j.tcp !== undefined) {
    refuse("the parameters ask for both TCP and UDP", IperfErrno.IERECVPARAMS);
  }
  const int = (key: string, min: number, max: number, fallback: number, errno: number) => {
    const v = j[key];
    if (v === undefined) return fallback;
    if (!num(v) || !Number.isInteger(v) || v < min || v > max) {
      return refuse(`parameter '${key}' must be an integer from ${min} to ${max}`, errno);
    }
    return v;
  };
  const proto = j.udp !== undefined ? "udp" : "tcp";
  const timeS = int("time", 0, MAX_TIME_S, 10, IperfErrno.IEDURATION);
  const omitS = int("omit", 0, 600, 0, IperfErrno.IEOMIT);
  if (int("num", 0, Number.MAX_SAFE_INTEGER, 0, IperfErrno.IERECVPARAMS) !== 0) {
    refuse("byte-count tests (-n) are not supported by netkit: use -t", IperfErrno.IEUNIMP);
  }
  if (int("blockcount", 0, Number.MAX_SAFE_INTEGER, 0, IperfErrno.IERECVPARAMS) !== 0) {
    refuse("block-count tests (-k) are not supported by netkit: use -t", IperfErrno.IEUNIMP);
  }
  if (timeS === 0) refuse("a test needs a duration (-t)", IperfErrno.IEDURATION);
  const parallel = int("parallel", 1, MAX_STREAMS, 1, IperfErrno.IENUMSTREAMS);
  const len = proto === "udp"
    ? int("len", 16, MAX_UDP_BLOCK, 0, IperfErrno.IEUDPBLOCKSIZE)
    : int("len", 1, MAX_TCP_BLOCK, 0, IperfErrno.IEBLOCKSIZE);
  const bandwidth = int("bandwidth", 0, 2 ** 53, 0, IperfErrno.IERECVPARAMS);
  const reverse = j.reverse !== undefined && j.reverse !== false;
  const bidirectional = j.bidirectional !== undefined && j.bidirectional !== false;
  if (reverse && bidirectional) {
    refuse("the parameters ask for both reverse and bidirectional", IperfErrno.IERECVPARAMS);
  }
  return {
    proto,
    omitS,
    timeS,
    parallel,
    reverse,
    bidirectional,
    len,
    bandwidth,
    udp64: j.udp_counters_64bit !== undefined && j.udp_counters_64bit !== 0,
    clientVersion: typeof j.client_version === "string" ? j.client_version.slice(0, 32) : null,
  };
}

/** The parameter document of a client (the keys iperf3's `send_parameters` uses). */
export function buildParams(p: Iperf3Params): Record<string, unknown> {
  return {
    [p.proto]: true,
    omit: p.omitS,
    time: p.timeS,
    num: 0,
    blockcount: 0,
    parallel: p.parallel,
    ...(p.reverse && { reverse: true }),
    ...(p.bidirectional && { bidirectional: true }),
    ...(p.len > 0 && { len: p.len }),
    ...(p.bandwidth > 0 && { bandwidth: p.bandwidth }),
    pacing_timer: 1000,
    ...(p.udp64 && { udp_counters_64bit: 1 }),
    client_version: p.clientVersion ?? "3.12",
  };
}

/** One stream's figures in a results document. */
export interface StreamResult {
  id: number;
  bytes: number;
  retransmits: number;
  /** Seconds (iperf3 sends jitter in seconds). */
  jitter: number;
  /** Datagrams lost (UDP receiver), or 0. */
  errors: number;
  /** Datagrams sent or received (UDP), or 0. */
  packets: number;
  startTime: number;
  endTime: number;
}

/** A results document, checked. */
export interface Iperf3Results {
  cpuUtilTotal: number;
  cpuUtilUser: number;
  cpuUtilSystem: number;
  senderHasRetransmits: number;
  congestionUsed: string | null;
  streams: StreamResult[];
  /** The document as received, for showing the peer's figures as it sent them. */
  raw: Record<string, unknown>;
}

/** Check a results document from the peer; throws a {@linkcode WireError} naming the field. */
export function parseResults(j: Record<string, unknown>, maxStreams: number): Iperf3Results {
  const need = (o: Record<string, unknown>, key: string, where: string): number => {
    const v = o[key];
    if (!num(v)) throw new WireError(`the results lack a number '${key}'${where}`);
    return v;
  };
  const streams = j.streams;
  if (!Array.isArray(streams)) throw new WireError("the results lack a 'streams' array");
  if (streams.length > maxStreams) {
    throw new WireError(`the results list ${streams.length} streams; the test has ${maxStreams}`);
  }
  const out: StreamResult[] = [];
  for (const [i, s] of streams.entries()) {
    if (typeof s !== "object" || s === null || Array.isArray(s)) {
      throw new WireError(`stream ${i} of the results is not an object`);
    }
    const o = s as Record<string, unknown>;
    const where = ` in stream ${i}`;
    const bytes = need(o, "bytes", where);
    if (bytes < 0) throw new WireError(`negative 'bytes'${where}`);
    out.push({
      id: need(o, "id", where),
      bytes,
      // -1 means "not measured"; some iperf3 builds send it as an unsigned 64-bit number.
      retransmits: ((r) => r >= 0 && r < 2 ** 32 ? r : -1)(need(o, "retransmits", where)),
      jitter: need(o, "jitter", where),
      errors: need(o, "errors", where),
      packets: need(o, "packets", where),
      startTime: num(o.start_time) ? o.start_time : 0,
      endTime: num(o.end_time) ? o.end_time : 0,
    });
  }
  return {
    cpuUtilTotal: need(j, "cpu_util_total", ""),
    cpuUtilUser: need(j, "cpu_util_user", ""),
    cpuUtilSystem: need(j, "cpu_util_system", ""),
    senderHasRetransmits: need(j, "sender_has_retransmits", ""),
    congestionUsed: typeof j.congestion_used === "string" ? j.congestion_used.slice(0, 32) : null,
    streams: out,
    raw: j,
  };
}

/** A results document to send (the keys iperf3's `send_results` uses). */
export function buildResults(streams: StreamResult[], senderHasRetransmits: number): unknown {
  return {
    cpu_util_total: 0,
    cpu_util_user: 0,
    cpu_util_system: 0,
    sender_has_retransmits: senderHasRetransmits,
    streams: streams.map((s) => ({
      id: s.id,
      bytes: s.bytes,
      retransmits: s.retransmits,
      jitter: s.jitter,
      errors: s.errors,
      packets: s.packets,
      start_time: s.startTime,
      end_time: s.endTime,
    })),
  };
}

/** iperf3's stream ids in creation order: 1, then 3, 4, 5, … (iperf3 skips 2). */
export function streamId(index: number): number {
  return index === 0 ? 1 : index + 2;
}

/** Bytes of a UDP datagram header: 12, or 16 with 64-bit counters. */
export function udpHeaderBytes(udp64: boolean): number {
  return udp64 ? 16 : 12;
}

/** Write a UDP datagram header (wall clock now, packet number `count`). */
export function writeUdpHeader(view: DataView, udp64: boolean, count: number, nowMs: number) {
  const sec = Math.floor(nowMs / 1000);
  view.setUint32(0, sec >>> 0);
  view.setUint32(4, Math.floor((nowMs - sec * 1000) * 1000) >>> 0);
  if (udp64) {
    view.setUint32(8, Math.floor(count / 2 ** 32));
    view.setUint32(12, count >>> 0);
  } else {
    view.setUint32(8, count >>> 0);
  }
}

/** A decoded datagram header (caller-owned, reused). */
export interface UdpHeader {
  /** The sender's clock, in milliseconds. */
  sendMs: number;
  count: number;
}

/** Read a UDP datagram header; false when the datagram is too short for one. */
export function readUdpHeader(data: Uint8Array, udp64: boolean, out: UdpHeader): boolean {
  if (data.length < udpHeaderBytes(udp64)) return false;
  out.sendMs = u32(data, 0) * 1000 + u32(data, 4) / 1000;
  out.count = udp64 ? u32(data, 8) * 2 ** 32 + u32(data, 12) : u32(data, 8);
  return true;
}

function u32(d: Uint8Array, o: number): number {
  return ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
}

/** Whether a 4-byte datagram is a connect message, and in which byte order it came. */
export function connectMessageOrder(data: Uint8Array): "le" | "be" | undefined {
  if (data.length !== 4) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, 4);
  for (const value of [UDP_CONNECT_MSG, LEGACY_UDP_CONNECT_MSG]) {
    if (view.getUint32(0, true) === value) return "le";
    if (view.getUint32(0, false) === value) return "be";
  }
  return undefined;
}

/**
 * A 4-byte UDP connect message or reply in `order` (iperf3 writes them in the
 * host's order: little-endian on x86 and ARM).
 */
export function udpWord(value: number, order: "le" | "be" = "le"): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, order === "le");
  return out;
}

/**
 * Whether a 4-byte datagram answers a little-endian connect message: the reply
 * in little-endian ("6789"), or the legacy value in either order. (The reply
 * in big-endian is the byte string "9876", the message itself: an echo of it
 * must not count as a reply.)
 */
export function isConnectReply(data: Uint8Array): boolean {
  if (data.length !== 4) return false;
  const view = new DataView(data.buffer, data.byteOffset, 4);
  return view.getUint32(0, true) === UDP_CONNECT_REPLY ||
    view.getUint32(0, true) === LEGACY_UDP_CONNECT_REPLY ||
    view.getUint32(0, false) === LEGACY_UDP_CONNECT_REPLY;
}
