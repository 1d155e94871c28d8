/**
 * End-to-end tests of what nc, ncat and iperf3 users reach for, and of what a
 * script or a person watching sees: `--json` documents for usage errors, the
 * server's drain notice and timestamped `-v` lines, client `-v` in single
 * `--message` and UDP pipe modes, `-u`, `-4`/`-6`, `-s`/`--source-port`,
 * `netkit server PORT`, and UDP throughput's 1 Mbit/s default.
 *
 * @example
 * ```sh
 * deno test -q --no-prompt --allow-all --trace-leaks tests/cli_habits_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { runNetkit, startServer } from "./support/cli.ts";

const ISO = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`;

/** A port free on 127.0.0.1 for `transport` at the time of the call. */
function freeLocalPort(transport: "tcp" | "udp"): number {
  if (transport === "tcp") {
    using l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return (l.addr as Deno.NetAddr).port;
  }
  const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (s.addr as Deno.NetAddr).port;
  s.close();
  return port;
}

// --- 13: --json always prints a JSON document ------------------------------------

for (
  const args of [
    ["client", "--probe", "--json", "--count", "abc"],
    ["compare", "-J", "--bogus"],
    ["server", "--json"],
  ]
) {
  Deno.test(`'netkit ${args.join(" ")}': the usage error is a JSON document on stdout, exit 2`, async () => {
    const result = await runNetkit(args);
    assertEquals(result.code, 2, result.stderr);
    const doc = JSON.parse(result.text);
    assertEquals(Object.keys(doc), ["error", "exit_code"]);
    assertEquals(doc.exit_code, 2);
    assertMatch(doc.error, /\(see 'netkit \w+ --help'\)$/);
    assertEquals(result.stderr, `error: ${doc.error}\n`, "the same one line on stderr");
  });
}

Deno.test("'--json-stream' with a usage error prints one error event, exit 2", async () => {
  const result = await runNetkit(["client", "--probe", "--json-stream", "--rate", "x"]);
  assertEquals(result.code, 2, result.stderr);
  const lines = result.text.trimEnd().split("\n");
  assertEquals(lines.length, 1, result.text);
  const event = JSON.parse(lines[0] ?? "");
  assertEquals(event.event, "error");
  assertEquals(event.data.exit_code, 2);
  assertStringIncludes(event.data.error, "'--rate'");
});

// --- 15: server drain notice, timestamps, client -v, bare netkit -------------------

Deno.test("server: the first SIGINT says at once how many connections it drains, before the summary", async () => {
  const server = await startServer(["--host", "127.0.0.1"]);
  let stopped;
  {
    using _a = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    using b = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    // An echo proves the server has accepted both (connections are served in order).
    await b.write(new Uint8Array([1]));
    await b.read(new Uint8Array(1));
    stopped = await server.stop("SIGINT");
  }
  assertEquals(stopped.code, 0, stopped.stderr);
  const lines = stopped.stderr.trimEnd().split("\n");
  assertEquals(lines[0], "draining 2 connections (Ctrl-C again to stop now)");
  assertMatch(lines[1] ?? "", /^summary: 2 connections served/);
  assertEquals(lines.length, 2, stopped.stderr);
});

Deno.test("server -v lines start with an ISO 8601 UTC time", async () => {
  const server = await startServer(["--host", "127.0.0.1", "-v"]);
  {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(new TextEncoder().encode("x"));
    await conn.read(new Uint8Array(1));
  }
  const { stderr } = await server.stop();
  assertMatch(stderr, new RegExp(`^${ISO} connect 127\\.0\\.0\\.1:\\d+$`, "m"));
  assertMatch(
    stderr,
    new RegExp(`^${ISO} disconnect 127\\.0\\.0\\.1:\\d+: 1 B in, 1 B out, `, "m"),
  );
  assertMatch(stderr, /^summary: 1 connection served/m);
});

Deno.test("client -v with a single --message logs the connection and each reply, with times, on stderr", async () => {
  await using server = await startServer(["--host", "127.0.0.1"]);
  const result = await runNetkit([
    "client",
    "-v",
    "--message",
    "hi",
    "--count",
    "2",
    "127.0.0.1",
    String(server.port),
  ]);
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.text, "hi\nhi\n");
  const lines = result.stderr.trimEnd().split("\n");
  assertEquals(lines.length, 4, result.stderr);
  assertMatch(lines[0] ?? "", new RegExp(`^${ISO} permissions kept: net; `));
  assertMatch(
    lines[1] ?? "",
    new RegExp(`^${ISO} connected to tcp 127\\.0\\.0\\.1:${server.port}$`),
  );
  assertMatch(lines[2] ?? "", new RegExp(`^${ISO} reply 1 of 2: 2 B$`));
  assertMatch(lines[3] ?? "", new RegExp(`^${ISO} reply 2 of 2: 2 B$`));
});

