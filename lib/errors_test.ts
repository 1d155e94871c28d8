/**
 * Tests for the error table: how raw Deno errors map to kinds and exit codes,
 * that the printed line is one line with no stack trace, and exit codes of
 * anything thrown.
 *
 * @example
 * ```sh
 * deno test lib/errors_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import {
  closedWithoutReply,
  type ErrorKind,
  EXIT_CODES,
  exitCodeOf,
  formatError,
  fromSystemError,
  NetkitError,
  usageError,
} from "./errors.ts";

const TARGET = "tcp 127.0.0.1:5050";

function mapped(err: unknown, action = "connect to"): NetkitError {
  const e = fromSystemError(err, action, TARGET);
  assert(e instanceof NetkitError);
  return e;
}

Deno.test("fromSystemError maps ConnectionRefused to 'refused', exit 3, naming the target", () => {
  const cause = new Deno.errors.ConnectionRefused("Connection refused (os error 111)");
  const e = mapped(cause);
  assertEquals(e.kind, "refused");
  assertEquals(e.exitCode, 3);
  assert(e.message.includes(TARGET), e.message);
  assertEquals(e.cause, cause);
});

Deno.test("fromSystemError maps AddrInUse to 'addr_in_use', exit 6, naming action and target", () => {
  const e = mapped(new Deno.errors.AddrInUse("Address already in use (os error 98)"), "listen on");
  assertEquals(e.kind, "addr_in_use");
  assertEquals(e.exitCode, 6);
  assert(e.message.includes(`listen on ${TARGET}`), e.message);
  assert(e.message.includes("address already in use"), e.message);
});

Deno.test("fromSystemError maps TimedOut to 'timeout', exit 5", () => {
  const e = mapped(new Deno.errors.TimedOut("connection timed out (os error 110)"));
  assertEquals(e.kind, "timeout");
  assertEquals(e.exitCode, 5);
  assert(e.message.includes(`connect to ${TARGET}`), e.message);
});

Deno.test("fromSystemError maps PermissionDenied to 'permission', exit 7, without the os error suffix", () => {
  const e = mapped(
    new Deno.errors.PermissionDenied("Permission denied (os error 13)"),
    "listen on",
  );
  assertEquals(e.kind, "permission");
  assertEquals(e.exitCode, 7);
  assert(e.message.includes("permission denied (Permission denied)"), e.message);
  assert(!e.message.includes("os error"), e.message);
});

Deno.test("fromSystemError maps NotCapable (a missing Deno permission) to 'permission', exit 7", () => {
  const e = mapped(new Deno.errors.NotCapable("Requires net access"));
  assertEquals(e.kind, "permission");
  assertEquals(e.exitCode, 7);
});

Deno.test("fromSystemError maps a failed address lookup to 'not_found', exit 4", () => {
  const e = mapped(new Error("failed to lookup address information: Name or service not known"));
  assertEquals(e.kind, "not_found");
  assertEquals(e.exitCode, 4);
  assert(e.message.includes("host name not found"), e.message);
  assert(e.message.includes(TARGET), e.message);
});

Deno.test("fromSystemError maps other resolver wordings to 'not_found'", () => {
  for (
    const text of [
      "Name or service not known",
      "nodename nor servname provided, or not known",
      "No address associated with hostname",
    ]
  ) {
    assertEquals(mapped(new Error(text)).kind, "not_found", text);
  }
});

Deno.test("fromSystemError maps NotFound (e.g. a missing socket path) to 'not_found', exit 4", () => {
  const e = fromSystemError(
    new Deno.errors.NotFound("No such file or directory (os error 2)"),
    "connect to",
    "unix /tmp/nope.sock",
  );
  assertEquals(e.kind, "not_found");
  assertEquals(e.exitCode, 4);
  assert(e.message.includes("unix /tmp/nope.sock"), e.message);
  assert(!e.message.includes("os error"), e.message);
});

Deno.test("fromSystemError maps a TLS InvalidData error to 'tls', exit 8", () => {
  const e = mapped(new Deno.errors.InvalidData("invalid peer certificate: UnknownIssuer"));
  assertEquals(e.kind, "tls");
  assertEquals(e.exitCode, 8);
});

Deno.test("fromSystemError maps anything else to 'network', exit 9, with the os error suffix dropped", () => {
  const e = mapped(new Deno.errors.ConnectionReset("Connection reset by peer (os error 104)"));
  assertEquals(e.kind, "network");
  assertEquals(e.exitCode, 9);
  assertEquals(e.message, `Cannot connect to ${TARGET}: Connection reset by peer`);
  assertEquals(mapped("weird").message, `Cannot connect to ${TARGET}: weird`);
});

Deno.test("fromSystemError returns a NetkitError unchanged", () => {
  const original = new NetkitError("timeout", "already typed");
  assertEquals(fromSystemError(original, "connect to", TARGET), original);
});

Deno.test("formatError prints a NetkitError as 'error: MESSAGE'", () => {
  assertEquals(formatError(new NetkitError("refused", "nobody home")), "error: nobody home");
});

Deno.test("formatError prints an unexpected Error as one internal-error line without its stack", () => {
  const err = new TypeError("boom");
  assert(err.stack?.includes("    at "), "the error does have a stack");
  const line = formatError(err);
  assertEquals(line, "error: Internal error: boom; please report it");
});

Deno.test("formatError never includes a stack trace, whatever was thrown", () => {
  const thrown: unknown[] = [
    new NetkitError("usage", "bad flag"),
    fromSystemError(new Deno.errors.ConnectionRefused("refused"), "connect to", TARGET),
    new Error("plain"),
    new RangeError("range"),
    "a string",
    42,
    undefined,
    null,
    { stack: "Error\n    at somewhere (file.ts:1:1)" },
  ];
  for (const err of thrown) {
    const line = formatError(err);
    assert(line.startsWith("error: "), line);
    assert(!line.includes("\n"), `one line: ${JSON.stringify(line)}`);
    assert(!line.includes("    at "), `no stack: ${JSON.stringify(line)}`);
  }
});

Deno.test("exitCodeOf gives each NetkitError kind its documented code", () => {
  for (const [kind, { code }] of Object.entries(EXIT_CODES)) {
    assertEquals(exitCodeOf(new NetkitError(kind as ErrorKind, "x")), code, kind);
  }
  assertEquals(exitCodeOf(new NetkitError("usage", "x")), 2);
  assertEquals(exitCodeOf(new NetkitError("refused", "x")), 3);
  assertEquals(exitCodeOf(new NetkitError("not_found", "x")), 4);
  assertEquals(exitCodeOf(new NetkitError("timeout", "x")), 5);
  assertEquals(exitCodeOf(new NetkitError("addr_in_use", "x")), 6);
  assertEquals(exitCodeOf(new NetkitError("permission", "x")), 7);
});

Deno.test("exitCodeOf gives 1 for anything that is not a NetkitError", () => {
  assertEquals(exitCodeOf(new Error("x")), 1);
  assertEquals(exitCodeOf("x"), 1);
  assertEquals(exitCodeOf(undefined), 1);
});

Deno.test("EXIT_CODES gives every kind its own code, 1 to 9", () => {
  const codes = Object.values(EXIT_CODES).map((e) => e.code).sort((a, b) => a - b);
  assertEquals(codes, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

Deno.test("usageError is exit 2 and ends with the --help hint of the command, or of netkit", () => {
  const e = usageError("Bad thing", "client");
  assertEquals(e.kind, "usage");
  assertEquals(e.exitCode, 2);
  assertEquals(e.message, "Bad thing (see 'netkit client --help')");
  assertEquals(usageError("Bad thing").message, "Bad thing (see 'netkit --help')");
});

Deno.test("NetkitError is an Error named 'NetkitError'", () => {
  const e = new NetkitError("failure", "x");
  assert(e instanceof Error);
  assertEquals(e.name, "NetkitError");
});

Deno.test("fromSystemError reads the codes of node: module errors as it reads Deno's classes", () => {
  const node = (code: string) => Object.assign(new Error(`connect ${code}`), { code });
  assertEquals(fromSystemError(node("ECONNREFUSED"), "connect to", "tcp x:1").kind, "refused");
  assertEquals(fromSystemError(node("ENOTFOUND"), "connect to", "tcp x:1").kind, "not_found");
  assertEquals(fromSystemError(node("EADDRINUSE"), "listen on", "tcp x:1").kind, "addr_in_use");
  assertEquals(fromSystemError(node("ETIMEDOUT"), "connect to", "tcp x:1").kind, "timeout");
});

Deno.test("fromSystemError never mentions ports for a Unix socket: permission and a taken path", () => {
  const target = "unix /run/nk/nk.sock";
  const denied = fromSystemError(
    new Deno.errors.PermissionDenied("Permission denied"),
    "listen on",
    target,
  );
  assertEquals(denied.kind, "permission");
  assert(denied.message.includes(target), denied.message);
  assert(!/port|privilege/i.test(denied.message), denied.message);
  const taken = fromSystemError(new Deno.errors.AddrInUse("Address in use"), "listen on", target);
  assertEquals(taken.kind, "addr_in_use");
  assert(taken.message.includes("--path"), taken.message);
  assert(!/port/i.test(taken.message), taken.message);
  // An IP listener keeps its port hints.
  const ip = fromSystemError(new Deno.errors.PermissionDenied("x"), "listen on", TARGET);
  assert(/ports below 1024/.test(ip.message), ip.message);
});

Deno.test("closedWithoutReply names the target and the likely limits, exit 3", () => {
  const e = closedWithoutReply(TARGET);
  assertEquals(e.exitCode, 3);
  assertEquals(
    e.message,
    `${TARGET}: the server closed the connection without a reply (a limit such as --max-conns, --allow/--deny?)`,
  );
});
