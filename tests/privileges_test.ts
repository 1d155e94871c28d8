/**
 * End-to-end tests of least privilege: every command, run as the binary is
 * (`-P=netkit`) with `-v`, prints the permissions it still holds after the
 * drop, and still does its job with only those.
 *
 * @module
 */

import { assert, assertEquals, assertRejects } from "@std/assert";
import { makeTestCerts, tlsServerFlags } from "./support/certs.ts";
import { runNetkit, skipWithout, startServer } from "./support/cli.ts";
import { readToEnd, writeAll } from "./support/sockets.ts";
import { loadNativeEngine } from "../lib/engine/native/engine.ts";

/** The kept and dropped permissions from the one `permissions kept: …` line of `stderr`. */
function privileges(stderr: string): { kept: string[]; dropped: string[] } {
  const lines = stderr.split("\n").filter((l) => / permissions kept: /.test(l));
  assertEquals(lines.length, 1, `expected one permissions line in:\n${stderr}`);
  const m = /^\S+Z permissions kept: (.*); dropped: (.*)$/.exec(lines[0]!);
  assert(m, lines[0]);
  const list = (s: string) => s === "none" ? [] : s.split(", ");
  return { kept: list(m[1]!), dropped: list(m[2]!) };
}

/** The binary's set (deno.json `netkit`) grants net, read, write and ffi (libc): what a role drops of it. */
function assertKept(stderr: string, kept: string[]) {
  const got = privileges(stderr);
  assertEquals(got.kept, kept);
  for (const name of ["read", "write", "ffi"]) {
    assertEquals(got.dropped.includes(name), !kept.includes(name), `${name} in ${got.dropped}`);
  }
}

Deno.test("server (--engine deno) keeps only net and still echoes; client in netcat mode keeps only net", async () => {
  const server = await startServer(["--host", "127.0.0.1", "--engine", "deno", "-v"]);
  try {
    const client = await runNetkit(["client", `127.0.0.1:${server.port}`, "-v"], {
      stdin: "netcat\n",
    });
    assertEquals(client.code, 0, client.stderr);
    assertEquals(client.text, "netcat\n");
    assertKept(client.stderr, ["net"]);
  } finally {
    const { code, stderr } = await server.stop();
    assertEquals(code, 0);
    assertKept(stderr, ["net"]);
  }
});

Deno.test("message, probe (deno engine) and TCP throughput clients keep only net and still measure", async () => {
  await using server = await startServer(["--proto", "both", "--host", "127.0.0.1"]);
  const target = `127.0.0.1:${server.port}`;
  const message = await runNetkit(["client", target, "--message", "m", "-v"]);
  assertEquals(message.code, 0, message.stderr);
  assertEquals(message.text, "m\n");
  assertKept(message.stderr, ["net"]);
  const probe = await runNetkit([
    "client",
    "--probe",
    "--proto",
    "udp",
    target,
    "--count",
    "20",
    "--engine",
    "deno",
    "-v",
  ]);
  assertEquals(probe.code, 0, probe.stderr);
  assert(/received\s+20\b|20 received/.test(probe.text), probe.text);
  assertKept(probe.stderr, ["net"]);
  const throughput = await runNetkit(["client", "--throughput", target, "-t", "300ms", "-v"]);
  assertEquals(throughput.code, 0, throughput.stderr);
  assertKept(throughput.stderr, ["net"]);
});

Deno.test({
  name:
    "TLS server (--engine deno) drops read after loading its certificate; TLS client drops read after --ca",
  ignore: skipWithout("openssl"),
  async fn() {
    await using certs = await makeTestCerts();
    const server = await startServer([
      "--host",
      "127.0.0.1",
      ...tlsServerFlags(certs),
      "--engine",
      "deno",
      "-v",
    ]);
    try {
      const target = `127.0.0.1:${server.port}`;
      const client = await runNetkit(["client", "--tls", "--ca", certs.caCert, target, "-v"], {
        stdin: "over tls\n",
      });
      assertEquals(client.code, 0, client.stderr);
      assertEquals(client.text, "over tls\n");
      assertKept(client.stderr, ["net"]);
      // A raw TLS client too: the server serves TLS with read gone.
      using conn = await Deno.connectTls({
        hostname: "127.0.0.1",
        port: server.port,
        caCerts: [await Deno.readTextFile(certs.caCert)],
      });
      const reading = readToEnd(conn);
      await writeAll(conn, new TextEncoder().encode("raw"));
      await conn.closeWrite();
      assertEquals(new TextDecoder().decode(await reading), "raw");
    } finally {
      const { code, stderr } = await server.stop();
      assertEquals(code, 0);
      assertKept(stderr, ["net"]);
    }
  },
});

