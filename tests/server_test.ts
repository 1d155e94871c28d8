/**
 * End-to-end tests of `netkit server`, run as a subprocess with the binary's
 * permissions, talked to by raw Deno sockets so every byte can be checked.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertNotMatch, assertRejects } from "@std/assert";
import { makeTestCerts, tlsServerFlags } from "./support/certs.ts";
import { runNetkit, skipWithout, startServer } from "./support/cli.ts";
import { readExactly, readToEnd, writeAll } from "./support/sockets.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

for (const host of ["127.0.0.1", "::1"]) {
  Deno.test(`tcp echo server on ${host} returns every byte in order and exits 0 with a summary on SIGTERM`, async () => {
    const server = await startServer(["--host", host]);
    try {
      assertMatch(
        server.lines[0] ?? "",
        new RegExp(`^listening on tcp ${host === "::1" ? "\\[::1\\]" : host}:\\d+$`),
      );
      assert(server.port > 0);
      const data = randomBytes(300_000, 7);
      using conn = await Deno.connect({ hostname: host, port: server.port });
      const reading = readToEnd(conn);
      await writeAll(conn, data);
      await conn.closeWrite();
      assertEquals(await reading, data);
    } finally {
      const { code, stderr } = await server.stop();
      assertEquals(code, 0);
      assertMatch(
        stderr,
        /summary: 1 connection served, 0 refused, 292\.97 KiB in, 292\.97 KiB out/,
      );
    }
  });
}

Deno.test("server echoes every byte to 200 concurrent clients without mixing them", async () => {
  await using server = await startServer(["--host", "127.0.0.1"]);
  const clients = Array.from({ length: 200 }, async (_, i) => {
    const data = randomBytes(2000 + i, i + 1);
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const reading = readToEnd(conn);
    // Two writes, so the server sees each client's stream in pieces.
    await writeAll(conn, data.subarray(0, 1000));
    await writeAll(conn, data.subarray(1000));
    await conn.closeWrite();
    assertEquals(await reading, data, `client ${i}`);
  });
  await Promise.all(clients);
});

Deno.test("netkit client --connections 200 reports 200 ok against a netkit server", async () => {
  await using server = await startServer(["--host", "127.0.0.1"]);
  const result = await runNetkit([
    "client",
    "127.0.0.1",
    String(server.port),
    "--connections",
    "200",
    "--message",
    "ping",
    "--count",
    "3",
  ]);
  assertEquals(result.code, 0, result.stderr);
  assertMatch(
    result.text,
    /^connections: 200 ok, 0 failed; messages: 600 sent, 600 replies; bytes: 2\.34 KiB out, 2\.34 KiB in; elapsed: /,
  );
});

Deno.test("udp echo server replies each datagram unchanged to its sender", async () => {
  await using server = await startServer(["--proto", "udp", "--host", "127.0.0.1"]);
  assertMatch(server.lines[0] ?? "", /^listening on udp 127\.0\.0\.1:\d+$/);
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const target: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: server.port };
    const buf = new Uint8Array(65536);
    for (const size of [1, 100, 1400, 9000, 65507]) {
      const data = randomBytes(size, size);
      await socket.send(data, target);
      const [reply, from] = await socket.receive(buf);
      assertEquals(reply, data, `size ${size}`);
      assertEquals((from as Deno.NetAddr).port, server.port);
    }
  } finally {
    socket.close();
  }
});

Deno.test("--proto both serves TCP and UDP echo on the same port", async () => {
  await using server = await startServer(["--proto", "both", "--host", "127.0.0.1"]);
  assertEquals(server.lines.length, 2);
  assertMatch(server.lines[0] ?? "", /^listening on tcp /);
  assertEquals(server.lines[1], server.lines[0]?.replace("tcp", "udp"));
  const udp = await runNetkit([
    "client",
    "--proto",
    "udp",
    `127.0.0.1:${server.port}`,
    "--message",
    "u",
  ]);
  const tcp = await runNetkit(["client", `127.0.0.1:${server.port}`, "--message", "t"]);
  assertEquals(udp.text, "u\n");
  assertEquals(tcp.text, "t\n");
});

Deno.test("unix socket echo server round-trips data and removes its socket file on exit", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/nk.sock`;
  try {
    const server = await startServer(["--proto", "unix", "--path", path]);
    assertEquals(server.lines[0], `listening on unix ${path}`);
    const result = await runNetkit(["client", "--path", path], { stdin: "over unix\n" });
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.text, "over unix\n");
    const { code } = await server.stop();
    assertEquals(code, 0);
    await assertRejects(() => Deno.lstat(path), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unix server replaces a stale socket file left by a dead server", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/stale.sock`;
  try {
    const stale = Deno.listen({ transport: "unix", path });
    stale.close(); // Deno leaves the file behind, as a crashed server would
    await using server = await startServer(["--path", path]);
    assertEquals(server.lines[0], `listening on unix ${path}`);
    const result = await runNetkit(["client", "-U", path, "--message", "fresh"]);
    assertEquals(result.text, "fresh\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("discard server reads everything and sends nothing back", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "--mode", "discard"]);
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await writeAll(conn, randomBytes(1_000_000, 3));
  await conn.closeWrite();
  assertEquals((await readToEnd(conn)).length, 0);
});

Deno.test("chat server relays each line from one client to the two others, not back to the sender", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "--mode", "chat"]);
  const conns: Deno.Conn[] = [];
  try {
    // Join one at a time; each newcomer's first line reaching the earlier members
    // proves it is in the room (the server accepts in order).
    const a = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    conns.push(a);
    const b = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    conns.push(b);
    await writeAll(b, encoder.encode("b joined\n"));
    assertEquals(decoder.decode(await readExactly(a, 9)), "b joined\n");
    const c = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    conns.push(c);
    await writeAll(c, encoder.encode("c joined\n"));
    assertEquals(decoder.decode(await readExactly(a, 9)), "c joined\n");
    assertEquals(decoder.decode(await readExactly(b, 9)), "c joined\n");

    await writeAll(a, encoder.encode("hello from a\n"));
    assertEquals(decoder.decode(await readExactly(b, 13)), "hello from a\n");
    assertEquals(decoder.decode(await readExactly(c, 13)), "hello from a\n");
    // A line split across writes is relayed whole; two lines in one write both arrive.
    await writeAll(b, encoder.encode("split "));
    await writeAll(b, encoder.encode("line from b\nsecond\n"));
    assertEquals(decoder.decode(await readExactly(a, 25)), "split line from b\nsecond\n");
    assertEquals(decoder.decode(await readExactly(c, 25)), "split line from b\nsecond\n");
    // The sender gets nothing back: b's next bytes are c's line, not its own.
    await writeAll(c, encoder.encode("from c\n"));
    assertEquals(decoder.decode(await readExactly(a, 7)), "from c\n");
    assertEquals(decoder.decode(await readExactly(b, 7)), "from c\n");
    for (const conn of conns) await conn.closeWrite();
    for (const conn of conns) {
      assertEquals((await readToEnd(conn)).length, 0, "no echo to the sender");
    }
  } finally {
    for (const conn of conns) conn.close();
  }
});

Deno.test("--max-conns closes connections beyond the limit at once and keeps serving the others", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "--max-conns", "2", "-v"]);
  using a = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  using b = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  // Both are being served once each echoes.
  await writeAll(a, encoder.encode("a"));
  await writeAll(b, encoder.encode("b"));
  assertEquals(decoder.decode(await readExactly(a, 1)), "a");
  assertEquals(decoder.decode(await readExactly(b, 1)), "b");
  using c = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  assertEquals((await readToEnd(c)).length, 0, "third connection is closed without data");
  await writeAll(a, encoder.encode("still"));
  assertEquals(decoder.decode(await readExactly(a, 5)), "still");
  a.close();
  b.close();
  c.close();
  const { stderr } = await server.stop();
  assertMatch(stderr, /refused 127\.0\.0\.1:\d+: --max-conns 2 reached/);
  assertMatch(stderr, /summary: 2 connections served, 1 refused/);
});

Deno.test("--idle-timeout closes a silent connection and logs why", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "--idle-timeout", "200ms", "-v"]);
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const started = performance.now();
  assertEquals((await readToEnd(conn)).length, 0);
  assert(performance.now() - started >= 150, "closed too early");
  conn.close();
  const { stderr } = await server.stop();
  assertMatch(stderr, /disconnect 127\.0\.0\.1:\d+: 0 B in, 0 B out, .* \(idle for 200 ms\)/);
});

Deno.test("--once serves one client and exits 0", async () => {
  const server = await startServer(["--host", "127.0.0.1", "--once"]);
  const result = await runNetkit(["client", `127.0.0.1:${server.port}`], { stdin: "once\n" });
  assertEquals(result.text, "once\n");
  const { code } = await server.child.status;
  assertEquals(code, 0);
  await server.stop();
});

Deno.test("a client that never reads does not delay echoes to other clients", async () => {
  await using server = await startServer(["--host", "127.0.0.1"]);
  using hog = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  // Fill the hog's path until its writes stall: the server is blocked echoing to it.
  const chunk = new Uint8Array(64 * 1024);
  const stalled = (async () => {
    try {
      for (let i = 0; i < 1000; i++) await writeAll(hog, chunk);
    } catch { /* closed at the end of the test */ }
  })();
  const result = await runNetkit([
    "client",
    `127.0.0.1:${server.port}`,
    "--connections",
    "20",
    "--message",
    "still served",
    "--timeout",
    "5s",
  ]);
  assertEquals(result.code, 0, result.stderr);
  assertMatch(result.text, /^connections: 20 ok, 0 failed/);
  hog.close();
  await stalled;
});

