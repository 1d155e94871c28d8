/**
 * End-to-end tests of the server's limits under abuse, through the real CLI:
 * stalled TLS handshakes give their descriptors back, `--idle-timeout` never
 * fires early nor on a running throughput test, an incomplete throughput
 * request is closed, `--max-conns` slots follow the sockets under churn, the
 * file limit is survived with counted logs, and a malformed throughput report
 * fails the client with a protocol error. Loopback only.
 *
 * The servers' open descriptors are read from `/proc/PID/fd` (Linux).
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertNotMatch } from "@std/assert";
import { makeTestCerts, tlsServerFlags } from "./support/certs.ts";
import { AT, runNetkit, skipWithout, startServer } from "./support/cli.ts";
import { closeQuietly, openFds, writeAll } from "./support/sockets.ts";
import { CONTROL_MAGIC, DATA_MAGIC } from "../lib/throughput/protocol.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function dial(port: number): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: "127.0.0.1", port });
}

/** Send `text` and read it back within 5 s. */
async function echoes(conn: Deno.Conn, text: string): Promise<boolean> {
  const want = encoder.encode(text);
  await writeAll(conn, want);
  const got = new Uint8Array(want.length);
  const timer = setTimeout(() => closeQuietly(conn), 5000);
  try {
    for (let off = 0; off < want.length;) {
      const n = await conn.read(got.subarray(off));
      if (n === null) return false;
      off += n;
    }
    return decoder.decode(got) === text;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Milliseconds until the server closes `conn` (EOF or reset); fails after `ms`. */
async function closedAfter(conn: Deno.Conn, ms: number): Promise<number> {
  const started = performance.now();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(conn);
  }, ms);
  try {
    const buf = new Uint8Array(4096);
    while ((await conn.read(buf)) !== null) { /* ignore */ }
  } catch (err) {
    if (!(err instanceof Deno.errors.ConnectionReset) && !timedOut) throw err;
  } finally {
    clearTimeout(timer);
  }
  assert(!timedOut, `still open after ${ms} ms`);
  return performance.now() - started;
}

/** Wait (bounded) until `pid` holds at most `fds` descriptors; returns what it holds then. */
async function fdsFallTo(pid: number, fds: number, ms = 3000): Promise<number> {
  const started = performance.now();
  let now = await openFds(pid);
  while (now > fds && performance.now() - started < ms) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    now = await openFds(pid);
  }
  return now;
}

/** How long each connection a `-v` server closed for `reason` had lived, in ms, by its log. */
function closedAfterMs(stderr: string, reason: string): number[] {
  const escaped = reason.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const line = new RegExp(`^${AT}disconnect .*, ([\\d.]+) (ms|s) \\(${escaped}\\)$`, "gm");
  return [...stderr.matchAll(line)].map((m) => Number(m[1]) * (m[2] === "s" ? 1000 : 1));
}

// ---------------------------------------------------------------------------------------------
// 5. Stalled TLS handshakes

const noOpenssl = skipWithout("openssl");

/** The first 11 bytes of a ClientHello: a record header announcing 200 bytes, then nothing. */
const PARTIAL_HELLO = new Uint8Array([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 3, 3]);

