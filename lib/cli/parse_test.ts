/**
 * Tests for the command-line parser: the defaults of every command, every
 * way of naming a target, the flag conflicts, and that every bad value is a
 * usage error naming the flag and pointing at the command's `--help`.
 *
 * @example
 * ```sh
 * deno test lib/cli/parse_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import type {
  ClientConfig,
  CompareConfig,
  Config,
  MessageConfig,
  PipeConfig,
  ProbeConfig,
  ScanConfig,
  ServerConfig,
} from "../config.ts";
import { NetkitError } from "../errors.ts";
import { parseCommandLine } from "./parse.ts";
import { COMMANDS, renderHelp, renderTopHelp, VERSION } from "./spec.ts";

function server(argv: string[]): ServerConfig {
  const config: Config = parseCommandLine(["server", ...argv]);
  assertEquals(config.command, "server");
  return config as ServerConfig;
}

function client<A extends ClientConfig["action"]>(
  action: A,
  argv: string[],
): Extract<ClientConfig, { action: A }> {
  const config: Config = parseCommandLine(["client", ...argv]);
  assertEquals(config.command, "client");
  assertEquals((config as ClientConfig).action, action);
  return config as Extract<ClientConfig, { action: A }>;
}

function compare(argv: string[]): CompareConfig {
  const config: Config = parseCommandLine(["compare", ...argv]);
  assertEquals(config.command, "compare");
  return config as CompareConfig;
}

/**
 * Assert that parsing `argv` throws a usage NetkitError whose message contains
 * every fragment and ends with the `--help` hint of `argv[0]` (or of netkit).
 */
function assertUsage(argv: string[], ...fragments: string[]): NetkitError {
  const command = argv[0] !== undefined && Object.hasOwn(COMMANDS, argv[0]) ? argv[0] : undefined;
  const hint = command ? `(see 'netkit ${command} --help')` : "(see 'netkit --help')";
  let caught: unknown;
  try {
    parseCommandLine(argv);
  } catch (err) {
    caught = err;
  }
  assert(caught !== undefined, `expected ${JSON.stringify(argv)} to be rejected`);
  assert(caught instanceof NetkitError, `expected a NetkitError, got ${caught}`);
  assertEquals(caught.kind, "usage");
  assertEquals(caught.exitCode, 2);
  for (const fragment of fragments) {
    assert(
      caught.message.includes(fragment),
      `message ${JSON.stringify(caught.message)} should mention ${JSON.stringify(fragment)}`,
    );
  }
  assert(
    caught.message.endsWith(hint),
    `message ${JSON.stringify(caught.message)} should end with ${hint}`,
  );
  assert(!caught.message.includes("\n"), "a usage error is one line");
  return caught;
}

// --- help and version -------------------------------------------------------

Deno.test("'--version' and '-V' return the version as text", () => {
  assertEquals(parseCommandLine(["--version"]), { command: "text", text: `netkit ${VERSION}` });
  assertEquals(parseCommandLine(["-V"]), { command: "text", text: "netkit 0.1.0" });
});

Deno.test("'--help', '-h' and 'help' return the top-level help as text", () => {
  for (const arg of ["--help", "-h", "help"]) {
    assertEquals(parseCommandLine([arg]), { command: "text", text: renderTopHelp() });
  }
});

Deno.test("'COMMAND --help' and '-h' return that command's help as text", () => {
  for (const [name, spec] of Object.entries(COMMANDS)) {
    for (const flag of ["--help", "-h"]) {
      assertEquals(parseCommandLine([name, flag]), { command: "text", text: renderHelp(spec) });
    }
  }
});

Deno.test("'--help' wins over a bad flag value given with it", () => {
  assertEquals(parseCommandLine(["client", "--proto", "sctp", "--help"]), {
    command: "text",
    text: renderHelp(COMMANDS.client),
  });
});

// --- commands ---------------------------------------------------------------

Deno.test("no command is a usage error pointing at 'netkit --help'", () => {
  assertUsage([], "Missing command", "'server', 'client', 'compare', 'relay' or 'scan'");
});

Deno.test("an unknown command is a usage error naming it", () => {
  assertUsage(["frob"], "Unknown command 'frob'");
  assertUsage(["toString"], "Unknown command 'toString'");
});

// --- server -----------------------------------------------------------------

Deno.test("server defaults: TCP echo on 0.0.0.0:5050, 1024 connections, no idle timeout", () => {
  assertEquals(server([]), {
    command: "server",
    endpoints: [{ transport: "tcp", hostname: "0.0.0.0", port: 5050 }],
    mode: "echo",
    maxConns: 1024,
    idleTimeoutMs: 0,
    once: false,
    verbose: false,
    allow: [],
    deny: [],
    rateLimit: 0,
    firstByteTimeoutMs: 30_000,
    drainTimeoutMs: 5_000,
    tlsHandshakeTimeoutMs: 10_000,
    tls: undefined,
    maxTestMemory: 256 * 1024 * 1024,
    allowUdpFromAnyIp: false,
  });
});

Deno.test("server security flags: --allow/--deny repeat, --rate-limit, timeouts and TLS files are read", () => {
  const config = server([
    "--proto",
    "both",
    "--allow",
    "10.0.0.0/8",
    "--allow",
    "::1",
    "--deny",
    "10.0.0.66",
    "--rate-limit",
    "500",
    "--first-byte-timeout",
    "2s",
    "--drain-timeout",
    "250ms",
    "--tls",
    "--cert",
    "c.pem",
    "--key",
    "k.pem",
  ]);
  assertEquals(config.allow.map((c) => c.text), ["10.0.0.0/8", "::1"]);
  assertEquals(config.deny.map((c) => c.text), ["10.0.0.66"]);
  assertEquals(config.rateLimit, 500);
  assertEquals(config.firstByteTimeoutMs, 2000);
  assertEquals(config.drainTimeoutMs, 250);
  assertEquals(config.tls, { certFile: "c.pem", keyFile: "k.pem" });
});

