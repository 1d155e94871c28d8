/**
 * Hostile input, seeded and reproducible: thousands of connections and
 * datagrams of random or malformed bytes to every listener of
 * `netkit server --proto both -v` (TCP echo, the throughput control and data
 * prefixes, UDP echo, a live UDP throughput test's port), and fake echo
 * servers that mangle probes on their way back to `netkit client --probe`.
 *
 * The seed is random per run and printed in every test name; rerun a failure
 * with `NETKIT_FUZZ_SEED=<seed> deno task test tests/fuzz_test.ts`. Every
 * case derives its own generator from the seed, its family and its index, so
 * a failing case is named and reproducible on its own.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, fail } from "@std/assert";
import { runNetkit, type RunningServer, startServer } from "./support/cli.ts";
import { isConnectionEnd, writeAll } from "./support/sockets.ts";
import { type EngineName, engineTest } from "./support/engines.ts";

/**
 * How many descriptors process `pid` holds (Linux), leaving out epoll instances and
 * eventfds: Deno keeps those of a finished Worker's event loop for the next Worker (the
 * server's native echo Worker starts and stops with use), and they are no socket or file
 * the server could leak.
 */
async function fdCount(pid: number): Promise<number> {
  let n = 0;
  for await (const entry of Deno.readDir(`/proc/${pid}/fd`)) {
    const target = await Deno.readLink(`/proc/${pid}/fd/${entry.name}`).catch(() => "");
    if (target !== "anon_inode:[eventpoll]" && target !== "anon_inode:[eventfd]") n++;
  }
  return n;
}

// ---------------------------------------------------------------- seeded PRNG

const SEED = fuzzSeed();

function fuzzSeed(): number {
  const given = Deno.env.get("NETKIT_FUZZ_SEED");
  if (given === undefined || given === "") return crypto.getRandomValues(new Uint32Array(1))[0]!;
  const seed = Number(given);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new Error(`NETKIT_FUZZ_SEED must be an integer in [0, 2^32), got '${given}'`);
  }
  return seed;
}

/** mulberry32: a small, fast 32-bit generator; plenty for choosing hostile bytes. */
class Rng {
  #a: number;
  constructor(seed: number) {
    this.#a = seed >>> 0;
  }
  u32(): number {
    this.#a = (this.#a + 0x6d2b79f5) >>> 0;
    let t = this.#a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  float(): number {
    return this.u32() / 2 ** 32;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.float() * items.length)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const x = this.u32();
      out[i] = x;
      if (i + 1 < n) out[i + 1] = x >>> 8;
      if (i + 2 < n) out[i + 2] = x >>> 16;
      if (i + 3 < n) out[i + 3] = x >>> 24;
    }
    return out;
  }
  /** Printable text from an alphabet. */
  text(n: number, alphabet: string): string {
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(this.float() * alphabet.length)];
    return s;
  }
}

/** The generator of one case: independent of every other case, so each reproduces alone. */
function caseRng(family: number, index: number): Rng {
  let h = SEED ^ Math.imul(family + 1, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return new Rng((h ^ (h >>> 16)) >>> 0);
}

// ---------------------------------------------------------------- helpers

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const LOOPBACK = "127.0.0.1";
/** The whole file's runtime budget; the server is killed past it, so nothing hangs. */
const SERVER_FUZZ_BUDGET_MS = 50_000;
const CASE_TIMEOUT_MS = 15_000;
const RSS_LIMIT_KIB = 300 * 1024;

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function startsWithText(data: Uint8Array, prefix: string): boolean {
  if (data.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[i] !== prefix.charCodeAt(i)) return false;
  return true;
}

/** Read until EOF (or the first newline), noting a reset instead of throwing. */
async function readReply(
  conn: Deno.Conn,
  options: { untilNewline?: boolean; limit?: number } = {},
): Promise<{ data: Uint8Array; reset: boolean }> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(64 * 1024);
  try {
    for (let n; (n = await conn.read(buf)) !== null;) {
      chunks.push(buf.slice(0, n));
      total += n;
      if (options.untilNewline && buf.subarray(0, n).includes(10)) break;
      if (total > (options.limit ?? Infinity)) break;
    }
    return { data: concat(...chunks), reset: false };
  } catch (err) {
    if (!isConnectionEnd(err)) throw err;
    return { data: concat(...chunks), reset: true };
  }
}

