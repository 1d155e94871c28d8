/**
 * The server's native echo Worker (lib/server/native_echo.ts): the UDP socket
 * and TCP probe connections echoed by a Worker through libc, with the gate,
 * counters, half-close and shutdown as on the event loop.
 *
 * The proof that the Worker (not the event loop) answered: the exchange runs
 * through synchronous libc calls while this thread, the server's event loop
 * too, is blocked, so only another thread can have echoed.
 *
 * @module
 */

import { assert, assertEquals, assertFalse, assertMatch, assertNotMatch } from "@std/assert";
import { parseCidr } from "../lib/acl.ts";
import type { Endpoint } from "../lib/address.ts";
import { type ServerConfig, serverDefaults } from "../lib/config.ts";
import { denoEngine } from "../lib/engine/deno.ts";
import { loadNativeEngine, sharedLibc } from "../lib/engine/native/engine.ts";
import { encodeSockaddr, LINUX } from "../lib/engine/native/layout.ts";
import type { Libc } from "../lib/engine/native/libc.ts";
import { findSocketFd } from "../lib/engine/native/socket_fd.ts";
import type { Engine } from "../lib/engine/types.ts";
import { ProbeEncoder } from "../lib/probe/codec.ts";
import { BLOCK_SLICE_MS } from "../lib/server/native_echo_worker.ts";
import { formatSummary, serve, type ServerSummary } from "../lib/server/serve.ts";
import { hasCommand, runNetkit, startServer } from "./support/cli.ts";
import { NATIVE_MISSING } from "./support/engines.ts";
import { readExactly, readToEnd, writeAll } from "./support/sockets.ts";

const HOST = "127.0.0.1";
const ignore = NATIVE_MISSING !== undefined;
const nativeEngine = (): Engine => {
  const native = loadNativeEngine();
  if ("reason" in native) throw new Error(native.reason);
  return native.engine;
};
const testLibc = (): Libc => {
  const libc = sharedLibc();
  if ("reason" in libc) throw new Error(libc.reason);
  return libc;
};

/** A server in this process, with its `-v` lines. */
interface InProcess extends AsyncDisposable {
  port: number;
  lines: string[];
  /** Resolves with the `nth` (default first) line matching `re` (rejects after `ms`). */
  line(re: RegExp, ms?: number, nth?: number): Promise<string>;
  stop(): Promise<ServerSummary>;
}