Deno.test("server security flag mistakes are usage errors naming the flag", () => {
  assertUsage(["server", "--allow", "10.0.0.0/33"], "--allow");
  assertUsage(["server", "--deny", "not-an-ip"], "--deny");
  assertUsage(["server", "--tls", "--cert", "c.pem"], "--key");
  assertUsage(["server", "--cert", "c.pem"], "--tls");
  assertUsage(["server", "--proto", "udp", "--tls", "--cert", "c", "--key", "k"], "--tls");
  assertUsage(["server", "--path", "/tmp/nk.sock", "--rate-limit", "10"], "--rate-limit");
  assertUsage(["server", "--proto", "udp", "--rate-limit", "0.5"], "--rate-limit");
});

Deno.test("server --max-test-memory reads bytes, KiB, MiB and GiB; --allow-udp-from-any-ip is off unless given", () => {
  assertEquals(server(["--max-test-memory", "64MiB"]).maxTestMemory, 64 * 1024 * 1024);
  assertEquals(server(["--max-test-memory", "1GiB"]).maxTestMemory, 1024 ** 3);
  assertEquals(server(["--max-test-memory", "2048KiB"]).maxTestMemory, 2 * 1024 * 1024);
  assertEquals(server(["--max-test-memory", "1048576"]).maxTestMemory, 1024 * 1024);
  assertEquals(server(["--allow-udp-from-any-ip"]).allowUdpFromAnyIp, true);
  assertEquals(server(["--rate-limit", "10"]).rateLimit, 10); // a TCP server's test UDP ports
  for (const bad of ["0", "12", "1MB", "-5MiB", "lots", "1TiB"]) {
    assertUsage(["server", "--max-test-memory", bad], "--max-test-memory", bad);
  }
});

Deno.test("server '--proto both' gives a TCP and a UDP endpoint on one port", () => {
  assertEquals(server(["--proto", "both", "--host", "127.0.0.1", "--port", "0"]).endpoints, [
    { transport: "tcp", hostname: "127.0.0.1", port: 0 },
    { transport: "udp", hostname: "127.0.0.1", port: 0 },
  ]);
});

Deno.test("server flags and short forms are all read", () => {
  assertEquals(
    server([
      "--proto",
      "udp",
      "--host",
      "::",
      "-p",
      "6000",
      "--mode",
      "discard",
      "-m",
      "10",
      "--idle-timeout",
      "1.5s",
      "-v",
    ]),
    {
      command: "server",
      endpoints: [{ transport: "udp", hostname: "::", port: 6000 }],
      mode: "discard",
      maxConns: 10,
      idleTimeoutMs: 1500,
      once: false,
      verbose: true,
      allow: [],
      deny: [],
      rateLimit: 0,
      firstByteTimeoutMs: 30_000,
      drainTimeoutMs: 5_000,
      tlsHandshakeTimeoutMs: 10_000,
      tls: undefined,
      maxTestMemory: 256 * 1024 * 1024,
      allowUdpFromAnyIp: false,
    },
  );
  assertEquals(server(["--once"]).once, true);
  assertEquals(server(["--mode", "chat"]).mode, "chat");
});

Deno.test("server '--path' implies a Unix socket", () => {
  assertEquals(server(["--path", "/tmp/nk.sock"]).endpoints, [
    { transport: "unix", path: "/tmp/nk.sock" },
  ]);
  assertEquals(server(["-U", "/tmp/nk.sock", "--proto", "unix"]).endpoints, [
    { transport: "unix", path: "/tmp/nk.sock" },
  ]);
});

Deno.test("server Unix socket conflicts are usage errors naming the flags", () => {
  assertUsage(["server", "--proto", "unix"], "'--proto unix' needs '--path SOCKET'");
  assertUsage(["server", "--path", "/tmp/s", "--host", "::1"], "'--path'", "'--host'");
  assertUsage(["server", "--path", "/tmp/s", "--port", "1"], "'--path'", "'--port'");
  assertUsage(["server", "--proto", "tcp", "--path", "/tmp/s"], "'--path'", "'--proto tcp'");
});

Deno.test("server mode and transport conflicts are usage errors", () => {
  assertUsage(["server", "--mode", "chat", "--proto", "udp"], "'--mode chat'");
  assertUsage(["server", "--mode", "chat", "--proto", "both"], "'--mode chat'");
  assertUsage(["server", "--once", "--proto", "udp"], "'--once'");
});

Deno.test("server takes no positional arguments", () => {
  assertUsage(["server", "127.0.0.1"], "Unexpected argument '127.0.0.1'");
});

Deno.test("'--proto sctp' is a usage error naming the flag and the choices", () => {
  assertUsage(["server", "--proto", "sctp"], "'sctp'", "'--proto'", "tcp, udp, unix, both");
  assertUsage(["client", "--proto", "sctp"], "'sctp'", "'--proto'", "tcp, udp, unix");
  assertUsage(["client", "--proto", "both"], "'both'", "'--proto'");
});

Deno.test("'--port 70000' is a usage error naming the flag", () => {
  assertUsage(["server", "--port", "70000"], "'70000'", "'--port'", "0 to 65535");
  assertUsage(["client", "--port", "70000"], "'70000'", "'--port'");
  assertUsage(["client", "127.0.0.1:70000"], "'70000'", "'--port'");
  assertUsage(["server", "--port", "http"], "'http'", "'--port'");
});

Deno.test("server '--mode', '--max-conns' and '--idle-timeout' reject bad values, naming the flag", () => {
  assertUsage(["server", "--mode", "loud"], "'loud'", "'--mode'", "echo, discard, chat");
  assertUsage(["server", "--max-conns", "0"], "'0'", "'--max-conns'");
  assertUsage(["server", "--max-conns", "1e3"], "'1e3'", "'--max-conns'");
  assertUsage(["server", "--idle-timeout", "soon"], "'soon'", "'--idle-timeout'");
  assertUsage(["server", "--host", "a b"], "'a b'", "'--host'");
});

// --- client: targets --------------------------------------------------------

