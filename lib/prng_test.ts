import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { mixSeed, mulberry32 } from "./prng.ts";

Deno.test("mulberry32 repeats its sequence for a seed and differs for another", () => {
  const take = (seed: number) => Array.from({ length: 5 }, mulberry32(seed));
  assertEquals(take(7), take(7));
  assertNotEquals(take(7), take(8));
  for (const x of take(9)) assert(x >= 0 && x < 1);
});

Deno.test("mulberry32 draws are roughly uniform (1,000,000 draws, each decile within 1%)", () => {
  const random = mulberry32(1);
  const bins = new Array(10).fill(0);
  for (let i = 0; i < 1_000_000; i++) bins[Math.floor(random() * 10)]++;
  for (const n of bins) assert(Math.abs(n - 100_000) < 1000, `bin ${n}`);
});

Deno.test("mixSeed gives distinct seeds per stream and the same for the same coordinates", () => {
  assertEquals(mixSeed(7, 1, 0), mixSeed(7, 1, 0));
  const seeds = new Set<number>();
  for (let s = 0; s < 100; s++) for (let d = 0; d < 2; d++) seeds.add(mixSeed(7, s, d));
  assertEquals(seeds.size, 200);
});
