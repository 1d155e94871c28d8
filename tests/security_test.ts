/**
 * End-to-end tests of the server's defences, through the real CLI run with the
 * binary's permissions: access control (`--allow`/`--deny`, TCP and UDP), the
 * UDP rate limit, never amplifying a UDP request, the first-byte (slowloris)
 * timeout, `--max-conns`, the graceful drain on SIGTERM, and TLS on both
 * sides. Clients are raw Deno sockets (so every byte and every close can be
 * checked) or `netkit client` subprocesses. Loopback only.
 *
 * Nothing waits on a sleep: tests wait for `listening on`, a connect, an echo
 * or a close. Where a test proves that a reply does NOT come, it sends the
 * unwanted datagram first and a wanted one after it on the same server socket,
 * waits for the wanted reply (the server answers in order), and then allows a
 * short bounded wait for the unwanted one.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertNotEquals, assertNotMatch } from "@std/assert";
import { makeTestCerts } from "./support/certs.ts";
import { AT, runNetkit, type RunningServer, skipWithout, startServer } from "./support/cli.ts";
import { closeQuietly, writeAll } from "./support/sockets.ts";
import { HEADER_BYTES, Inbox, KIND, within } from "./support/throughput_wire.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** How long a test waits for a reply that must NOT come (after the server proved it is past it). */
const ABSENCE_MS = 300;

// ---------------------------------------------------------------------------------------------
// Helpers

async function dial(hostname: string, port: number): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname, port });
}