Deno.test("client defaults: pipe to tcp 127.0.0.1:5050 with a 5 s timeout", () => {
  assertEquals(
    client("pipe", []),
    {
      command: "client",
      action: "pipe",
      endpoint: { transport: "tcp", hostname: "127.0.0.1", port: 5050 },
      tls: undefined,
      timeoutMs: 5000,
      verbose: false,
    } satisfies PipeConfig,
  );
});

Deno.test("client 'HOST PORT' sets both", () => {
  assertEquals(client("pipe", ["example.com", "7"]).endpoint, {
    transport: "tcp",
    hostname: "example.com",
    port: 7,
  });
});

Deno.test("client 'HOST' alone keeps the default port", () => {
  assertEquals(client("pipe", ["10.0.0.1"]).endpoint, {
    transport: "tcp",
    hostname: "10.0.0.1",
    port: 5050,
  });
});

Deno.test("client 'HOST:PORT' splits host and port", () => {
  assertEquals(client("pipe", ["127.0.0.1:6000"]).endpoint, {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 6000,
  });
});

Deno.test("client '[::1]:PORT' is an IPv6 host with a port", () => {
  assertEquals(client("pipe", ["--proto", "udp", "[::1]:6000"]).endpoint, {
    transport: "udp",
    hostname: "::1",
    port: 6000,
  });
});

Deno.test("client bare '::1' is an IPv6 host, not HOST:PORT", () => {
  assertEquals(client("pipe", ["::1"]).endpoint, {
    transport: "tcp",
    hostname: "::1",
    port: 5050,
  });
  assertEquals(client("pipe", ["::1", "6000"]).endpoint, {
    transport: "tcp",
    hostname: "::1",
    port: 6000,
  });
});

Deno.test("client '--host' and '--port' flags set the target", () => {
  assertEquals(client("pipe", ["--host", "::1", "-p", "6000"]).endpoint, {
    transport: "tcp",
    hostname: "::1",
    port: 6000,
  });
  assertEquals(client("pipe", ["localhost", "--port", "6000"]).endpoint, {
    transport: "tcp",
    hostname: "localhost",
    port: 6000,
  });
});

Deno.test("client '--host' plus a positional host is a usage error naming both", () => {
  assertUsage(["client", "--host", "a", "b"], "'b'", "'--host a'");
});

Deno.test("client port given twice is a usage error naming both", () => {
  assertUsage(["client", "a:1", "2"], "'a:1'", "'2'");
  assertUsage(["client", "a:1", "--port", "2"], "'a:1'", "'--port 2'");
  assertUsage(["client", "a", "1", "--port", "2"], "'1'", "'--port 2'");
});

Deno.test("client with a third positional argument is a usage error naming it", () => {
  assertUsage(["client", "a", "1", "extra"], "Unexpected argument 'extra'");
});

Deno.test("client unbalanced brackets or an empty host are usage errors naming '--host'", () => {
  assertUsage(["client", "[::1"], "'[::1'", "'--host'");
  assertUsage(["client", "[::1]6000"], "'[::1]6000'", "'--host'");
  assertUsage(["client", ":6000"], "''", "'--host'");
  assertUsage(["client", "host:"], "''", "'--port'");
});

Deno.test("client '--path' implies a Unix socket", () => {
  assertEquals(client("pipe", ["--path", "/tmp/nk.sock"]).endpoint, {
    transport: "unix",
    path: "/tmp/nk.sock",
  });
  assertEquals(client("message", ["-U", "/tmp/nk.sock", "--message", "hi"]).endpoint, {
    transport: "unix",
    path: "/tmp/nk.sock",
  });
});

Deno.test("client Unix socket conflicts are usage errors naming the flags", () => {
  assertUsage(["client", "--proto", "unix"], "'--proto unix' needs '--path SOCKET'");
  assertUsage(["client", "--path", "/tmp/s", "--host", "h"], "'--path'", "'--host'");
  assertUsage(["client", "--path", "/tmp/s", "--port", "1"], "'--path'", "'--port'");
  assertUsage(["client", "--path", "/tmp/s", "127.0.0.1"], "Unexpected argument '127.0.0.1'");
  assertUsage(["client", "--proto", "udp", "--path", "/tmp/s"], "'--path'", "'--proto udp'");
});

// --- client: message ----------------------------------------------------------

Deno.test("client '--message' defaults: one message, no interval, one connection", () => {
  assertEquals(
    client("message", ["--message", "hi"]),
    {
      command: "client",
      action: "message",
      endpoint: { transport: "tcp", hostname: "127.0.0.1", port: 5050 },
      tls: undefined,
      message: new TextEncoder().encode("hi"),
      count: 1,
      intervalMs: 0,
      connections: 1,
      timeoutMs: 5000,
      verbose: false,
    } satisfies MessageConfig,
  );
});

Deno.test("client '--message' reads count, interval, connections, timeout and verbose", () => {
  const config = client("message", [
    "--proto",
    "udp",
    "[::1]:6000",
    "--message",
    "ping",
    "--count",
    "3",
    "--interval",
    "200ms",
    "-c",
    "4",
    "-w",
    "2",
    "-v",
  ]);
  assertEquals(config.endpoint, { transport: "udp", hostname: "::1", port: 6000 });
  assertEquals(new TextDecoder().decode(config.message), "ping");
  assertEquals(config.count, 3);
  assertEquals(config.intervalMs, 200);
  assertEquals(config.connections, 4);
  assertEquals(config.timeoutMs, 2000);
  assertEquals(config.verbose, true);
});

Deno.test("client '--count', '--interval' and '--connections' without '--message' are usage errors", () => {
  assertUsage(["client", "--count", "3"], "'--count' needs '--message'");
  assertUsage(["client", "--interval", "1s"], "'--interval' needs '--message'");
  assertUsage(["client", "--connections", "3"], "'--connections' needs '--message'");
});

Deno.test("client empty '--message' is a usage error naming the flag", () => {
  assertUsage(["client", "--message", ""], "'--message'");
});

Deno.test("client UDP '--message' longer than one datagram is a usage error naming the flag", () => {
  assertUsage(["client", "--proto", "udp", "--message", "x".repeat(65508)], "'--message'", "65507");
});