/** Poll (bounded) until the server holds exactly its baseline of file descriptors. */
async function waitForFdBaseline(pid: number, baseline: number, what: string): Promise<number> {
  const started = performance.now();
  let n = await fdCount(pid);
  while (n !== baseline) {
    if (performance.now() - started > 15_000) {
      fail(`${what}: the server still holds ${n} fds, baseline ${baseline} (seed ${SEED})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    n = await fdCount(pid);
  }
  return performance.now() - started;
}

async function rssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
}

/** A stack trace or an uncaught error in a process's stderr. */
const CRASH = /Uncaught|^\s+at \S/m;

function assertNoCrash(stderr: string, who: string): void {
  const m = CRASH.exec(stderr);
  assertEquals(m, null, `${who} printed a crash or stack trace (seed ${SEED}):\n${stderr}`);
}

/** Simple line reader over a control connection. */
class Lines {
  #pending = "";
  readonly #buf = new Uint8Array(64 * 1024);
  readonly #decoder = new TextDecoder();
  constructor(readonly conn: Deno.Conn) {}
  async next(): Promise<string | null> {
    while (true) {
      const nl = this.#pending.indexOf("\n");
      if (nl >= 0) {
        const line = this.#pending.slice(0, nl);
        this.#pending = this.#pending.slice(nl + 1);
        return line;
      }
      const n = await this.conn.read(this.#buf);
      if (n === null) return null;
      this.#pending += this.#decoder.decode(this.#buf.subarray(0, n), { stream: true });
    }
  }
}

async function nextJson(lines: Lines, what: string): Promise<Record<string, unknown>> {
  const line = await lines.next();
  assert(line !== null, `${what}: the server closed the control connection`);
  return JSON.parse(line) as Record<string, unknown>;
}

// ---------------------------------------------------------------- throughput wire helpers

const NKT1 = [0x4e, 0x4b, 0x54, 0x31];
const KIND = { data: 0, hello: 1, helloAck: 2, end: 3, challenge: 4, proof: 5 } as const;

function udpTestDatagram(
  key: number,
  stream: number,
  kind: number,
  seq: number,
  time: number,
  length = 28,
): Uint8Array {
  const out = new Uint8Array(Math.max(28, length));
  const view = new DataView(out.buffer);
  out.set(NKT1);
  view.setUint32(4, key >>> 0);
  view.setUint16(8, stream);
  view.setUint16(10, kind);
  view.setUint32(12, Math.floor(seq / 2 ** 32));
  view.setUint32(16, seq >>> 0);
  view.setFloat64(20, time);
  return out;
}

/** Values of a float64 send-time field a hostile peer might choose. */
function hostileTime(r: Rng): number {
  return r.pick([
    NaN,
    Infinity,
    -Infinity,
    -0,
    0,
    Number.MAX_VALUE,
    -Number.MAX_VALUE,
    Number.MIN_VALUE,
    1e300,
    -1e300,
    performance.now() + 1e9,
    r.float() * 1e6,
    new DataView(r.bytes(8).buffer).getFloat64(0),
  ]);
}

/** Sequence numbers, mostly beyond what a double holds exactly. */
function hostileSeq(r: Rng): number {
  return r.pick([
    0,
    1,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 53,
    2 ** 53 + 2,
    2 ** 64 - 2 ** 11,
    r.u32() * 2 ** 32 + r.u32(),
    r.int(0, 1_000_000),
  ]);
}

// ---------------------------------------------------------------- TCP fuzz cases

type Expect = "echo" | "error-line" | "ready-line" | "silent" | "any";

interface TcpCase {
  family: string;
  index: number;
  payload: Uint8Array;
  /** Sizes of the writes that carry the payload. */
  pieces: number[];
  /** verify: half-close and read the whole reply; close: close right after writing. */
  finish: "verify" | "close" | "first-line";
  expect: Expect;
  /** One short line and nothing after it: the reply must arrive whole, without a reset. */
  clean: boolean;
}

/** Write sizes; the first carries at least `first` bytes (a whole prefix, so it is sniffed). */
function splitPieces(r: Rng, length: number, first = 0): number[] {
  if (length <= first || r.chance(0.6)) return [length];
  const pieces: number[] = [];
  if (first > 0) pieces.push(first + r.int(0, Math.min(16, length - first)));
  let left = length - (pieces[0] ?? 0);
  while (left > 0) {
    const n = Math.min(left, r.chance(0.5) ? r.int(1, 16) : r.int(1, 70_000));
    pieces.push(n);
    left -= n;
  }
  return pieces;
}

function randomLength(r: Rng): number {
  const x = r.float();
  if (x < 0.02) return 0;
  if (x < 0.42) return r.int(1, 100);
  if (x < 0.72) return r.int(101, 4096);
  if (x < 0.92) return r.int(4097, 65_536);
  return r.int(65_537, 262_144);
}

const JSONISH = '{}[]":,.-+eE0123456789 truefalsnul\\/\tabcdxyz_';
const VALID_START = {
  type: "start",
  proto: "tcp",
  direction: "up",
  parallel: 1,
  duration_ms: 1000,
  size: 1000,
  bitrate: 0,
};

/** Invalid values per field of a start request (each alone makes the request invalid). */
const BAD_VALUES: Record<string, readonly unknown[]> = {
  proto: ["TCP", "", "sctp", 1, null, true, [], {}, "udp\u0000", "tcp "],
  direction: ["UP", "sideways", 0, null, ["up"], {}],
  parallel: [0, -1, 129, 1e9, 1.5, "4", null, 2 ** 53, -0, "__RAW_1e309__", [1]],
  duration_ms: [0, -5, 3_600_001, 1e12, 0.5, "1000", null, true, "__RAW_-1e309__"],
  size: [0, -1, 4 * 1024 * 1024 + 1, 1e9, "64", null, 1.5, {}],
  bitrate: [-1, "1M", null, true, "__RAW_1e309__", [], -0.001],
};

function startRequestText(r: Rng): string {
  const request: Record<string, unknown> = { ...VALID_START };
  if (r.chance(0.5)) request.proto = "udp";
  if (request.proto === "udp") request.size = r.int(28, 65_507);
  const fields = Object.keys(BAD_VALUES);
  const bad = new Set<string>([r.pick(fields)]);
  while (r.chance(0.4)) bad.add(r.pick(fields));
  for (const field of bad) request[field] = r.pick(BAD_VALUES[field]!);
  if (r.chance(0.15)) delete request[r.pick(fields)];
  if (r.chance(0.1)) request.extra = r.text(r.int(0, 3000), JSONISH);
  if (r.chance(0.05)) request.nested = JSON.parse("[".repeat(500) + "]".repeat(500));
  return JSON.stringify(request).replace(/"__RAW_([^"]+)__"/g, "$1");
}

/** Lines that are JSON but not a valid start. */
function otherControlLine(r: Rng): string {
  return r.pick([
    '{"type":"start","parallel":1e9}',
    '{"type":"report","sent":[],"received":[]}',
    '{"type":"go"}',
    '{"type":"ready","test_id":"x","udp_port":1}',
    '{"type":"error","message":"x"}',
    '{"type":"start"}',
    '{"type":"start","type":"go"}',
    '{"__proto__":{"type":"start"}}',
    '{"constructor":{"prototype":{"type":"start"}}}',
    '{"type":"\\u0073tart","proto":"\\ud800"}',
    "null",
    "[]",
    '"start"',
    "1e999",
    "true",
    "{}",
    "[".repeat(20_000) + "]".repeat(20_000),
    '{"type":"start","proto":"tcp","direction":"up","parallel":1,"duration_ms":1000,"size":1000}',
  ]);
}

function controlCase(r: Rng, index: number): TcpCase {
  const variant = r.int(0, 6);
  let body: Uint8Array;
  let expect: Expect = "error-line";
  let clean = false;
  switch (variant) {
    case 0: { // random binary, maybe a newline
      body = r.bytes(r.int(0, 3000));
      if (r.chance(0.5)) body = concat(body, encoder.encode("\n"));
      expect = "any"; // an error line, possibly cut by a reset if bytes follow the newline
      break;
    }
    case 1: // garbage JSON-ish text
      body = encoder.encode(r.text(r.int(0, 2000), JSONISH).replaceAll("\n", " ") + "\n");
      clean = true;
      break;
    case 2: { // a line over 64 KiB
      const n = r.int(65_537, 200_000);
      body = r.bytes(n).map((b) => (b === 10 ? 32 : b));
      if (r.chance(0.5)) body = concat(body, encoder.encode("\n"));
      // Closed, at most with an error line: the reader reads 16 KiB at a time and may find the
      // newline of a line a little over the limit before it checks the length.
      expect = "any";
      break;
    }
    case 3: { // truncated JSON of a start request, with or without its newline
      const full = JSON.stringify({ ...VALID_START, proto: r.pick(["tcp", "udp"]) });
      body = encoder.encode(full.slice(0, r.int(0, full.length - 1)) + (r.chance(0.7) ? "\n" : ""));
      clean = true;
      break;
    }
    case 4: // valid JSON with wrong types or values
      body = encoder.encode(startRequestText(r) + (r.chance(0.1) ? "\r\n" : "\n"));
      clean = true;
      break;
    case 5: // other JSON lines
      body = encoder.encode(otherControlLine(r) + "\n");
      clean = true;
      break;
    default: { // a bad line, then more bytes (a valid start among them) the server never reads
      body = encoder.encode(
        `${r.text(r.int(1, 50), JSONISH).replaceAll("\n", " ")}\n${JSON.stringify(VALID_START)}\n`,
      );
      body = concat(body, r.bytes(r.int(0, 5000)));
      expect = "any";
    }
  }
  const payload = concat(encoder.encode("NKCTL/2 "), body);
  return {
    family: "control",
    index,
    payload,
    pieces: clean ? [payload.length] : splitPieces(r, payload.length, 8),
    finish: "verify",
    expect,
    clean: clean && payload.length <= 16 * 1024,
  };
}

function dataCase(r: Rng, index: number, liveId?: string): TcpCase {
  const id = liveId ?? r.pick([r.text(16, "0123456789abcdef"), "", r.text(r.int(1, 100), JSONISH)]);
  const stream = r.pick([
    "0",
    "1",
    "4",
    "128",
    "65536",
    "99999999999999999999",
    "1e400",
    "-1",
    "NaN",
    "Infinity",
    "1.5",
    String(r.u32()),
    r.text(r.int(0, 20), JSONISH),
  ]);
  const variant = r.int(0, 3);
  let payload: Uint8Array;
  if (variant === 0) {
    payload = encoder.encode(`NKDATA/1 ${id} ${stream}\n`);
    payload = concat(payload, r.bytes(r.int(0, 5000)));
  } else if (variant === 1) {
    payload = encoder.encode(`NKDATA/1 ${id}\n`); // no stream at all
  } else if (variant === 2) {
    payload = concat(encoder.encode("NKDATA/1 "), r.bytes(r.int(129, 20_000))); // header too long
  } else {
    payload = concat(encoder.encode("NKDATA/1 "), r.bytes(r.int(0, 3000)));
  }
  return {
    family: liveId ? "data-live" : "data",
    index,
    payload,
    pieces: splitPieces(r, payload.length, 9),
    // A live test may adopt the connection until the test ends: never wait for it.
    finish: liveId ? "close" : "verify",
    expect: liveId ? "any" : "silent",
    clean: false,
  };
}

function rawCase(r: Rng, index: number): TcpCase {
  let payload: Uint8Array;
  if (r.chance(0.1)) {
    // Near misses of the two prefixes: echoed like any other bytes.
    const prefix = r.pick(["NKCTL/2", "NKCTL/3 ", "nkctl/2 ", "NKDATA/1", "NKDATA/2 ", "NK", "N"]);
    payload = concat(encoder.encode(prefix), r.bytes(randomLength(r)));
    // Never complete a real prefix by chance (NKCTL/1 is answered with an error line).
    if (
      startsWithText(payload, "NKCTL/2 ") || startsWithText(payload, "NKCTL/1 ") ||
      startsWithText(payload, "NKDATA/1 ")
    ) {
      payload[prefix.length] = 0x21;
    }
  } else {
    payload = r.bytes(randomLength(r));
    if (payload[0] === 0x4e) payload[0] = 0x4f; // not an N: no prefix by chance
  }
  // Closing without reading is only safe below what socket buffers hold.
  const finish = payload.length <= 32 * 1024 && r.chance(0.35) ? "close" : "verify";
  return {
    family: "raw",
    index,
    payload,
    pieces: splitPieces(r, payload.length),
    finish,
    expect: "echo",
    clean: false,
  };
}

function validStartCase(r: Rng, index: number): TcpCase {
  const proto = r.pick(["tcp", "udp"] as const);
  const request = {
    type: "start",
    proto,
    direction: r.pick(["up", "down", "bidir"]),
    parallel: r.pick([1, 128]),
    duration_ms: r.pick([1, 3_600_000]),
    size: proto === "udp" ? r.pick([28, 65_507]) : r.pick([1, 4 * 1024 * 1024]),
    bitrate: r.pick([0, 1e15]),
  };
  const payload = encoder.encode(`NKCTL/2 ${JSON.stringify(request)}\n`);
  return {
    family: "control-valid",
    index,
    payload,
    pieces: [payload.length],
    finish: "first-line",
    expect: "ready-line",
    clean: true,
  };
}

interface CaseStats {
  byFamily: Map<string, number>;
  verifiedEchoes: number;
  echoBytes: number;
  errorLines: number;
  resets: number;
}

/** Run one case and check what came back. */
async function runTcpCase(port: number, c: TcpCase, stats: CaseStats): Promise<void> {
  const label = `${c.family} case #${c.index} (seed ${SEED}, ${c.payload.length} bytes)`;
  const conn = await Deno.connect({ hostname: LOOPBACK, port });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      conn.close();
    } catch { /* closed */ }
  }, CASE_TIMEOUT_MS);
  try {
    const reading = c.finish === "close"
      ? undefined
      : readReply(conn, { untilNewline: c.finish === "first-line" });
    let writeFailed = false;
    try {
      let off = 0;
      for (const size of c.pieces) {
        await writeAll(conn, c.payload.subarray(off, off + size));
        off += size;
      }
      if (c.finish === "verify") await conn.closeWrite();
    } catch (err) {
      if (!isConnectionEnd(err)) throw err;
      writeFailed = true;
    }
    const { data, reset } = reading ? await reading : { data: new Uint8Array(0), reset: false };
    assert(!timedOut, `${label}: no reply or close within ${CASE_TIMEOUT_MS} ms`);
    stats.byFamily.set(c.family, (stats.byFamily.get(c.family) ?? 0) + 1);
    if (reset || writeFailed) stats.resets++;
    if (c.finish === "close") return;
    switch (c.expect) {
      case "echo":
        assert(!reset && !writeFailed, `${label}: echo connection was reset`);
        assertEquals(data.length, c.payload.length, `${label}: echo length`);
        assert(
          data.every((b, i) => b === c.payload[i]),
          `${label}: echo differs from what was sent`,
        );
        stats.verifiedEchoes++;
        stats.echoBytes += data.length;
        break;
      case "silent":
        assertEquals(data.length, 0, `${label}: expected no reply, got ${decoder.decode(data)}`);
        break;
      case "error-line":
      case "ready-line":
      case "any": {
        const text = decoder.decode(data);
        assert(text.length < 4096, `${label}: reply of ${text.length} bytes`);
        const lines = text.split("\n");
        const last = lines.pop();
        if (c.clean) {
          assert(!reset, `${label}: reset instead of a reply`);
          assertEquals(lines.length, 1, `${label}: expected one reply line, got ${text}`);
          assertEquals(last, "", `${label}: trailing bytes after the reply: ${text}`);
        }
        for (const line of lines) {
          const reply = JSON.parse(line) as { type?: unknown; message?: unknown };
          let want: string = c.expect === "ready-line" ? "ready" : "error";
          // A valid start may be refused for the server's test memory budget, saying so.
          if (
            c.expect === "ready-line" && reply.type === "error" &&
            /of buffers, over this server's|test memory is taken/.test(String(reply.message))
          ) want = "error";
          assertEquals(reply.type, want, `${label}: reply ${line}`);
          if (want === "error") {
            assertEquals(typeof reply.message, "string", `${label}: reply ${line}`);
            stats.errorLines++;
          }
        }
        break;
      }
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/** Run cases `batch` at a time; returns when all are done (the first failure is rethrown). */
async function runBatches(
  port: number,
  cases: TcpCase[],
  batch: number,
  stats: CaseStats,
  afterBatch: () => Promise<void>,
): Promise<void> {
  for (let i = 0; i < cases.length; i += batch) {
    const results = await Promise.allSettled(
      cases.slice(i, i + batch).map((c) => runTcpCase(port, c, stats)),
    );
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    await afterBatch();
  }
}

// ---------------------------------------------------------------- live UDP throughput test

interface LiveTest {
  id: string;
  udpPort: number;
  key: number;
  secret: Uint8Array;
  control: Deno.Conn;
  lines: Lines;
  socket: Deno.DatagramConn;
  /** Replies (challenges and acks) the server sent to `socket`, checked as they come. */
  acks: number;
  bad: string[];
  receiving: Promise<void>;
  nextSeq: number[];
}

const LIVE_PARALLEL = 4;

async function startLiveUdpTest(port: number): Promise<LiveTest> {
  const control = await Deno.connect({ hostname: LOOPBACK, port });
  const start = {
    ...VALID_START,
    proto: "udp",
    parallel: LIVE_PARALLEL,
    duration_ms: 15_000,
    size: 1400,
  };
  await writeAll(control, encoder.encode(`NKCTL/2 ${JSON.stringify(start)}\n`));
  const lines = new Lines(control);
  const ready = await nextJson(lines, "live udp test");
  assertEquals(ready.type, "ready", JSON.stringify(ready));
  const udpPort = ready.udp_port as number;
  const socket = Deno.listenDatagram({ transport: "udp", hostname: LOOPBACK, port: 0 });
  const live: LiveTest = {
    id: ready.test_id as string,
    udpPort,
    key: ready.udp_key as number,
    secret: Uint8Array.from((ready.udp_secret as string).match(/../g)!, (h) => parseInt(h, 16)),
    control,
    lines,
    socket,
    acks: 0,
    bad: [],
    receiving: Promise.resolve(),
    nextSeq: Array(LIVE_PARALLEL).fill(0),
  };
  let challenge: Uint8Array | undefined;
  const acked = new Set<number>();
  let progress: (() => void) | undefined;
  live.receiving = (async () => {
    try {
      while (true) {
        const [data, from] = await socket.receive();
        live.acks++;
        const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
        const kind = data.length >= 12 ? view.getUint16(10) : -1;
        if ((from as Deno.NetAddr).port !== udpPort) live.bad.push(`reply from ${from}`);
        else if (data.length > 44) live.bad.push(`reply of ${data.length} bytes (amplified)`);
        else if (!NKT1.every((b, i) => data[i] === b)) live.bad.push(`not ours: ${data}`);
        else if (view.getUint32(4) !== live.key) live.bad.push(`reply with another key`);
        else if (kind === KIND.challenge && data.length === 44) challenge ??= data.slice(28);
        else if (kind === KIND.helloAck && data.length === 28) acked.add(view.getUint16(8));
        else live.bad.push(`reply that is not a challenge or ack: ${Array.from(data).join(",")}`);
        progress?.();
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted)) {
        throw err;
      }
    }
  })();
  const target: Deno.NetAddr = { transport: "udp", hostname: LOOPBACK, port: udpPort };
  // Every stream from this one socket: hellos (with the secret) until the address is challenged,
  // then proofs (echoing the challenge) until each stream is acked; then the server says go.
  for (let attempt = 0; acked.size < LIVE_PARALLEL; attempt++) {
    assert(attempt < 4, "live udp test: streams never bound");
    for (let s = 0; s < LIVE_PARALLEL; s++) {
      if (acked.has(s)) continue;
      const kind = challenge ? KIND.proof : KIND.hello;
      const d = concat(
        udpTestDatagram(live.key, s, kind, 0, performance.now()),
        challenge ?? live.secret,
      );
      await socket.send(d, target);
      if (!challenge) break; // one hello is enough to be challenged
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      const want = challenge ? LIVE_PARALLEL : 0;
      progress = () => (challenge && acked.size >= want) || (!want && challenge) ? resolve() : 0;
      timer = setTimeout(resolve, 1000);
    });
    progress = undefined;
    clearTimeout(timer);
  }
  const go = await nextJson(lines, "live udp test");
  assertEquals(go.type, "go", JSON.stringify(go));
  return live;
}

function closeLive(live: LiveTest): void {
  for (const resource of [live.control, live.socket]) {
    try {
      resource.close();
    } catch { /* closed */ }
  }
}

/** One valid data datagram per stream: keeps the test's bytes moving. */
async function keepAlive(live: LiveTest): Promise<void> {
  const target: Deno.NetAddr = { transport: "udp", hostname: LOOPBACK, port: live.udpPort };
  for (let s = 0; s < LIVE_PARALLEL; s++) {
    const seq = live.nextSeq[s]!++;
    await live.socket.send(
      udpTestDatagram(live.key, s, KIND.data, seq, performance.now(), 200),
      target,
    );
  }
}

/**
 * A hostile datagram for a live test's port (sent from the socket whose flows are bound).
 * Returns whether the server acks it: only a hello with the test's key and secret, for a stream.
 */
function liveDatagram(r: Rng, live: LiveTest): { data: Uint8Array; acked: boolean } {
  const x = r.float();
  if (x < 0.2) return { data: r.bytes(r.int(0, 2000)), acked: false };
  if (x < 0.35) {
    const stream = r.int(0, 8);
    const kind = r.int(0, 5);
    const d = udpTestDatagram(r.u32(), stream, kind, hostileSeq(r), hostileTime(r));
    return { data: concat(d, r.bytes(r.int(0, 1400))), acked: false }; // a wrong key
  }
  if (x < 0.65) {
    const kind = r.chance(0.8) ? r.int(0, 3) : r.int(0, 65_535);
    const stream = r.chance(0.8) ? r.int(0, LIVE_PARALLEL + 2) : r.int(0, 65_535);
    const d = udpTestDatagram(live.key, stream, kind, hostileSeq(r), hostileTime(r));
    // Random bytes where a secret or a challenge goes: nothing to answer.
    return { data: concat(d, r.bytes(r.int(0, 1400))), acked: false };
  }
  if (x < 0.75) {
    // A hello with the secret from the bound address: acked again (28 B), at most.
    const stream = r.int(0, LIVE_PARALLEL + 2);
    const d = udpTestDatagram(live.key, stream, KIND.hello, hostileSeq(r), hostileTime(r));
    const data = concat(d, live.secret, r.bytes(r.int(0, 100)));
    return { data, acked: stream < LIVE_PARALLEL }; // an upper bound: a bad seq or time is not
  }
  if (x < 0.85) {
    const d = udpTestDatagram(live.key, r.int(0, 3), r.int(0, 3), 1, 1);
    return { data: d.subarray(0, r.int(0, 27)), acked: false }; // truncated header
  }
  const stream = r.int(0, LIVE_PARALLEL - 1);
  const seq = r.chance(0.5) ? live.nextSeq[stream]!++ : r.int(0, 10_000);
  return {
    data: udpTestDatagram(live.key, stream, KIND.data, seq, performance.now(), r.int(28, 1400)),
    acked: false,
  };
}

// ---------------------------------------------------------------- UDP echo fuzz

function fingerprint(data: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i]!, 0x01000193);
  return `${data.length}:${h >>> 0}`;
}

