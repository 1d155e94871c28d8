/**
 * Tests for the live progress line on `FakeTime`'s clock with a fake stderr:
 * nothing before 2 s, the status once shown, text written around it, and a
 * wiped line at the end (also when stopped before it ever showed); and the
 * pure helpers (bar, width fitting, elapsed time).
 *
 * @example
 * ```sh
 * deno test lib/progress_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { FakeTime } from "@std/testing/time";
import { bar, elapsedText, fitToWidth, NO_PROGRESS, startProgress } from "./progress.ts";

const WIPE = "\r\x1b[K";

/** A stand-in for Deno.stderr that records what is written. */
function fakeStderr() {
  const writes: string[] = [];
  const decoder = new TextDecoder();
  const output = {
    writable: { locked: false },
    writeSync(p: Uint8Array) {
      writes.push(decoder.decode(p));
      return p.length;
    },
  } as unknown as typeof Deno.stderr;
  return { output, writes };
}

Deno.test("the live line draws nothing before 2 s, then the status, and is wiped by stop()", () => {
  using time = new FakeTime();
  const { output, writes } = fakeStderr();
  let sent = 0;
  const progress = startProgress({ output });
  progress.follow(() => `sent ${sent}`);
  sent = 10;
  time.tick(1999);
  assertEquals(writes, []);
  time.tick(1);
  assert(writes.length > 0 && writes.at(-1)!.startsWith(WIPE), JSON.stringify(writes));
  assert(writes.at(-1)!.endsWith("sent 10"), writes.at(-1));
  sent = 20;
  time.tick(200);
  assert(writes.at(-1)!.endsWith("sent 20"), writes.at(-1));
  progress.stop();
  assertEquals(writes.at(-1), WIPE);
  const count = writes.length;
  time.tick(5000);
  assertEquals(writes.length, count, "nothing drawn after stop()");
});

Deno.test("a run that ends before 2 s never draws the live line, not even a wipe", () => {
  using time = new FakeTime();
  const { output, writes } = fakeStderr();
  {
    using progress = startProgress({ output });
    progress.follow(() => "status");
    time.tick(1500);
  }
  time.tick(5000);
  assertEquals(writes, []);
});

Deno.test("text written around the live line finds it wiped, and it is redrawn after", () => {
  using time = new FakeTime();
  const { output, writes } = fakeStderr();
  using progress = startProgress({ output });
  progress.follow(() => "status");
  time.tick(2000);
  let seen = "";
  progress.around(() => seen = writes.at(-1)!);
  assertEquals(seen, WIPE);
  assert(writes.at(-1)!.endsWith("status"), writes.at(-1));
});

Deno.test("NO_PROGRESS runs what is written around it and draws nothing", () => {
  let ran = false;
  NO_PROGRESS.follow(() => "x");
  NO_PROGRESS.around(() => ran = true);
  NO_PROGRESS.stop();
  assert(ran);
});

Deno.test("bar fills in proportion, clamped to 0..1", () => {
  assertEquals(bar(0), "[--------------------]");
  assertEquals(bar(0.5), "[##########----------]");
  assertEquals(bar(1), "[####################]");
  assertEquals(bar(7), "[####################]");
  assertEquals(bar(-1), "[--------------------]");
  assertEquals(bar(0.5, 4), "[##--]");
});

Deno.test("fitToWidth cuts a long status to the terminal width with an ellipsis and flattens newlines", () => {
  assertEquals(fitToWidth("short", 80), "short");
  assertEquals(fitToWidth("abcdefghij", 5), "abcd…");
  assertEquals(fitToWidth("a\nb", 10), "a b");
  assertEquals(fitToWidth("abc", 0), "");
});

Deno.test("elapsedText prints whole seconds through @std/fmt/duration", () => {
  assertEquals(elapsedText(0), "0s");
  assertEquals(elapsedText(0.9), "0s");
  assertEquals(elapsedText(7.4), "7s");
  assertEquals(elapsedText(125), "2m 5s");
  assertEquals(elapsedText(3600), "1h");
});