Deno.test({
  name:
    "TLS: three waves of 40 stalled handshakes (half a ClientHello, a byte at a time, or nothing) are closed by --handshake-timeout and --first-byte-timeout, and the server's descriptors return to baseline after each",
  ignore: noOpenssl,
  async fn() {
    await using certs = await makeTestCerts();
    const tls = [...tlsServerFlags(certs), "-v"];
    // One server where only the handshake timeout applies, one where the first-byte one fires.
    const byHandshake = await startServer([
      "--host",
      "127.0.0.1",
      ...tls,
      "--first-byte-timeout",
      "0",
      "--handshake-timeout",
      "500ms",
    ]);
    const byFirstByte = await startServer([
      "--host",
      "127.0.0.1",
      ...tls,
      "--first-byte-timeout",
      "300ms",
    ]);
    const trickles: ReturnType<typeof setInterval>[] = [];
    try {
      for (const [server, timeoutMs] of [[byHandshake, 500], [byFirstByte, 300]] as const) {
        const target = `127.0.0.1:${server.port}`;
        const warm = await runNetkit(["client", "--tls", "-k", target, "--message", "warm"]);
        assertEquals(warm.code, 0, warm.stderr);
        // The warm-up's socket may still be in its close_notify grace (up to 1 s): wait it out.
        const baseline = await fdsFallTo(server.child.pid, 0, 1200);
        for (let wave = 0; wave < 3; wave++) {
          // Each client's time is counted from its own connect, as the server counts it.
          const dialedAt: number[] = [];
          const clients = await Promise.all(
            Array.from({ length: 40 }, async (_, i) => {
              const conn = await dial(server.port);
              dialedAt[i] = performance.now();
              return conn;
            }),
          );
          try {
            const endings = clients.map(async (conn, i) => {
              if (i % 3 === 0) await writeAll(conn, PARTIAL_HELLO);
              if (i % 3 === 1) {
                // A byte every 100 ms: the handshake keeps moving, and is cut all the same.
                let next = 0;
                const timer = setInterval(() => {
                  if (next < PARTIAL_HELLO.length) {
                    conn.write(PARTIAL_HELLO.subarray(next, ++next)).catch(() => {});
                  }
                }, 100);
                trickles.push(timer);
                try {
                  await closedAfter(conn, 5000);
                  return performance.now() - dialedAt[i]!;
                } finally {
                  clearInterval(timer);
                }
              }
              await closedAfter(conn, 5000);
              return performance.now() - dialedAt[i]!;
            });
            // The server's log says when it closed each (never early: see below); this
            // client, busy with 40 connects, may learn of its connect late, so it bounds only
            // the lateness.
            for (const ms of await Promise.all(endings)) {
              assert(ms < timeoutMs + 2000, `closed only after ${ms.toFixed(0)} ms`);
            }
          } finally {
            for (const conn of clients) closeQuietly(conn);
          }
          const fds = await fdsFallTo(server.child.pid, baseline);
          console.log(
            `stalled TLS wave ${wave + 1}: ${fds} server descriptors, ${baseline} before`,
          );
          assert(fds <= baseline, `wave ${wave}: ${fds} descriptors open, ${baseline} before`);
        }
        const after = await runNetkit([
          "client",
          "--tls",
          "-k",
          target,
          "--message",
          "still served",
        ]);
        assertEquals(after.code, 0, after.stderr);
        assertEquals(after.text, "still served\n");
      }
      const handshakeLog = (await byHandshake.stop()).stderr;
      const byHandshakeMs = closedAfterMs(handshakeLog, "TLS handshake not done within 500 ms");
      assertEquals(byHandshakeMs.length, 120, handshakeLog);
      assert(byHandshakeMs.every((ms) => ms >= 500), `early: ${byHandshakeMs}`);
      const firstByteLog = (await byFirstByte.stop()).stderr;
      const byFirstByteMs = closedAfterMs(firstByteLog, "nothing received within 300 ms");
      assertEquals(byFirstByteMs.length, 120, firstByteLog);
      assert(byFirstByteMs.every((ms) => ms >= 300), `early: ${byFirstByteMs}`);
    } finally {
      for (const timer of trickles) clearInterval(timer);
      await byHandshake.stop();
      await byFirstByte.stop();
    }
  },
});

// ---------------------------------------------------------------------------------------------
// 6. --idle-timeout

Deno.test("--idle-timeout 2s: gaps of 0.8x never close a connection; a silent one is closed between 1x and 1.2x, never early", async () => {
  const server = await startServer(["--host", "127.0.0.1", "--idle-timeout", "2s", "-v"]);
  const keeper = await dial(server.port);
  const quiet = await dial(server.port);
  try {
    assert(await echoes(keeper, "first"));
    assert(await echoes(quiet, "only"));
    const quietClosed = closedAfter(quiet, 6000);
    for (let i = 0; i < 3; i++) {
      // The gap is what is under test here, not a synchronisation.
      await new Promise((resolve) => setTimeout(resolve, 1600));
      assert(await echoes(keeper, `after 0.8x gap ${i}`), `closed after 0.8x gap ${i}`);
    }
    const ms = await quietClosed;
    console.log(`--idle-timeout 2s closed a silent connection after ${ms.toFixed(0)} ms`);
    assert(ms >= 2000, `closed after ${ms.toFixed(0)} ms of silence: early`);
    assert(ms < 2400, `still open after ${ms.toFixed(0)} ms (1.2x the timeout)`);
    closeQuietly(keeper);
    const { stderr } = await server.stop();
    const quietPort = quiet.localAddr.port;
    assertMatch(
      stderr,
      new RegExp(`^${AT}disconnect 127\\.0\\.0\\.1:${quietPort}: .*\\(idle for 2\\.00 s\\)$`, "m"),
    );
    assertEquals(stderr.match(/\(idle for /g)?.length, 1, stderr);
  } finally {
    closeQuietly(keeper);
    closeQuietly(quiet);
    await server.stop();
  }
});

Deno.test("--idle-timeout 1s does not close a 2.5 s throughput test whose paced streams are silent for longer than that", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "--idle-timeout", "1s", "-v"]);
  // 128 KiB writes at 200 kbit/s: one write, then over 5 s of silence on every connection.
  const paced = runNetkit([
    "client",
    "--throughput",
    `127.0.0.1:${server.port}`,
    "--duration",
    "2.5s",
    "--bitrate",
    "200k",
    "--json",
  ]);
  const flat = runNetkit([
    "client",
    "--throughput",
    `127.0.0.1:${server.port}`,
    "--duration",
    "2.5s",
    "--reverse",
    "--json",
  ]);
  for (const result of await Promise.all([paced, flat])) {
    assertEquals(result.code, 0, result.stderr);
    const doc = JSON.parse(result.text);
    const side = doc.up ?? doc.down;
    assert(side.sum_sent.bytes > 0);
    assertEquals(side.sum_received.bytes, side.sum_sent.bytes);
  }
  const { stderr } = await server.stop();
  assertNotMatch(stderr, /idle for/);
  assertEquals(stderr.match(/: done, /g)?.length, 2, stderr);
});