Deno.test("server survives clients that reset, send garbage and vanish mid-stream", async () => {
  await using server = await startServer(["--host", "127.0.0.1"]);
  for (let i = 0; i < 20; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await writeAll(conn, randomBytes(100_000, i + 9)); // never read: close with unread data → RST
    conn.close();
  }
  const result = await runNetkit(["client", `127.0.0.1:${server.port}`, "--message", "alive"]);
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.text, "alive\n");
  const { code, stderr } = await server.stop();
  assertEquals(code, 0);
  assertNotMatch(stderr, /error|Uncaught/);
});

Deno.test("without -v, refusals past --max-conns are still logged, as a count", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "--max-conns", "1"]);
  using held = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await writeAll(held, encoder.encode("x"));
  assertEquals(decoder.decode(await readExactly(held, 1)), "x");
  for (let i = 0; i < 3; i++) {
    using extra = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    assertEquals((await readToEnd(extra)).length, 0, "refused connection is closed at once");
  }
  held.close();
  const { stderr } = await server.stop();
  assertMatch(stderr, /^[\d-]+T[\d:.]+Z refused 3 connections: --max-conns 1 reached/m);
  assertMatch(stderr, /summary: 1 connection served, 3 refused/);
});

Deno.test("the summary of a UDP server that echoed one datagram says '1 datagram in, 1 out'", async () => {
  const server = await startServer(["--proto", "udp", "--host", "127.0.0.1"]);
  try {
    const reply = await runNetkit([
      "client",
      "--proto",
      "udp",
      `127.0.0.1:${server.port}`,
      "--message",
      "one",
    ]);
    assertEquals(reply.text, "one\n", reply.stderr);
    const { code, stderr } = await server.stop();
    assertEquals(code, 0);
    assertMatch(stderr, /, 1 datagram in, 1 out$/m);
  } finally {
    await server.stop();
  }
});

