/**
 * Tests for the early stop of a run: first request stops sending, a second
 * stops waiting, and the exit code says what stopped it.
 *
 * @example
 * ```sh
 * deno test lib/stop_test.ts
 * ```
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { RunStop } from "./stop.ts";

Deno.test("RunStop: nothing requested, nothing aborted, the run's own exit code stands", () => {
  using stop = new RunStop();
  assertEquals(stop.signal.aborted, false);
  assertEquals(stop.now.aborted, false);
  assertEquals(stop.reason, undefined);
  assertEquals(stop.interrupted, false);
  assertEquals(stop.exitCode(5), 5);
});

Deno.test("RunStop: the first SIGINT stops sending only, the second stops waiting; exit 130", () => {
  using stop = new RunStop();
  stop.stop("SIGINT");
  assertEquals(stop.signal.aborted, true);
  assertEquals(stop.now.aborted, false, "in-flight replies are still waited for");
  assertEquals(stop.interrupted, true);
  stop.stop("SIGINT");
  assertEquals(stop.now.aborted, true);
  assertEquals(stop.exitCode(0), 130);
});

Deno.test("RunStop: SIGTERM exits 143, and the first reason is the one kept", () => {
  using stop = new RunStop();
  stop.stop("SIGTERM");
  stop.stop("SIGINT");
  assertEquals(stop.reason, "SIGTERM");
  assertEquals(stop.exitCode(0), 143);
});

Deno.test("RunStop: a closed stdout stops sending and waiting at once, exit 0", () => {
  using stop = new RunStop();
  stop.stop("stdout");
  assertEquals(stop.signal.aborted, true);
  assertEquals(stop.now.aborted, true);
  assertEquals(stop.interrupted, false);
  assertEquals(stop.exitCode(9), 0);
});

Deno.test("RunStop.onSignals removes its signal listeners when disposed", () => {
  // Leaked listeners would fail this test under --sanitize-ops/resources.
  using stop = RunStop.onSignals();
  assertEquals(stop.signal.aborted, false);
});