function echoDatagram(r: Rng, index: number): Uint8Array {
  const x = r.float();
  let n: number;
  if (x < 0.01) n = 0;
  else if (x < 0.5) n = r.int(1, 64);
  else if (x < 0.8) n = r.int(65, 1472);
  else if (x < 0.95) n = r.int(1473, 9000);
  else n = r.int(9001, 65_507);
  const data = r.bytes(n);
  if (n >= 4 && r.chance(0.1)) data.set(r.pick([NKT1, [0x4e, 0x4b, 0x50, 0x31]])); // magics too
  // Distinct contents, so every reply matches exactly one datagram.
  if (n >= 8) new DataView(data.buffer).setUint32(n - 4, index);
  return data;
}

/** Send datagrams to the UDP echo port in byte-bounded windows and match every echo. */
async function fuzzUdpEcho(
  port: number,
  count: number,
  afterWindow: () => Promise<void>,
): Promise<{ resent: number; bytes: number }> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: LOOPBACK, port: 0 });
  const target: Deno.NetAddr = { transport: "udp", hostname: LOOPBACK, port };
  const pending = new Map<string, Uint8Array[]>();
  let maxSent = 0;
  const resentKeys = new Map<string, number>();
  const problems: string[] = [];
  let wake: (() => void) | undefined;
  const receiving = (async () => {
    const buf = new Uint8Array(65_536);
    try {
      while (true) {
        const [data, from] = await socket.receive(buf);
        if ((from as Deno.NetAddr).port !== port) problems.push(`reply from ${from}`);
        if (data.length > maxSent) problems.push(`reply of ${data.length} bytes > any sent`);
        const key = fingerprint(data);
        const list = pending.get(key);
        const at = list?.findIndex((d) =>
          d.length === data.length && d.every((b, i) => b === data[i])
        );
        if (list === undefined || at === undefined || at < 0) {
          // The first copy of a resent datagram may only have been late: its echo comes twice.
          const late = resentKeys.get(key) ?? 0;
          if (late > 0) resentKeys.set(key, late - 1);
          else problems.push(`a reply of ${data.length} bytes matching nothing sent`);
        } else {
          list.splice(at, 1);
          if (list.length === 0) pending.delete(key);
        }
        if (pending.size === 0) wake?.();
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted)) {
        throw err;
      }
    }
  })();
  const waitForEchoes = async (ms: number) => {
    if (pending.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
    });
    wake = undefined;
    clearTimeout(timer);
  };
  let resent = 0;
  let bytes = 0;
  try {
    let index = 0;
    while (index < count) {
      // A window stays well inside a default receive buffer, so loopback does not drop.
      const window: Uint8Array[] = [];
      let windowBytes = 0;
      while (index < count && window.length < 32 && windowBytes < 64 * 1024) {
        const data = echoDatagram(caseRng(3, index), index);
        index++;
        window.push(data);
        windowBytes += data.length;
      }
      for (const data of window) {
        maxSent = Math.max(maxSent, data.length);
        const key = fingerprint(data);
        pending.set(key, [...(pending.get(key) ?? []), data]);
        await socket.send(data, target);
        bytes += data.length;
      }
      await waitForEchoes(1000);
      // UDP may drop even on loopback under load: resend once what is missing, then insist.
      if (pending.size > 0) {
        for (const [key, list] of pending) {
          for (const data of list) {
            resent++;
            resentKeys.set(key, (resentKeys.get(key) ?? 0) + 1);
            await socket.send(data, target);
          }
        }
        await waitForEchoes(3000);
      }
      assertEquals(
        pending.size,
        0,
        `udp echo: ${pending.size} datagrams never echoed (seed ${SEED})`,
      );
      assertEquals(problems, [], `udp echo (seed ${SEED})`);
      await afterWindow();
    }
  } finally {
    socket.close();
    await receiving;
  }
  assertEquals(problems, [], `udp echo (seed ${SEED})`);
  return { resent, bytes };
}