Deno.test({
  name: "a TLS server's ready line says 'listening on tls', a plain one's 'listening on tcp'",
  ignore: skipWithout("openssl"),
  async fn() {
    await using certs = await makeTestCerts();
    await using tls = await startServer([
      "--proto",
      "both",
      "--host",
      "127.0.0.1",
      ...tlsServerFlags(certs),
    ]);
    assertEquals(tls.lines, [
      `listening on tls 127.0.0.1:${tls.port}`,
      `listening on udp 127.0.0.1:${tls.port}`,
    ]);
    await using plain = await startServer(["--host", "127.0.0.1"]);
    assertEquals(plain.lines, [`listening on tcp 127.0.0.1:${plain.port}`]);
  },
});

Deno.test("a Unix server whose --path is taken by a plain file says so without a word about ports, exit 6", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/plain-file`;
    await Deno.writeTextFile(path, "keep me\n");
    const result = await runNetkit(["server", "--path", path]);
    assertEquals(result.code, 6, result.stderr);
    assertEquals(result.text, "");
    const lines = result.stderr.trimEnd().split("\n");
    assertEquals(lines.length, 1, result.stderr);
    assertMatch(lines[0]!, /^error: Cannot listen on unix .*plain-file: /);
    assertNotMatch(lines[0]!, /port|privilege/i);
    assertEquals(await Deno.readTextFile(path), "keep me\n", "the file is left alone");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server --host [::1] prints 'listening on tcp [::1]:PORT', single brackets", async () => {
  await using server = await startServer(["--host", "[::1]"]);
  assertEquals(server.lines, [`listening on tcp [::1]:${server.port}`]);
});

Deno.test("server --host localhost prints the address it really bound, for TCP and UDP alike", async () => {
  await using server = await startServer(["--proto", "both", "--host", "localhost"]);
  assertEquals(server.lines.length, 2);
  const [tcp, udp] = server.lines;
  assertMatch(tcp!, /^listening on tcp (127\.0\.0\.1|\[::1\]):\d+$/);
  assertEquals(udp, tcp!.replace("tcp", "udp"), "UDP bound the same address and port");
});