/** Read exactly `length` bytes within `ms`; the connection is closed if they do not come. */
async function readExactly(conn: Deno.Conn, length: number, ms = 5000): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(conn);
  }, ms);
  try {
    let off = 0;
    while (off < length) {
      const n = await conn.read(buf.subarray(off));
      if (n === null) throw new Error(`closed after ${off} of ${length} bytes`);
      off += n;
    }
    return buf;
  } catch (err) {
    if (timedOut) throw new Error(`only part of ${length} bytes within ${ms} ms`);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Send `text` and expect it back, byte for byte. */
async function assertEchoes(conn: Deno.Conn, text: string): Promise<void> {
  await writeAll(conn, encoder.encode(text));
  assertEquals(decoder.decode(await readExactly(conn, encoder.encode(text).length)), text);
}

/** How a connection ended, seen by a client that reads until the end. */
interface Ending {
  /** Bytes received before the end. */
  bytes: number;
  how: "eof" | "reset";
  /** Milliseconds from the call to the end. */
  afterMs: number;
}

/** Read (and count) until the server closes; fails if it is still open after `ms`. */
async function readUntilClosed(conn: Deno.Conn, ms: number): Promise<Ending> {
  const started = performance.now();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(conn);
  }, ms);
  let bytes = 0;
  try {
    const buf = new Uint8Array(64 * 1024);
    for (let n; (n = await conn.read(buf)) !== null;) bytes += n;
    if (timedOut) throw new Error(`still open after ${ms} ms`);
    return { bytes, how: "eof", afterMs: performance.now() - started };
  } catch (err) {
    if (timedOut) throw new Error(`still open after ${ms} ms (${bytes} bytes read)`);
    if (err instanceof Deno.errors.ConnectionReset) {
      return { bytes, how: "reset", afterMs: performance.now() - started };
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Write without minding that the server may already have closed (it refuses before reading). */
async function writeIgnoringClose(conn: Deno.Conn, text: string): Promise<void> {
  try {
    await writeAll(conn, encoder.encode(text));
  } catch (err) {
    if (
      !(err instanceof Deno.errors.ConnectionReset) && !(err instanceof Deno.errors.BrokenPipe)
    ) throw err;
  }
}

/** The one `summary:` line of a server's stderr. */
function summaryLine(stderr: string): string {
  const lines = stderr.split("\n").filter((l) => l.startsWith("summary: "));
  assertEquals(lines.length, 1, `expected one summary line in:\n${stderr}`);
  return lines[0]!;
}

/** Sum of one counter over every summary line (`(\d+) label`). */
function counted(stderr: string, label: string): number {
  let total = 0;
  for (const line of stderr.split("\n").filter((l) => l.startsWith("summary: "))) {
    const m = new RegExp(`([\\d,]+) ${label}`).exec(line);
    if (m) total += Number(m[1]!.replaceAll(",", ""));
  }
  return total;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Whether a socket bound to `::` accepts IPv4 clients here (IPv4-mapped, `bindv6only=0`). */
async function dualStack(): Promise<boolean> {
  let listener: Deno.Listener | undefined;
  try {
    listener = Deno.listen({ hostname: "::", port: 0 });
    const accepted = listener.accept();
    accepted.catch(() => {});
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: (listener.addr as Deno.NetAddr).port,
    });
    closeQuietly(await accepted);
    closeQuietly(conn);
    return true;
  } catch {
    return false;
  } finally {
    if (listener) closeQuietly(listener);
  }
}

/**
 * Servers reachable on both 127.0.0.1 and ::1: one on `--host ::` where the
 * stack is dual, otherwise one per family.
 */
interface BothFamilies {
  portFor(hostname: string): number;
  /** SIGTERM every server; their exit codes and their stderr, concatenated. */
  stop(): Promise<{ codes: number[]; stderr: string }>;
}

async function startOnBothFamilies(args: string[]): Promise<BothFamilies> {
  const servers: { hostname: string; server: RunningServer }[] = [];
  try {
    if (await dualStack()) {
      servers.push({ hostname: "*", server: await startServer(["--host", "::", ...args]) });
    } else {
      for (const hostname of ["127.0.0.1", "::1"]) {
        servers.push({ hostname, server: await startServer(["--host", hostname, ...args]) });
      }
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.server.stop()));
    throw err;
  }
  return {
    portFor: (hostname) =>
      servers.find((s) => s.hostname === "*" || s.hostname === hostname)!.server.port,
    stop: async () => {
      const results = await Promise.all(servers.map((s) => s.server.stop()));
      return { codes: results.map((r) => r.code), stderr: results.map((r) => r.stderr).join("") };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// 1. Access control

Deno.test("--deny 127.0.0.1 closes an IPv4 client without reading or echoing a byte, while ::1 is served", async () => {
  const servers = await startOnBothFamilies(["--deny", "127.0.0.1", "-v"]);
  try {
    const v4 = await dial("127.0.0.1", servers.portFor("127.0.0.1"));
    const v4Port = v4.localAddr.port;
    try {
      await writeIgnoringClose(v4, "hello");
      const ending = await readUntilClosed(v4, 5000);
      assertEquals(ending.bytes, 0, "a denied client gets no echo");
    } finally {
      closeQuietly(v4);
    }
    const v6 = await dial("::1", servers.portFor("::1"));
    try {
      await assertEchoes(v6, "hello");
    } finally {
      closeQuietly(v6);
    }
    const { codes, stderr } = await servers.stop();
    assertEquals(new Set(codes), new Set([0]));
    assertMatch(
      stderr,
      new RegExp(`^${AT}denied 127\\.0\\.0\\.1:${v4Port}: not permitted by --allow/--deny$`, "m"),
    );
    assertNotMatch(
      stderr,
      new RegExp(`connect (127\\.0\\.0\\.1|\\[::ffff:127\\.0\\.0\\.1\\]):${v4Port}`),
    );
    assertEquals(counted(stderr, "denied"), 1);
    // Only ::1's 5 bytes were read: the denied client's "hello" never was.
    assertEquals(counted(stderr, "connections? served"), 1);
    assertEquals(counted(stderr, "B in"), 5);
    assertEquals(counted(stderr, "B out"), 5);
  } finally {
    await servers.stop();
  }
});

Deno.test("--allow ::1 alone refuses 127.0.0.1 and serves ::1", async () => {
  const servers = await startOnBothFamilies(["--allow", "::1", "-v"]);
  try {
    const v4 = await dial("127.0.0.1", servers.portFor("127.0.0.1"));
    const v4Port = v4.localAddr.port;
    try {
      await writeIgnoringClose(v4, "let me in");
      assertEquals((await readUntilClosed(v4, 5000)).bytes, 0, "no echo to a peer not allowed");
    } finally {
      closeQuietly(v4);
    }
    const v6 = await dial("::1", servers.portFor("::1"));
    try {
      await assertEchoes(v6, "allowed");
      await assertEchoes(v6, "twice");
    } finally {
      closeQuietly(v6);
    }
    const { codes, stderr } = await servers.stop();
    assertEquals(new Set(codes), new Set([0]));
    assertMatch(stderr, new RegExp(`^${AT}denied 127\\.0\\.0\\.1:${v4Port}: `, "m"));
    assertEquals(counted(stderr, "denied"), 1);
    assertEquals(counted(stderr, "connections? served"), 1);
  } finally {
    await servers.stop();
  }
});

Deno.test("udp --allow 127.0.0.0/8 --deny 127.0.0.2: datagrams from 127.0.0.2 get no reply, 127.0.0.1 is echoed, summary counts denied", async () => {
  const server = await startServer([
    "--proto",
    "udp",
    "--host",
    "127.0.0.1",
    "--allow",
    "127.0.0.0/8",
    "--deny",
    "127.0.0.2",
    "-v",
  ]);
  try {
    await using denied = new Inbox("127.0.0.2");
    await using allowed = new Inbox("127.0.0.1");
    // The denied source first: once the allowed one's echo is back, the server has passed them.
    for (let i = 0; i < 3; i++) await denied.send(encoder.encode(`denied ${i}`), server.port);
    await allowed.send(encoder.encode("allowed"), server.port);
    const echo = await allowed.expectAny(5000, "echo to 127.0.0.1");
    assertEquals(decoder.decode(echo.data), "allowed");
    assertEquals(echo.from.port, server.port);
    assertEquals(await denied.next(ABSENCE_MS), undefined, "127.0.0.2 got a reply");
    const { code, stderr } = await server.stop();
    assertEquals(code, 0);
    // One log line per refused source, not one per datagram.
    const logged = stderr.split("\n").map((l) => l.replace(new RegExp(`^${AT}`), ""))
      .filter((l) => l.startsWith("denied udp 127.0.0.2:"));
    assertEquals(logged, [
      `denied udp 127.0.0.2:${denied.port}: not permitted by --allow/--deny`,
    ]);
    assertMatch(summaryLine(stderr), /, 3 denied, .*1 datagram in, 1 out$/);
  } finally {
    await server.stop();
  }
});

// ---------------------------------------------------------------------------------------------
// 2. UDP rate limit

Deno.test("udp --rate-limit 50 echoes about 50 of a 500-datagram burst from one source, counts the rest, and leaves another source unaffected", async () => {
  const server = await startServer([
    "--proto",
    "udp",
    "--host",
    "127.0.0.1",
    "--rate-limit",
    "50",
    "-v",
  ]);
  try {
    await using flood = new Inbox("127.0.0.1");
    await using other = new Inbox("127.0.0.2"); // the limit is per source address
    const burst = 500;
    // All at once, so the burst is over in far less than the 600 ms that would refill 30 more.
    await Promise.all(
      Array.from(
        { length: burst },
        (_, i) => flood.send(encoder.encode(`flood ${String(i).padStart(4, "0")}`), server.port),
      ),
    );
    // The other source is served at once. The burst may have filled the server's socket
    // buffer (the kernel then drops datagrams before netkit sees them), so retry the first.
    let first: { data: Uint8Array } | undefined;
    for (let attempt = 0; attempt < 10 && !first; attempt++) {
      await other.send(encoder.encode("other first"), server.port);
      first = await other.next(1000);
    }
    assert(first, "the second source got no echo");
    for (let i = 0; i < 20; i++) {
      await other.send(encoder.encode(`other ${i}`), server.port);
      let echo = await other.expectAny(5000, `second source, datagram ${i}`);
      while (decoder.decode(echo.data) === "other first") { // a late echo of a retried first
        echo = await other.expectAny(5000, `second source, datagram ${i}`);
      }
      assertEquals(decoder.decode(echo.data), `other ${i}`);
    }
    // The server handled the whole burst before the other source's datagrams (one socket,
    // in order), so every echo to the flood is already queued here.
    const echoed = new Set<string>();
    for (let got; (got = await flood.next(ABSENCE_MS / 2));) {
      const text = decoder.decode(got.data);
      assertMatch(text, /^flood \d{4}$/);
      assert(!echoed.has(text), `duplicate echo ${text}`);
      echoed.add(text);
    }
    assert(
      echoed.size >= 40 && echoed.size <= 80,
      `expected 40 to 80 echoes of the burst (50 + refill), got ${echoed.size}`,
    );
    const { code, stderr } = await server.stop();
    assertEquals(code, 0);
    const limited = counted(stderr, "datagrams? rate-limited");
    assert(limited >= 1, `no datagrams rate-limited in: ${summaryLine(stderr)}`);
    assert(limited + echoed.size <= burst, `${limited} limited + ${echoed.size} echoed`);
    assertMatch(
      stderr,
      new RegExp(
        `^${AT}rate-limited udp 127\\.0\\.0\\.1:${flood.port}: over --rate-limit 50/s$`,
        "m",
      ),
    );
    assertNotMatch(stderr, /rate-limited udp 127\.0\.0\.2/);
  } finally {
    await server.stop();
  }
});

// ---------------------------------------------------------------------------------------------
// 3. Never amplify

function pseudoRandom(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function patterned(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 131 + seed) & 0xff;
  return out;
}

Deno.test("udp echo never amplifies: every reply is exactly the request, for sizes 1 to 65,507", async () => {
  const server = await startServer(["--proto", "udp", "--host", "127.0.0.1"]);
  try {
    await using client = new Inbox("127.0.0.1");
    const random = pseudoRandom(0x5eed);
    const sizes = [
      1,
      2,
      27,
      28,
      29,
      64,
      512,
      1400,
      1472,
      1473,
      8192,
      9000,
      32768,
      65000,
      65506,
      65507,
      ...Array.from({ length: 10 }, () => 1 + Math.floor(random() * 65507)),
    ];
    for (const size of sizes) {
      const request = patterned(size, size);
      await client.send(request, server.port);
      const reply = await client.expectAny(5000, `echo of ${size} bytes`);
      assertEquals(reply.data.length, size, `reply to ${size} bytes is ${reply.data.length}`);
      assertEquals(reply.data, request);
    }
    assertEquals(await client.next(ABSENCE_MS), undefined, "an extra reply arrived");
    const { code, stderr } = await server.stop();
    assertEquals(code, 0);
    assertMatch(
      summaryLine(stderr),
      new RegExp(`, ${sizes.length} datagrams in, ${sizes.length} out$`),
    );
  } finally {
    await server.stop();
  }
});

/** A throughput test datagram: `NKT1`, key, stream, kind, seq, send time, `tail`, then padding. */
function testDatagram(
  size: number,
  fields: { key?: number; stream?: number; kind: number; tail?: Uint8Array },
) {
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set([0x4e, 0x4b, 0x54, 0x31]);
  view.setUint32(4, fields.key ?? 0);
  view.setUint16(8, fields.stream ?? 0);
  view.setUint16(10, fields.kind);
  view.setFloat64(20, performance.now());
  for (let i = HEADER_BYTES; i < size; i++) out[i] = i & 0xff;
  if (fields.tail) out.set(fields.tail.subarray(0, size - HEADER_BYTES), HEADER_BYTES);
  return out;
}

/** Read one `\n`-terminated line from a connection (bounded). */
async function readLine(conn: Deno.Conn, ms: number): Promise<string> {
  const bytes: number[] = [];
  const one = new Uint8Array(1);
  return await within(
    (async () => {
      while (true) {
        const n = await conn.read(one);
        if (n === null) throw new Error(`closed after ${bytes.length} bytes of a line`);
        if (one[0] === 0x0a) return decoder.decode(new Uint8Array(bytes));
        bytes.push(one[0]!);
      }
    })(),
    ms,
    "control line",
  );
}

Deno.test("throughput test UDP port never amplifies: a hello's challenge and a proof's ack are no longer than what they answer, garbage gets no reply at all", async () => {
  const server = await startServer(["--host", "127.0.0.1", "-v"]);
  const control = await dial("127.0.0.1", server.port);
  try {
    await using udp = new Inbox("127.0.0.1");
    await writeAll(
      control,
      encoder.encode(
        'NKCTL/2 {"type":"start","proto":"udp","direction":"up","parallel":1,' +
          '"duration_ms":1000,"size":1400,"bitrate":0}\n',
      ),
    );
    const ready = JSON.parse(await readLine(control, 5000));
    assertEquals(ready.type, "ready");
    const dataPort = ready.udp_port;
    assert(Number.isInteger(dataPort) && dataPort > 0, `udp_port ${ready.udp_port}`);
    const key: number = ready.udp_key;
    const secret = Uint8Array.from(
      (ready.udp_secret as string).match(/../g)!,
      (h) => parseInt(h, 16),
    );
    const hello = (size: number) => testDatagram(size, { key, kind: KIND.hello, tail: secret });

    const garbage = () => {
      const random = pseudoRandom(dataPort);
      const noise = (size: number) =>
        Uint8Array.from({ length: size }, () => Math.floor(random() * 256));
      return [
        noise(1),
        noise(27),
        noise(28),
        noise(1400),
        noise(65507),
        hello(44).subarray(0, 43), // a truncated hello
        testDatagram(HEADER_BYTES, { key, kind: KIND.hello }), // no secret
        testDatagram(44, { key, kind: KIND.hello, tail: new Uint8Array(16) }), // a wrong secret
        testDatagram(44, { key: key ^ 1, kind: KIND.hello, tail: secret }), // a wrong key
        testDatagram(44, { key, kind: KIND.hello, stream: 7, tail: secret }), // no such stream
        testDatagram(44, { key, kind: KIND.proof, tail: new Uint8Array(16) }), // a wrong proof
        testDatagram(1400, { kind: KIND.data, key: 0xdeadbeef }), // wrong key
        testDatagram(HEADER_BYTES, { kind: KIND.end, key: 0xdeadbeef }),
        testDatagram(HEADER_BYTES, { kind: KIND.helloAck, key: 0xdeadbeef }),
        testDatagram(44, { kind: KIND.challenge, key }),
      ];
    };
    // Garbage first, then a hello: the first reply must be the hello's challenge (the server's
    // socket is read in order), so nothing answered the garbage.
    for (const g of garbage()) await udp.send(g, dataPort);
    await udp.send(hello(44), dataPort);
    const challenge = await udp.expectAny(5000, "challenge to a hello");
    assertEquals(challenge.from.port, dataPort);
    assert(challenge.data.length <= 44, `challenge of ${challenge.data.length} B to 44`);
    assertEquals([...challenge.data.subarray(0, 4)], [0x4e, 0x4b, 0x54, 0x31]);
    assertEquals(new DataView(challenge.data.buffer).getUint16(10), KIND.challenge);
    // Garbage again, then the proof: the first reply is the ack, a bare header.
    for (const g of garbage()) await udp.send(g, dataPort);
    const proof = challenge.data.slice();
    new DataView(proof.buffer).setUint16(10, KIND.proof);
    await udp.send(proof, dataPort);
    const ack = await udp.expectAny(5000, "ack of a proof");
    assertEquals(ack.data.length, HEADER_BYTES);
    assertEquals(new DataView(ack.data.buffer).getUint16(10), KIND.helloAck);
    // Longer hellos from the bound flow still get a header-sized ack.
    for (const size of [45, 100, 1400, 65507]) {
      await udp.send(hello(size), dataPort);
      const again = await udp.expectAny(5000, `ack of a ${size}-byte hello`);
      assertEquals(again.data.length, HEADER_BYTES, `ack of a ${size}-byte hello`);
    }
    for (const g of garbage()) await udp.send(g, dataPort);
    assertEquals(await udp.next(ABSENCE_MS), undefined, "garbage got a reply");
    closeQuietly(control); // ends the test on the server
    const { code, stderr } = await server.stop();
    assertEquals(code, 0);
    assertMatch(stderr, /throughput test [0-9a-f]+: udp up, 1 stream\(s\)/);
  } finally {
    closeQuietly(control);
    await server.stop();
  }
});

// ---------------------------------------------------------------------------------------------
// 4. Slowloris: the first-byte timeout

Deno.test("--first-byte-timeout 300ms closes a connection that sends nothing after about 300 ms, and keeps serving one that spoke at once", async () => {
  const server = await startServer([
    "--host",
    "127.0.0.1",
    "--first-byte-timeout",
    "300ms",
    "-v",
  ]);
  try {
    // The talker connects first, so it is older than the silent one when that one is closed.
    const talker = await dial("127.0.0.1", server.port);
    try {
      await assertEchoes(talker, "at once");
      const silent = await dial("127.0.0.1", server.port);
      const silentPort = silent.localAddr.port;
      let ending: Ending;
      try {
        ending = await readUntilClosed(silent, 5000);
      } finally {
        closeQuietly(silent);
      }
      assertEquals(ending.bytes, 0);
      assert(ending.afterMs >= 200, `closed after ${ending.afterMs.toFixed(0)} ms, before 200`);
      // Past the timeout, the one that spoke is still served.
      await assertEchoes(talker, "still served");
      await assertEchoes(talker, "and again");
      closeQuietly(talker);
      const { code, stderr } = await server.stop();
      assertEquals(code, 0);
      assertMatch(
        stderr,
        new RegExp(
          `^${AT}disconnect 127\\.0\\.0\\.1:${silentPort}: 0 B in, 0 B out, .*\\(nothing received within 300 ms\\)$`,
          "m",
        ),
      );
      assertEquals(stderr.match(/nothing received within/g)?.length, 1, stderr);
    } finally {
      closeQuietly(talker);
    }
  } finally {
    await server.stop();
  }
});

// ---------------------------------------------------------------------------------------------
// 5. --max-conns

Deno.test("--max-conns 3 closes the 4th connection at once while the first 3 keep echoing", async () => {
  const server = await startServer(["--host", "127.0.0.1", "--max-conns", "3", "-v"]);
  const conns: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const conn = await dial("127.0.0.1", server.port);
      conns.push(conn);
      await assertEchoes(conn, `conn ${i}`); // being served, so it counts
    }
    const fourth = await dial("127.0.0.1", server.port);
    conns.push(fourth);
    const fourthPort = fourth.localAddr.port;
    await writeIgnoringClose(fourth, "one too many");
    const ending = await readUntilClosed(fourth, 5000);
    assertEquals(ending.bytes, 0);
    assert(ending.afterMs < 2000, `closed only after ${ending.afterMs.toFixed(0)} ms`);
    for (const [i, conn] of conns.slice(0, 3).entries()) await assertEchoes(conn, `again ${i}`);
    for (const conn of conns) closeQuietly(conn);
    const { code, stderr } = await server.stop();
    assertEquals(code, 0);
    assertMatch(
      stderr,
      new RegExp(`^${AT}refused 127\\.0\\.0\\.1:${fourthPort}: --max-conns 3 reached$`, "m"),
    );
    assertMatch(summaryLine(stderr), /^summary: 3 connections served, 1 refused, /);
  } finally {
    for (const conn of conns) closeQuietly(conn);
    await server.stop();
  }
});

// ---------------------------------------------------------------------------------------------
// 6. Drain on SIGTERM

/** Byte `i` of a busy client's stream is `PATTERN[i % PERIOD]`. */
const PERIOD = 65521;
const CHUNK = 64 * 1024;
const PATTERN = Uint8Array.from(
  { length: PERIOD + CHUNK },
  (_, i) => ((i % PERIOD) * 2654435761) >>> 24,
);

/**
 * A client that writes its pattern and reads nothing back, so the server's echo
 * blocks writing to it. `stalled()` resolves once its own writes have made no
 * progress for a while: then the server is no longer reading from it, which it
 * only does while stuck in an echo write.
 */
class BusyClient {
  written = 0;
  /** Echo bytes read back so far. */
  received = 0;
  lastProgress = performance.now();
  readonly writing: Promise<unknown>;

  constructor(readonly conn: Deno.TcpConn, limit = 256 * 1024 * 1024) {
    this.writing = (async () => {
      while (this.written < limit) {
        const off = this.written % PERIOD;
        this.written += await conn.write(PATTERN.subarray(off, off + CHUNK));
        this.lastProgress = performance.now();
      }
      throw new Error(`wrote ${limit} bytes without stalling`);
    })();
    this.writing.catch(() => {});
  }

  /** Wait (bounded) until no write has completed for `quietMs`. */
  async stalled(quietMs = 300, limitMs = 20_000): Promise<void> {
    const started = performance.now();
    while (performance.now() - this.lastProgress < quietMs) {
      if (performance.now() - started > limitMs) {
        throw new Error(`writes never stalled (${this.written} bytes written)`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Read the echo back (checking it is a prefix of what was written) while `more()`. */
  async readWhile(more: () => boolean): Promise<void> {
    const buf = new Uint8Array(CHUNK);
    while (more()) {
      const n = await this.conn.read(buf);
      if (n === null) throw new Error(`closed after ${this.received} bytes of echo`);
      this.#check(buf, n);
    }
  }

  /** Read the rest of the echo until the server closes (or resets) the connection. */
  async readBack(ms: number): Promise<Ending> {
    const started = performance.now();
    const before = this.received;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      closeQuietly(this.conn);
    }, ms);
    const buf = new Uint8Array(CHUNK);
    const ending = (how: Ending["how"]) => ({
      bytes: this.received - before,
      how,
      afterMs: performance.now() - started,
    });
    try {
      for (let n; (n = await this.conn.read(buf)) !== null;) this.#check(buf, n);
      if (timedOut) throw new Error(`still open after ${ms} ms`);
      return ending("eof");
    } catch (err) {
      if (timedOut) throw new Error(`still open after ${ms} ms (${this.received} bytes read)`);
      if (err instanceof Deno.errors.ConnectionReset) return ending("reset");
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  #check(buf: Uint8Array, n: number): void {
    for (let i = 0; i < n; i++) {
      if (buf[i] !== PATTERN[(this.received + i) % PERIOD]) {
        throw new Error(`echo differs from what was sent at byte ${this.received + i}`);
      }
    }
    this.received += n;
  }
}

/** Kernel queues of the IPv4 TCP socket from local port `local` to `remote` (Linux), if any. */
async function tcpQueues(
  local: number,
  remote: number,
): Promise<{ tx: number; rx: number } | undefined> {
  const hex = (port: number) => `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const line of (await Deno.readTextFile("/proc/net/tcp")).split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(hex(local)) && f[2]?.endsWith(hex(remote))) {
      const [tx, rx] = (f[4] ?? "").split(":").map((h) => parseInt(h, 16));
      return { tx: tx!, rx: rx! };
    }
  }
  return undefined;
}

/** The scheduler state of a process's main thread (`S` sleeping, `R` running, …; Linux). */
async function mainThreadState(pid: number): Promise<string> {
  const stat = await Deno.readTextFile(`/proc/${pid}/task/${pid}/stat`);
  return stat.charAt(stat.lastIndexOf(")") + 2);
}

/**
 * Wait (bounded) until the kernel shows the server stuck in its echo write to each of
 * `clients`: bytes they sent wait unread at the server's end of their connection, and the
 * server's main thread sleeps, at two looks 50 ms apart that agree. A server asleep with
 * bytes it has not read is not reading them: its echo loop is blocked writing. (A client's
 * writes merely pausing for a while is no proof: the server, or the test itself, may just
 * not have been scheduled, and then the server is anywhere in its loop.)
 */
async function serverStuckWriting(
  server: RunningServer,
  clients: Deno.TcpConn[],
  limitMs = 20_000,
): Promise<void> {
  const look = async () => ({
    state: await mainThreadState(server.child.pid),
    rx: await Promise.all(
      clients.map(async (c) => (await tcpQueues(server.port, c.localAddr.port))?.rx ?? 0),
    ),
  });
  const started = performance.now();
  while (true) {
    const first = await look();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = await look();
    const agree = first.rx.every((rx, i) => rx > 0 && rx === second.rx[i]);
    if (agree && first.state === "S" && second.state === "S") return;
    if (performance.now() - started > limitMs) {
      throw new Error(`the server never blocked writing: ${JSON.stringify(second)}`);
    }
  }
}

/** The server's exit, bounded: SIGKILL after `ms`. */
async function exitOf(server: RunningServer, ms: number): Promise<{ code: number; at: number }> {
  const killer = setTimeout(() => {
    try {
      server.child.kill("SIGKILL");
    } catch { /* exited */ }
  }, ms);
  try {
    const { code } = await server.child.status;
    return { code, at: performance.now() };
  } finally {
    clearTimeout(killer);
  }
}

Deno.test("SIGTERM drains: an idle client is closed at once, an echo in flight finishes its write, a stalled one is cut at --drain-timeout, exit 0 with a summary", async () => {
  const server = await startServer(["--host", "127.0.0.1", "--drain-timeout", "2s", "-v"]);
  const conns: Deno.TcpConn[] = [];
  const busy: BusyClient[] = [];
  try {
    const idle = await dial("127.0.0.1", server.port);
    conns.push(idle);
    await assertEchoes(idle, "idle now");
    // Two clients mid-echo, the server blocked writing their echoes back: one has sent 20 MiB
    // while reading its echo back, then paused reading; the other never reads.
    for (let i = 0; i < 2; i++) {
      const conn = await dial("127.0.0.1", server.port);
      conns.push(conn);
      busy.push(new BusyClient(conn));
    }
    const [slowReader, neverReads] = busy as [BusyClient, BusyClient];
    await within(
      slowReader.readWhile(() => slowReader.written < 20 * 1024 * 1024),
      20_000,
      "sending 20 MiB",
    );
    await Promise.all(busy.map((b) => b.stalled()));
    await serverStuckWriting(server, busy.map((b) => b.conn));
    assert(slowReader.written >= 20 * 1024 * 1024);

    const signalled = performance.now();
    server.child.kill("SIGTERM");
    const cutAt = neverReads.writing.then(() => NaN, () => performance.now());
    // The idle client's close proves the server has handled the signal (it closes idle ones
    // in the same step in which it spares those mid-write). Only then does the reader take its
    // echo back: reading earlier would let the server's write finish before it handles the
    // signal, and then the reader is rightly closed as idle.
    const idleEnding = await readUntilClosed(idle, 5000);
    // The server finishes the write it was in and stops.
    const readerEnd = slowReader.readBack(10_000);
    const exit = await exitOf(server, 10_000);

    assertEquals(idleEnding.bytes, 0);
    assert(
      idleEnding.afterMs < 1500,
      `idle client closed ${idleEnding.afterMs.toFixed(0)} ms after SIGTERM`,
    );
    const readerEnding = await readerEnd;
    assert(readerEnding.bytes > 0, "the busy client got none of its echo back");
    assert(slowReader.received <= slowReader.written);
    assert(
      readerEnding.afterMs < 1900,
      `the reader was only closed ${readerEnding.afterMs.toFixed(0)} ms after SIGTERM`,
    );
    const tookMs = exit.at - signalled;
    assertEquals(exit.code, 0);
    assert(tookMs >= 1900, `exited ${tookMs.toFixed(0)} ms after SIGTERM, before the drain`);
    assert(tookMs <= 4000, `exited ${tookMs.toFixed(0)} ms after SIGTERM (drain 2 s + 2 s)`);
    const cut = (await cutAt) - signalled;
    assert(cut >= 1900, `the stalled client was cut ${cut.toFixed(0)} ms after SIGTERM`);

    const { stderr } = await server.stop();
    const idlePort = idle.localAddr.port;
    const stalledPort = neverReads.conn.localAddr.port;
    // The reader's echo finished the write it was in (every byte read was written back), and
    // the server then closed it with no reason to give.
    const readerLine = new RegExp(
      `^${AT}disconnect 127\\.0\\.0\\.1:${slowReader.conn.localAddr.port}: (.+) in, (.+) out, [^(]+$`,
      "m",
    ).exec(stderr);
    assert(readerLine, `no reason-less disconnect of the reader in:\n${stderr}`);
    assertEquals(readerLine[1], readerLine[2], "the reader's echo stopped mid-write");
    assertMatch(
      stderr,
      new RegExp(
        `^${AT}disconnect 127\\.0\\.0\\.1:${idlePort}: .*\\(server shutting down\\)$`,
        "m",
      ),
    );
    assertMatch(
      stderr,
      new RegExp(
        `^${AT}disconnect 127\\.0\\.0\\.1:${stalledPort}: .*\\(still busy after the 2\\.00 s drain\\)$`,
        "m",
      ),
    );
    assertMatch(summaryLine(stderr), /^summary: 3 connections served, 0 refused, /);
  } finally {
    for (const conn of conns) closeQuietly(conn);
    await Promise.allSettled(busy.map((b) => b.writing));
    await server.stop();
  }
});

Deno.test("a second SIGTERM during the drain exits at once with code 130", async () => {
  const server = await startServer(["--host", "127.0.0.1", "--drain-timeout", "5s", "-v"]);
  const conns: Deno.TcpConn[] = [];
  let hog: BusyClient | undefined;
  try {
    const idle = await dial("127.0.0.1", server.port);
    conns.push(idle);
    await assertEchoes(idle, "idle");
    const conn = await dial("127.0.0.1", server.port);
    conns.push(conn);
    hog = new BusyClient(conn);
    await hog.stalled();
    server.child.kill("SIGTERM");
    // The idle client's close proves the first signal was handled: the drain is on.
    assertEquals((await readUntilClosed(idle, 5000)).bytes, 0);
    const second = performance.now();
    server.child.kill("SIGTERM");
    const exit = await exitOf(server, 10_000);
    assertEquals(exit.code, 130);
    const tookMs = exit.at - second;
    assert(tookMs < 2000, `exited ${tookMs.toFixed(0)} ms after the second SIGTERM`);
    const { stderr } = await server.stop();
    assertNotMatch(stderr, /^summary: /m);
  } finally {
    for (const c of conns) closeQuietly(c);
    if (hog) await hog.writing.catch(() => {});
    await server.stop();
  }
});

// ---------------------------------------------------------------------------------------------
// 7. TLS

const noOpenssl = skipWithout("openssl");

function tlsServerArgs(cert: string, key: string, more: string[] = []): string[] {
  return ["--host", "127.0.0.1", "--tls", "--cert", cert, "--key", key, ...more];
}

/** The one `error: …` line of a failed run. */
function oneErrorLine(stderr: string): string {
  const lines = stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  assertMatch(lines[0]!, /^error: /);
  return lines[0]!;
}

Deno.test({
  name:
    "TLS: netkit client --tls --ca round-trips 1 MB byte-exact through netkit server --tls, and --insecure works without --ca",
  ignore: noOpenssl,
  async fn() {
    await using certs = await makeTestCerts();
    await using server = await startServer(tlsServerArgs(certs.leafCert, certs.leafKey));
    assertMatch(server.lines[0] ?? "", /^listening on tls 127\.0\.0\.1:\d+$/);
    const data = new Uint8Array(1 << 20);
    const random = pseudoRandom(42);
    for (let i = 0; i < data.length; i += 4) {
      new DataView(data.buffer).setUint32(i, Math.floor(random() * 2 ** 32));
    }
    const target = `127.0.0.1:${server.port}`;
    const [verified, insecure, insecureMessage] = await Promise.all([
      runNetkit(["client", "--tls", "--ca", certs.caCert, target], { stdin: data }),
      runNetkit(["client", "--tls", "--insecure", target], { stdin: data }),
      runNetkit(["client", "--tls", "-k", target, "--message", "over tls", "--count", "2"]),
    ]);
    assertEquals(verified.code, 0, verified.stderr);
    assertEquals(verified.stdout.length, data.length);
    assert(verified.stdout.every((b, i) => b === data[i]), "the --ca round trip differs");
    assertEquals(insecure.code, 0, insecure.stderr);
    assertEquals(insecure.stdout.length, data.length);
    assert(insecure.stdout.every((b, i) => b === data[i]), "the --insecure round trip differs");
    assertEquals(insecureMessage.code, 0, insecureMessage.stderr);
    assertEquals(insecureMessage.text, "over tls\nover tls\n");
  },
});

Deno.test({
  name:
    "TLS: without --ca the client refuses the test CA's certificate: exit 8, one line naming the certificate and suggesting --ca or --insecure",
  ignore: noOpenssl,
  async fn() {
    await using certs = await makeTestCerts();
    await using server = await startServer(tlsServerArgs(certs.leafCert, certs.leafKey));
    const result = await runNetkit([
      "client",
      "--tls",
      `127.0.0.1:${server.port}`,
      "--message",
      "trust me",
    ], { timeoutMs: 15_000 });
    assertEquals(result.code, 8, result.stderr);
    assertEquals(result.text, "");
    const line = oneErrorLine(result.stderr);
    assertMatch(line, /certificate/i);
    assertMatch(line, /--ca/);
    assertMatch(line, /--insecure/);
  },
});

Deno.test({
  name:
    "TLS: a plaintext client to a TLS server fails non-zero with an error about TLS, and the server logs the failed handshake",
  ignore: noOpenssl,
  async fn() {
    await using certs = await makeTestCerts();
    const server = await startServer(tlsServerArgs(certs.leafCert, certs.leafKey, ["-v"]));
    try {
      // Messages shorter than the server's 7-byte alert record, as long as it, and longer.
      const messages = ["hello", "7 bytes", "hello over plaintext"];
      const results = await Promise.all(messages.map((message) =>
        runNetkit([
          "client",
          `127.0.0.1:${server.port}`,
          "--message",
          message,
          "--timeout",
          "2s",
        ], { timeoutMs: 15_000 })
      ));
      for (const [i, result] of results.entries()) {
        const message = messages[i];
        assertNotEquals(result.code, 0, `'${message}': ${JSON.stringify(result.text)}`);
        assertEquals(result.text, "", `'${message}' printed the alert as a reply`);
        assertMatch(oneErrorLine(result.stderr), /TLS/);
      }
      const { code, stderr } = await server.stop();
      assertEquals(code, 0);
      assertEquals(stderr.match(/\(TLS handshake failed: [^)]*\)$/gm)?.length, 3, stderr);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "TLS: a TLS client to a plaintext netkit server fails within --timeout with exit 8 or 5 and one line",
  ignore: noOpenssl,
  async fn() {
    await using certs = await makeTestCerts();
    await using server = await startServer(["--host", "127.0.0.1"]);
    for (const trust of [["--ca", certs.caCert], ["--insecure"]]) {
      const started = performance.now();
      const result = await runNetkit([
        "client",
        "--tls",
        ...trust,
        `127.0.0.1:${server.port}`,
        "--message",
        "hi",
        "--timeout",
        "1s",
      ], { timeoutMs: 15_000 });
      assert([5, 8].includes(result.code), `${trust[0]}: exit ${result.code}: ${result.stderr}`);
      assertEquals(result.text, "");
      assertMatch(oneErrorLine(result.stderr), /TLS/);
      assert(performance.now() - started < 10_000);
    }
  },
});

Deno.test({
  name: "TLS: a server whose --key does not belong to its --cert exits 8 at start, saying so",
  ignore: noOpenssl,
  async fn() {
    await using certs = await makeTestCerts();
    const result = await runNetkit(
      ["server", "--port", "0", ...tlsServerArgs(certs.leafCert, certs.otherKey)],
      { timeoutMs: 15_000 },
    );
    assertEquals(result.code, 8, result.stderr);
    assertEquals(result.text, "", "it must not print 'listening on'");
    assertMatch(oneErrorLine(result.stderr), /--cert and --key belong together/);
  },
});

Deno.test({
  name: "TLS: a missing --cert file exits 8 naming the file",
  ignore: noOpenssl,
  async fn() {
    await using certs = await makeTestCerts();
    const missing = `${certs.dir}/no-such-cert.pem`;
    const result = await runNetkit(
      ["server", "--port", "0", ...tlsServerArgs(missing, certs.leafKey)],
      { timeoutMs: 15_000 },
    );
    assertEquals(result.code, 8, result.stderr);
    assertEquals(result.text, "");
    const line = oneErrorLine(result.stderr);
    assertMatch(line, new RegExp(escape(missing)));
    assertMatch(line, /--cert/);
  },
});