Deno.test("'--count -1' is a usage error naming the flag", () => {
  assertUsage(["client", "--message", "x", "--count", "-1"], "'--count'");
});

Deno.test("'--count -1' names the rejected value '-1' rather than claiming no value was given", () => {
  assertUsage(["client", "--message", "x", "--count", "-1"], "'--count'", "'-1'");
});

Deno.test("'--count=-1', '--count 0' and '--count 1.5' are usage errors naming flag and value", () => {
  assertUsage(["client", "--message", "x", "--count=-1"], "'-1'", "'--count'", "1 or more");
  assertUsage(["client", "--message", "x", "--count", "0"], "'0'", "'--count'");
  assertUsage(["client", "--message", "x", "--count", "1.5"], "'1.5'", "'--count'");
  assertUsage(["client", "--message", "x", "--count", "ten"], "'ten'", "'--count'");
});

Deno.test("'--interval abc' is a usage error naming the flag and the duration forms", () => {
  assertUsage(["client", "--message", "x", "--interval", "abc"], "'abc'", "'--interval'", "500ms");
});

Deno.test("client '--timeout' and '--connections' reject bad values, naming the flag", () => {
  assertUsage(["client", "--timeout", "forever"], "'forever'", "'--timeout'");
  assertUsage(["client", "--timeout=-1s"], "'-1s'", "'--timeout'");
  assertUsage(["client", "--message", "x", "--connections", "0"], "'0'", "'--connections'");
  assertUsage(["client", "--message", "x", "-c", "100001"], "'100001'", "'--connections'");
});

// --- client: probe ------------------------------------------------------------

Deno.test("client '--probe' defaults: 1000 probes at 1000/s, 64 bytes, 2 s wait, text", () => {
  assertEquals(
    client("probe", ["--probe"]),
    {
      command: "client",
      action: "probe",
      endpoint: { transport: "tcp", hostname: "127.0.0.1", port: 5050 },
      workload: {
        count: 1000,
        durationMs: undefined,
        rate: 1000,
        size: 64,
        timeoutMs: 2000,
        intervalMs: 1000,
        outstanding: 0,
      },
      output: "text",
      maxLossPercent: undefined,
      engine: "auto",
    } satisfies ProbeConfig,
  );
});

Deno.test("client '--probe' reads every probe flag", () => {
  const config = client("probe", [
    "--probe",
    "--proto",
    "udp",
    "127.0.0.1",
    "6000",
    "--duration",
    "5s",
    "--rate",
    "2.5",
    "--size",
    "1400",
    "--outstanding",
    "1",
    "--interval-report",
    "0",
    "--timeout",
    "500ms",
    "--json-stream",
  ]);
  assertEquals(config.endpoint, { transport: "udp", hostname: "127.0.0.1", port: 6000 });
  assertEquals(config.workload, {
    count: undefined,
    durationMs: 5000,
    rate: 2.5,
    size: 1400,
    timeoutMs: 500,
    intervalMs: 0,
    outstanding: 1,
  });
  assertEquals(config.output, "json-stream");
  assertEquals(client("probe", ["--probe", "--json"]).output, "json");
});

Deno.test("client '--probe' with '--message' is a usage error naming both", () => {
  assertUsage(["client", "--probe", "--message", "x"], "'--probe' and '--message'");
});

Deno.test("client '--probe' with '--connections' or '--interval' is a usage error naming both", () => {
  assertUsage(["client", "--probe", "--connections", "2"], "'--probe' and '--connections'");
  assertUsage(["client", "--probe", "--interval", "1s"], "'--probe' and '--interval'");
});

Deno.test("client '--probe' over a Unix socket is a usage error", () => {
  assertUsage(["client", "--probe", "--path", "/tmp/s"], "'--probe'", "TCP or UDP");
});

Deno.test("client '--json' without '--probe' is a usage error naming both", () => {
  assertUsage(["client", "--json"], "'--json' needs '--probe'");
  for (
    const flag of ["--json-stream", "--duration=1s", "--rate=1", "--size=64", "--outstanding=1"]
  ) {
    const name = flag.replace(/=.*/, "");
    assertUsage(["client", "--message", "x", flag], `'${name}' needs '--probe'`);
  }
});

Deno.test("client '--json' with '--json-stream' is a usage error naming both", () => {
  assertUsage(["client", "--probe", "--json", "--json-stream"], "'--json' and '--json-stream'");
});

Deno.test("client '--count' with '--duration' is a usage error naming both", () => {
  assertUsage(
    ["client", "--probe", "--count", "3", "--duration", "2s"],
    "'--count' and '--duration'",
  );
});

Deno.test("client probe workload values out of range are usage errors naming the flag", () => {
  assertUsage(["client", "--probe", "--duration", "0"], "'0'", "'--duration'", "more than 0");
  assertUsage(["client", "--probe", "--size", "23"], "'23'", "'--size'", "24 to 65507");
  assertUsage(["client", "--probe", "--size", "65508"], "'65508'", "'--size'");
  assertUsage(["client", "--probe", "--rate", "fast"], "'fast'", "'--rate'");
  assertUsage(["client", "--probe", "--rate=-5"], "'-5'", "'--rate'");
  assertUsage(["client", "--probe", "--outstanding", "x"], "'x'", "'--outstanding'");
  assertUsage(["client", "--probe", "--interval-report", "1y"], "'1y'", "'--interval-report'");
});

// --- compare ------------------------------------------------------------------

Deno.test("compare with no arguments runs the embedded demo: no target, no workload", () => {
  assertEquals(compare([]), {
    command: "compare",
    target: undefined,
    workload: undefined,
    intervalMs: undefined,
    output: "text",
    maxLossPercent: undefined,
    engine: "auto",
  });
  assertEquals(compare(["--json"]).output, "json");
  assertEquals(compare(["--interval-report", "200ms"]).intervalMs, 200);
});

Deno.test("compare 'HOST PORT' gets a target and the default workload of 10,000 probes", () => {
  assertEquals(compare(["127.0.0.1", "6000"]), {
    command: "compare",
    target: { hostname: "127.0.0.1", port: 6000 },
    workload: {
      count: 10_000,
      durationMs: undefined,
      rate: 1000,
      size: 64,
      timeoutMs: 2000,
      intervalMs: 1000,
      outstanding: 0,
    },
    intervalMs: undefined,
    output: "text",
    maxLossPercent: undefined,
    engine: "auto",
  });
});