// ---------------------------------------------------------------- the server fuzz

// On each engine: the live UDP test's port is the server engine's listener (native: recvmmsg).
engineTest(
  `fuzz (NETKIT_FUZZ_SEED=${SEED}): hostile TCP and UDP input to netkit server --proto both -v: it survives, answers sanely, frees everything`,
  serverFuzz,
);

async function serverFuzz(engine: EngineName): Promise<void> {
  const started = performance.now();
  const server: RunningServer = await startServer([
    "--proto",
    "both",
    "--host",
    LOOPBACK,
    "-v",
    "--engine",
    engine,
  ]);
  const pid = server.child.pid;
  const port = server.port;
  // The runtime bound: past it the server is killed, so every pending read fails at once.
  const budget = setTimeout(() => server.child.kill("SIGKILL"), SERVER_FUZZ_BUDGET_MS);
  let maxRss = 0;
  const sampleRss = async () => {
    maxRss = Math.max(maxRss, await rssKiB(pid));
  };
  const stats: CaseStats = {
    byFamily: new Map(),
    verifiedEchoes: 0,
    echoBytes: 0,
    errorLines: 0,
    resets: 0,
  };
  let tcpCases = 0;
  let udpDatagrams = 0;
  let failure: unknown;
  let live: LiveTest | undefined;
  try {
    const baseline = await fdCount(pid);
    const startRss = await rssKiB(pid);
    maxRss = startRss;

    // 1. A live UDP throughput test: hostile datagrams to its port, hostile data connections
    //    naming its id; then it must still finish with a proper report.
    const test = live = await startLiveUdpTest(port);
    const liveTarget: Deno.NetAddr = { transport: "udp", hostname: LOOPBACK, port: live.udpPort };
    let hellosAcked = 0;
    const LIVE_DATAGRAMS = 1000;
    for (let i = 0; i < LIVE_DATAGRAMS; i += 50) {
      for (let j = i; j < Math.min(i + 50, LIVE_DATAGRAMS); j++) {
        const { data, acked } = liveDatagram(caseRng(1, j), live);
        if (acked) hellosAcked++;
        await live.socket.send(data, liveTarget);
      }
      await keepAlive(live);
    }
    udpDatagrams += LIVE_DATAGRAMS;
    const liveDataCases = Array.from(
      { length: 100 },
      (_, i) => dataCase(caseRng(2, i), i, test.id),
    );
    await runBatches(port, liveDataCases, 25, stats, () => keepAlive(test));
    tcpCases += liveDataCases.length;
    for (let k = 0; k < 3; k++) {
      for (let s = 0; s < LIVE_PARALLEL; s++) {
        const end = udpTestDatagram(live.key, s, KIND.end, live.nextSeq[s]!, performance.now());
        await live.socket.send(end, liveTarget);
      }
    }
    const sent = live.nextSeq.map((n, stream) => ({
      stream,
      bytes: n * 200,
      datagrams: n,
      seconds: 1,
    }));
    await writeAll(
      live.control,
      encoder.encode(JSON.stringify({ type: "report", sent, received: [] }) + "\n"),
    );
    const report = await nextJson(live.lines, "live udp test report");
    assertEquals(report.type, "report", `live test after the fuzz: ${JSON.stringify(report)}`);
    const received = report.received as { datagrams: number; lost: number; bytes: number }[];
    assertEquals(received.length, LIVE_PARALLEL);
    for (const f of received) {
      assert(Number.isFinite(f.datagrams) && f.datagrams > 0, JSON.stringify(f));
      assert(Number.isFinite(f.lost) && f.lost >= 0, JSON.stringify(f));
    }
    assertEquals(await live.lines.next(), null, "the server closes the control connection");
    closeLive(live);
    await live.receiving;
    assertEquals(live.bad, [], `replies from the live test's port (seed ${SEED})`);
    // Acks never outnumber the hellos that deserve one (the first four were ours).
    assert(
      live.acks <= hellosAcked + LIVE_PARALLEL * 20,
      `${live.acks} acks for ${hellosAcked} hellos`,
    );
    await sampleRss();
    console.log(
      `live udp test: ${LIVE_DATAGRAMS} hostile datagrams (${hellosAcked} acked hellos, ` +
        `${live.acks} challenges and acks, none over 44 B), ${liveDataCases.length} NKDATA connections ` +
        `naming it; it still reported`,
    );

    // 2. TCP: random bytes (echoed exactly), NKCTL/2 and NKDATA/1 garbage, a few valid starts.
    const TCP_CASES = 2000;
    const cases: TcpCase[] = [];
    for (let i = 0; i < TCP_CASES; i++) {
      const r = caseRng(0, i);
      if (i < 4) cases.push(validStartCase(r, i));
      else {
        const x = r.float();
        cases.push(x < 0.5 ? rawCase(r, i) : x < 0.8 ? controlCase(r, i) : dataCase(r, i));
      }
    }
    const tcpStarted = performance.now();
    await runBatches(port, cases, 50, stats, sampleRss);
    const tcpSeconds = (performance.now() - tcpStarted) / 1000;
    tcpCases += cases.length;
    console.log(
      `tcp: ${cases.length} cases in ${tcpSeconds.toFixed(1)} s (${
        Math.round(cases.length / tcpSeconds)
      }/s): ${JSON.stringify(Object.fromEntries(stats.byFamily))}; ${stats.verifiedEchoes} ` +
        `echoes verified byte for byte (${(stats.echoBytes / 2 ** 20).toFixed(1)} MiB), ` +
        `${stats.errorLines} error replies, ${stats.resets} resets`,
    );

    // 3. UDP echo: random datagrams, each echoed unchanged and never larger.
    const UDP_ECHO = 2000;
    const udpStarted = performance.now();
    const udp = await fuzzUdpEcho(port, UDP_ECHO, sampleRss);
    const udpSeconds = (performance.now() - udpStarted) / 1000;
    udpDatagrams += UDP_ECHO;
    console.log(
      `udp echo: ${UDP_ECHO} datagrams (${(udp.bytes / 2 ** 20).toFixed(1)} MiB) in ${
        udpSeconds.toFixed(1)
      } s, every echo identical, ${udp.resent} resent after a loopback drop`,
    );

    // 4. Still serving: a normal exchange over TCP and UDP.
    const tcp = await runNetkit([
      "client",
      `${LOOPBACK}:${port}`,
      "--message",
      "after",
      "-w",
      "5s",
    ]);
    assertEquals(tcp.code, 0, tcp.stderr);
    assertEquals(tcp.text, "after\n");
    const udpEcho = await runNetkit([
      "client",
      "--proto",
      "udp",
      `${LOOPBACK}:${port}`,
      "--message",
      "after-udp",
    ]);
    assertEquals(udpEcho.code, 0, udpEcho.stderr);
    assertEquals(udpEcho.text, "after-udp\n");

    // 5. Every connection, socket and test freed.
    const waited = await waitForFdBaseline(pid, baseline, "after the fuzz");
    await sampleRss();
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `seed ${SEED}: ${tcpCases} tcp cases + ${udpDatagrams} datagrams in ${
        seconds.toFixed(1)
      } s ` +
        `(${Math.round((tcpCases + udpDatagrams) / seconds)} cases/s); fds ${baseline} → ` +
        `${baseline} (settled in ${Math.round(waited)} ms); VmRSS ${
          (startRss / 1024).toFixed(1)
        } MiB at start, ${(maxRss / 1024).toFixed(1)} MiB at most`,
    );
    assert(maxRss < RSS_LIMIT_KIB, `VmRSS reached ${maxRss} kB`);
  } catch (err) {
    failure = err;
  } finally {
    clearTimeout(budget);
    if (live) {
      closeLive(live);
      await live.receiving.catch(() => {});
    }
  }
  const alive = server.child.pid > 0 && await fdCount(pid).then(() => true, () => false);
  const { code, stderr } = await server.stop();
  if (failure) {
    // A server that exited 0 with its summary before this test stopped it got a SIGTERM or
    // SIGINT from elsewhere (this test sends none before the end).
    const state = alive
      ? "was alive"
      : /^summary: /m.test(stderr)
      ? `had been stopped by a signal this test did not send (exit ${code})`
      : `had exited with ${code}`;
    throw new Error(
      `${(failure as Error).message}\n(seed ${SEED}; the server ${state}; its stderr ends:)\n${
        stderr.slice(-3000)
      }`,
      { cause: failure },
    );
  }
  assertNoCrash(stderr, "the server");
  assertEquals(code, 0, `server exit (seed ${SEED}):\n${stderr.slice(-3000)}`);
  assertMatch(stderr, /summary: \d[\d,]* connections served/);
}