Deno.test("client -v in UDP pipe mode logs where it sends from and each datagram received", async () => {
  await using server = await startServer(["-u", "--host", "127.0.0.1"]);
  const result = await runNetkit(
    ["client", "-u", "-v", "--timeout", "300ms", "127.0.0.1", String(server.port)],
    { stdin: "ping" },
  );
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.text, "ping");
  assertMatch(
    result.stderr,
    new RegExp(
      `^${ISO} sending to udp 127\\.0\\.0\\.1:${server.port} from 0\\.0\\.0\\.0:\\d+$`,
      "m",
    ),
  );
  assertMatch(
    result.stderr,
    new RegExp(`^${ISO} received 4 B from 127\\.0\\.0\\.1:${server.port}$`, "m"),
  );
});

// --- 16: nc, ncat and iperf3 flags -------------------------------------------------

Deno.test("'netkit server -u -v PORT' serves UDP echo on the port given as its argument, logging each peer once", async () => {
  const server = await startServer(["-u", "-v", "--host", "127.0.0.1", "0"], { addPort: false });
  let result;
  try {
    assertMatch(server.lines[0] ?? "", /^listening on udp 127\.0\.0\.1:\d+$/);
    result = await runNetkit([
      "client",
      "-u",
      "--message",
      "ping",
      "--count",
      "2",
      `127.0.0.1:${server.port}`,
    ]);
  } finally {
    const { stderr } = await server.stop();
    const peers = stderr.match(
      new RegExp(`^${ISO} first datagram from udp 127\\.0\\.0\\.1:\\d+$`, "gm"),
    );
    assertEquals(peers?.length, 1, stderr);
  }
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.text, "ping\nping\n");
});

Deno.test("'-s 127.0.0.2 --source-port P': the TCP server sees the client at 127.0.0.2:P", async () => {
  const server = await startServer(["--host", "127.0.0.1", "-v"]);
  const sourcePort = freeLocalPort("tcp");
  let result;
  try {
    result = await runNetkit([
      "client",
      "-s",
      "127.0.0.2",
      "--source-port",
      String(sourcePort),
      "--message",
      "hi",
      "127.0.0.1",
      String(server.port),
    ]);
  } finally {
    const { stderr } = await server.stop();
    assertMatch(stderr, new RegExp(`^${ISO} connect 127\\.0\\.0\\.2:${sourcePort}$`, "m"));
  }
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.text, "hi\n");
});

Deno.test("'-u -s 127.0.0.2 --source-port P': the UDP datagram comes from 127.0.0.2:P", async () => {
  const echo = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (echo.addr as Deno.NetAddr).port;
  const sourcePort = freeLocalPort("udp");
  const served = (async () => {
    const [data, from] = await echo.receive();
    await echo.send(data, from);
    return from as Deno.NetAddr;
  })();
  served.catch(() => {}); // awaited below; rejects only if the socket closes first
  let result;
  try {
    result = await runNetkit([
      "client",
      "-u",
      "--source",
      "127.0.0.2",
      "--source-port",
      String(sourcePort),
      "--message",
      "x",
      "--timeout",
      "5s",
      `127.0.0.1:${port}`,
    ]);
  } finally {
    if (result?.code !== 0) echo.close();
  }
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.text, "x\n");
  const from = await served;
  echo.close();
  assertEquals([from.hostname, from.port], ["127.0.0.2", sourcePort]);
});

Deno.test("'-4 localhost' reaches an IPv4 server; '-6 localhost' never does", async () => {
  await using server = await startServer(["--host", "127.0.0.1"]);
  const v4 = await runNetkit(["client", "-4", "--message", "hi", "localhost", String(server.port)]);
  assertEquals(v4.code, 0, v4.stderr);
  assertEquals(v4.text, "hi\n");
  const v6 = await runNetkit(["client", "-6", "--message", "hi", "localhost", String(server.port)]);
  // Not found (no IPv6 address for localhost here) or refused (::1, where nothing listens).
  assert(v6.code === 4 || v6.code === 3, `exit ${v6.code}: ${v6.stderr}`);
  assertEquals(v6.text, "");
});

Deno.test("UDP throughput without --bitrate runs at iperf3's 1 Mbit/s per stream and says so", async () => {
  await using server = await startServer(["--proto", "both", "--host", "127.0.0.1"]);
  const json = await runNetkit([
    "client",
    "--throughput",
    "-u",
    "-t",
    "1s",
    "-J",
    "127.0.0.1",
    String(server.port),
  ]);
  assertEquals(json.code, 0, json.stderr);
  const doc = JSON.parse(json.text);
  assertEquals(doc.bitrate_requested, 1_000_000);
  assertEquals(doc.bitrate_is_default, true);
  const sent = doc.up.sum_sent.bytes;
  // 1 Mbit/s for 1 s is 125,000 bytes; unlimited on loopback is hundreds of megabytes.
  assert(sent > 0 && sent <= 250_000, `sent ${sent} bytes in 1 s`);
  const text = await runNetkit([
    "client",
    "--throughput",
    "-u",
    "-t",
    "1s",
    "-i",
    "0",
    "127.0.0.1",
    String(server.port),
  ]);
  assertEquals(text.code, 0, text.stderr);
  assertStringIncludes(
    text.text.split("\n")[0] ?? "",
    "paced at 1.00 Mbit/s per stream (UDP's default, as iperf3's; -b 0 for unlimited)",
  );
});
