/**
 * End-to-end tests of `netkit client` as a subprocess: netcat-mode piping,
 * message exchanges, and how it ends.
 *
 * @module
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
// node: because WebCrypto digests only a whole buffer; this hash streams 100 MB.
import { createHash } from "node:crypto";
import { runNetkit, startServer } from "./support/cli.ts";

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

Deno.test("netcat mode round-trips 100 MB of random bytes through a tcp echo server unchanged (SHA-256)", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/random.bin`;
  try {
    const hash = createHash("sha256");
    {
      using out = await Deno.open(file, { write: true, create: true });
      const chunk = new Uint8Array(1 << 20);
      for (let i = 0; i < 100; i++) {
        crypto.getRandomValues(chunk.subarray(0, 65536));
        for (let off = 65536; off < chunk.length; off += 65536) {
          chunk.copyWithin(off, 0, 65536);
          chunk[off] = (chunk[off] ?? 0) ^ (i + off / 65536); // no repeating blocks
        }
        hash.update(chunk);
        let w = 0;
        while (w < chunk.length) w += await out.write(chunk.subarray(w));
      }
    }
    await using server = await startServer(["--host", "127.0.0.1"]);
    const result = await runNetkit(["client", "127.0.0.1", String(server.port)], {
      stdin: { file },
      timeoutMs: 120_000,
    });
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.stdout.length, 100 * (1 << 20));
    assertEquals(sha256(result.stdout), hash.digest("hex"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("netcat mode over [::1]:PORT half-closes on stdin EOF and exits when the server closes", async () => {
  await using server = await startServer(["--host", "::1"]);
  const result = await runNetkit(["client", `[::1]:${server.port}`], { stdin: "six\nlines\n" });
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.text, "six\nlines\n");
});

Deno.test("netcat mode exits 0 after --timeout of silence once stdin ended, even if the peer never closes", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted = listener.accept(); // holds the connection open, never closes it
  const started = performance.now();
  const result = await runNetkit(["client", "127.0.0.1", String(port), "--timeout", "300ms"], {
    stdin: "x",
  });
  const elapsed = performance.now() - started;
  using conn = await accepted;
  assertEquals(result.code, 0, result.stderr);
  assert(elapsed < 10_000, `took ${elapsed} ms`);
  const buf = new Uint8Array(8);
  assertEquals(await conn.read(buf), 1, "the byte from stdin arrived");
});

Deno.test("udp netcat mode sends stdin as a datagram and prints the echo", async () => {
  await using server = await startServer(["--proto", "udp", "--host", "127.0.0.1"]);
  const result = await runNetkit(
    ["client", "--proto", "udp", "127.0.0.1", String(server.port), "--timeout", "300ms"],
    { stdin: "datagram\n" },
  );
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.text, "datagram\n");
});

Deno.test("--message with --count prints every reply on its own line, over tcp and udp", async () => {
  await using server = await startServer(["--proto", "both", "--host", "127.0.0.1"]);
  for (const proto of ["tcp", "udp"]) {
    const result = await runNetkit([
      "client",
      "--proto",
      proto,
      "127.0.0.1",
      String(server.port),
      "--message",
      `hi ${proto}`,
      "--count",
      "3",
      "--interval",
      "10ms",
    ]);
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.text, `hi ${proto}\nhi ${proto}\nhi ${proto}\n`);
  }
});

Deno.test("--message to a discard server fails with exit 5 naming the missing reply", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "--mode", "discard"]);
  const result = await runNetkit([
    "client",
    `127.0.0.1:${server.port}`,
    "--message",
    "anyone?",
    "--timeout",
    "300ms",
  ]);
  assertEquals(result.code, 5);
  assertEquals(
    result.stderr,
    `error: No reply from tcp 127.0.0.1:${server.port} within 300 ms (message 1 of 1)\n`,
  );
});

Deno.test("--connections reports failures honestly and exits 1 when some connections fail", async () => {
  await using server = await startServer([
    "--host",
    "127.0.0.1",
    "--max-conns",
    "1",
    "--mode",
    "discard",
  ]);
  // With discard, no reply comes back; every connection fails its exchange.
  const result = await runNetkit([
    "client",
    `127.0.0.1:${server.port}`,
    "--connections",
    "3",
    "--message",
    "x",
    "--timeout",
    "300ms",
  ]);
  assertEquals(result.code, 1);
  assertMatch(result.text, /^connections: 0 ok, 3 failed; messages: 3 sent, 0 replies;/);
  assertMatch(result.stderr, /^error: \d connections?: /m);
});