Deno.test("compare 'HOST:PORT' and '[::1]:PORT' are accepted", () => {
  assertEquals(compare(["127.0.0.1:6000"]).target, { hostname: "127.0.0.1", port: 6000 });
  assertEquals(compare(["[::1]:6000"]).target, { hostname: "::1", port: 6000 });
  assertEquals(compare(["::1", "6000"]).target, { hostname: "::1", port: 6000 });
});

Deno.test("compare with a HOST but no PORT compares against port 5050", () => {
  assertEquals(compare(["127.0.0.1"]).target, { hostname: "127.0.0.1", port: 5050 });
  assertEquals(compare(["::1"]).target, { hostname: "::1", port: 5050 });
  assertEquals(compare(["::1"]).workload?.count, 10_000);
});

Deno.test("compare with tuning flags but no target gets a workload for the embedded server", () => {
  const config = compare(["--count", "50", "--rate", "0", "-w", "1s"]);
  assertEquals(config.target, undefined);
  assertEquals(config.workload?.count, 50);
  assertEquals(config.workload?.rate, 0);
  assertEquals(config.workload?.timeoutMs, 1000);
});

Deno.test("compare '--count' with '--duration' is a usage error naming both", () => {
  assertUsage(["compare", "--count", "3", "--duration", "2s"], "'--count' and '--duration'");
});

Deno.test("compare has no client-only flags", () => {
  assertUsage(["compare", "--message", "x"], "Unknown flag '--message'", "'netkit compare'");
  assertUsage(["compare", "--proto", "udp"], "Unknown flag '--proto'");
});

// --- flag syntax errors -------------------------------------------------------

Deno.test("an unknown flag is a usage error naming the flag and the command", () => {
  assertUsage(["client", "--bogus"], "Unknown flag '--bogus'", "'netkit client'");
  assertUsage(["server", "-x"], "Unknown flag '-x'", "'netkit server'");
  assertUsage(["server", "--probe"], "Unknown flag '--probe'");
});

Deno.test("a missing value is a usage error naming the flag", () => {
  assertUsage(["client", "--message"], "'--message' needs a value");
  assertUsage(["compare", "--duration"], "'--duration' needs a value");
});

Deno.test("a missing value of a flag with a short form names the long flag, not '-p,'", () => {
  assertUsage(["server", "--port"], "'--port' needs a value");
  assertUsage(["client", "-p"], "'--port'");
  assertUsage(["client", "--timeout"], "'--timeout' needs a value");
});

Deno.test("a boolean flag with a value is a usage error naming the flag", () => {
  assertUsage(["client", "--probe=yes"], "'--probe' takes no value");
  assertUsage(["server", "--once=1"], "'--once' takes no value");
});

Deno.test("a boolean flag with a short form and a value names the long flag, not '-v,'", () => {
  assertUsage(["client", "--verbose=yes"], "'--verbose' takes no value");
  assertUsage(["server", "--help=1"], "'--help' takes no value");
});

// --- nc, ncat and iperf3 habits -------------------------------------------------

Deno.test("'-i' is iperf3's --interval-report; the server's --idle-timeout has no short form", () => {
  assertEquals(client("probe", ["--probe", "-i", "250ms"]).workload.intervalMs, 250);
  assertEquals(compare(["-i", "2s"]).intervalMs, 2000);
  assertUsage(["server", "-i", "30s"], "Unknown flag '-i'");
});

Deno.test("'-J' is --json, as in iperf3", () => {
  assertEquals(client("probe", ["--probe", "-J"]).output, "json");
  assertEquals(compare(["-J"]).output, "json");
  assertUsage(["client", "--probe", "-J", "--json-stream"], "'--json' and '--json-stream'");
});

Deno.test("'-u' is --proto udp, for the client and the server, and disagrees with another --proto", () => {
  assertEquals(client("pipe", ["-u", "127.0.0.1", "7"]).endpoint, {
    transport: "udp",
    hostname: "127.0.0.1",
    port: 7,
  });
  assertEquals(client("probe", ["--probe", "-u"]).endpoint.transport, "udp");
  assertEquals(server(["-u"]).endpoints, [{ transport: "udp", hostname: "0.0.0.0", port: 5050 }]);
  assertEquals(server(["-u", "--proto", "udp"]).endpoints[0]?.transport, "udp");
  assertUsage(["client", "-u", "--proto", "tcp"], "'-u' and '--proto tcp' disagree");
  assertUsage(["server", "-u", "--proto", "both"], "'-u' and '--proto both' disagree");
  assertUsage(["client", "-u", "--path", "/tmp/s"], "'--udp' and '--path'");
});

Deno.test("'netkit server PORT' takes the port as its one argument", () => {
  assertEquals(server(["7"]).endpoints, [{ transport: "tcp", hostname: "0.0.0.0", port: 7 }]);
  assertEquals(server(["-u", "0"]).endpoints, [{ transport: "udp", hostname: "0.0.0.0", port: 0 }]);
  assertUsage(["server", "7", "--port", "8"], "Give the port once: '7' or '--port 8'");
  assertUsage(["server", "7", "8"], "Unexpected argument '8'");
  assertUsage(["server", "70000"], "Unexpected argument '70000'", "a port from 0 to 65535");
  assertUsage(["server", "--path", "/tmp/s", "7"], "Unexpected argument '7' with a Unix socket");
});