// ---------------------------------------------------------------- probe client vs mangling echo servers

interface ProbeDoc {
  sent: number;
  received: number;
  lost: number;
  out_of_order: number;
  duplicates: number;
  stale: number;
  malformed: number;
  rtt_ms: Record<string, number | null>;
  jitter_ms: number | null;
}

/** What the client must count, from the exact sequence of echoes the fake sent back. */
class Expected {
  readonly seen = new Set<number>();
  highest = -1;
  received = 0;
  outOfOrder = 0;
  duplicates = 0;
  malformed = 0;
  echo(seq: number): void {
    if (this.seen.has(seq)) {
      this.duplicates++;
      return;
    }
    this.seen.add(seq);
    this.received++;
    if (seq < this.highest) this.outOfOrder++;
    else this.highest = seq;
  }
}

const PROBE_SIZE = 64;

function probeSeq(probe: Uint8Array): number {
  const view = new DataView(probe.buffer, probe.byteOffset, probe.byteLength);
  return view.getUint32(8) * 2 ** 32 + view.getUint32(12);
}

/** A copy of a probe the client must reject: each way of breaking it is a checked field. */
function corrupt(r: Rng, probe: Uint8Array, count: number): Uint8Array {
  const out = probe.slice();
  const view = new DataView(out.buffer);
  switch (r.int(0, 6)) {
    case 0:
      flipBit(out, r.int(0, 3), r.int(0, 7)); // magic
      break;
    case 1:
      flipBit(out, r.int(4, 7), r.int(0, 7)); // run id
      break;
    case 2:
      flipBit(out, r.int(24, out.length - 1), r.int(0, 7)); // padding
      break;
    case 3:
      view.setFloat64(16, r.pick([NaN, Infinity, -Infinity])); // send time not a number
      break;
    case 4:
      view.setFloat64(16, view.getFloat64(16) + 1e9); // sent in the client's future
      break;
    case 5:
      view.setUint32(8, r.pick([0x00200001, 0xffffffff])); // sequence number beyond 2^53
      break;
    default: {
      // A sequence number never sent, with padding to match.
      const seq = count + r.int(0, 1000);
      view.setUint32(8, 0);
      view.setUint32(12, seq);
      for (let i = 24; i < out.length; i++) out[i] = (seq + i) & 0xff;
    }
  }
  return out;
}

