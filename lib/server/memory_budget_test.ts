/**
 * Tests for the test buffer budget: the per-test share, the global limit,
 * and that released reservations come back exactly once.
 *
 * @module
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { MemoryBudget } from "./memory_budget.ts";

const MIB = 1024 * 1024;

Deno.test("MemoryBudget refuses one test over half the budget, saying by how much and what to change", () => {
  const budget = new MemoryBudget(256 * MIB);
  assertEquals(budget.perTest, 128 * MIB);
  const refusal = budget.reserve(512 * MIB, "128 streams of 4 MiB");
  assertEquals(typeof refusal, "string");
  assertMatch(
    refusal as string,
    /^128 streams of 4 MiB needs 512 MiB of buffers, over this server's 128 MiB per test \(half its --max-test-memory 256 MiB\): use fewer streams \(--parallel\) or a smaller --size$/,
  );
  assertEquals(budget.used, 0);
  // Undescribed, the refusal names the test once, not its size twice.
  assertMatch(
    budget.reserve(512 * MIB) as string,
    /^this test needs 512 MiB of buffers, over this server's 128 MiB per test/,
  );
});

Deno.test("MemoryBudget admits tests up to the limit exactly, refuses the next, and admits again after a release", () => {
  const budget = new MemoryBudget(256 * MIB);
  const grants = [1, 2, 3, 4].map(() => budget.reserve(64 * MIB));
  assert(grants.every((g) => typeof g !== "string"));
  assertEquals(budget.used, 256 * MIB);
  const refusal = budget.reserve(1);
  assertMatch(refusal as string, /test memory is taken \(256 MiB of 256 MiB by 4 running tests/);
  (grants[0] as { release(): void }).release();
  assertEquals(budget.used, 192 * MIB);
  assert(typeof budget.reserve(64 * MIB) !== "string");
});

Deno.test("MemoryBudget: a grant released twice gives its bytes back once", () => {
  const budget = new MemoryBudget(10 * MIB);
  const a = budget.reserve(4 * MIB) as { release(): void };
  const b = budget.reserve(3 * MIB) as { release(): void };
  a.release();
  a.release();
  assertEquals(budget.used, 3 * MIB);
  b.release();
  assertEquals(budget.used, 0);
});

Deno.test("MemoryBudget refuses negative, NaN and infinite requests, and a limit below one byte", () => {
  const budget = new MemoryBudget(MIB);
  for (const bad of [-1, NaN, Infinity]) assertEquals(typeof budget.reserve(bad), "string");
  assertEquals(budget.used, 0);
  let threw = false;
  try {
    new MemoryBudget(0);
  } catch {
    threw = true;
  }
  assert(threw);
});
