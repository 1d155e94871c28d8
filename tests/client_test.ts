/**
 * End-to-end tests of `netkit client` as a subprocess: netcat-mode piping,
 * message exchanges, and how it ends.
 *
 * @module
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
// node: because WebCrypto digests only a whole buffer; this hash streams 100 MB.
import { createHash } from "node:crypto";
import { makeTestCerts, tlsServerFlags } from "./support/certs.ts";
import {
  NETKIT_RUN,
  ROOT_DIR,
  runNetkit,
  type RunResult,
  skipWithout,
  startServer,
} from "./support/cli.ts";
import { closedPort } from "./support/sockets.ts";

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

Deno.test("a probe of --size 1400 reports '1,400 B', and a run of one probe says '1 probe'", async () => {
  await using server = await startServer(["--proto", "udp", "--host", "127.0.0.1"]);
  const result = await runNetkit([
    "client",
    "--probe",
    "--proto",
    "udp",
    `127.0.0.1:${server.port}`,
    "--count",
    "1",
    "--size",
    "1400",
  ]);
  assertEquals(result.code, 0, result.stderr);
  assertMatch(result.text, /^udp probe to 127\.0\.0\.1:\d+: 1 probe of 1,400 B, asked /);
});

/** The one `error: …` line of a failed run that printed nothing on stdout. */
function onlyErrorLine(result: RunResult): string {
  assertEquals(result.text, "", "nothing on stdout");
  const lines = result.stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, `one stderr line: ${result.stderr}`);
  assertMatch(lines[0]!, /^error: /);
  assert(!result.stderr.includes("    at "), "no stack trace");
  return lines[0]!;
}

Deno.test("--tls --ca FILE that holds no PEM certificate is a usage error naming the file, before any connection (exit 2)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const notPem = `${dir}/not-a-cert.pem`;
    await Deno.writeTextFile(notPem, "this is not a certificate\n");
    // Nothing listens on the port: a connection attempt would fail with exit 3.
    const port = closedPort();
    for (const mode of [[], ["--message", "hi"]]) {
      const result = await runNetkit([
        "client",
        "--tls",
        "--ca",
        notPem,
        `127.0.0.1:${port}`,
        ...mode,
      ], { stdin: "" });
      assertEquals(result.code, 2, result.stderr);
      const line = onlyErrorLine(result);
      assert(line.includes(`'${notPem}'`), line);
      assertMatch(line, /no PEM certificate/);
      assertMatch(line, /netkit client --help/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "--tls --ca with a server's own self-signed CA certificate explains it in plain words and the fix, not the TLS library's error (exit 8)",
  ignore: skipWithout("openssl"),
  async fn() {
    await using certs = await makeTestCerts();
    // The CA's own self-signed certificate served as the server's: trusted, but a CA certificate.
    await using server = await startServer([
      "--host",
      "127.0.0.1",
      "--tls",
      "--cert",
      certs.caCert,
      "--key",
      `${certs.dir}/ca.key`,
    ]);
    const result = await runNetkit([
      "client",
      "--tls",
      "--ca",
      certs.caCert,
      `127.0.0.1:${server.port}`,
      "--message",
      "hi",
    ], { timeoutMs: 15_000 });
    assertEquals(result.code, 8, result.stderr);
    const line = onlyErrorLine(result);
    assert(!/CaUsedAsEndEntity|OtherError|Other\(/.test(line), line);
    assertMatch(line, /self-signed/);
    assertMatch(line, /give --ca the CA that signed it/);
    assertMatch(line, /--insecure/);
    assert(line.includes(`127.0.0.1:${server.port}`), line);
  },
});

const TURNED_AWAY =
  "the server closed the connection without a reply (a limit such as --max-conns, --allow/--deny?)";

Deno.test("a connection closed by the server's --deny is reported as such by --message, --probe and --throughput, never as success (exit 3)", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "--deny", "127.0.0.1"]);
  const target = `127.0.0.1:${server.port}`;
  for (
    const mode of [
      ["--message", "hi"],
      ["--probe", "--count", "50"],
      ["--probe", "--rate", "0", "--count", "100000"],
      ["--throughput", "--duration", "1s"],
    ]
  ) {
    const result = await runNetkit(["client", target, ...mode], { timeoutMs: 15_000 });
    assertEquals(result.code, 3, `${mode[0]}: ${result.stderr}`);
    const line = onlyErrorLine(result);
    assert(line.includes(`tcp ${target}: ${TURNED_AWAY}`), `${mode[0]}: ${line}`);
  }
});

Deno.test("a --message connection refused by --max-conns is reported as closed by a limit, exit 3", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "--max-conns", "1"]);
  using held = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  // The held connection is being served once it echoes.
  await held.write(new TextEncoder().encode("x"));
  assertEquals(await held.read(new Uint8Array(1)), 1);
  const result = await runNetkit(["client", `127.0.0.1:${server.port}`, "--message", "hi"]);
  assertEquals(result.code, 3, result.stderr);
  assert(onlyErrorLine(result).includes(TURNED_AWAY), result.stderr);
});

Deno.test("netcat mode turned away by --deny while stdin is still open says so instead of exiting 0", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "--deny", "127.0.0.1"]);
  const child = new Deno.Command(Deno.execPath(), {
    args: [...NETKIT_RUN, "client", `127.0.0.1:${server.port}`],
    cwd: ROOT_DIR,
    stdin: "piped", // held open: the user is still typing
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  try {
    const { code, stdout, stderr } = await child.output();
    const result = {
      code,
      stdout,
      text: new TextDecoder().decode(stdout),
      stderr: new TextDecoder().decode(stderr),
    };
    assertEquals(result.code, 3, result.stderr);
    assert(onlyErrorLine(result).includes(TURNED_AWAY), result.stderr);
  } finally {
    clearTimeout(timer);
    await child.stdin.close().catch(() => {});
  }
});

Deno.test({
  name:
    "a TLS server's --deny is reported as closed by a limit with --ca and with --insecure, never a hang or an internal error (exit 3)",
  ignore: skipWithout("openssl"),
  async fn() {
    await using certs = await makeTestCerts();
    await using server = await startServer([
      "--host",
      "127.0.0.1",
      ...tlsServerFlags(certs),
      "--deny",
      "127.0.0.1",
    ]);
    for (const trust of [["--ca", certs.caCert], ["--insecure"]]) {
      for (let run = 0; run < 3; run++) {
        const result = await runNetkit([
          "client",
          "--tls",
          ...trust,
          `127.0.0.1:${server.port}`,
          "--message",
          "hi",
        ], { timeoutMs: 15_000 });
        assertEquals(result.code, 3, `${trust[0]}: ${result.stderr}`);
        assert(onlyErrorLine(result).includes(TURNED_AWAY), `${trust[0]}: ${result.stderr}`);
      }
    }
  },
});