Deno.test("'-4' and '-6' force the family: client endpoints carry it, literals must match", () => {
  assertEquals(client("pipe", ["-4", "localhost", "7"]).endpoint, {
    transport: "tcp",
    hostname: "localhost",
    port: 7,
    family: 4,
  });
  assertEquals(client("probe", ["--probe", "-6", "-u"]).endpoint, {
    transport: "udp",
    hostname: "::1",
    port: 5050,
    family: 6,
  });
  assertEquals(client("throughput", ["--throughput", "-6", "::1"]).plan.endpoint.family, 6);
  assertUsage(["client", "-4", "::1"], "'-4' asks for IPv4 but the host '::1' is an IPv6 address");
  assertUsage(["client", "-6", "127.0.0.1"], "'-6' asks for IPv6", "IPv4 address");
  assertUsage(["client", "-4", "-6"], "'--ipv4' and '--ipv6'");
  assertUsage(["client", "-4", "--tls", "h"], "'--ipv4' and '--tls'");
});

Deno.test("server '-6' listens on :: by default and '-4' refuses an IPv6 --host", () => {
  assertEquals(server(["-6"]).endpoints[0], { transport: "tcp", hostname: "::", port: 5050 });
  assertEquals(server(["-4"]).endpoints[0], { transport: "tcp", hostname: "0.0.0.0", port: 5050 });
  assertUsage(["server", "-4", "--host", "::"], "'-4' asks for IPv4 but --host '::'");
  assertUsage(["server", "-6", "--path", "/tmp/s"], "'-6' is for IP");
});

Deno.test("'-s ADDR'/'--source' and '--source-port' bind the client's local side", () => {
  assertEquals(client("pipe", ["-s", "127.0.0.2", "--source-port", "4000", "127.0.0.1"]).endpoint, {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 5050,
    source: { hostname: "127.0.0.2", port: 4000 },
  });
  assertEquals(client("message", ["--message", "x", "-u", "--source-port", "0"]).endpoint, {
    transport: "udp",
    hostname: "127.0.0.1",
    port: 5050,
    source: { port: 0 },
  });
  assertEquals(client("probe", ["--probe", "--source", "::1", "::1"]).endpoint.source, {
    hostname: "::1",
  });
  assertEquals(
    client("throughput", ["--throughput", "-s", "127.0.0.1"]).plan.endpoint.source,
    { hostname: "127.0.0.1" },
  );
  assertUsage(["client", "-s", "myhost"], "'myhost'", "'--source'", "address of this host");
  assertUsage(["client", "--source-port", "x"], "'x'", "'--source-port'");
  assertUsage(["client", "-s", "::1", "127.0.0.1"], "--source '::1'", "IPv4 address");
  assertUsage(["client", "-4", "-s", "::1", "h"], "'-4' asks for IPv4 but --source '::1'");
  assertUsage(
    ["client", "--throughput", "--source-port", "4000"],
    "'--throughput' and '--source-port'",
  );
  assertUsage(["client", "--tls", "-s", "127.0.0.1"], "'--source' and '--tls'");
  assertUsage(
    ["client", "--message", "x", "-c", "2", "--source-port", "1"],
    "'--source-port'",
    "'--connections 1'",
  );
  assertUsage(["client", "--path", "/tmp/s", "--source-port", "1"], "'--source-port' and '--path'");
});

Deno.test("'--rate' takes k and M suffixes as --bitrate does", () => {
  assertEquals(client("probe", ["--probe", "--rate", "1k"]).workload.rate, 1000);
  assertEquals(client("probe", ["--probe", "--rate", "2.5k"]).workload.rate, 2500);
  assertEquals(compare(["--rate", "20k"]).workload?.rate, 20_000);
  assertEquals(client("probe", ["--probe", "--rate", "0"]).workload.rate, 0);
  assertUsage(["client", "--probe", "--rate", "1x"], "'1x'", "'--rate'");
});

Deno.test("UDP throughput without --bitrate is paced at 1 Mbit/s per stream and says it was the default", () => {
  const udp = client("throughput", ["--throughput", "-u"]).plan;
  assertEquals(udp.bitrate, 1_000_000);
  assertEquals(udp.bitrateIsDefault, true);
  const unlimited = client("throughput", ["--throughput", "-u", "-b", "0"]).plan;
  assertEquals(unlimited.bitrate, 0);
  assertEquals(unlimited.bitrateIsDefault, undefined);
  const tcp = client("throughput", ["--throughput"]).plan;
  assertEquals(tcp.bitrate, 0);
  assertEquals(tcp.bitrateIsDefault, undefined);
});

Deno.test("compare's impairment flags become an impairment and keep the arguments to re-run", () => {
  const config = parseCommandLine([
    "compare",
    "--loss",
    "2%",
    "--link-rate",
    "20M",
    "--count",
    "50",
  ]);
  assert(config.command === "compare");
  assertEquals(config.impairment, { lossPercent: 2, rateBps: 20e6 });
  assertEquals(config.labInside, false);
  assertEquals(config.argv, ["--loss", "2%", "--link-rate", "20M", "--count", "50"]);
  assertEquals(config.workload?.rate, 1000, "--rate stays the probe rate");
  const plain = parseCommandLine(["compare"]);
  assert(plain.command === "compare");
  assertEquals(plain.impairment, undefined);
});

Deno.test("lab takes impairments before '--' and a netkit command after it", () => {
  const config = parseCommandLine([
    "lab",
    "--loss",
    "5",
    "--delay",
    "20ms",
    "--jitter",
    "5ms",
    "--rate",
    "5M",
    "--",
    "client",
    "--probe",
    "--proto",
    "udp",
  ]);
  assertEquals(config, {
    command: "lab",
    impairment: { lossPercent: 5, delayMs: 20, jitterMs: 5, rateBps: 5e6 },
    args: ["client", "--probe", "--proto", "udp"],
    inside: false,
  });
});

