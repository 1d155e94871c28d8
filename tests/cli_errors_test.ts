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
import { parseCommandLine } from "../lib/cli/parse.ts";
import { COMMANDS, type FlagSpec, renderTopHelp } from "../lib/cli/spec.ts";
import type { CompareConfig, MessageConfig, ProbeConfig } from "../lib/config.ts";
import {
  NETKIT_RUN,
  ROOT_DIR,
  runNetkit,
  type RunResult,
  skipWithout,
  startServer,
} from "./support/cli.ts";
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
    "'server', 'client', 'compare', 'relay' or 'scan'",
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
    for (const [flag, flagSpec] of Object.entries(spec.flags) as [string, FlagSpec][]) {
      if (flagSpec.hidden) continue; // internal, e.g. --lab-inside
      assertMatch(result.text, new RegExp(`--${flag}\\b`), `help shows --${flag}`);
    }
    if (Object.values(spec.flags).some((f: FlagSpec) => f.default !== undefined)) {
      assert(result.text.includes("default"), "help shows defaults");
    }
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

// --- help tells the truth, at a readable width ----------------------------------

/** The help line (with its wrapped continuation) of `--flag` in `netkit COMMAND --help`. */
async function helpOf(command: string, flag: string): Promise<string> {
  const result = await runNetkit([command, "--help"]);
  assertEquals(result.code, 0, result.stderr);
  const lines = result.text.split("\n");
  const at = lines.findIndex((l) => new RegExp(`^\\s+(-\\w, )?--${flag}\\b`).test(l));
  assert(at >= 0, `no --${flag} in:\n${result.text}`);
  const entry = [lines[at]!];
  for (const line of lines.slice(at + 1)) {
    if (!/^ {8,}\S/.test(line)) break; // continuations sit under the help column
    entry.push(line);
  }
  return entry.map((l) => l.trim()).join(" ");
}

Deno.test("'compare --help' states the --count and --timeout compare really uses", async () => {
  const count = await helpOf("compare", "count");
  const custom = parseCommandLine(["compare", "127.0.0.1", "5050"]) as CompareConfig;
  assertEquals(custom.workload?.count, 10_000);
  assertMatch(count, /\(default: 10000\b/, count);
  const timeout = await helpOf("compare", "timeout");
  assertEquals(custom.workload?.timeoutMs, 2000);
  assertMatch(timeout, /\(default: 2s\b/, timeout);
});

Deno.test("'client --help' states --timeout per mode: 2s for probes, 5s otherwise", async () => {
  const timeout = await helpOf("client", "timeout");
  const probe = parseCommandLine(["client", "--probe"]) as ProbeConfig;
  const message = parseCommandLine(["client", "--message", "x"]) as MessageConfig;
  assertEquals(probe.workload.timeoutMs, 2000);
  assertEquals(message.timeoutMs, 5000);
  assertMatch(timeout, /default: 5s; 2s with --probe\)/, timeout);
  const count = await helpOf("client", "count");
  assertEquals(probe.workload.count, 1000);
  assertMatch(count, /default: 1 with --message, 1000 with --probe\)/, count);
});

Deno.test("every help text fits 80 columns when stdout is not a terminal", async () => {
  for (const args of [["--help"], ...Object.keys(COMMANDS).map((name) => [name, "--help"])]) {
    const result = await runNetkit(args);
    assertEquals(result.code, 0, result.stderr);
    for (const line of result.text.split("\n")) {
      assert(line.length <= 80, `'netkit ${args.join(" ")}': ${line.length} columns: ${line}`);
    }
  }
});

// --- addresses and names ----------------------------------------------------------

Deno.test("'256.1.1.1' is not a valid address (exit 2), not a host name that was not found", async () => {
  for (
    const args of [["client", "--message", "x", "256.1.1.1", "5050"], [
      "server",
      "--host",
      "256.1.1.1",
    ]]
  ) {
    const result = await runNetkit(args);
    const line = assertOneErrorLine(result, 2, "'256.1.1.1' is not a valid address");
    assert(!/not found/.test(line), line);
  }
});

Deno.test("compare resolves its target before printing anything: a bad name is one error line, exit 4", async () => {
  const result = await runNetkit(["compare", "nonexistent.invalid", "5050"]);
  assertOneErrorLine(result, 4, "nonexistent.invalid", "not found");
});

Deno.test({
  name: "help wraps to the terminal's width when stdout is a terminal (a 60-column pty)",
  ignore: skipWithout("script", "stty"),
  async fn() {
    const netkit = [Deno.execPath(), ...NETKIT_RUN, "compare", "--help"].join(" ");
    const { code, stdout } = await new Deno.Command("script", {
      args: ["-qec", `stty cols 60; ${netkit}`, "/dev/null"],
      cwd: ROOT_DIR,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(code, 0);
    const lines = new TextDecoder().decode(stdout).replaceAll("\r", "").trimEnd().split("\n");
    assert(lines.length > 10, lines.join("\n"));
    for (const line of lines) assert(line.length <= 60, `${line.length} columns: ${line}`);
    assert(lines.some((l) => l.length > 50), "it uses the width it has");
  },
});
