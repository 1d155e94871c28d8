import { assertEquals, assertThrows } from "@std/assert";
import { DatagramBatch } from "./types.ts";

Deno.test("a batch is one buffer of fixed slots; slot(i) views datagram i at its length", () => {
  const batch = new DatagramBatch(4, 8);
  assertEquals(batch.data.length, 32);
  batch.data.set([1, 2, 3], 8);
  batch.lengths[1] = 3;
  assertEquals(batch.slot(1), new Uint8Array([1, 2, 3]));
  assertEquals(batch.slot(1).buffer, batch.data.buffer); // a view, not a copy
  assertEquals(batch.slot(0).length, 0);
});

Deno.test("fill marks the first slots as datagrams of one length", () => {
  const batch = new DatagramBatch(4, 8);
  batch.fill(3, 5);
  assertEquals(batch.count, 3);
  assertEquals(Array.from(batch.lengths), [5, 5, 5, 0]);
  assertThrows(() => batch.fill(5, 1), RangeError);
  assertThrows(() => batch.fill(1, 9), RangeError);
});

Deno.test("a batch needs at least one slot of 1 to 65,535 bytes", () => {
  assertThrows(() => new DatagramBatch(0, 8), RangeError);
  assertThrows(() => new DatagramBatch(1, 0), RangeError);
  assertThrows(() => new DatagramBatch(1, 65_536), RangeError);
  assertThrows(() => new DatagramBatch(1.5, 8), RangeError);
});