Deno.test("a throughput control connection that sends only its prefix (or half a request), and a data connection that sends only its prefix, are closed at --first-byte-timeout", async () => {
  const server = await startServer(["--host", "127.0.0.1", "--first-byte-timeout", "500ms", "-v"]);
  const starts = [CONTROL_MAGIC, `${CONTROL_MAGIC}{"type":"sta`, DATA_MAGIC];
  const conns = await Promise.all(starts.map(() => dial(server.port)));
  try {
    const endings = conns.map(async (conn, i) => {
      await writeAll(conn, encoder.encode(starts[i]));
      return await closedAfter(conn, 5000);
    });
    for (const ms of await Promise.all(endings)) {
      assert(ms >= 450, `closed after ${ms.toFixed(0)} ms, before the timeout`);
      assert(ms < 1500, `closed only after ${ms.toFixed(0)} ms`);
    }
    const { stderr } = await server.stop();
    assertEquals(stderr.match(/\(request not complete within 500 ms\)$/gm)?.length, 3, stderr);
  } finally {
    for (const conn of conns) closeQuietly(conn);
    await server.stop();
  }
});

// ---------------------------------------------------------------------------------------------
// 7. --max-conns under churn, the file limit, malformed reports

Deno.test("--max-conns 25 under churn (1,000 connections: echo and wait for the close, close at once, or stay silent until timed out): descriptors never exceed the slots, every connection is counted once", async () => {
  const server = await startServer([
    "--host",
    "127.0.0.1",
    "--max-conns",
    "25",
    "--first-byte-timeout",
    "200ms",
  ]);
  try {
    const pid = server.child.pid;
    const baseline = await openFds(pid);
    let peak = baseline;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await openFds(pid));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    let attempts = 0;
    const worker = async (kind: number) => {
      for (let i = 0; i < 40; i++) {
        const conn = await dial(server.port);
        attempts++;
        try {
          if (kind === 0) {
            await writeAll(conn, encoder.encode("x")).catch(() => {});
            await conn.closeWrite().catch(() => {});
            await closedAfter(conn, 5000);
          } else if (kind === 2) {
            await closedAfter(conn, 5000);
          }
        } finally {
          closeQuietly(conn);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: 25 }, (_, i) => worker(i % 3)));
    } finally {
      sampling = false;
      await sampler;
    }
    // The listener's queue may hold one more connection, accepted and refused at once.
    console.log(
      `churn: ${attempts} connections, peak ${peak} server descriptors, ${baseline} idle`,
    );
    assert(peak <= baseline + 25 + 2, `${peak} descriptors open at the peak, ${baseline} idle`);
    assertEquals(await fdsFallTo(pid, baseline), baseline);
    const canary = await dial(server.port);
    try {
      assert(await echoes(canary, "a slot is free"));
    } finally {
      closeQuietly(canary);
    }
    const { stderr } = await server.stop();
    const summary = /summary: ([\d,]+) connections? served, ([\d,]+) refused/.exec(stderr);
    assert(summary, stderr);
    const served = Number(summary[1]!.replaceAll(",", ""));
    const refused = Number(summary[2]!.replaceAll(",", ""));
    assertEquals(served + refused, attempts + 1, stderr);
  } finally {
    await server.stop();
  }
});