function flipBit(data: Uint8Array, index: number, bit: number): void {
  data[index] = data[index]! ^ (1 << bit);
}

type Action = "echo" | "drop" | "duplicate" | "corrupt" | "corrupt+echo" | "garbage+echo" | "hold";

function chooseAction(r: Rng, drops: boolean): Action {
  const x = r.float();
  if (x < 0.05) return "duplicate";
  if (x < 0.09) return drops ? "corrupt" : "corrupt+echo"; // a corrupt copy alone is a loss
  if (x < 0.13) return "corrupt+echo";
  if (x < 0.17) return "garbage+echo";
  if (x < 0.25) return "hold";
  if (drops && x < 0.3) return "drop";
  return "echo";
}

/**
 * The mangling: for each probe (in arrival order) decide what goes back, and account for it.
 * `emit` sends one echo-sized chunk; the last probe is always dropped so the client waits its
 * full timeout, and so counts everything sent before.
 */
function mangler(
  seed: number,
  count: number,
  emit: (bytes: Uint8Array) => void,
  options: { drops: boolean; udpExtras: boolean; stranger?: (bytes: Uint8Array) => void },
) {
  const r = new Rng(seed);
  const expected = new Expected();
  const held: Uint8Array[] = [];
  const send = (probe: Uint8Array) => {
    emit(probe);
    expected.echo(probeSeq(probe));
  };
  const flush = () => {
    for (const probe of held.splice(0)) send(probe);
  };
  return {
    expected,
    onProbe(probe: Uint8Array) {
      const seq = probeSeq(probe);
      if (seq === count - 1) {
        flush();
        return; // dropped
      }
      // UDP only: a truncated or extended copy (wrong size) or a copy from a stranger.
      if (options.udpExtras && r.chance(0.06)) {
        const x = r.int(0, 2);
        if (x === 0) emit(probe.slice(0, r.int(0, probe.length - 1)));
        else if (x === 1) emit(concat(probe, r.bytes(r.int(1, 100))));
        else options.stranger?.(probe.slice()); // ignored: not from the server's address
        if (x < 2) expected.malformed++;
      }
      const action = chooseAction(r, options.drops);
      switch (action) {
        case "echo":
          send(probe);
          break;
        case "drop":
          break;
        case "duplicate":
          send(probe);
          send(probe);
          break;
        case "corrupt":
          emit(corrupt(r, probe, count));
          expected.malformed++;
          break;
        case "corrupt+echo":
          emit(corrupt(r, probe, count));
          expected.malformed++;
          send(probe);
          break;
        case "garbage+echo":
          emit(r.bytes(PROBE_SIZE)); // random: not a probe (2^-32 chance of the magic alone)
          expected.malformed++;
          send(probe);
          break;
        case "hold":
          held.push(probe.slice());
          return; // released after the next probe's echo: reordered
      }
      flush();
    },
  };
}

