/**
 * End-to-end tests of how the real CLI fails: every error, whether a usage
 * mistake or a network failure, is exactly one `error: …` line on stderr, with
 * no stack trace and the documented exit code. Also checks `--help` and
 * `--version` of every command.
 *
 * @example
 * ```sh
 * deno test -q --no-prompt --allow-all --trace-leaks tests/cli_errors_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { COMMANDS, renderTopHelp } from "../lib/cli/spec.ts";
import { runNetkit, type RunResult, startServer } from "./support/cli.ts";
import { closedPort } from "./support/sockets.ts";

/**
 * Assert that `result` exited with `code` and printed exactly one stderr line,
 * `error: …`, with no stack trace and containing every fragment; stdout stays empty.
 */
function assertOneErrorLine(result: RunResult, code: number, ...fragments: string[]): string {
  const context = `stderr: ${JSON.stringify(result.stderr)}`;
  assertEquals(result.code, code, `exit code; ${context}`);
  assert(result.stderr.endsWith("\n"), `stderr ends with a newline; ${context}`);
  const lines = result.stderr.slice(0, -1).split("\n");
  assertEquals(lines.length, 1, `exactly one stderr line; ${context}`);
  const line = lines[0] ?? "";
  assert(line.startsWith("error: "), `starts with 'error: '; ${context}`);
  assert(!result.stderr.includes("    at "), `no stack trace; ${context}`);
  for (const fragment of fragments) {
    assert(line.includes(fragment), `mentions ${JSON.stringify(fragment)}; ${context}`);
  }
  assertEquals(result.text, "", "nothing on stdout");
  return line;
}

// --- usage errors: exit 2 ---------------------------------------------------

Deno.test("an unknown flag is a usage error naming the flag, exit 2", async () => {
  const result = await runNetkit(["client", "--bogus"]);
  assertOneErrorLine(result, 2, "'--bogus'", "(see 'netkit client --help')");
});

Deno.test("'--message' with no value is a usage error naming the flag, exit 2", async () => {
  const result = await runNetkit(["client", "--message"]);
  assertOneErrorLine(result, 2, "'--message'", "needs a value");
});

Deno.test("'--port' with no value is a usage error naming '--port', exit 2", async () => {
  const result = await runNetkit(["server", "--port"]);
  assertOneErrorLine(result, 2, "'--port'", "needs a value");
});

Deno.test("'--proto sctp' is a usage error naming the flag and value, exit 2", async () => {
  const result = await runNetkit(["server", "--proto", "sctp"]);
  assertOneErrorLine(result, 2, "'--proto'", "'sctp'", "(see 'netkit server --help')");
});

Deno.test("'--port 70000' is a usage error naming the flag and value, exit 2", async () => {
  const result = await runNetkit(["server", "--port", "70000"]);
  assertOneErrorLine(result, 2, "'--port'", "'70000'");
});

Deno.test("'--count -1' is a usage error naming the flag and value, exit 2", async () => {
  const result = await runNetkit(["client", "--message", "x", "--count", "-1"]);
  assertOneErrorLine(result, 2, "'--count'", "-1");
});

Deno.test("'--interval abc' is a usage error naming the flag and value, exit 2", async () => {
  const result = await runNetkit(["client", "--message", "x", "--interval", "abc"]);
  assertOneErrorLine(result, 2, "'--interval'", "'abc'");
});

Deno.test("an unknown command is a usage error naming it, exit 2", async () => {
  const result = await runNetkit(["frob"]);
  assertOneErrorLine(result, 2, "'frob'", "(see 'netkit --help')");
});

Deno.test("no command prints the usage on stdout and a usage error listing the commands, exit 2", async () => {
  const result = await runNetkit([]);
  assertOneErrorLine(
    { ...result, text: "" },
    2,
    "'server', 'client' or 'compare'",
    "(see 'netkit --help')",
  );
  assertEquals(result.text, `${renderTopHelp()}\n`);
});

Deno.test("conflicting flags are a usage error naming both, exit 2", async () => {
  const result = await runNetkit(["client", "--probe", "--message", "x"]);
  assertOneErrorLine(result, 2, "'--probe'", "'--message'");
});

// --- network errors ---------------------------------------------------------

Deno.test("a refused connection is one error line naming the target, exit 3", async () => {
  const port = closedPort();
  const result = await runNetkit(["client", "--message", "x", "127.0.0.1", String(port)]);
  assertOneErrorLine(result, 3, `127.0.0.1:${port}`, "refused");
});

Deno.test("a host name that does not resolve is one error line naming it, exit 4", async () => {
  const result = await runNetkit(["client", "--message", "x", "nonexistent.invalid", "5050"]);
  assertOneErrorLine(result, 4, "nonexistent.invalid", "not found");
});

Deno.test("a UDP host name that does not resolve is one error line naming it, exit 4", async () => {
  const result = await runNetkit([
    "client",
    "--proto",
    "udp",
    "--message",
    "x",
    "nonexistent.invalid",
    "5050",
  ]);
  assertOneErrorLine(result, 4, "nonexistent.invalid", "not found");
});

Deno.test("a server on a port already in use is one error line naming it, exit 6", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const result = await runNetkit(["server", "--host", "127.0.0.1", "--port", String(port)]);
    assertOneErrorLine(result, 6, `127.0.0.1:${port}`, "address already in use");
  } finally {
    listener.close();
  }
});

Deno.test("no UDP reply within '--timeout' is one error line naming the wait, exit 5", async () => {
  const silent = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const port = (silent.addr as Deno.NetAddr).port;
    const result = await runNetkit([
      "client",
      "--proto",
      "udp",
      "--message",
      "x",
      "--timeout",
      "300ms",
      `127.0.0.1:${port}`,
    ]);
    assertOneErrorLine(result, 5, `udp 127.0.0.1:${port}`, "300 ms");
  } finally {
    silent.close();
  }
});

Deno.test("no reply from a UDP discard server within '--timeout' is one error line, exit 5", async () => {
  await using server = await startServer([
    "--proto",
    "udp",
    "--host",
    "127.0.0.1",
    "--mode",
    "discard",
  ]);
  const result = await runNetkit([
    "client",
    "--proto",
    "udp",
    "--message",
    "x",
    "--timeout",
    "300ms",
    "127.0.0.1",
    String(server.port),
  ]);
  assertOneErrorLine(result, 5, `udp 127.0.0.1:${server.port}`, "No reply");
});

// --- help and version ---------------------------------------------------------

for (const [name, spec] of Object.entries(COMMANDS)) {
  Deno.test(`'netkit ${name} --help' exits 0 and shows every flag and its defaults`, async () => {
    const result = await runNetkit([name, "--help"]);
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.stderr, "");
    assert(result.text.startsWith(`Usage: netkit ${name}`), result.text);
    for (const flag of Object.keys(spec.flags)) {
      assertMatch(result.text, new RegExp(`--${flag}\\b`), `help shows --${flag}`);
    }
    assert(result.text.includes("default"), "help shows defaults");
  });
}

Deno.test("'netkit --help' exits 0 and lists every command", async () => {
  const result = await runNetkit(["--help"]);
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.stderr, "");
  for (const name of Object.keys(COMMANDS)) assert(result.text.includes(`  ${name} `), name);
});

Deno.test("'netkit --version' prints 'netkit 0.1.0' and exits 0", async () => {
  const result = await runNetkit(["--version"]);
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.text, "netkit 0.1.0\n");
  assertEquals(result.stderr, "");
});