Deno.test("at the file limit (ulimit -n 64), accept failures are logged as a count at most once a second, accepting backs off, and the server serves again once clients leave", async () => {
  // `exec` keeps the pid: the child is the server itself, under the lower limit.
  const server = await startServer(["--host", "127.0.0.1"], {
    wrap: ["sh", "-c", 'ulimit -n 64 && exec "$0" "$@"'],
  });
  const clients: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 100; i++) clients.push(await dial(server.port));
    // Wait (bounded) until the server is at its limit, then hold it there for 2.5 s.
    const started = performance.now();
    while ((await openFds(server.child.pid)) < 60) {
      assert(performance.now() - started < 10_000, "the server never reached its file limit");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const atLimit = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 2500));
    for (const conn of clients) closeQuietly(conn);
    let served = false;
    while (!served && performance.now() - atLimit < 15_000) {
      const conn = await dial(server.port);
      try {
        served = await echoes(conn, "served again");
      } finally {
        closeQuietly(conn);
      }
    }
    assert(served, "the server did not serve again after the clients left");
    const heldS = (performance.now() - atLimit) / 1000;
    const { code, stderr } = await server.stop();
    assertEquals(code, 0, stderr);
    const lines = stderr.split("\n").filter((l) => new RegExp(`^${AT}accept failed`).test(l));
    assert(lines.length >= 1, `no accept failure logged:\n${stderr}`);
    assert(lines.length <= Math.ceil(heldS) + 2, `${lines.length} lines in ${heldS.toFixed(1)} s`);
    for (const line of lines) {
      assertMatch(line, new RegExp(`^${AT}accept failed [\\d,]+ times?: .*Too many open files`));
    }
    const failures = lines.reduce(
      (n, l) => n + Number(/failed ([\d,]+)/.exec(l)![1]!.replace(",", "")),
      0,
    );
    console.log(
      `file limit: ${failures} failed accepts in ${heldS.toFixed(1)} s, ${lines.length} log lines`,
    );
    // Backing off from 50 ms, doubling to 1 s: about a dozen failures in 2.5 s, not 50.
    assert(failures <= 30, `${failures} accept failures: no back-off`);
  } finally {
    for (const conn of clients) closeQuietly(conn);
    await server.stop();
  }
});

/**
 * A fake server that plays a TCP upload test's protocol correctly up to the
 * report, then answers with `report` (a raw line). Resolves when done.
 */
async function fakeServer(listener: Deno.Listener, report: string): Promise<void> {
  const lineOf = async (conn: Deno.Conn) => {
    let text = "";
    const buf = new Uint8Array(4096);
    while (!text.includes("\n")) {
      const n = await conn.read(buf);
      if (n === null) throw new Error(`closed after ${JSON.stringify(text)}`);
      text += decoder.decode(buf.subarray(0, n));
    }
    return text;
  };
  const control = await listener.accept();
  let data: Deno.Conn | undefined;
  try {
    assert((await lineOf(control)).startsWith(`${CONTROL_MAGIC}{"type":"start"`));
    await writeAll(control, encoder.encode('{"type":"ready","test_id":"ab12","udp_port":null}\n'));
    data = await listener.accept();
    const sink = (async () => {
      const buf = new Uint8Array(65536);
      while ((await data!.read(buf)) !== null) { /* discard */ }
    })().catch(() => {});
    await writeAll(control, encoder.encode('{"type":"go"}\n'));
    assertMatch(await lineOf(control), /"type":"report"/);
    await sink;
    await writeAll(control, encoder.encode(report + "\n"));
    await control.read(new Uint8Array(1)).catch(() => null); // until the client closes
  } finally {
    closeQuietly(control);
    if (data) closeQuietly(data);
  }
}

Deno.test("a malformed throughput report (missing, null or mistyped fields) fails the client with one protocol error line naming the field, never an internal error", async () => {
  const reports: [string, RegExp][] = [
    ['{"type":"report"}', /'sent' must be a list, not missing/],
    ['{"type":"report","sent":null,"received":null}', /'sent' must be a list, not null/],
    [
      '{"type":"report","sent":[{"stream":0}],"received":[]}',
      /'sent\[0\]\.bytes' must be a number ≥ 0, not missing/,
    ],
    [
      '{"type":"report","sent":[],"received":[{"stream":0,"bytes":"9","datagrams":0,"lost":0,"out_of_order":0,"duplicates":0,"jitter_ms":null,"seconds":1,"intervals":[]}]}',
      /'received\[0\]\.bytes' must be a number ≥ 0, not "9"/,
    ],
  ];
  for (const [report, problem] of reports) {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const served = fakeServer(listener, report);
    const result = await runNetkit([
      "client",
      "--throughput",
      `127.0.0.1:${port}`,
      "--duration",
      "300ms",
      "--timeout",
      "3s",
    ], { timeoutMs: 20_000 });
    await served;
    assertEquals(result.code, 1, result.stderr);
    const lines = result.stderr.trimEnd().split("\n").filter((l) => l.startsWith("error: "));
    assertEquals(lines.length, 1, result.stderr);
    assertMatch(lines[0]!, /broke the throughput protocol \(waiting for 'report'\)/);
    assertMatch(lines[0]!, problem);
    assertNotMatch(result.stderr, /Internal error|Cannot read properties/);
  }
});