function assertProbeDoc(doc: ProbeDoc, count: number, expected: Expected, what: string): void {
  const got = {
    sent: doc.sent,
    received: doc.received,
    lost: doc.lost,
    out_of_order: doc.out_of_order,
    duplicates: doc.duplicates,
    stale: doc.stale,
    malformed: doc.malformed,
  };
  const want = {
    sent: count,
    received: expected.received,
    lost: count - expected.received,
    out_of_order: expected.outOfOrder,
    duplicates: expected.duplicates,
    stale: 0,
    malformed: expected.malformed,
  };
  assertEquals(got, want, `${what} (seed ${SEED})`);
  for (const v of Object.values(doc.rtt_ms)) {
    assert(v === null || (Number.isFinite(v) && v >= 0), `${what}: rtt ${v}`);
  }
}

function parseProbeJson(text: string, stderr: string, what: string): ProbeDoc {
  try {
    return JSON.parse(text) as ProbeDoc;
  } catch {
    fail(`${what}: stdout is not JSON (seed ${SEED}): ${text}\nstderr: ${stderr}`);
  }
}

Deno.test(`fuzz (NETKIT_FUZZ_SEED=${SEED}): client --probe --json over TCP counts garbage, corrupt, duplicated and reordered echoes exactly`, async () => {
  const COUNT = 4000;
  const listener = Deno.listen({ hostname: LOOPBACK, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let expected: Expected | undefined;
  const serving = (async () => {
    const conn = await listener.accept();
    try {
      const out: Uint8Array[] = [];
      const m = mangler(caseRng(10, 0).u32(), COUNT, (b) => out.push(b), {
        drops: true,
        udpExtras: false,
      });
      expected = m.expected;
      const buf = new Uint8Array(256 * 1024);
      const frame = new Uint8Array(PROBE_SIZE);
      let have = 0;
      for (let n; (n = await conn.read(buf)) !== null;) {
        for (let off = 0; off < n;) {
          const take = Math.min(PROBE_SIZE - have, n - off);
          frame.set(buf.subarray(off, off + take), have);
          have += take;
          off += take;
          if (have === PROBE_SIZE) {
            m.onProbe(frame.slice());
            have = 0;
          }
        }
        if (out.length > 0) await writeAll(conn, concat(...out.splice(0)));
      }
    } catch (err) {
      if (!isConnectionEnd(err)) throw err;
    } finally {
      conn.close();
    }
  })();
  try {
    const result = await runNetkit([
      "client",
      "--probe",
      "--proto",
      "tcp",
      `${LOOPBACK}:${port}`,
      "--count",
      String(COUNT),
      "--rate",
      "0",
      "--size",
      String(PROBE_SIZE),
      "--timeout",
      "1s",
      "--json",
    ], { timeoutMs: 20_000 });
    assertNoCrash(result.stderr, "the probe client");
    await serving;
    assertEquals(result.code, 0, result.stderr);
    const doc = parseProbeJson(result.text, result.stderr, "tcp probe");
    assertProbeDoc(doc, COUNT, expected!, "tcp probe against a mangling echo server");
    console.log(
      `tcp probe: ${COUNT} probes; received ${doc.received}, lost ${doc.lost}, out of order ` +
        `${doc.out_of_order}, duplicates ${doc.duplicates}, malformed ${doc.malformed}: all exact`,
    );
  } finally {
    listener.close();
    await serving.catch(() => {});
  }
});

engineTest(
  `fuzz (NETKIT_FUZZ_SEED=${SEED}): client --probe --json over UDP counts truncated, extended, corrupt, duplicated and reordered echoes exactly`,
  udpProbeFuzz,
);

async function udpProbeFuzz(engine: EngineName): Promise<void> {
  const COUNT = 2000;
  const socket = Deno.listenDatagram({ transport: "udp", hostname: LOOPBACK, port: 0 });
  const stranger = Deno.listenDatagram({ transport: "udp", hostname: LOOPBACK, port: 0 });
  const port = (socket.addr as Deno.NetAddr).port;
  let expected: Expected | undefined;
  const serving = (async () => {
    const buf = new Uint8Array(65_536);
    let m: ReturnType<typeof mangler> | undefined;
    const out: { bytes: Uint8Array; from: "server" | "stranger" }[] = [];
    try {
      while (true) {
        const [data, from] = await socket.receive(buf);
        m ??= mangler(caseRng(11, 0).u32(), COUNT, (bytes) => out.push({ bytes, from: "server" }), {
          drops: false,
          udpExtras: true,
          stranger: (bytes) => out.push({ bytes, from: "stranger" }),
        });
        expected = m.expected;
        if (data.length === PROBE_SIZE) m.onProbe(data.slice());
        for (const { bytes, from: who } of out.splice(0)) {
          await (who === "server" ? socket : stranger).send(bytes, from);
        }
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted)) {
        throw err;
      }
    }
  })();
  try {
    // A bounded window keeps every socket buffer far from full, so no datagram is lost to it.
    const result = await runNetkit([
      "client",
      "--probe",
      "--proto",
      "udp",
      `${LOOPBACK}:${port}`,
      "--count",
      String(COUNT),
      "--rate",
      "0",
      "--outstanding",
      "32",
      "--size",
      String(PROBE_SIZE),
      "--timeout",
      "1s",
      "--engine",
      engine,
      "--json",
    ], { timeoutMs: 20_000 });
    assertNoCrash(result.stderr, "the probe client");
    assertEquals(result.code, 0, result.stderr);
    const doc = parseProbeJson(result.text, result.stderr, "udp probe");
    assertProbeDoc(doc, COUNT, expected!, "udp probe against a mangling echo server");
    console.log(
      `udp probe: ${COUNT} probes; received ${doc.received}, lost ${doc.lost}, out of order ` +
        `${doc.out_of_order}, duplicates ${doc.duplicates}, malformed ${doc.malformed}: all exact`,
    );
  } finally {
    socket.close();
    stranger.close();
    await serving;
  }
}

engineTest(
  `fuzz (NETKIT_FUZZ_SEED=${SEED}): client --probe --json against a UDP server that answers only garbage: all lost, malformed counted, nulls not NaN, exit 1`,
  udpGarbageFuzz,
);

async function udpGarbageFuzz(engine: EngineName): Promise<void> {
  const COUNT = 300;
  const socket = Deno.listenDatagram({ transport: "udp", hostname: LOOPBACK, port: 0 });
  const port = (socket.addr as Deno.NetAddr).port;
  let garbage = 0;
  const serving = (async () => {
    const r = caseRng(12, 0);
    try {
      while (true) {
        const [data, from] = await socket.receive();
        const reply = r.chance(0.5) ? r.bytes(r.int(0, 200)) : data.slice();
        if (reply.length === data.length) {
          // Same size, so it reaches the decoder: make it fail there, a field at a time.
          corruptInPlace(r, reply);
        }
        garbage++;
        await socket.send(reply, from);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted)) {
        throw err;
      }
    }
  })();
  try {
    const result = await runNetkit([
      "client",
      "--probe",
      "--proto",
      "udp",
      `${LOOPBACK}:${port}`,
      "--count",
      String(COUNT),
      "--rate",
      "500",
      "--size",
      String(PROBE_SIZE),
      "--timeout",
      "1s",
      "--engine",
      engine,
      "--json",
    ], { timeoutMs: 20_000 });
    assertNoCrash(result.stderr, "the probe client");
    // Replies, but not one echo: the run is reported, and fails (exit 1) as a script should see.
    assertEquals(result.code, 1, result.stderr);
    assertMatch(result.stderr, /none of the [\d,]+ replies from udp .* was an echo of a probe/);
    const doc = parseProbeJson(result.text, result.stderr, "garbage-only probe");
    assertEquals(doc.sent, COUNT);
    assertEquals(doc.received, 0);
    assertEquals(doc.lost, COUNT);
    assertEquals(doc.malformed, garbage, `every garbage reply counted (seed ${SEED})`);
    assertEquals(Object.values(doc.rtt_ms), Array(7).fill(null));
    assertEquals(doc.jitter_ms, null);
  } finally {
    socket.close();
    await serving;
  }
}