Deno.test("bad impairments are usage errors naming the flag and the fix", () => {
  assertUsage(["compare", "--loss", "150%"], "'--loss'", "below 100");
  assertUsage(["compare", "--loss", "0"], "'--loss'", "above 0");
  assertUsage(["compare", "--jitter", "5ms"], "'--jitter' needs '--delay'");
  assertUsage(["compare", "--reorder", "5%"], "'--reorder' needs '--delay'");
  assertUsage(["compare", "--link-rate", "fast"], "'--link-rate'", "20M");
  assertUsage(["compare", "--delay", "0"], "'--delay'", "above 0");
  assertUsage(["compare", "--loss", "2%", "127.0.0.1", "5050"], "drop HOST and PORT");
  assertUsage(["lab", "--loss", "5%"], "after '--'");
  assertUsage(["lab", "--loss", "5%", "client"], "put '--' before the command");
  assertUsage(["lab", "--", "lab", "--", "client"], "Cannot run 'lab' in the lab");
  assertUsage(["lab", "--loss", "1", "--", "compare", "--loss", "2"], "Give the impairments once");
  // The command after '--' is checked up front, with its own help named.
  let inner: unknown;
  try {
    parseCommandLine(["lab", "--", "client", "--bogus"]);
  } catch (err) {
    inner = err;
  }
  assert(inner instanceof NetkitError && inner.exitCode === 2);
  assertEquals(
    inner.message,
    "Unknown flag '--bogus' for 'netkit client' (see 'netkit client --help')",
  );
});

Deno.test("--report and --no-chart become config fields on probe, throughput and compare, absent otherwise", () => {
  const probe = parseCommandLine(["client", "--probe", "-u", "::1", "--report", "a b.html"]);
  assert(probe.command === "client" && probe.action === "probe");
  assertEquals(probe.report, {
    path: "a b.html",
    commandLine: "netkit client --probe -u ::1 --report 'a b.html'",
  });
  const compare = parseCommandLine(["compare", "--no-chart"]);
  assert(compare.command === "compare");
  assertEquals(compare.noChart, true);
  assertEquals(compare.report, undefined);
  const throughput = parseCommandLine(["client", "--throughput", "--report", "t.html"]);
  assert(throughput.command === "client" && throughput.action === "throughput");
  assertEquals(throughput.report?.path, "t.html");
  assertEquals("noChart" in parseCommandLine(["compare"]), false);
});

Deno.test("--report needs a file name, and a measuring mode on client", () => {
  assertThrows(() => parseCommandLine(["compare", "--report", ""]), NetkitError, "--report");
  assertThrows(() => parseCommandLine(["compare", "--report", "dir/"]), NetkitError, "--report");
  assertThrows(
    () => parseCommandLine(["client", "--no-chart"]),
    NetkitError,
    "'--no-chart' needs '--probe' or '--throughput'",
  );
});

Deno.test("--iperf3: port 5201 by default, --omit and --iperf3-json carried; whole seconds only", () => {
  const c = client("throughput", ["--throughput", "--iperf3", "-O", "2s", "-J", "--iperf3-json"]);
  assertEquals(c.plan.endpoint.port, 5201);
  assertEquals(c.iperf3, { omitMs: 2000, json: true });
  assertEquals(client("throughput", ["--throughput", "127.0.0.1"]).iperf3, undefined);
  assertEquals(client("throughput", ["--throughput", "127.0.0.1"]).plan.endpoint.port, 5050);
  assertUsage(["client", "--throughput", "--iperf3", "-t", "1500ms"], "whole seconds");
  assertUsage(["client", "--throughput", "-O", "1"], "'--omit'", "'--iperf3'");
  assertUsage(
    ["client", "--throughput", "--iperf3", "--iperf3-json"],
    "'--iperf3-json' needs '--json'",
  );
  assertUsage(["client", "--iperf3", "127.0.0.1"], "'--iperf3'", "'--throughput'");
});

// --- --engine -------------------------------------------------------------------

Deno.test("--engine auto|deno|native reaches probe, throughput and compare; auto by default", () => {
  assertEquals(
    client("probe", ["--probe", "--proto", "udp", "--engine", "native"]).engine,
    "native",
  );
  assertEquals(
    client("throughput", ["--throughput", "--proto", "udp", "--engine", "deno"]).plan.engine,
    "deno",
  );
  assertEquals(client("throughput", ["--throughput"]).plan.engine, "auto");
  assertEquals(compare(["--engine", "deno"]).engine, "deno");
});

Deno.test("--engine reaches UDP --message and scan -u (auto by default); TCP messages and TCP scans take none", () => {
  assertEquals(client("message", ["-u", "--message", "hi", "--engine", "native"]).engine, "native");
  assertEquals(client("message", ["-u", "--message", "hi"]).engine, "auto");
  assertEquals(client("message", ["--message", "hi"]).engine, undefined);
  assertUsage(["client", "--message", "hi", "--engine", "deno"], "'--engine' needs");
  const scan = (argv: string[]) => parseCommandLine(["scan", ...argv]) as ScanConfig;
  assertEquals(scan(["-u", "127.0.0.1", "53", "--engine", "deno"]).engine, "deno");
  assertEquals(scan(["-u", "127.0.0.1", "53"]).engine, "auto");
  assertEquals(scan(["127.0.0.1", "22"]).engine, undefined);
  assertUsage(["scan", "127.0.0.1", "22", "--engine", "native"], "'--engine' moves UDP");
});

Deno.test("--engine takes only auto, deno or native, and only with --probe or --throughput", () => {
  assertUsage(
    ["client", "--probe", "--engine", "fast"],
    "'fast'",
    "--engine",
    "auto, deno, native",
  );
  assertUsage(["client", "--engine", "native"], "'--engine' needs '--probe' or '--throughput'");
});

Deno.test("'--max-loss PERCENT' gates probe and compare; bad values and other modes are usage errors", () => {
  assertEquals(client("probe", ["--probe", "--max-loss", "1.5"]).maxLossPercent, 1.5);
  assertEquals(client("probe", ["--probe", "--max-loss", "10%"]).maxLossPercent, 10);
  assertEquals(client("probe", ["--probe"]).maxLossPercent, undefined);
  assertEquals(compare(["--max-loss", "0"]).maxLossPercent, 0);
  assertEquals(compare(["--max-loss", "0"]).workload, undefined, "the demo still runs");
  assertUsage(["client", "--probe", "--max-loss", "101"], "'--max-loss'", "0 to 100");
  assertUsage(["client", "--probe", "--max-loss", "lots"], "'--max-loss'");
  assertUsage(["client", "--message", "hi", "--max-loss", "5"], "'--max-loss'", "'--probe'");
  assertUsage(["client", "--throughput", "--max-loss", "5"], "'--max-loss'");
});

