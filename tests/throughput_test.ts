/**
 * End-to-end tests of throughput tests: `netkit client --throughput` against
 * `netkit server`, both as subprocesses with the binary's permissions.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertNotEquals } from "@std/assert";
import { NETKIT_RUN, ROOT_DIR, runNetkit, startServer } from "./support/cli.ts";
import { openFds } from "./support/sockets.ts";
import { engineTest, NATIVE_MISSING } from "./support/engines.ts";

interface Side {
  bytes: number;
  bits_per_second: number;
  datagrams?: number;
  lost?: number;
  lost_percent?: number;
  out_of_order?: number;
  duplicates?: number;
  jitter_ms?: number | null;
}
interface Doc {
  proto: string;
  direction: string;
  parallel: number;
  up: { sum_sent: Side; sum_received: Side; streams: unknown[] } | null;
  down: { sum_sent: Side; sum_received: Side; streams: unknown[] } | null;
  engine?: string;
  gso?: boolean;
  gro?: boolean;
  engine_features?: { send_batch: number; receive_batch: number; reason: string };
}

async function throughput(port: number, ...args: string[]): Promise<Doc> {
  const result = await runNetkit([
    "client",
    "--throughput",
    "127.0.0.1",
    String(port),
    "--duration",
    "1s",
    "--json",
    ...args,
  ]);
  assertEquals(result.code, 0, result.stderr);
  return JSON.parse(result.text) as Doc;
}

Deno.test("tcp throughput up: the server received every byte the client sent", async () => {
  await using server = await startServer(["--host", "127.0.0.1"]);
  const doc = await throughput(server.port);
  assertEquals(doc.direction, "up");
  assertEquals(doc.down, null);
  assert(doc.up!.sum_sent.bytes > 1_000_000, "sent something substantial");
  assertEquals(doc.up!.sum_received.bytes, doc.up!.sum_sent.bytes);
  assert(doc.up!.sum_received.bits_per_second > 0);
  // The server's closing summary counts the test's bytes too.
  const { stderr } = await server.stop();
  assertMatch(stderr, /summary: 2 connections served, 0 refused, [1-9][\d.]* [KMG]iB in, 0 B out/);
});

Deno.test("tcp throughput --reverse with 3 streams: the client received every byte the server sent", async () => {
  await using server = await startServer(["--host", "127.0.0.1"]);
  const doc = await throughput(server.port, "--reverse", "--parallel", "3");
  assertEquals(doc.direction, "down");
  assertEquals(doc.up, null);
  assertEquals(doc.down!.streams.length, 3);
  assertEquals(doc.down!.sum_received.bytes, doc.down!.sum_sent.bytes);
  assert(doc.down!.sum_sent.bytes > 1_000_000);
});

Deno.test("tcp throughput --bidir measures both directions at once, byte-exact", async () => {
  await using server = await startServer(["--host", "127.0.0.1"]);
  const doc = await throughput(server.port, "--bidir");
  assertEquals(doc.up!.sum_received.bytes, doc.up!.sum_sent.bytes);
  assertEquals(doc.down!.sum_received.bytes, doc.down!.sum_sent.bytes);
  assert(doc.up!.sum_sent.bytes > 0 && doc.down!.sum_sent.bytes > 0);
});

engineTest(
  "udp throughput paced at 20 Mbit/s: sent counts match, loss is counted exactly, rate is honoured",
  async (engine) => {
    await using server = await startServer(["--host", "127.0.0.1", "--engine", engine]);
    const doc = await throughput(
      server.port,
      ...["--proto", "udp", "--bitrate", "20M", "--size", "1000", "--engine", engine],
    );
    assertEquals(doc.engine, engine);
    const sent = doc.up!.sum_sent;
    const received = doc.up!.sum_received;
    assertEquals(sent.bytes, sent.datagrams! * 1000);
    assertEquals(
      received.datagrams! + received.lost!,
      sent.datagrams,
      "every datagram is received or lost",
    );
    assert(Math.abs(sent.bits_per_second - 20e6) < 4e6, `paced rate ${sent.bits_per_second}`);
    assertEquals(received.duplicates, 0);
    assert(received.jitter_ms !== null && received.jitter_ms! >= 0);
  },
);

Deno.test("tcp throughput at 10 kbit/s sends about 10 kbit in 1 s, not a 1 MiB block, and says the writes shrank", async () => {
  await using server = await startServer(["--host", "127.0.0.1"]);
  const doc = await throughput(server.port, "--bitrate", "10K");
  const sent = doc.up!.sum_sent.bytes;
  // 1,250 B are due in 1 s; one 25 B write may go ahead of its time. Never 50x over.
  assert(sent >= 1_000 && sent <= 1_250 + 25, `sent ${sent} B at 10 kbit/s for 1 s`);
  assertEquals(doc.up!.sum_received.bytes, sent);
  const text = await runNetkit([
    "client",
    "--throughput",
    "127.0.0.1",
    String(server.port),
    "--duration",
    "1s",
    "--bitrate",
    "10K",
    "--interval-report",
    "0",
  ]);
  assertEquals(text.code, 0, text.stderr);
  assertMatch(
    text.text,
    /, 25 B writes \(--size 1 MiB is more than 20 ms at this bit rate\)/,
  );
});

engineTest("udp throughput --reverse flows back over the client's own UDP flow", async (engine) => {
  await using server = await startServer(["--host", "127.0.0.1", "--engine", engine]);
  const doc = await throughput(
    server.port,
    ...["--proto", "udp", "--bitrate", "10M", "--reverse", "--engine", engine],
  );
  assertEquals(doc.engine, engine);
  const d = doc.down!;
  assert(d.sum_sent.datagrams! > 500, `server sent ${d.sum_sent.datagrams}`);
  assertEquals(d.sum_received.datagrams! + d.sum_received.lost!, d.sum_sent.datagrams);
});

engineTest(
  "udp throughput unlimited with 2 streams both ways: every datagram is received or lost, per stream, none twice",
  async (engine) => {
    await using server = await startServer(["--host", "127.0.0.1", "--engine", engine]);
    const doc = await throughput(
      server.port,
      ...["--proto", "udp", "--bitrate", "0", "--bidir", "-P", "2", "--engine", engine],
    );
    assertEquals(doc.engine, engine);
    assertEquals(doc.gso, false);
    assert(doc.engine_features!.send_batch >= 1 && doc.engine_features!.receive_batch >= 1);
    for (const d of [doc.up!, doc.down!]) {
      assert(d.sum_sent.datagrams! > 100, `sent ${d.sum_sent.datagrams}`);
      assertEquals(d.sum_sent.bytes, d.sum_sent.datagrams! * 1400);
      assertEquals(d.sum_received.bytes, d.sum_received.datagrams! * 1400);
      assertEquals(d.sum_received.datagrams! + d.sum_received.lost!, d.sum_sent.datagrams);
      assertEquals(d.sum_received.duplicates, 0);
      assertEquals(d.streams.length, 2);
    }
  },
);

Deno.test("one server runs two tests at once from two clients without mixing their figures", async () => {
  await using server = await startServer(["--host", "127.0.0.1"]);
  const [a, b] = await Promise.all([
    throughput(server.port, "--bitrate", "40M"),
    throughput(server.port, "--bitrate", "80M", "--parallel", "2"),
  ]);
  assertEquals(a.up!.sum_received.bytes, a.up!.sum_sent.bytes);
  assertEquals(b.up!.sum_received.bytes, b.up!.sum_sent.bytes);
  assertEquals(b.up!.streams.length, 2);
  // Paced at different rates, the two tests report different volumes: nothing was pooled.
  assert(
    b.up!.sum_sent.bytes > a.up!.sum_sent.bytes * 1.5,
    `${a.up!.sum_sent.bytes} vs ${b.up!.sum_sent.bytes}`,
  );
});

Deno.test("a client killed mid-test frees its share of the server at once; the next test runs", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "-v"]);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...NETKIT_RUN,
      "client",
      "--throughput",
      "127.0.0.1",
      String(server.port),
      "--duration",
      "30s",
    ],
    cwd: ROOT_DIR,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  // Wait until the test is running: the first interval line proves data flows.
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("sent")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel();
  const started = performance.now();
  const next = await throughput(server.port);
  assertEquals(next.up!.sum_received.bytes, next.up!.sum_sent.bytes);
  assert(performance.now() - started < 15_000);
  const { stderr } = await server.stop();
  assertMatch(stderr, /throughput test \w+: ended early/);
  assertEquals((stderr.match(/: done, /g) ?? []).length, 1, "the second test completed");
});

Deno.test("throughput against a server that does not speak the protocol fails clearly", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "--mode", "chat"]);
  const result = await runNetkit([
    "client",
    "--throughput",
    `127.0.0.1:${server.port}`,
    "--duration",
    "1s",
    "--timeout",
    "1s",
  ]);
  assertNotEquals(result.code, 0);
  assertMatch(result.stderr, /^error: .*(did not answer|does not speak|closed the control)/);
  assertEquals(result.stderr.trim().split("\n").length, 1);
});

Deno.test("a garbage control request gets an error reply, and the server keeps serving", async () => {
  await using server = await startServer(["--host", "127.0.0.1"]);
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await conn.write(new TextEncoder().encode('NKCTL/2 {"type":"start","proto":"sctp"}\n'));
  const buf = new Uint8Array(1024);
  let text = "";
  for (let n; !text.includes("\n") && (n = await conn.read(buf)) !== null;) {
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  assertMatch(text, /"type":"error"/);
  const doc = await throughput(server.port);
  assert(doc.up!.sum_sent.bytes > 0);
});

Deno.test("a client that vanishes without closing (SIGSTOP, like a pulled cable) is dropped within seconds", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "-v"]);
  const baseline = await openFds(server.child.pid);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...NETKIT_RUN,
      "client",
      "--throughput",
      "127.0.0.1",
      String(server.port),
      "--duration",
      "60s",
    ],
    cwd: ROOT_DIR,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let seen = "";
    while (!seen.includes("sent")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    child.kill("SIGSTOP"); // the process and its sockets stay, but nothing moves
    const stopped = performance.now();
    // Dropping the test closes its control and data connections: wait for the server's
    // open descriptors to fall back to what it had before the client came (bounded).
    while ((await openFds(server.child.pid)) > baseline) {
      assert(
        performance.now() - stopped < 15_000,
        "the stalled test was not dropped within 15 s",
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const next = await throughput(server.port);
    assertEquals(next.up!.sum_received.bytes, next.up!.sum_sent.bytes);
    const { stderr } = await server.stop();
    assertMatch(stderr, /ended early \(no data moved for 3 s: client gone\)/);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
  }
});

Deno.test("throughput --json names its target as a probe does ('tcp 127.0.0.1:PORT'), and its TCP streams carry no datagram fields", async () => {
  await using server = await startServer(["--host", "127.0.0.1"]);
  const doc = await throughput(server.port) as Doc & { target: string };
  const probe = await runNetkit([
    "client",
    "--probe",
    "127.0.0.1",
    String(server.port),
    "--count",
    "5",
    "--json",
  ]);
  assertEquals(probe.code, 0, probe.stderr);
  const probeTarget = (JSON.parse(probe.text) as { target: string }).target;
  assertEquals(probeTarget, `tcp 127.0.0.1:${server.port}`);
  assertEquals(doc.target, probeTarget, "one target form for probe and throughput");
  assertEquals(doc.up!.streams.length, 1);
  for (const stream of doc.up!.streams) {
    assertEquals(
      Object.keys(stream as object).sort(),
      ["bytes", "interval_bytes", "stream"],
      "a TCP stream has no datagrams, loss, order or jitter",
    );
  }
});

Deno.test({
  name:
    "udp throughput --gso (native engine): the kernel segments the sends, the server receives whole runs (GRO), every datagram is received or lost, and the JSON says gso",
  ignore: NATIVE_MISSING !== undefined,
  async fn() {
    await using server = await startServer(["--host", "127.0.0.1", "-v"]);
    for (const bitrate of ["50M", "0"]) {
      const doc = await throughput(
        server.port,
        ...["--proto", "udp", "--bitrate", bitrate, "--gso", "--engine", "native"],
      );
      assertEquals([doc.engine, doc.gso, doc.gro], ["native", true, true]);
      assert(doc.engine_features!.send_batch > 32, `${doc.engine_features!.send_batch} per send`);
      const d = doc.up!;
      assert(d.sum_sent.datagrams! > 1000, `sent ${d.sum_sent.datagrams}`);
      assertEquals(d.sum_sent.bytes, d.sum_sent.datagrams! * 1400);
      assertEquals(d.sum_received.datagrams! + d.sum_received.lost!, d.sum_sent.datagrams);
      assertEquals(d.sum_received.duplicates, 0);
      if (bitrate === "50M") assertEquals(d.sum_received.lost, 0, "paced: nothing lost");
    }
    const { stderr } = await server.stop();
    assertEquals(stderr.match(/receiving with UDP GRO/g)?.length, 2, stderr);
    const runs = [...stderr.matchAll(/, (\d+) GRO runs received/g)].map((m) => Number(m[1]));
    assertEquals(runs.length, 2, stderr);
    assert(runs.every((n) => n > 10), `GRO runs per test: ${runs}`);
  },
});

Deno.test({
  name:
    "tcp throughput on the native engine: both receivers raise their low-water mark on a fast stream, and still count every byte",
  ignore: NATIVE_MISSING !== undefined,
  fn: async () => {
    await using server = await startServer(["--host", "127.0.0.1", "-v"]);
    const down = await throughput(server.port, "--reverse", "--engine", "native");
    assertEquals(down.down!.sum_received.bytes, down.down!.sum_sent.bytes);
    assertEquals(down.engine, "deno", "Deno's sockets moved the bytes");
    assertEquals(
      (down.engine_features as { receive_low_water?: number }).receive_low_water,
      131072,
    );
    const up = await throughput(server.port);
    assertEquals(up.up!.sum_received.bytes, up.up!.sum_sent.bytes);
    const { stderr } = await server.stop();
    assertMatch(
      stderr,
      /throughput test \w+: done, \d+ bytes, receive low-water mark 128 KiB \(SO_RCVLOWAT\) on 1 of 1 streams/,
    );
  },
});

Deno.test("tcp throughput --reverse --engine deno raises no low-water mark, and says nothing of one", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "--engine", "deno", "-v"]);
  const doc = await throughput(server.port, "--reverse", "--engine", "deno");
  assertEquals(doc.down!.sum_received.bytes, doc.down!.sum_sent.bytes);
  assertEquals(
    (doc.engine_features as { receive_low_water?: number }).receive_low_water,
    undefined,
  );
  const { stderr } = await server.stop();
  assertMatch(stderr, /throughput test \w+: done, \d+ bytes\n/);
});