async function serveHere(
  overrides: Partial<ServerConfig> = {},
  engine: Engine = nativeEngine(),
  nativeIdleStopMs?: number,
): Promise<InProcess> {
  const endpoints: Endpoint[] = [
    { transport: "tcp", hostname: HOST, port: 0 },
    { transport: "udp", hostname: HOST, port: 0 },
  ];
  const config: ServerConfig = { ...serverDefaults(endpoints), verbose: true, ...overrides };
  const lines: string[] = [];
  const waiters: { re: RegExp; left: number; resolve: (line: string) => void }[] = [];
  const controller = new AbortController();
  const { promise: bound, resolve: onBound } = Promise.withResolvers<number>();
  const done = serve(config, {
    engine,
    ...(nativeIdleStopMs !== undefined && { nativeIdleStopMs }),
    signal: controller.signal,
    onListening: (e) => e.transport !== "unix" && onBound(e.port),
    log: (line) => {
      lines.push(line);
      for (const w of waiters.splice(0)) {
        if (w.re.test(line) && --w.left === 0) w.resolve(line);
        else waiters.push(w);
      }
    },
  });
  const port = await bound;
  let summary: Promise<ServerSummary> | undefined;
  const stop = () => {
    controller.abort();
    return summary ??= done;
  };
  return {
    port,
    lines,
    line: (re, ms = 5000, nth = 1) => {
      const seen = lines.filter((l) => re.test(l));
      if (seen.length >= nth) return Promise.resolve(seen[nth - 1]!);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no line ${re} within ${ms} ms: ${lines.join(" | ")}`)),
          ms,
        );
        waiters.push({
          re,
          left: nth - seen.length,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      });
    },
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

/**
 * Send `data` and wait for its echo with synchronous libc calls only: this thread (and so
 * the in-process server's event loop) is blocked throughout. Returns the echo, or undefined.
 */
function exchangeBlocked(
  libc: Libc,
  fd: number,
  data: Uint8Array<ArrayBuffer>,
  to: Uint8Array<ArrayBuffer> | undefined,
  ms = 3000,
): Uint8Array | undefined {
  const s = libc.symbols;
  const sent = to
    ? s.sendto(fd, data, BigInt(data.length), 0, to, to.length)
    : s.send(fd, data, BigInt(data.length), 0);
  if (sent !== data.length) throw new Error(`send: ${sent}`);
  const buf = new Uint8Array(Math.max(data.length, 1) + 1);
  const end = performance.now() + ms;
  let got = 0;
  // UDP: one datagram; TCP: until as many bytes came back.
  while (performance.now() < end) {
    const n = s.recv(fd, buf.subarray(got), BigInt(buf.length - got), LINUX.MSG_DONTWAIT);
    if (n < 0) continue;
    got += n;
    if (to || got >= data.length) return buf.slice(0, got);
  }
  return undefined;
}

/** A UDP socket on `hostname`, closed when disposed. */
function udpClient(hostname: string): Deno.DatagramConn & Disposable {
  const socket = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
  return Object.assign(socket, { [Symbol.dispose]: () => socket.close() });
}

function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/** A UDP client: its first datagram (echoed by the event loop) starts the Worker. */
async function firstUdpEcho(server: InProcess, client: Deno.DatagramConn): Promise<void> {
  const to = { transport: "udp" as const, hostname: HOST, port: server.port };
  await client.send(new Uint8Array([1, 2, 3]), to);
  const [back] = await client.receive(new Uint8Array(16));
  assertEquals(back, new Uint8Array([1, 2, 3]));
  await server.line(/^native echo: udp 127\.0\.0\.1:\d+ and TCP probes served by a Worker/);
}

/** A TCP probe connection, handed to the Worker after its first bytes. */
async function probeConn(server: InProcess): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: HOST, port: server.port });
  const probe = new ProbeEncoder(64, 7).encode(0, 0).slice();
  await writeAll(conn, probe);
  assertEquals(await readExactly(conn, 64), probe);
  const local = conn.localAddr as Deno.NetAddr;
  await server.line(new RegExp(`^probe ${HOST}:${local.port}: echoed by the native echo Worker$`));
  return conn;
}

Deno.test({
  name:
    "native echo: UDP datagrams of 0, 1, 1400 and 65507 bytes from 8 peers come back byte-exact while the event loop is blocked",
  ignore,
  fn: async () => {
    await using server = await serveHere();
    const libc = testLibc();
    const clients = Array.from(
      { length: 8 },
      () => Deno.listenDatagram({ transport: "udp", hostname: HOST, port: 0 }),
    );
    try {
      await firstUdpEcho(server, clients[0]!);
      const to = encodeSockaddr(HOST, server.port);
      let bytes = 3;
      for (const client of clients) {
        const fd = findSocketFd(libc, { type: "udp", local: client.addr as Deno.NetAddr });
        assert(fd !== undefined);
        for (const size of [0, 1, 1400, 65507]) {
          const data = randomBytes(size);
          assertEquals(exchangeBlocked(libc, fd, data, to), data, `${size} B`);
          bytes += size;
        }
      }
      const summary = await server.stop();
      assertEquals(summary.datagramsIn, 1 + 8 * 4);
      assertEquals(summary.datagramsOut, 1 + 8 * 4);
      assertEquals(summary.bytesIn, bytes);
      assertEquals(summary.bytesOut, bytes);
      // Each peer's first datagram is logged once, whichever thread served it.
      const firsts = server.lines.filter((l) => l.startsWith("first datagram from udp"));
      assertEquals(firsts.length, 8);
    } finally {
      for (const c of clients) c.close();
    }
  },
});

Deno.test({
  name:
    "native echo: --deny is applied in the Worker (no reply, counted) and --rate-limit still limits",
  ignore,
  fn: async () => {
    await using server = await serveHere({ deny: [parseCidr("127.0.0.2")!] });
    const libc = testLibc();
    using allowed = udpClient(HOST);
    using denied = udpClient("127.0.0.2");
    await firstUdpEcho(server, allowed);
    const to = encodeSockaddr(HOST, server.port);
    const deniedFd = findSocketFd(libc, { type: "udp", local: denied.addr as Deno.NetAddr })!;
    const allowedFd = findSocketFd(libc, { type: "udp", local: allowed.addr as Deno.NetAddr })!;
    for (let i = 0; i < 5; i++) {
      assertEquals(exchangeBlocked(libc, deniedFd, randomBytes(10), to, 50), undefined);
    }
    // Served in order: once the allowed peer's echo is back, the denied ones were judged.
    const data = randomBytes(100);
    assertEquals(exchangeBlocked(libc, allowedFd, data, to), data);
    const summary = await server.stop();
    assertEquals(summary.denied, 5);
    assertEquals(summary.datagramsIn, 2);
    assertMatch(formatSummary(summary), /, 5 denied,/);
    assertEquals(
      server.lines.filter((l) => /^denied udp 127\.0\.0\.2:\d+: not permitted/.test(l)).length,
      1,
    );

    // --rate-limit: the Worker passes datagrams to the gate's shared buckets.
    await using limited = await serveHere({ rateLimit: 3 });
    using client = udpClient(HOST);
    await firstUdpEcho(limited, client);
    const fd = findSocketFd(libc, { type: "udp", local: client.addr as Deno.NetAddr })!;
    const limitedTo = encodeSockaddr(HOST, limited.port);
    // Sent back to back (no replies are read): far more than 3 per second.
    for (let i = 0; i < 20; i++) {
      libc.symbols.sendto(fd, new Uint8Array(8), 8n, 0, limitedTo, limitedTo.length);
    }
    await limited.line(/^rate-limited udp 127\.0\.0\.1:\d+: over --rate-limit 3\/s$/);
    // Served in order: once another source's echo is back, all 20 were judged.
    using other = udpClient("127.0.0.2");
    await other.send(new Uint8Array([5]), { transport: "udp", hostname: HOST, port: limited.port });
    assertEquals((await other.receive(new Uint8Array(4)))[0], new Uint8Array([5]));
    const s2 = await limited.stop();
    assert(s2.rateLimited >= 15, `rate-limited ${s2.rateLimited}`);
    assertEquals(s2.datagramsIn + s2.rateLimited, 22);
    assertMatch(formatSummary(s2), /datagrams rate-limited/);
  },
});

Deno.test({
  name:
    "native echo: a TCP probe connection is echoed by the Worker while the event loop is blocked",
  ignore,
  fn: async () => {
    await using server = await serveHere();
    const libc = testLibc();
    const conn = await probeConn(server);
    try {
      const fd = findSocketFd(libc, {
        type: "tcp",
        local: conn.localAddr as Deno.NetAddr,
        remote: conn.remoteAddr as Deno.NetAddr,
      });
      assert(fd !== undefined);
      const encoder = new ProbeEncoder(64, 7);
      for (let seq = 1; seq <= 100; seq++) {
        const probe = encoder.encode(seq, seq).slice();
        assertEquals(exchangeBlocked(libc, fd, probe, undefined), probe);
      }
    } finally {
      conn.close();
    }
    const summary = await server.stop();
    assertEquals(summary.connections, 1);
    assertEquals(summary.bytesIn, 101 * 64);
    assertEquals(summary.bytesOut, 101 * 64);
    assertMatch(
      server.lines.join("\n"),
      /disconnect 127\.0\.0\.1:\d+: 6\.31 KiB in, 6\.31 KiB out/,
    );
  },
});

Deno.test({
  name:
    "native echo: an 8 MiB stream after a probe comes back SHA-256 equal, and the peer's FIN is echoed as a FIN",
  ignore,
  fn: async () => {
    await using server = await serveHere();
    const conn = await probeConn(server);
    try {
      const data = randomBytes(8 * 1024 * 1024);
      const reading = readToEnd(conn);
      await writeAll(conn, data);
      await conn.closeWrite();
      const back = await reading; // ends: the Worker shut its side down after the last byte
      const digest = async (b: Uint8Array<ArrayBuffer>) =>
        new Uint8Array(await crypto.subtle.digest("SHA-256", b));
      assertEquals(back.length, data.length);
      assertEquals(await digest(back as Uint8Array<ArrayBuffer>), await digest(data));
    } finally {
      conn.close();
    }
    await server.line(/^disconnect 127\.0\.0\.1:\d+: 8\.00 MiB in, 8\.00 MiB out/);
    const summary = await server.stop();
    assertEquals(summary.bytesIn, 8 * 1024 * 1024 + 64);
    assertEquals(summary.bytesOut, 8 * 1024 * 1024 + 64);
  },
});

Deno.test({
  name:
    "native echo: stopping the server with 3 connections in the Worker ends them and returns within 2 s",
  ignore,
  fn: async () => {
    const server = await serveHere({ drainTimeoutMs: 10_000 });
    const conns = [await probeConn(server), await probeConn(server), await probeConn(server)];
    try {
      const started = performance.now();
      const summary = await server.stop();
      const took = performance.now() - started;
      assert(took < 2000, `stop took ${took} ms`);
      assertEquals(summary.connections, 3);
      for (const conn of conns) {
        assertEquals((await readToEnd(conn)).length, 0); // closed by the server
      }
      assertMatch(server.lines.join("\n"), /\(server shutting down\)/);
    } finally {
      for (const c of conns) c.close();
    }
  },
});

Deno.test({
  name: "native echo: --idle-timeout closes a quiet connection the Worker holds",
  ignore,
  fn: async () => {
    await using server = await serveHere({ idleTimeoutMs: 300 });
    const conn = await probeConn(server);
    try {
      assertEquals((await readToEnd(conn)).length, 0);
      await server.line(/^disconnect 127\.0\.0\.1:\d+: 64 B in, 64 B out, .*\(idle for 300 ms\)$/);
    } finally {
      conn.close();
    }
  },
});

Deno.test("native echo: with --engine deno the server never starts the Worker", async () => {
  await using server = await serveHere({}, denoEngine);
  using client = udpClient(HOST);
  const to = { transport: "udp" as const, hostname: HOST, port: server.port };
  for (let i = 0; i < 3; i++) {
    await client.send(new Uint8Array([i]), to);
    assertEquals((await client.receive(new Uint8Array(4)))[0], new Uint8Array([i]));
  }
  using conn = await Deno.connect({ hostname: HOST, port: server.port });
  const probe = new ProbeEncoder(64, 1).encode(0, 0).slice();
  await writeAll(conn, probe);
  assertEquals(await readExactly(conn, 64), probe);
  conn.close();
  await server.line(/^disconnect /);
  await server.stop();
  assertFalse(server.lines.some((l) => l.includes("native echo")), server.lines.join("\n"));
});

Deno.test({
  name:
    "native echo: a CLI server on UDP alone (--proto udp) keeps ffi and serves a UDP ping-pong from the Worker",
  ignore,
  fn: async () => {
    const server = await startServer(["--proto", "udp", "--host", HOST, "-v"]);
    let stderr = "";
    try {
      const r = await runNetkit([
        "client",
        ...["--probe", "--ping-pong", "--proto", "udp", HOST, String(server.port)],
        ...["--count", "200", "--json"],
      ]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(JSON.parse(r.text).received, 200);
    } finally {
      ({ stderr } = await server.stop());
    }
    assertMatch(stderr, /permissions kept: net, ffi; dropped: read/);
    assertMatch(stderr, /native echo: udp 127\.0\.0\.1:\d+ and TCP probes served by a Worker/);
    assertMatch(stderr, /200 datagrams in, 200 out/);
  },
});

Deno.test({
  name:
    "native echo: the CLI server (read dropped) starts the Worker for a TCP probe ping-pong and UDP, and echoes netcat-style clients on the event loop",
  ignore,
  fn: async () => {
    const server = await startServer(["--proto", "both", "--host", HOST, "-v"]);
    let stderr = "";
    try {
      for (const proto of ["tcp", "udp"]) {
        const r = await runNetkit([
          "client",
          "--probe",
          "--ping-pong",
          "--proto",
          proto,
          HOST,
          String(server.port),
          "--count",
          "200",
          "--json",
        ]);
        assertEquals(r.code, 0, r.stderr);
        const doc = JSON.parse(r.text);
        assertEquals(doc.received, 200, proto);
      }
      // Not a probe: the event loop echoes it, as before.
      using conn = await Deno.connect({ hostname: HOST, port: server.port });
      const reading = readToEnd(conn);
      await writeAll(conn, new TextEncoder().encode("hello\n"));
      await conn.closeWrite();
      assertEquals(new TextDecoder().decode(await reading), "hello\n");
    } finally {
      ({ stderr } = await server.stop());
    }
    assertMatch(stderr, /permissions kept: net, ffi; dropped: read/);
    assertMatch(
      stderr,
      /native echo: udp 127\.0\.0\.1:\d+ and TCP probes served by a Worker \(epoll\/recvfrom\/sendto\)/,
    );
    assertEquals(stderr.match(/echoed by the native echo Worker/g)?.length, 1, stderr);
    assertMatch(stderr, /disconnect 127\.0\.0\.1:\d+: 6 B in, 6 B out/);
    assertMatch(stderr, /summary: 2 connections served, 0 refused, .*200 datagrams in, 200 out/);
    assertNotMatch(stderr, /native echo (stopped|unavailable)/);
  },
});

Deno.test({
  name:
    "native echo: an iperf3 UDP test on the server's UDP port still gets its datagrams once the Worker holds the port",
  ignore: ignore || !hasCommand("iperf3"),
  fn: async () => {
    const server = await startServer(["--proto", "both", "--host", HOST, "-v"]);
    let stderr = "";
    let received = 0;
    try {
      // A ping-pong first, long enough for the Worker to start and take the UDP socket.
      const ping = await runNetkit(
        ["client", "--probe", "--ping-pong", "--proto", "udp", HOST, String(server.port)].concat(
          ["--duration", "1s", "--json"],
        ),
      );
      const pingDoc = JSON.parse(ping.text);
      assert(pingDoc.sent > 0 && pingDoc.received === pingDoc.sent, ping.stderr);
      const iperf = await new Deno.Command("iperf3", {
        args: [
          "-c",
          HOST,
          "-p",
          String(server.port),
          "-J",
          "-u",
          "-b",
          "5M",
          "-l",
          "1400",
          "-t",
          "1",
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(20_000),
      }).output();
      const doc = JSON.parse(new TextDecoder().decode(iperf.stdout));
      assertEquals(doc.error, undefined);
      received = doc.end.sum_received.bytes;
      // And the echo still answers afterwards.
      const again = await runNetkit(
        ["client", "--probe", "--ping-pong", "--proto", "udp", HOST, String(server.port)].concat(
          ["--count", "50", "--json"],
        ),
      );
      assertEquals(JSON.parse(again.text).received, 50, again.stderr);
    } finally {
      ({ stderr } = await server.stop());
    }
    assertMatch(stderr, /native echo: udp /);
    const m = /iperf3 test from \S+: done, (\d+) B received/.exec(stderr);
    assert(m, stderr);
    assert(received > 0 && Number(m[1]) === received, `${m[1]} vs ${received}`);
  },
});

Deno.test({
  name:
    "native echo: a server that serves only throughput tests (TCP and UDP) never starts the Worker",
  ignore,
  fn: async () => {
    const server = await startServer(["--proto", "both", "--host", HOST, "-v"]);
    let stderr = "";
    try {
      for (const proto of [[], ["--proto", "udp", "--bitrate", "10M"]]) {
        const r = await runNetkit(
          ["client", "--throughput", HOST, String(server.port), "--duration", "1s", "--json"]
            .concat(proto),
        );
        assertEquals(r.code, 0, r.stderr);
      }
    } finally {
      ({ stderr } = await server.stop());
    }
    assertMatch(stderr, /throughput/);
    assertNotMatch(stderr, /native echo/);
  },
});

Deno.test({
  name:
    "native echo: a Worker that cannot open libc says why in one line and takes nothing (the event loop echoes)",
  ignore,
  fn: async () => {
    const { NativeEcho } = await import("../lib/server/native_echo.ts");
    const lines: string[] = [];
    const counters = { datagramsIn: 0, datagramsOut: 0, bytesIn: 0, bytesOut: 0, denied: 0 };
    const echo = new NativeEcho({
      libc: { ...testLibc(), path: "/nonexistent/libc.so.6" },
      allow: [],
      deny: [],
      passAll: false,
      counters,
      log: (line) => lines.push(line),
    });
    assertEquals(await echo.start(), false);
    assertFalse(echo.running);
    using socket = udpClient(HOST);
    assertEquals(
      echo.adoptUdp(socket, { serveOne: () => Promise.resolve(true), meet: () => {} }),
      undefined,
    );
    await echo.stop();
    assertEquals(lines.length, 1, lines.join("\n"));
    assertMatch(lines[0]!, /^native echo unavailable \(.*\): the event loop echoes$/);
  },
});

Deno.test({
  name: "native echo: the Worker takes 64 probe connections; the 65th is echoed by the event loop",
  ignore,
  fn: async () => {
    await using server = await serveHere();
    const conns: Deno.TcpConn[] = [];
    try {
      for (let i = 0; i < 64; i++) conns.push(await probeConn(server));
      const extra = await Deno.connect({ hostname: HOST, port: server.port });
      conns.push(extra);
      const encoder = new ProbeEncoder(64, 9);
      for (let seq = 0; seq < 3; seq++) {
        const probe = encoder.encode(seq, seq).slice();
        await writeAll(extra, probe);
        assertEquals(await readExactly(extra, 64), probe);
      }
      // And the Worker's connections still echo.
      const probe = encoder.encode(7, 7).slice();
      await writeAll(conns[63]!, probe);
      assertEquals(await readExactly(conns[63]!, 64), probe);
    } finally {
      for (const c of conns) c.close();
    }
    await server.stop();
    assertEquals(
      server.lines.filter((l) => l.endsWith("echoed by the native echo Worker")).length,
      64,
    );
    assertEquals(server.lines.filter((l) => l.startsWith("disconnect ")).length, 65);
  },
});

Deno.test({
  name:
    "native echo: a probe connection that does not read stalls only itself in the Worker, and gets every byte once it reads",
  ignore,
  fn: async () => {
    await using server = await serveHere();
    const slow = await probeConn(server);
    const other = await probeConn(server);
    try {
      // 32 MiB without reading: beyond what the socket buffers and the Worker's 64 KiB hold (it
      // stalled after about 8.6 MiB here), so the writes stall: the Worker stops reading a
      // connection whose echo it cannot send.
      const data = randomBytes(32 * 1024 * 1024);
      let written = 0;
      const writing = (async () => {
        while (written < data.length) {
          written += await slow.write(
            data.subarray(written, Math.min(written + 65536, data.length)),
          );
        }
      })();
      // Meanwhile another connection of the same Worker is served at once.
      const encoder = new ProbeEncoder(64, 3);
      for (let seq = 1; seq <= 20; seq++) {
        const probe = encoder.encode(seq, seq).slice();
        await writeAll(other, probe);
        assertEquals(await readExactly(other, 64), probe);
      }
      assert(written < data.length, `the writer never stalled (${written} B written)`);
      // Now read: everything comes back, in order.
      const back = await readExactly(slow, data.length);
      await writing;
      const digest = async (b: Uint8Array) =>
        new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>));
      assertEquals(await digest(back), await digest(data));
    } finally {
      slow.close();
      other.close();
    }
  },
});

Deno.test({
  name:
    "native echo: an idle Worker stops and gives the UDP socket back; the next echo starts a new one that serves it",
  ignore,
  fn: async () => {
    await using server = await serveHere({}, nativeEngine(), 300);
    const libc = testLibc();
    using client = udpClient(HOST);
    await firstUdpEcho(server, client);
    await server.line(/^native echo stopped: idle \(the next echo starts it again\)$/);
    // The event loop serves again, and its echo starts a new Worker.
    const to = { transport: "udp" as const, hostname: HOST, port: server.port };
    await client.send(new Uint8Array([9]), to);
    assertEquals((await client.receive(new Uint8Array(4)))[0], new Uint8Array([9]));
    await server.line(/^native echo: udp /, 5000, 2);
    const fd = findSocketFd(libc, { type: "udp", local: client.addr as Deno.NetAddr })!;
    const data = randomBytes(1000);
    assertEquals(exchangeBlocked(libc, fd, data, encodeSockaddr(HOST, server.port)), data);
    const summary = await server.stop();
    assertEquals(summary.datagramsIn, 3);
    assertEquals(summary.datagramsOut, 3);
  },
});

/**
 * Whether `fd` is non-blocking, and its SO_RCVTIMEO: none, the Worker's slice (which the kernel
 * rounds up to its tick: 8 ms for 5 at HZ 250), or another value in µs.
 */
function socketMode(libc: Libc, fd: number): { nonBlocking: boolean; rcvTimeout: string } {
  const flags = libc.symbols.fcntl(fd, LINUX.F_GETFL, 0);
  assert(flags >= 0, "fcntl F_GETFL");
  const tv = new BigInt64Array(2);
  const len = new Uint32Array([16]);
  const tvBytes = new Uint8Array(tv.buffer);
  const lenBytes = new Uint8Array(len.buffer);
  assertEquals(
    libc.symbols.getsockopt(fd, LINUX.SOL_SOCKET, LINUX.SO_RCVTIMEO, tvBytes, lenBytes),
    0,
  );
  const us = Number(tv[0]!) * 1_000_000 + Number(tv[1]!);
  const slice = BLOCK_SLICE_MS * 1000;
  return {
    nonBlocking: (flags & LINUX.O_NONBLOCK) !== 0,
    rcvTimeout: us === 0 ? "none" : us >= slice && us <= slice + 10_000 ? "slice" : `${us} us`,
  };
}

const EPOLL_MODE = { nonBlocking: true, rcvTimeout: "none" };
const BLOCKING_MODE = { nonBlocking: false, rcvTimeout: "slice" };

Deno.test({
  name:
    "native echo: the Worker blocks in recvfrom on the UDP socket alone, serves a TCP probe handed over meanwhile at once and byte-exact, and gives the socket back non-blocking when idle",
  ignore,
  fn: async () => {
    await using server = await serveHere({}, nativeEngine(), 1000);
    const libc = testLibc();
    using client = udpClient(HOST);
    await firstUdpEcho(server, client);
    const clientFd = findSocketFd(libc, { type: "udp", local: client.addr as Deno.NetAddr })!;
    const serverFd = findSocketFd(libc, {
      type: "udp",
      local: { transport: "udp", hostname: HOST, port: server.port },
    })!;
    assert(serverFd !== undefined);
    const to = encodeSockaddr(HOST, server.port);
    // Two echoes by the Worker: the second one at the latest is served in a blocking recvfrom.
    const udpTwice = () => {
      for (const size of [1, 1400]) {
        const data = randomBytes(size);
        assertEquals(exchangeBlocked(libc, clientFd, data, to), data);
      }
    };
    udpTwice();
    assertEquals(socketMode(libc, serverFd), BLOCKING_MODE);
    // A TCP probe connection arrives: the Worker sees the hand-over within a slice (5 ms).
    const conn = await probeConn(server);
    const tcpFd = findSocketFd(libc, {
      type: "tcp",
      local: conn.localAddr as Deno.NetAddr,
      remote: conn.remoteAddr as Deno.NetAddr,
    })!;
    const encoder = new ProbeEncoder(64, 7);
    try {
      const started = performance.now();
      const first = encoder.encode(1, 1).slice();
      assertEquals(exchangeBlocked(libc, tcpFd, first, undefined), first);
      const took = performance.now() - started;
      assert(took < 1000, `the first echo by the Worker took ${took.toFixed(1)} ms`);
      // Two sockets: epoll mode, the UDP socket non-blocking again, both echoed.
      assertEquals(socketMode(libc, serverFd), EPOLL_MODE);
      for (let seq = 2; seq <= 20; seq++) {
        const probe = encoder.encode(seq, seq).slice();
        assertEquals(exchangeBlocked(libc, tcpFd, probe, undefined), probe);
        const data = randomBytes(seq * 50);
        assertEquals(exchangeBlocked(libc, clientFd, data, to), data);
      }
    } finally {
      conn.close();
    }
    await server.line(/^disconnect 127\.0\.0\.1:\d+: 1\.31 KiB in, 1\.31 KiB out/);
    // The UDP socket alone again: blocking again.
    udpTwice();
    assertEquals(socketMode(libc, serverFd), BLOCKING_MODE);
    // Idle: the Worker lets go of it as it found it, and the event loop echoes again.
    await server.line(/^native echo stopped: idle \(the next echo starts it again\)$/);
    assertEquals(socketMode(libc, serverFd), EPOLL_MODE);
    await client.send(new Uint8Array([9]), { transport: "udp", hostname: HOST, port: server.port });
    assertEquals((await client.receive(new Uint8Array(4)))[0], new Uint8Array([9]));
    const summary = await server.stop();
    let udpBytes = 3 + 2 * 1401 + 1;
    for (let seq = 2; seq <= 20; seq++) udpBytes += seq * 50;
    assertEquals(summary.datagramsIn, 1 + 4 + 19 + 1);
    assertEquals(summary.datagramsOut, 1 + 4 + 19 + 1);
    assertEquals(summary.bytesIn, udpBytes + 21 * 64);
    assertEquals(summary.bytesOut, udpBytes + 21 * 64);
  },
});

Deno.test({
  name:
    "native echo: a TCP probe connection alone is served in blocking receives; a second one puts it back in epoll mode and is echoed at once, byte-exact; alone again, it blocks again",
  ignore,
  fn: async () => {
    await using server = await serveHere();
    const libc = testLibc();
    const a = await probeConn(server);
    let b: Deno.TcpConn | undefined;
    try {
      const fdOf = (conn: Deno.Conn, side: "client" | "server") => {
        const local = conn.localAddr as Deno.NetAddr, remote = conn.remoteAddr as Deno.NetAddr;
        const fd = findSocketFd(
          libc,
          side === "client"
            ? { type: "tcp", local, remote }
            : { type: "tcp", local: remote, remote: local },
        );
        assert(fd !== undefined, `${side} fd`);
        return fd;
      };
      const aFd = fdOf(a, "client"), aServerFd = fdOf(a, "server");
      const encoder = new ProbeEncoder(64, 7);
      let seq = 1;
      const echoOn = (fd: number) => {
        const probe = encoder.encode(seq, seq++).slice();
        assertEquals(exchangeBlocked(libc, fd, probe, undefined), probe);
      };
      echoOn(aFd);
      echoOn(aFd);
      assertEquals(socketMode(libc, aServerFd), BLOCKING_MODE);
      b = await probeConn(server);
      const bFd = fdOf(b, "client");
      const started = performance.now();
      echoOn(bFd);
      const took = performance.now() - started;
      assert(took < 1000, `the first echo by the Worker took ${took.toFixed(1)} ms`);
      assertEquals(socketMode(libc, aServerFd), EPOLL_MODE);
      for (let i = 0; i < 10; i++) {
        echoOn(aFd);
        echoOn(bFd);
      }
      b.close();
      b = undefined;
      await server.line(/^disconnect 127\.0\.0\.1:\d+: 768 B in, 768 B out/);
      echoOn(aFd);
      echoOn(aFd);
      assertEquals(socketMode(libc, aServerFd), BLOCKING_MODE);
    } finally {
      a.close();
      b?.close();
    }
    const summary = await server.stop();
    assertEquals(summary.connections, 2);
    assertEquals(summary.bytesIn, (1 + 2 + 10 + 2 + 1 + 1 + 10) * 64);
    assertEquals(summary.bytesOut, summary.bytesIn);
  },
});