Deno.test("Unix socket server and client keep net, read and write; the socket file is still removed", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/priv.sock`;
  try {
    const server = await startServer(["--path", path, "-v"]);
    try {
      const client = await runNetkit(["client", "--path", path, "-v"], { stdin: "unix\n" });
      assertEquals(client.code, 0, client.stderr);
      assertEquals(client.text, "unix\n");
      assertKept(client.stderr, ["net", "read", "write"]);
    } finally {
      const { code, stderr } = await server.stop();
      assertEquals(code, 0);
      assertKept(stderr, ["net", "read", "write"]);
    }
    await assertRejects(() => Deno.lstat(path), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compare --engine deno keeps net and read, and its embedded server's worker still loads", async () => {
  const result = await runNetkit([
    "compare",
    "--count",
    "50",
    "--rate",
    "5000",
    "--engine",
    "deno",
    "-v",
  ]);
  assertEquals(result.code, 0, result.stderr);
  assert(result.text.includes("against an embedded echo server"), result.text);
  assertKept(result.stderr, ["net", "read"]);
});

Deno.test({
  name:
    "a UDP ping-pong on the native engine keeps net and ffi but not read: its Worker is loaded before the drop",
  ignore: "reason" in loadNativeEngine(),
  async fn() {
    await using server = await startServer(["--proto", "udp", "--host", "127.0.0.1"]);
    const target = `127.0.0.1:${server.port}`;
    const result = await runNetkit([
      ...["client", "--probe", "--ping-pong", "--proto", "udp", target, "--count", "200"],
      ...["--engine", "native", "--json", "-v"],
    ]);
    assertEquals(result.code, 0, result.stderr);
    const report = JSON.parse(result.text);
    assertEquals(report.received, 200);
    assertEquals(report.engine_features.blocking_worker, true);
    assertKept(result.stderr, ["net", "ffi"]);
  },
});

Deno.test({
  name:
    "UDP probe, UDP throughput, compare and a test-serving server on the native engine keep ffi (libc only) and still work",
  ignore: "reason" in loadNativeEngine(),
  async fn() {
    await using server = await startServer(["--proto", "both", "--host", "127.0.0.1", "-v"]);
    const target = `127.0.0.1:${server.port}`;
    const probe = await runNetkit(
      ["client", "--probe", "--proto", "udp", target, "--count", "20", "-v"],
    );
    assertEquals(probe.code, 0, probe.stderr);
    assert(/received\s+20\b|20 received/.test(probe.text), probe.text);
    assertKept(probe.stderr, ["net", "ffi"]);
    assert(/ engine native: auto: sendmmsg\/recvmmsg through \//.test(probe.stderr), probe.stderr);
    const throughput = await runNetkit(
      [
        "client",
        "--throughput",
        "--proto",
        "udp",
        target,
        "-t",
        "300ms",
        "--engine",
        "native",
        "-v",
      ],
    );
    assertEquals(throughput.code, 0, throughput.stderr);
    assertKept(throughput.stderr, ["net", "ffi"]);
    const tcp = await runNetkit(["client", "--throughput", target, "-t", "300ms", "-v"]);
    assertEquals(tcp.code, 0, tcp.stderr);
    assertKept(tcp.stderr, ["net"]); // TCP runs on Deno's sockets: no engine, no ffi
    const compare = await runNetkit(["compare", "--count", "50", "--rate", "5000", "-v"]);
    assertEquals(compare.code, 0, compare.stderr);
    assertKept(compare.stderr, ["net", "read", "ffi"]);
    // A server that runs throughput tests keeps ffi for their UDP ports; a chat server does not.
    const { code, stderr } = await server.stop();
    assertEquals(code, 0);
    assertKept(stderr, ["net", "ffi"]);
    // The server finds libc at start and opens it at its first UDP test port (after the drop).
    assert(/ engine native: auto: libc found at \/.*; loaded on first use\n/.test(stderr), stderr);
    const chat = await startServer(["--host", "127.0.0.1", "--mode", "chat", "-v"]);
    assertKept((await chat.stop()).stderr, ["net"]);
  },
});

Deno.test("--help still prints once every permission is dropped", async () => {
  const result = await runNetkit(["--help"]);
  assertEquals(result.code, 0);
  assert(result.text.startsWith("netkit "), result.text);
});