Deno.test("relay: both directions by default, --up-/--down- override one, defaults per transport", () => {
  const udp = parseCommandLine([
    "relay",
    "udp:6000",
    "udp:[::1]:53",
    "--loss",
    "5%",
    "--down-loss",
    "1%",
    "--delay",
    "30ms",
    "--up-jitter",
    "10ms",
    "--rate",
    "1M",
    "--seed",
    "7",
  ]);
  assert(udp.command === "relay");
  assertEquals(udp.listen, { transport: "udp", hostname: "0.0.0.0", port: 6000 });
  assertEquals(udp.target, { transport: "udp", hostname: "::1", port: 53 });
  assertEquals(udp.up.loss, 0.05);
  assertEquals(udp.down.loss, 0.01);
  assertEquals([udp.up.delayMs, udp.down.delayMs], [30, 30]);
  assertEquals([udp.up.jitterMs, udp.down.jitterMs], [10, 0]);
  assertEquals(udp.up.rate, 1e6);
  assertEquals(udp.seed, 7);
  assertEquals(udp.idleTimeoutMs, 60_000);
  assertEquals(udp.queueBytes, 1 << 20);
  const tcp = parseCommandLine([
    "relay",
    "tls:8443",
    "tcp:127.0.0.1:8080",
    "--cert",
    "c.pem",
    "--key",
    "k.pem",
    "--reset-after",
    "10MB",
    "--down-close-after",
    "2s",
  ]);
  assert(tcp.command === "relay");
  assertEquals(tcp.tls, { certFile: "c.pem", keyFile: "k.pem" });
  assertEquals([tcp.up.resetAfter, tcp.down.resetAfter], [10_000_000, 10_000_000]);
  assertEquals([tcp.up.closeAfterMs, tcp.down.closeAfterMs], [undefined, 2000]);
  assertEquals([tcp.idleTimeoutMs, tcp.firstByteTimeoutMs], [0, 30_000]);
});

Deno.test("relay: impairments a transport cannot honour are usage errors", () => {
  assertUsage(["relay", "tcp:0", "tcp:127.0.0.1:80", "--loss", "1%"], "compare --loss");
  assertUsage(["relay", "tcp:0", "tcp:127.0.0.1:80", "--keep-order"], "always keeps order");
  assertUsage(["relay", "udp:0", "udp:127.0.0.1:53", "--stall-after", "1"], "TCP toxic");
  assertUsage(["relay", "tcp:0", "tcp:127.0.0.1:80", "--ca", "x"], "'tls:' TARGET");
  assertUsage(["relay", "tcp:0", "tcp:127.0.0.1:80", "--stall-after", "1", "--reset-after", "2"]);
});

Deno.test("scan: ports in the order given, defaults, -u, and bad values", () => {
  const config = parseCommandLine(["scan", "::1", "443,22,80-81"]);
  assert(config.command === "scan");
  assertEquals(config.ports, [443, 22, 80, 81]);
  assertEquals([config.proto, config.concurrency, config.rate, config.timeoutMs], [
    "tcp",
    100,
    0,
    1000,
  ]);
  const udp = parseCommandLine(["scan", "-u", "127.0.0.1", "53", "--payload", "hi", "-c", "5"]);
  assert(udp.command === "scan");
  assertEquals([udp.proto, udp.concurrency, new TextDecoder().decode(udp.payload)], [
    "udp",
    5,
    "hi",
  ]);
  assertUsage(["scan", "127.0.0.1", "1-70000"], "not a port");
  assertUsage(["scan", "127.0.0.1", "80", "--concurrency", "0"], "--concurrency");
  assertUsage(["scan", "127.0.0.1", "80", "--timeout", "0"], "more than 0");
});

Deno.test("TCP throughput writes 1 MiB blocks by default, less with many streams, and --size wins", () => {
  assertEquals(client("throughput", ["--throughput"]).plan.size, 1 << 20);
  assertEquals(client("throughput", ["--throughput", "-P", "32"]).plan.size, 1 << 20);
  assertEquals(client("throughput", ["--throughput", "-P", "64"]).plan.size, 512 * 1024);
  assertEquals(client("throughput", ["--throughput", "-P", "128"]).plan.size, 256 * 1024);
  assertEquals(client("throughput", ["--throughput", "--size", "131072"]).plan.size, 131072);
  assertEquals(client("throughput", ["--throughput", "--proto", "udp"]).plan.size, 1400);
});

Deno.test("--size takes K and M in 1024s, as iperf3's -l does, and says so when out of range", () => {
  assertEquals(client("throughput", ["--throughput", "-l", "128K"]).plan.size, 131072);
  assertEquals(client("throughput", ["--throughput", "--size", "1M"]).plan.size, 1 << 20);
  assertEquals(client("throughput", ["--throughput", "--size", "4MiB"]).plan.size, 4 << 20);
  assertEquals(client("throughput", ["--throughput", "-u", "--size", "1.5k"]).plan.size, 1536);
  assertUsage(["client", "--throughput", "--size", "5M"], "'5M'", "1 to 4194304", "1K = 1024");
  assertUsage(["client", "--throughput", "--size", "1e3"], "'1e3'", "'--size'");
});

Deno.test("--gso is for UDP throughput the client sends", () => {
  assertEquals(client("throughput", ["--throughput", "-u", "--gso"]).plan.gso, true);
  assertEquals(client("throughput", ["--throughput", "-u"]).plan.gso, undefined);
  assertUsage(["client", "--throughput", "--gso"], "'--gso'", "'--proto udp'");
  assertUsage(["client", "--throughput", "-u", "--gso", "--reverse"], "'--gso'", "'--reverse'");
  assertUsage(["client", "--probe", "-u", "--gso"], "'--gso'");
});

Deno.test("--iperf3 runs through lib/iperf3/, so --engine and --gso do not combine with it", () => {
  assertUsage(["client", "--throughput", "-u", "--iperf3", "--engine", "native"], "--engine");
  assertUsage(["client", "--throughput", "-u", "--iperf3", "--gso"], "--gso");
});