function corruptInPlace(r: Rng, probe: Uint8Array): void {
  probe.set(corrupt(r, probe, 2 ** 20));
}

Deno.test(`fuzz (NETKIT_FUZZ_SEED=${SEED}): client --probe --json against a TCP server that truncates a probe and hangs up: exit 9 and a JSON error`, async () => {
  const listener = Deno.listen({ hostname: LOOPBACK, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const r = caseRng(13, 0);
  const echoFirst = r.int(1, 200) * PROBE_SIZE;
  const serving = (async () => {
    const conn = await listener.accept();
    try {
      // Echo some whole probes, then part of the next one, then close.
      const buf = new Uint8Array(echoFirst + PROBE_SIZE);
      let have = 0;
      while (have < buf.length) {
        const n = await conn.read(buf.subarray(have));
        if (n === null) break;
        have += n;
      }
      await writeAll(conn, buf.subarray(0, echoFirst + r.int(1, PROBE_SIZE - 1)));
    } catch (err) {
      if (!isConnectionEnd(err)) throw err;
    } finally {
      conn.close();
    }
  })();
  try {
    const result = await runNetkit([
      "client",
      "--probe",
      "--proto",
      "tcp",
      `${LOOPBACK}:${port}`,
      "--count",
      "100000",
      "--rate",
      "0",
      "--timeout",
      "2s",
      "--json",
    ], { timeoutMs: 20_000 });
    assertNoCrash(result.stderr, "the probe client");
    assertEquals(result.code, 9, `exit code (seed ${SEED}): ${result.stderr}`);
    const doc = JSON.parse(result.text) as { error: string; exit_code: number };
    assertEquals(doc.exit_code, 9);
    assertMatch(doc.error, /closed the connection|reset|failed after/i);
    assertMatch(result.stderr, /^error: .+\n$/);
  } finally {
    listener.close();
    await serving;
  }
});
