/**
 * Tests for the promise timeout helper: the value or the promise's own error
 * pass through, the caller's error comes after the timeout (on `FakeTime`'s
 * clock: nothing waits on a real one), and no timer is left behind (the op
 * sanitizer fails any test that leaves one).
 *
 * @example
 * ```sh
 * deno test lib/deadline_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertRejects, assertStrictEquals } from "@std/assert";
import { FakeTime } from "@std/testing/time";
import { deadline } from "./deadline.ts";

class TimeoutError extends Error {}

/** A promise that never settles and holds no resource. */
function never<T>(): Promise<T> {
  return new Promise<T>(() => {});
}

Deno.test("deadline resolves with the promise's value and clears its (long) timer", async () => {
  // A 60 s timer left running would fail this test under --sanitize-ops.
  assertEquals(await deadline(Promise.resolve(42), 60_000, () => new TimeoutError()), 42);
});

Deno.test("deadline resolves with a value that arrives later, before the timeout", async () => {
  const { promise, resolve } = Promise.withResolvers<string>();
  const bounded = deadline(promise, 60_000, () => new TimeoutError());
  queueMicrotask(() => resolve("late but in time"));
  assertEquals(await bounded, "late but in time");
});

Deno.test("deadline passes the promise's own rejection through and clears its timer", async () => {
  const cause = new Error("refused");
  const err = await assertRejects(() =>
    deadline(Promise.reject(cause), 60_000, () => new TimeoutError())
  );
  assertStrictEquals(err, cause);
});

Deno.test("deadline rejects with the error from onTimeout once the timeout passes", async () => {
  using time = new FakeTime();
  const expected = new TimeoutError("timed out after 20 ms");
  let settled = false;
  const bounded = deadline(never<number>(), 20, () => expected);
  bounded.catch(() => {}).finally(() => settled = true);
  await time.tickAsync(19);
  assert(!settled, "rejected before the timeout");
  await time.tickAsync(1);
  const err = await assertRejects(() => bounded);
  assertStrictEquals(err, expected);
});

Deno.test("deadline calls onTimeout only when the timeout fires, exactly once", async () => {
  using time = new FakeTime();
  let calls = 0;
  const onTimeout = () => {
    calls++;
    return new TimeoutError();
  };
  await deadline(Promise.resolve("ok"), 60_000, onTimeout);
  await time.tickAsync(60_000);
  assertEquals(calls, 0);
  const bounded = deadline(never(), 20, onTimeout);
  await time.tickAsync(20);
  await assertRejects(() => bounded, TimeoutError);
  await time.tickAsync(1000);
  assertEquals(calls, 1);
});

Deno.test("deadline passes through a promise's own TimeoutError DOMException, unmapped", async () => {
  const own = new DOMException("the promise's own", "TimeoutError");
  const err = await assertRejects(() =>
    deadline(Promise.reject(own), 60_000, () => new TimeoutError())
  );
  assertStrictEquals(err, own);
});

Deno.test("deadline with a 0 ms timeout still prefers an already-resolved promise", async () => {
  assertEquals(await deadline(Promise.resolve("ready"), 0, () => new TimeoutError()), "ready");
});
